"""A real HTTP server on 127.0.0.1 for tests, run in a thread: canned replies per path.

    with LocalServer() as server:
        url = server.add("/a.png", Reply(body=PNG, content_type="image/png"))
        ...
        assert server.hits["/a.png"] == 1

Paths are matched exactly as the client sent them, percent-escapes included, without the
query; ``requests`` records every full request target (path and query) as received. Replies
for a path are served in order and the last one repeats, so ``add(p, Reply(503), Reply())``
is a server that fails once and then works. Unknown paths answer 404. GET and POST are
answered alike (a POST's body is read and kept in ``bodies``).

A Reply can also be hostile: ``drip`` sends the body a byte at a time with a pause between,
``endless`` sends chunks for ever (chunked encoding, until the client hangs up), and ``echo``
builds the body from the request's headers (a server quoting the token back).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds to wait before answering (for client timeouts).
    delay: float = 0.0
    # The body is sent this many times: a large stream without building it in memory.
    repeat: int = 1
    # Without Content-Length the body ends when the connection closes (HTTP/1.0 style).
    content_length: bool = True
    # Seconds between two bytes of the body: a server that drips its answer.
    drip: float = 0.0
    # Send ``body`` as chunks for ever (Transfer-Encoding: chunked), until the client leaves.
    endless: bool = False
    # The body, made from the request's headers (it replaces ``body``).
    echo: Callable[[dict[str, str]], bytes] | None = None


class LocalServer:
    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.requests: list[str] = []
        self.sent: Counter[str] = Counter()  # body bytes written, by path
        self.bodies: list[bytes] = []  # POST bodies, in order
        self._replies: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        # A short poll interval, so stopping the server does not cost each test half a second.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def base(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, *replies: Reply) -> str:
        """Serve ``replies`` (in order, the last repeating) at ``path``; returns its URL."""
        self._replies[path] = list(replies) or [Reply()]
        return self.url(path)

    def start(self) -> LocalServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _next(self, target: str) -> tuple[str, Reply]:
        path = target.split("?", 1)[0]
        with self._lock:
            self.hits[path] += 1
            self.requests.append(target)
            replies = self._replies.get(path)
            if replies is None:
                return path, Reply(404, b"not found", "text/plain")
            return path, replies[min(self.hits[path], len(replies)) - 1]


def _handler_for(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path, reply = server._next(self.path)
            if reply.delay:
                time.sleep(reply.delay)
            body = reply.body
            if reply.echo is not None:
                body = reply.echo({k: v for k, v in self.headers.items()})
            try:
                self.send_response(reply.status)
                if reply.content_type is not None:
                    self.send_header("Content-Type", reply.content_type)
                if reply.endless:
                    self.send_header("Transfer-Encoding", "chunked")
                elif reply.content_length:
                    self.send_header("Content-Length", str(len(body) * reply.repeat))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if reply.endless:
                    self._endless(path, body)
                    return
                for _ in range(reply.repeat):
                    self._write(path, body, reply.drip)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout, size cap): that is what some tests check

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length)
            with server._lock:
                server.bodies.append(data)
            self.do_GET()

        def _write(self, path: str, body: bytes, drip: float) -> None:
            pieces = [body[i:i + 1] for i in range(len(body))] if drip else [body]
            for piece in pieces:
                self.wfile.write(piece)
                self.wfile.flush()
                with server._lock:
                    server.sent[path] += len(piece)
                if drip:
                    time.sleep(drip)

        def _endless(self, path: str, body: bytes) -> None:
            chunk = b"%x\r\n%s\r\n" % (len(body), body)
            while True:
                self.wfile.write(chunk)
                with server._lock:
                    server.sent[path] += len(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler

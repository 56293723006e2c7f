"""A stand-in for Roam desktop's Local API on 127.0.0.1, for tests.

One real HTTP server on a random port, which writes ``{"port": N}`` to ``.roam-local-api.json``
in the home folder it is given (a test's temporary HOME), as the app does on startup. It
follows the public contract (Roam-Research/roam-tools, writeup-from-local-api-implementer-llm):

- ``POST /api/{graph}[?type=offline]`` with ``Authorization: Bearer roam-graph-local-token-…``
  and ``{"action", "args"}``; ``data.q`` runs datalog on the graph (the evaluator of
  fake_roam_api, with its ``:edit/time`` clock and edits), ``data.block.update`` sets a block's
  text (it needs the edit scope), ``ui.mainWindow.openBlock`` records the block; answers
  ``{"success": true, "result": …}`` or ``{"success": false, "error": {"code", "message"}}``
  with 401 (no, bad or revoked token, or a cloud token), 403
  ``INSUFFICIENT_SCOPE``, 404 unknown action;
- tokens belong to one (graph, type) and carry scopes (read < append < edit);
- ``POST /api/graphs/tokens/request`` answers as the user does in the permission dialog
  (``decide``: allow with an access level, reject, graph blocked, already pending, timeout);
- a locked graph (an encrypted graph before its password) holds requests until ``unlock`` or
  until ``ready_timeout`` seconds pass (then 504, as the app does after 30 minutes).

``calls`` records every request (path, action, status); ``opened`` the blocks shown.
"""

from __future__ import annotations

import json
import random
import secrets
import string
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.fake_roam_api import Db, QueryError, evaluate

PREFIX = "roam-graph-local-token-"
LEVELS = {"read-only": {"read": True}, "read-append": {"read": True, "append": True},
          "full": {"read": True, "append": True, "edit": True}}
_EDIT_ACTIONS = ("data.block.update", "data.block.delete", "data.block.move",
                 "data.page.update", "data.page.delete")
_APPEND_ACTIONS = ("data.block.create", "data.page.create")


@dataclass
class Call:
    path: str
    action: str
    status: int
    authorization: bool


class FakeRoamLocal:
    def __init__(self, home: Path, graphs: dict[tuple[str, str], list[dict[str, Any]]],
                 ready_timeout: float = 10.0) -> None:
        self.home = home
        self.dbs = {key: Db(pages) for key, pages in graphs.items()}
        self.tokens: dict[str, tuple[str, str, dict[str, bool]]] = {}
        self.calls: list[Call] = []
        self.opened: list[tuple[str, str]] = []
        self.token_requests: list[dict[str, Any]] = []
        self.ready_timeout = ready_timeout
        # How the user answers the next permission dialog: an access level, or one of
        # "reject", "blocked", "pending", "timeout".
        self.decision = "read-only"
        self._locked: dict[tuple[str, str], threading.Event] = {}
        self._lock = threading.Lock()
        self._rng = random.Random(5)
        self._server: ThreadingHTTPServer | None = None

    # knobs
    def db(self, graph: str, kind: str = "hosted") -> Db:
        return self.dbs[(graph, kind)]

    def issue(self, graph: str, kind: str = "hosted", level: str = "read-only",
              scopes: dict[str, bool] | None = None) -> str:
        token = PREFIX + "".join(secrets.choice(string.ascii_letters + string.digits + "_-")
                                 for _ in range(29))
        self.tokens[token] = (graph, kind, scopes if scopes is not None else LEVELS[level])
        return token

    def revoke(self, token: str) -> None:
        self.tokens.pop(token, None)

    def lock(self, graph: str, kind: str = "hosted") -> None:
        self._locked[(graph, kind)] = threading.Event()

    def unlock(self, graph: str, kind: str = "hosted") -> None:
        event = self._locked.pop((graph, kind), None)
        if event is not None:
            event.set()

    def actions(self, status: int = 200) -> list[str]:
        return [c.action for c in self.calls if c.status == status and c.action]

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    def __enter__(self) -> FakeRoamLocal:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        (self.home / ".roam-local-api.json").write_text(json.dumps({"port": self.port}))
        return self

    def __exit__(self, *exc: object) -> None:
        for event in list(self._locked.values()):
            event.set()
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    # answering
    def answer(self, path: str, headers: Any, body: bytes) -> tuple[int, Any]:
        parts = urlsplit(path)
        if parts.path == "/api/graphs/tokens/request":
            status, payload = self._token_request(body)
            self._record(Call(parts.path, "", status, False))
            return status, payload
        kind = "offline" if "type=offline" in parts.query else "hosted"
        graph = unquote(parts.path[len("/api/"):]) if parts.path.startswith("/api/") else ""
        try:
            request = json.loads(body or b"{}")
            action, args = str(request.get("action", "")), request.get("args", [])
        except (ValueError, AttributeError):
            action, args = "", []
        auth = headers.get("Authorization")
        status, payload = self._api(graph, kind, auth, action, args)
        self._record(Call(parts.path, action, status, auth is not None))
        return status, payload

    def _api(self, graph: str, kind: str, auth: str | None, action: str, args: Any
             ) -> tuple[int, Any]:
        if not auth or not auth.startswith("Bearer "):
            return _fail(401, "", "Authorization header with Bearer token is required")
        token = auth[len("Bearer "):]
        if token.startswith("roam-graph-token-"):
            return _fail(401, "", "This endpoint requires a local API token")
        if not token.startswith(PREFIX):
            return _fail(401, "", "Invalid token format")
        grant = self.tokens.get(token)
        if grant is None or grant[:2] != (graph, kind):
            return _fail(401, "", "Invalid or expired token")
        scopes = grant[2]
        need = ("edit" if action in _EDIT_ACTIONS else
                "append" if action in _APPEND_ACTIONS else "read")
        allowed = scopes.get(need) or (need == "append" and scopes.get("edit")) or (
            need == "read" and (scopes.get("append") or scopes.get("edit")))
        if not allowed:
            return _fail(403, "INSUFFICIENT_SCOPE", "Token does not have permission for this "
                         "action. Your token can only be used for read only.")
        locked = self._locked.get((graph, kind))
        if locked is not None and not locked.wait(self.ready_timeout):
            return _fail(504, "", "Timed out waiting for the graph to be ready")
        db = self.dbs.get((graph, kind))
        if db is None:
            return _fail(500, "", "Graph window was closed")
        if action == "data.q":
            if not isinstance(args, list) or not args or not isinstance(args[0], str):
                return _fail(400, "", "data.q takes a query and its inputs")
            try:
                return 200, {"success": True, "result": evaluate(db, args[0], args[1:],
                                                                 self._rng)}
            except (QueryError, ValueError, KeyError, IndexError, TypeError) as err:
                return _fail(500, "", f"query failed: {err}")
        if action == "data.block.update":
            block = args[0].get("block") if args and isinstance(args[0], dict) else None
            if not isinstance(block, dict) or not isinstance(block.get("uid"), str) or \
                    not isinstance(block.get("string"), str):
                return _fail(400, "", "data.block.update takes {block: {uid, string}}")
            try:
                db.edit(block["uid"], block["string"])
            except KeyError:
                return _fail(500, "", f"no block with uid {block['uid']}")
            return 200, {"success": True, "result": None}
        if action == "ui.mainWindow.openBlock":
            uid = (args[0].get("block") or {}).get("uid") if args and isinstance(args[0], dict) \
                else None
            self.opened.append((graph, str(uid)))
            return 200, {"success": True, "result": None}
        return _fail(404, "", f"unknown action {action}")

    def _token_request(self, body: bytes) -> tuple[int, Any]:
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            request = None
        if not isinstance(request, dict) or request.get("accessLevel") not in LEVELS or not (
            request.get("graph") and request.get("description")
        ):
            return _fail(400, "VALIDATION_ERROR", "graph, description and accessLevel are "
                         "required")
        self.token_requests.append(request)
        graph, kind = request["graph"], request.get("graphType") or "hosted"
        decision = self.decision
        if decision == "reject":
            return _fail(403, "USER_REJECTED", "The user denied the request")
        if decision == "blocked":
            return _fail(403, "GRAPH_BLOCKED", "Token requests are blocked for this graph")
        if decision == "pending":
            return _fail(409, "REQUEST_IN_PROGRESS", "A token request is already in progress")
        if decision == "timeout":
            return _fail(408, "TIMEOUT", "The user did not respond within 5 minutes")
        level = decision
        token = self.issue(graph, kind, level)
        return 200, {"success": True, "token": token, "graphName": graph, "graphType": kind,
                     "grantedAccessLevel": level, "grantedScopes": LEVELS[level]}

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)


def _fail(status: int, code: str, message: str) -> tuple[int, Any]:
    error: dict[str, str] = {"message": message}
    if code:
        error["code"] = code
    return status, {"success": False, "error": error}


def _handler(api: FakeRoamLocal) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, payload = api.answer(self.path, self.headers, body)
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting: that is what some tests check

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler

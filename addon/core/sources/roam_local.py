"""Roam desktop's Local API (``roam-local://GRAPH``, ``roam-local://GRAPH?type=offline``) -> Graph.

The Roam desktop app serves an HTTP API on 127.0.0.1, on the port it writes to
``~/.roam-local-api.json``. ``POST /api/{graph}[?type=offline]`` runs one ``roamAlphaAPI``
action (``{"action": "data.q", "args": [query, *inputs]}``) with
``Authorization: Bearer roam-graph-local-token-…``. It reaches hosted, offline and encrypted
graphs (a request waits while the user unlocks an encrypted graph) and has no quota. A tool
asks for a token with ``POST /api/graphs/tokens/request``, which opens a permission dialog in
Roam: the user allows it, and the answer holds the token.

Guarantees:
- requests go only to 127.0.0.1, on the port the app wrote; the port file is read again after
  a refused connection (the app may have restarted on another port);
- the token travels only in ``Authorization`` and never appears in a log record or an error
  message (server messages are scrubbed of it);
- every answer ends in bounded time and memory: it is read within ``timeout`` seconds in all
  (not per byte) and up to ``MAX_ANSWER_BYTES``, whoever listens on the port;
- every documented failure is one ``SourceError("roam-local://GRAPH", line)`` naming what to
  do: app not running, token refused or revoked, scope too low, graph blocked, a token request
  already pending, no answer in time (an encrypted graph waiting for its password);
- a full read builds exactly the Graph the graph's JSON export would give (it shares the
  cloud API's pulls: roam_api.read_with).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote

import orjson
import requests
import urllib3

from ..model import Graph, SourceError, gc_paused, graph_name
from . import roam_api

SCHEME = "roam-local://"
PORT_FILE = ".roam-local-api.json"
TOKEN_PREFIX = "roam-graph-local-token-"
CLOUD_TOKEN_PREFIX = "roam-graph-token-"
GRAPH_TYPES = ("hosted", "offline")
# The app waits up to 30 minutes for an encrypted graph's password; a sync waits this long
# (the add-on's background polls pass less, and try again on their next turn).
DEFAULT_TIMEOUT = 600.0
# The permission dialog stays up to 5 minutes; the answer may take a little longer.
TOKEN_REQUEST_TIMEOUT = 330.0
# The most one answer may hold: a pull is a few thousand pages at most (chunks adapt).
MAX_ANSWER_BYTES = 256 * 1024 * 1024
CLIENT_NAME = "Roam Bridge (Anki)"


def is_url(source: str) -> bool:
    return source.strip().lower().startswith(SCHEME)


@dataclass(frozen=True)
class Target:
    """One graph of the desktop app: its name and type (tokens belong to both)."""

    graph: str
    type: str = "hosted"

    @property
    def label(self) -> str:
        return f"{SCHEME}{self.graph}" + ("?type=offline" if self.type == "offline" else "")

    @property
    def key(self) -> str:
        """How the add-on files this graph's token: ``GRAPH`` or ``GRAPH?type=offline``."""
        return self.label[len(SCHEME):]


def parse_url(url: str) -> Target:
    """``roam-local://GRAPH[?type=offline]`` -> Target; ValueError naming the problem."""
    text = url.strip()
    if not is_url(text):
        raise ValueError(f"{url!r} is not a Roam desktop source; write it as roam-local://GRAPH")
    rest = text[len(SCHEME):]
    path, _, query = rest.partition("?")
    name = unquote(path).strip().rstrip("/")
    if not name:
        raise ValueError(f"{url!r} names no graph; write it as roam-local://GRAPH")
    if any(c in name for c in "/#:") or any(c.isspace() for c in name):
        raise ValueError(f"{url!r}: a graph name has no '/', '#', ':' or spaces; write "
                         "roam-local://GRAPH")
    params = parse_qs(query, keep_blank_values=True)
    unknown = set(params) - {"type"}
    kind = (params.get("type") or ["hosted"])[-1].strip().lower()
    if unknown or kind not in GRAPH_TYPES:
        raise ValueError(f"{url!r}: the only option is ?type=offline (for an offline graph)")
    return Target(name, kind)


def port_file(home: str | Path | None = None) -> Path:
    return Path(home or Path.home()) / PORT_FILE


def read_port(label: str, home: str | Path | None = None) -> int:
    """The port the desktop app listens on, from its port file."""
    path = port_file(home)
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise SourceError(label, f"Roam desktop is not running (no {path}); start the Roam "
                          "desktop app and try again") from None
    except (OSError, orjson.JSONDecodeError) as err:
        raise SourceError(label, f"cannot read {path} ({type(err).__name__}); start the Roam "
                          "desktop app again") from None
    port = data.get("port") if isinstance(data, dict) else None
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise SourceError(label, f"{path} names no port; start the Roam desktop app again")
    return port


def token_for(target: Target, tokens: dict[str, str] | None = None) -> str:
    """This graph's token: the add-on's for the graph, else ``$ROAM_API_TOKEN``."""
    token = ((tokens or {}).get(target.key) or "").strip()
    token = token or os.environ.get(roam_api.TOKEN_ENV, "").strip()
    if not token:
        raise SourceError(target.label, _NO_TOKEN)
    return token


_NO_TOKEN = (
    "not connected to Roam desktop: connect in Roam Bridge's Settings (Connect to Roam "
    f"desktop…), or put a local API token in the {roam_api.TOKEN_ENV} environment variable"
)


@dataclass
class LocalClient:
    """One graph's conversation with the desktop app: port, auth header, errors."""

    target: Target
    token: str
    session: requests.Session
    timeout: float = DEFAULT_TIMEOUT
    home: str = ""
    _port: int | None = None

    def __repr__(self) -> str:  # never the token, even in a debugger or a traceback dump
        return f"LocalClient(target={self.target!r})"

    @property
    def graph(self) -> str:
        return self.target.graph

    @property
    def label(self) -> str:
        return self.target.label

    def q(self, query: str, args: list[Any]) -> tuple[Any, float]:
        """Run a datalog query (``data.q``); its result and the seconds the answer took."""
        return self.call("data.q", [query, *args])

    def update_block(self, uid: str, text: str) -> None:
        """Set one block's text (``data.block.update``; the token needs edit access)."""
        self.call("data.block.update", [{"block": {"uid": uid, "string": text}}])

    def call(self, action: str, args: list[Any]) -> tuple[Any, float]:
        """Run one roamAlphaAPI action; its ``result`` and the seconds the answer took."""
        path = f"/api/{quote(self.target.graph, safe='')}"
        if self.target.type == "offline":
            path += "?type=offline"
        body = orjson.dumps({"action": action, "args": args})
        headers = {"Authorization": f"Bearer {self.token}",
                   "Content-Type": "application/json; charset=utf-8"}
        started = time.monotonic()
        response = self._post(path, body, headers)
        content = _bounded(response, started, self.timeout, MAX_ANSWER_BYTES, self.label,
                           self._no_answer())
        data = _loads(content)
        if response.status_code == 200 and isinstance(data, dict) and data.get("success"):
            return data.get("result"), time.monotonic() - started
        raise SourceError(self.label, self._error(response.status_code, data, action))

    def _no_answer(self) -> str:
        return (f"no answer from Roam desktop within {self.timeout:g} s (an encrypted graph "
                "waits for its password: unlock it in Roam, then sync again)")

    def _post(self, path: str, body: bytes, headers: dict[str, str]) -> requests.Response:
        for attempt in range(2):
            if self._port is None or attempt:
                self._port = read_port(self.label, self.home)
            url = f"http://127.0.0.1:{self._port}{path}"
            try:
                return self.session.post(url, data=body, headers=headers, stream=True,
                                         timeout=(5, self.timeout), allow_redirects=False)
            except requests.Timeout:
                break
            except requests.ConnectionError:
                # The app may have restarted on another port: read the port file once more.
                if attempt:
                    raise SourceError(
                        self.label, f"Roam desktop is not running (nothing answers on "
                        f"127.0.0.1:{self._port}); start the Roam desktop app and try again"
                    ) from None
            except requests.RequestException as err:
                raise SourceError(self.label, f"cannot talk to Roam desktop "
                                  f"({type(err).__name__})") from None
        raise SourceError(self.label, self._no_answer())

    def _error(self, status: int, data: Any, action: str = "data.q") -> str:
        code, message = _code_and_message(data, self.token)
        graph = f"graph {self.target.graph!r}" + (
            " (offline)" if self.target.type == "offline" else ""
        )
        if status == 401:
            if "local api token" in message.lower() or self.token.startswith(CLOUD_TOKEN_PREFIX):
                return ("that is a Roam cloud API token; Roam desktop takes a local one "
                        f"({TOKEN_PREFIX}…): connect again in Roam Bridge's Settings")
            return (f"Roam desktop refused the token (it was revoked, or is not a token of "
                    f"{graph}); connect again in Roam Bridge's Settings (Connect to Roam "
                    f"desktop…) or set a valid one in {roam_api.TOKEN_ENV}")
        if status == 403 and code in ("INSUFFICIENT_SCOPE", "SCOPE_EXCEEDS_PERMISSION") and (
                action != "data.q"):
            return (f"the token may only read {graph} ({code}); to write Anki edits back, "
                    "connect again in Roam Bridge's Settings with edit access, or turn "
                    "write-back off")
        if status == 403 and code in ("INSUFFICIENT_SCOPE", "SCOPE_EXCEEDS_PERMISSION"):
            return (f"the token's scope is too low to read {graph} ({code}); connect again "
                    "with read access")
        if status == 504:
            return (f"{graph} did not open in Roam desktop in time (an encrypted graph waits "
                    "for its password); unlock it in Roam and sync again")
        if status == 404:
            return f"Roam desktop does not know this request (HTTP 404: {message}); update Roam"
        text = f"Roam desktop answered HTTP {status}"
        return text + (f" ({code})" if code else "") + (f": {message}" if message else "")


def connect(target: Target, token: str, *, session: requests.Session | None = None,
            timeout: float = DEFAULT_TIMEOUT, home: str = "") -> LocalClient:
    """A checked client for one graph of the desktop app."""
    token = token.strip()
    if not token:
        raise SourceError(target.label, _NO_TOKEN)
    if not (token.isascii() and token.isprintable()) or " " in token:
        raise SourceError(target.label, "the local API token holds a space, quote or "
                          "invisible character no token has; connect again")
    try:
        graph_name(target.graph)
    except ValueError as err:
        raise SourceError(target.label, str(err)) from None
    return LocalClient(target, token, session or _local_session(), timeout, home)


def _local_session() -> requests.Session:
    """A session that never goes through a proxy from the environment: the token is for the
    app on this machine, and no proxy may see it."""
    session = requests.Session()
    session.trust_env = False
    return session


def read(
    target: Target, token: str, *, session: requests.Session | None = None,
    timeout: float = DEFAULT_TIMEOUT, home: str = "", chunk: int = roam_api.DEFAULT_CHUNK,
    progress: Callable[[int, int], None] | None = None,
) -> Graph:
    """Read the whole graph through the desktop app (source "roam", name the graph's)."""
    own = session is None
    client = connect(target, token, session=session, timeout=timeout, home=home)
    try:
        with gc_paused():
            return roam_api.read_with(client, chunk, progress)
    finally:
        if own:
            client.session.close()


@dataclass(frozen=True)
class Grant:
    """What the user allowed in Roam's permission dialog."""

    token: str = field(repr=False)
    access_level: str
    scopes: dict[str, bool]


def request_token(
    target: Target, *, session: requests.Session | None = None,
    timeout: float = TOKEN_REQUEST_TIMEOUT, home: str = "", description: str = CLIENT_NAME,
    access: str = "read-only",
) -> Grant:
    """Ask Roam desktop for a token (``access`` "read-only", or "full" to write Anki edits
    back): Roam shows its permission dialog, and this
    returns once the user has answered (up to five minutes). SourceError naming what happened
    when there is no token: refused, blocked, a request already pending, no answer, or a
    token without read access."""
    label = target.label
    own = session is None
    session = session or _local_session()
    port = read_port(label, home)
    body = {"graph": target.graph, "description": description, "accessLevel": access,
            "graphType": target.type}
    started = time.monotonic()
    no_answer = "Roam desktop gave no answer to the request for access; try again"
    try:
        response = session.post(f"http://127.0.0.1:{port}/api/graphs/tokens/request",
                                json=body, timeout=(5, timeout), allow_redirects=False,
                                stream=True)
        data = _loads(_bounded(response, started, timeout, 1 << 20, label, no_answer))
    except requests.Timeout:
        raise SourceError(label, no_answer) from None
    except requests.RequestException:
        raise SourceError(label, f"Roam desktop is not running (nothing answers on "
                          f"127.0.0.1:{port}); start the Roam desktop app and try again") from None
    finally:
        if own:
            session.close()
    token = data.get("token") if isinstance(data, dict) else None
    if response.status_code == 200 and isinstance(data, dict) and data.get("success") and (
        isinstance(token, str) and token
    ):
        scopes = data.get("grantedScopes")
        scopes = {k: bool(v) for k, v in scopes.items()} if isinstance(scopes, dict) else {}
        if not (scopes.get("read") or scopes.get("append") or scopes.get("edit")):
            raise SourceError(label, "Roam desktop granted a token without read access; "
                              "connect again and allow reading")
        return Grant(token, str(data.get("grantedAccessLevel") or ""), scopes)
    code, message = _code_and_message(data, token or "")
    graph = f"graph {target.graph!r}"
    messages = {
        "USER_REJECTED": f"access to {graph} was denied in Roam; connect again to allow it",
        "GRAPH_BLOCKED": (f"{graph} blocks requests for access (Never Allow was chosen); "
                          "allow them again in Roam's settings, then connect"),
        "REQUEST_IN_PROGRESS": (f"a request for access to {graph} is already waiting in Roam; "
                                "answer it there (or wait for it to expire) and connect again"),
        "TIMEOUT": "nobody answered Roam's permission dialog within 5 minutes; connect again",
        "VALIDATION_ERROR": f"Roam desktop refused the request for access: {message}",
        "CANCELLED": "the request for access was cancelled; connect again",
    }
    if code in messages:
        raise SourceError(label, messages[code])
    raise SourceError(label, f"Roam desktop answered the request for access with HTTP "
                      f"{response.status_code}" + (f": {message}" if message else ""))


def open_block(client: LocalClient, uid: str) -> None:
    """Show a block (or page, by its uid) in the desktop app's main window."""
    client.call("ui.mainWindow.openBlock", [{"block": {"uid": uid}}])


def _bounded(response: requests.Response, started: float, seconds: float, limit: int,
             label: str, no_answer: str) -> bytes:
    """A streamed answer's body, read within ``seconds`` of ``started`` in all and up to
    ``limit`` bytes; SourceError otherwise. The response is closed."""
    chunks: list[bytes] = []
    size = 0
    try:
        # read1: what one receive brings, so a slow drip is timed between receives (a full
        # 64 KiB read would wait for all of it, each byte resetting the socket's timeout).
        while chunk := response.raw.read1(1 << 16, decode_content=True):
            size += len(chunk)
            if size > limit:
                raise SourceError(label, f"Roam desktop's answer is larger than "
                                  f"{limit >> 20 or 1} MiB; not read")
            if time.monotonic() - started > seconds:
                raise requests.Timeout
            chunks.append(chunk)
    except (requests.Timeout, urllib3.exceptions.TimeoutError):
        raise SourceError(label, no_answer) from None
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as err:
        raise SourceError(label, f"Roam desktop's answer broke off "
                          f"({type(err).__name__})") from None
    finally:
        response.close()
    return b"".join(chunks)


def _loads(content: bytes) -> Any:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return None


def _code_and_message(data: Any, token: str) -> tuple[str, str]:
    """The error's code and message, one short line, never holding the token."""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        code, message = str(error.get("code") or ""), str(error.get("message") or "")
    else:
        code, message = "", str(error or (data.get("message", "") if isinstance(data, dict)
                                          else ""))
    if token:
        message = message.replace(token, "[token]")
    # Scrub before shortening: a cut could leave the token's first characters behind.
    message = " ".join(message.split())[:200]
    return code[:40], message

"""A stand-in for the Roam backend API on 127.0.0.1, for tests.

One real HTTP server on a random port, in two roles. The *front* answers every POST with a 308
to the *peer* (the same path under ``/peer-1``), as api.roamresearch.com sends clients to its
``peer-N`` machines: the client may follow it, as it stays on the API's own scheme, host and
port (the real peers are hosts under the API's own, which a test cannot resolve). The peer checks
``X-Authorization: Bearer <token>`` (``Authorization`` alone is refused, as it is what requests
drops across hosts) and evaluates datalog ``q`` requests against a graph loaded from a Roam JSON
export: ``:find`` of variables or one ``pull``, ``:in`` with scalar and ``[?x ...]`` bindings,
``:where`` triple patterns, pull patterns with keywords, ``*``, nested maps and ``...``. Like
the real API it answers set-like results and card-many refs in no particular order (shuffled
here), and pulled keys start with ``:``.

Every entity carries ``:edit/time`` in the fake's own clock (an hour behind this machine's, so
a client that mixes in its own clock is caught), and only the entity an edit touches gets a new
one, as in Roam: it does not bubble up to parents or pages. ``:find`` takes ``(max ?x)`` and
``(count ?x)`` aggregates, and ``:where`` comparison predicates such as ``[(> ?t ?since)]``.
``db.edit``, ``db.add``, ``db.delete``, ``db.move`` and ``db.rename`` change the graph between
polls, as a user in Roam would.

``POST /api/graph/{graph}/write`` takes ``{"action": "update-block", "block": {"uid",
"string"}}`` and answers 200 with an empty body, as Roam does; a token without edit access
(``read_only``) gets Roam's 403.

Knobs: ``fail_next`` (429 with Retry-After, 503, 500 "took too long"…), ``sleep_next`` (a slow
answer), ``too_long_over`` (pulls of more pages than that fail as too long), ``quota`` (the
50-a-minute limit, scaled down), ``forbid`` (403 for a valid token), ``read_only`` (writes
refused). ``calls`` records what arrived, ``bytes_out`` the bytes of every answer's body,
``writes`` every block update made.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_REFS = frozenset({":block/children", ":block/page"})
PEER_PREFIX = "/peer-1"
_UNIQUE = (":block/uid", ":node/title")
# The fake Roam's clock runs this far behind the machine's (milliseconds).
CLOCK_OFFSET_MS = -3_600_000
_COMPARE = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b, "=": lambda a, b: a == b, "!=": lambda a, b: a != b}
_AGGREGATES: dict[str, Callable[[set[Any]], Any]] = {"max": max, "min": min, "count": len}


# --- a little EDN, enough for queries and pull patterns ---------------------------------------

_TOKEN = re.compile(r'[\s,]+|("(?:[^"\\]|\\.)*")|([\[\](){}])|([^\s,\[\](){}"]+)')


def parse_edn(text: str) -> Any:
    tokens = [m.group(1) or m.group(2) or m.group(3) for m in _TOKEN.finditer(text)]
    tokens = [t for t in tokens if t]
    value, end = _parse(tokens, 0)
    if end != len(tokens):
        raise ValueError("trailing input after the form")
    return value


def _parse(tokens: list[str], at: int) -> tuple[Any, int]:
    token = tokens[at]
    closers = {"[": "]", "(": ")", "{": "}"}
    if token in closers:
        items: list[Any] = []
        at += 1
        while tokens[at] != closers[token]:
            item, at = _parse(tokens, at)
            items.append(item)
        if token == "[":
            return items, at + 1
        if token == "(":
            return tuple(items), at + 1
        return dict(zip(items[::2], items[1::2], strict=True)), at + 1
    if token.startswith('"'):
        return json.loads(token), at + 1
    if re.fullmatch(r"-?\d+", token):
        return int(token), at + 1
    return token, at + 1


# --- the graph as entities ----------------------------------------------------------------------


class Db:
    """Entities from a Roam JSON export, ids growing in file order as Roam's grow over time.

    Thread-safe for one writer (a test) and the server's readers: every change and every
    query holds ``lock``."""

    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.entities: dict[int, dict[str, Any]] = {}
        self.index: dict[tuple[str, Any], int] = {}
        self.lock = threading.RLock()
        self._next = 1000
        self._last_time = 0
        for raw in pages:
            eid = self._add({":node/title": raw["title"], ":block/uid": raw.get("uid") or "",
                             ":edit/time": raw.get("edit-time") or self.now()})
            self._add_children(eid, eid, raw.get("children") or [])

    def now(self) -> int:
        """Roam's clock: milliseconds, strictly increasing, an hour behind this machine."""
        self._last_time = max(self._last_time + 1, int(time.time() * 1000) + CLOCK_OFFSET_MS)
        return self._last_time

    def eid(self, uid: str) -> int:
        return self.index[(":block/uid", uid)]

    # Changes, as a user makes them in Roam -----------------------------------------------

    def edit(self, uid: str, string: str) -> None:
        with self.lock:
            entity = self.entities[self.eid(uid)]
            entity[":block/string"] = string
            entity[":edit/time"] = self.now()

    def add(self, parent_uid: str, string: str, uid: str, order: int | None = None) -> None:
        """A new block under a page or block, at ``order`` (default: last)."""
        with self.lock:
            parent = self.eid(parent_uid)
            owner = self.entities[parent]
            page = parent if ":node/title" in owner else owner[":block/page"]
            eid = self._add({":block/string": string, ":block/uid": uid, ":block/page": page,
                             ":block/order": 0, ":edit/time": self.now()})
            self._insert(parent, eid, order)

    def delete(self, uid: str) -> None:
        """Delete a block and everything under it; no other entity's time changes."""
        with self.lock:
            eid = self.eid(uid)
            for owner in self.entities.values():
                kids = owner.get(":block/children")
                if kids and eid in kids:
                    kids.remove(eid)
                    self._renumber(kids)
            stack = [eid]
            while stack:
                gone = self.entities.pop(stack.pop())
                stack.extend(gone.get(":block/children", []))
                for attr in _UNIQUE:
                    if attr in gone:
                        self.index.pop((attr, gone[attr]), None)

    def move(self, uid: str, parent_uid: str, order: int | None = None) -> None:
        """Move a block (and its children) under another block or page, maybe on another
        page; the moved block gets a new time, as Roam gives it."""
        with self.lock:
            eid, parent = self.eid(uid), self.eid(parent_uid)
            for owner in self.entities.values():
                kids = owner.get(":block/children")
                if kids and eid in kids:
                    kids.remove(eid)
                    self._renumber(kids)
            owner = self.entities[parent]
            page = parent if ":node/title" in owner else owner[":block/page"]
            stack = [eid]
            while stack:
                entity = self.entities[stack.pop()]
                entity[":block/page"] = page
                stack.extend(entity.get(":block/children", []))
            self.entities[eid][":edit/time"] = self.now()
            self._insert(parent, eid, order)

    def rename(self, page_uid: str, title: str) -> None:
        with self.lock:
            entity = self.entities[self.eid(page_uid)]
            self.index.pop((":node/title", entity[":node/title"]), None)
            entity[":node/title"] = title
            entity[":edit/time"] = self.now()
            self.index[(":node/title", title)] = self.eid(page_uid)

    def add_page(self, title: str, uid: str) -> None:
        with self.lock:
            self._add({":node/title": title, ":block/uid": uid, ":edit/time": self.now()})

    def _insert(self, parent: int, eid: int, order: int | None) -> None:
        kids = self.entities[parent].setdefault(":block/children", [])
        kids.insert(len(kids) if order is None else order, eid)
        self._renumber(kids)

    def _renumber(self, kids: list[int]) -> None:
        for order, kid in enumerate(kids):
            self.entities[kid][":block/order"] = order

    # Building --------------------------------------------------------------------------------

    def _add(self, entity: dict[str, Any]) -> int:
        eid = self._next
        self._next += 1
        if not entity.get(":block/uid"):
            entity[":block/uid"] = f"gen{eid}"
        self.entities[eid] = entity
        for attr in _UNIQUE:
            if attr in entity:
                self.index[(attr, entity[attr])] = eid
        return eid

    def _add_children(self, page: int, parent: int, children: list[dict[str, Any]]) -> None:
        stack = [(parent, children)]
        while stack:
            owner, raws = stack.pop()
            kids = []
            for order, raw in enumerate(raws):
                entity = {":block/string": raw.get("string", ""), ":block/uid": raw.get("uid"),
                          ":block/order": order, ":block/page": page,
                          ":edit/time": raw.get("edit-time") or self.now()}
                if raw.get("heading"):
                    entity[":block/heading"] = raw["heading"]
                eid = self._add(entity)
                kids.append(eid)
                if raw.get("children"):
                    stack.append((eid, raw["children"]))
            if kids:
                self.entities[owner][":block/children"] = kids


class QueryError(Exception):
    pass


def evaluate(db: Db, query: str, args: list[Any], rng: random.Random) -> list[list[Any]]:
    form = parse_edn(query)
    if not isinstance(form, list):
        raise QueryError("a query is a vector")
    sections: dict[str, list[Any]] = {}
    current = None
    for item in form:
        if isinstance(item, str) and item in (":find", ":in", ":where"):
            current = sections.setdefault(item, [])
        elif current is None:
            raise QueryError(f"unexpected {item!r} before :find")
        else:
            current.append(item)
    params = [p for p in sections.get(":in", ["$"]) if p != "$"]
    if len(params) != len(args):
        raise QueryError(f"expected {len(params)} args, got {len(args)}")
    bindings: list[dict[str, Any]] = [{}]
    for param, arg in zip(params, args, strict=True):
        if isinstance(param, list):  # [?x ...]: one binding per element
            bindings = [{**b, param[0]: value} for b in bindings for value in arg]
        else:
            bindings = [{**b, param: arg} for b in bindings]
    with db.lock:
        for clause in sections.get(":where", []):
            if clause and isinstance(clause[0], tuple):
                bindings = _filter(clause[0], bindings)
            else:
                bindings = _match(db, clause, bindings)
        finds = sections.get(":find", [])
        if any(isinstance(f, tuple) and f[0] in _AGGREGATES for f in finds):
            result = _aggregate(finds, bindings)
        else:
            rows: dict[tuple[Any, ...], list[Any]] = {}
            for binding in bindings:
                key = tuple(binding[f[1] if isinstance(f, tuple) else f] for f in finds)
                if key not in rows:
                    rows[key] = [
                        _pull(db, binding[f[1]], f[2], rng) if isinstance(f, tuple)
                        else binding[f] for f in finds
                    ]
            result = list(rows.values())
    rng.shuffle(result)  # a query's result is a set: no order to rely on
    return result


def _filter(predicate: tuple[Any, ...], bindings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``[(> ?t ?since)]``: keep the bindings for which the comparison holds."""
    name, *terms = predicate
    compare = _COMPARE.get(name)
    if compare is None or len(terms) != 2:
        raise QueryError(f"unknown predicate {name!r}")
    kept = []
    for binding in bindings:
        left, right = (binding.get(t) if _is_var(t) else t for t in terms)
        if left is not None and right is not None and compare(left, right):
            kept.append(binding)
    return kept


def _aggregate(finds: list[Any], bindings: list[dict[str, Any]]) -> list[list[Any]]:
    """``:find ?p (count ?b)``: one row per value of the plain variables, each aggregate over
    the distinct values its variable takes in that group (datalog results are sets)."""
    groups: dict[tuple[Any, ...], list[set[Any]]] = {}
    plain = [f for f in finds if not isinstance(f, tuple)]
    aggregates = [f for f in finds if isinstance(f, tuple)]
    for binding in bindings:
        key = tuple(binding[f] for f in plain)
        values = groups.setdefault(key, [set() for _ in aggregates])
        for into, (_, var) in zip(values, aggregates, strict=True):
            into.add(binding[var])
    rows = []
    for key, values in groups.items():
        plain_values = iter(key)
        aggregated = iter(_AGGREGATES[f[0]](v) for f, v in zip(aggregates, values, strict=True))
        rows.append([next(aggregated) if isinstance(f, tuple) else next(plain_values)
                     for f in finds])
    return rows


def _is_var(term: Any) -> bool:
    return isinstance(term, str) and term.startswith("?")


def _match(db: Db, clause: list[Any], bindings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    e_term, attr = clause[0], clause[1]
    v_term = clause[2] if len(clause) > 2 else "_"
    out = []
    for binding in bindings:
        e = binding.get(e_term) if _is_var(e_term) else e_term
        v = binding.get(v_term) if _is_var(v_term) else (None if v_term == "_" else v_term)
        if e is not None:
            candidates = [e]
        elif v is not None and attr in _UNIQUE:
            candidates = [db.index[(attr, v)]] if (attr, v) in db.index else []
        else:
            candidates = [eid for eid, ent in db.entities.items() if attr in ent]
        for eid in candidates:
            entity = db.entities.get(eid, {})
            if attr not in entity:
                continue
            values = entity[attr] if isinstance(entity[attr], list) else [entity[attr]]
            for value in values:
                if v is not None and value != v:
                    continue
                new = dict(binding)
                if _is_var(e_term):
                    new[e_term] = eid
                if _is_var(v_term):
                    new[v_term] = value
                out.append(new)
    return out


def _pull(db: Db, eid: int, pattern: list[Any], rng: random.Random) -> dict[str, Any]:
    entity = db.entities[eid]
    out: dict[str, Any] = {}
    for item in pattern:
        if item == "*":
            out.update({a: _ref_ids(a, v) for a, v in entity.items()})
        elif item == ":db/id":
            out[item] = eid
        elif isinstance(item, str):
            if item in entity:
                out[item] = _ref_ids(item, entity[item])
        elif isinstance(item, dict):
            for attr, sub in item.items():
                if attr not in entity:
                    continue
                value = entity[attr]
                if attr not in _REFS:
                    out[attr] = value
                    continue
                inner = pattern if sub == "..." else sub
                if isinstance(value, list):
                    pulled = [_pull(db, ref, inner, rng) for ref in value]
                    rng.shuffle(pulled)  # card-many refs come back in no particular order
                    out[attr] = pulled
                else:
                    out[attr] = _pull(db, value, inner, rng)
    return out


def _ref_ids(attr: str, value: Any) -> Any:
    if attr not in _REFS:
        return value
    if isinstance(value, list):
        return [{":db/id": ref} for ref in value]
    return {":db/id": value}


# --- the two servers ------------------------------------------------------------------------------


@dataclass
class Call:
    server: str  # "front" or "peer"
    path: str
    status: int
    pages: int = 0  # pages a pull asked for (0 for other queries)
    x_authorization: bool = False
    authorization: bool = False

    @property
    def is_pull(self) -> bool:
        return self.pages > 0


@dataclass
class _Fault:
    status: int
    retry_after: str | None
    message: str
    only_pulls: bool


@dataclass
class _Sleep:
    seconds: float
    only_pulls: bool


class FakeRoamApi:
    """Use as a context manager; ``base_url`` is the front's URL, ``graph`` the graph's name."""

    def __init__(
        self,
        pages: list[dict[str, Any]],
        graph: str = "demo",
        token: str = "roam-graph-token-fake",
        peer_host: str = "127.0.0.1",
        seed: int = 7,
    ) -> None:
        self.db = Db(pages)
        self.graph = graph
        self.token = token
        self.peer_host = peer_host
        self.calls: list[Call] = []
        self.bytes_out = 0
        self.server_seconds = 0.0  # time spent answering, for benchmarks
        self.too_long_over: int | None = None
        self.quota: tuple[int, float] | None = None
        self.forbid = False
        self.read_only = False
        self.writes: list[tuple[str, str]] = []
        self._rng = random.Random(seed)
        self._faults: deque[_Fault] = deque()
        self._sleeps: deque[_Sleep] = deque()
        self._accepted: deque[float] = deque()
        self._lock = threading.Lock()
        self._servers: list[ThreadingHTTPServer] = []

    # knobs
    def fail_next(
        self, status: int, times: int = 1, retry_after: str | None = None, message: str = "",
        only_pulls: bool = False,
    ) -> None:
        self._faults.extend(_Fault(status, retry_after, message, only_pulls) for _ in range(times))

    def sleep_next(self, seconds: float, times: int = 1, only_pulls: bool = False) -> None:
        self._sleeps.extend(_Sleep(seconds, only_pulls) for _ in range(times))

    # what happened
    def pulls(self, status: int = 200) -> list[int]:
        """Pages asked for by each pull the peer answered with ``status``, in order."""
        return [c.pages for c in self.calls if c.is_pull and c.status == status]

    def statuses(self, server: str = "peer") -> list[int]:
        return [c.status for c in self.calls if c.server == server]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._servers[0].server_address[1]}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.peer_host}:{self._servers[0].server_address[1]}{PEER_PREFIX}"

    def __enter__(self) -> FakeRoamApi:
        server = _QuietServer(("127.0.0.1", 0), _handler(self))
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self._servers.append(server)
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    # answering
    def answer(self, role: str, path: str, headers: Any, body: bytes) -> tuple[int, dict, Any]:
        """(status, extra headers, JSON body) for one POST."""
        if role == "front":
            self._record(Call("front", path, 308))
            return 308, {"Location": self.peer_url + path}, {"message": "see peer"}
        x_auth = headers.get("X-Authorization")
        call = Call("peer", path, 0, x_authorization=x_auth is not None,
                    authorization=headers.get("Authorization") is not None)
        try:
            request = json.loads(body or b"{}")
            query, args = request.get("query", ""), request.get("args", [])
            if "pull" in query and args and isinstance(args[0], list):
                call.pages = len(args[0])
        except (ValueError, AttributeError):
            request, query, args = None, "", []
        started = time.perf_counter()
        status, extra, payload = self._answer(call, path, x_auth, request, query, args)
        with self._lock:
            self.server_seconds += time.perf_counter() - started
        call.status = status
        self._record(call)
        return status, extra, payload

    def _answer(
        self, call: Call, path: str, x_auth: str | None, request: Any, query: str, args: Any
    ) -> tuple[int, dict, Any]:
        if x_auth != f"Bearer {self.token}":
            return 401, {}, {"message": "Invalid token or token doesn't have enough privileges."}
        if self.forbid:
            return 403, {}, {"message": "This token has no read access to the graph."}
        with self._lock:
            if self.quota is not None:
                calls, period = self.quota
                now = time.monotonic()
                while self._accepted and now - self._accepted[0] >= period:
                    self._accepted.popleft()
                if len(self._accepted) >= calls:
                    wait = period - (now - self._accepted[0])
                    return 429, {"Retry-After": f"{wait:.3f}"}, {"message": "Too many requests"}
                self._accepted.append(now)
            fault = _take(self._faults, call.is_pull)
            sleep = _take(self._sleeps, call.is_pull)
        if sleep is not None:
            time.sleep(sleep.seconds)
        if fault is not None:
            extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return fault.status, extra, {"message": fault.message or f"HTTP {fault.status}"}
        match = re.fullmatch(r"/api/graph/([^/]+)/(q|write)", path)
        if match is None:
            return 404, {}, {"message": f"no route {path}"}
        if match.group(1) != self.graph:
            return 400, {}, {"message": f"no graph named {match.group(1)}"}
        if request is None:
            return 400, {}, {"message": "the body is not JSON"}
        if match.group(2) == "write":
            return self._write(request)
        if self.too_long_over is not None and call.pages > self.too_long_over:
            return 500, {}, {"message": "Query took too long to run (20 s limit)."}
        try:
            return 200, {}, {"result": evaluate(self.db, query, args, self._rng)}
        except (QueryError, ValueError, KeyError, IndexError, TypeError) as err:
            return 400, {}, {"message": f"bad query: {err}"}

    def _write(self, request: Any) -> tuple[int, dict, Any]:
        if self.read_only:
            return 403, {}, {"message": "Invalid token or token doesn't have enough privileges."}
        block = request.get("block") if isinstance(request, dict) else None
        if request.get("action") != "update-block" or not isinstance(block, dict):
            return 400, {}, {"message": "unknown or malformed action"}
        uid, string = block.get("uid"), block.get("string")
        if not isinstance(uid, str) or not isinstance(string, str):
            return 400, {}, {"message": "update-block needs a uid and a string"}
        with self._lock:
            try:
                self.db.edit(uid, string)
            except KeyError:
                return 400, {}, {"message": f"no block with uid {uid}"}
            self.writes.append((uid, string))
        return 200, {}, b""

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)


def _take(queue: deque[Any], is_pull: bool) -> Any:
    """The next scheduled fault or sleep, if it applies to this call."""
    if queue and (is_pull or not queue[0].only_pulls):
        return queue.popleft()
    return None


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out has hung up: writing the late answer fails, as it should.
        pass


def _handler(api: FakeRoamApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            role, path = "front", self.path
            if path.startswith(PEER_PREFIX + "/"):
                role, path = "peer", path[len(PEER_PREFIX):]
            status, extra, payload = api.answer(role, path, self.headers, body)
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            with api._lock:
                api.bytes_out += len(data)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler

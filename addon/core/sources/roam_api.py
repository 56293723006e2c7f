"""Roam backend API (``roam-api://GRAPH``) -> Graph.

Reads a hosted, unencrypted Roam graph through the official backend API
(``POST {base}/api/graph/{graph}/q``, datalog with pulls) and builds exactly the Graph the
graph's JSON export would give: the same pages in creation order, children by ``:block/order``,
uids, strings and headings. Guarantees:

- the token travels only in ``X-Authorization`` and only to the API itself: a 307/308 is
  followed only to the same scheme, host and port, or to one of the API's ``peer-N`` machines
  under its host (where api.roamresearch.com sends clients); a redirect anywhere else (another
  port of the same host included) is refused, not followed with the token;
- the token never appears in a log record or an error message: server messages are scrubbed of
  it in any case, letter-spaced, or percent-, HTML- or backslash-escaped, and of any ten
  characters of it in a row; they are shown as plain printable text (no terminal escapes);
- every read ends in bounded time and memory (``limits``): each answer is streamed and stopped
  at ``HTTP_ANSWER_BYTES`` or ``HTTP_ANSWER_SECONDS`` (a server dripping a byte a second, or
  sending an endless chunked answer, cannot hold a sync), and the whole read, waits included,
  at ``API_READ_SECONDS``;
- at most 50 requests a minute leave this process per graph (the API's quota); a 429 waits for
  ``Retry-After`` and a 503 (graph waking up) is retried with back-off, a bounded number of
  times; a server asking to wait longer than ``MAX_RETRY_AFTER`` ends the read with a line
  saying when to try again;
- each pull stays under the API's 20-second query limit: pages are pulled in chunks that shrink
  when an answer is slow or too large, or the server says the query took too long;
- every failure raises ``SourceError("roam-api://GRAPH", one line)``; a half-read graph is never
  returned.
"""

from __future__ import annotations

import html
import logging
import math
import os
import re
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit

import orjson
import requests
import urllib3

from .. import limits
from ..http_body import BodyTooLarge, BodyTooSlow, read_body
from ..model import Graph, SourceError, gc_paused, graph_name
from .files import size_text
from .roam_json import build_graph, json_problem

SCHEME = "roam-api://"
DEFAULT_BASE_URL = "https://api.roamresearch.com"
TOKEN_ENV = "ROAM_API_TOKEN"
# The API's documented limits: requests per graph per minute, and seconds a query may run.
QUOTA_CALLS = 50
QUOTA_PERIOD = 60.0
QUERY_LIMIT = 20.0
DEFAULT_CHUNK = 300
MAX_REDIRECTS = 3
# What is read of an answer that is not the result: enough for any error message.
ERROR_BYTES = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
_PEER = re.compile(r"peer-\d+")

# Every page's entity id and uid. Entity ids grow as entities are created, so sorting by them
# gives pages in creation order, the order an export lists them in.
_LIST_PAGES = "[:find ?p ?uid :where [?p :node/title] [?p :block/uid ?uid]]"
# One pattern for pages and blocks: `...` recurses into children with this same pattern.
_PATTERN = (
    "[:node/title :block/uid :block/string :block/order :block/heading {:block/children ...}]"
)
_PULL_PAGES = f"[:find (pull ?p {_PATTERN}) :in $ [?uid ...] :where [?p :block/uid ?uid]]"

log = logging.getLogger(__name__)


def is_url(source: str) -> bool:
    return source.strip().lower().startswith(SCHEME)


def parse_url(url: str) -> str:
    """``roam-api://GRAPH`` -> ``GRAPH``; ValueError naming the problem otherwise."""
    text = url.strip()
    if not is_url(text):
        raise ValueError(f"{url!r} is not a Roam API source; write it as roam-api://GRAPH")
    name = unquote(text[len(SCHEME):]).strip().rstrip("/")
    if not name:
        raise ValueError(f"{url!r} names no graph; write it as roam-api://GRAPH")
    if any(c in name for c in "/?#:") or any(c.isspace() for c in name):
        raise ValueError(
            f"{url!r}: a graph name has no '/', '?', '#', ':' or spaces; write roam-api://GRAPH"
        )
    return name


def token_from(config_token: str, graph: str = "") -> str:
    """The API token: the add-on's ``roam_api_token``, else ``$ROAM_API_TOKEN``."""
    token = (config_token or "").strip() or os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise SourceError(f"{SCHEME}{graph}", _NO_TOKEN)
    return token


_NO_TOKEN = (
    "no Roam API token; create a read-only token in Roam (Settings > Graph > API tokens) and "
    f"set it as roam_api_token in Roam Bridge's settings or in the {TOKEN_ENV} environment "
    "variable"
)

_BAD_TOKEN = (
    "the Roam API token holds a space, quote or invisible character no token has (copied "
    "with it?); paste it again as roam_api_token in Roam Bridge's settings or in the "
    f"{TOKEN_ENV} environment variable"
)


class RateLimiter:
    """At most ``calls`` requests in any ``period`` seconds (a sliding window); thread-safe."""

    def __init__(
        self,
        calls: int = QUOTA_CALLS,
        period: float = QUOTA_PERIOD,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.calls = calls
        self.period = period
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def wait(self, latest: float = math.inf,
             on_wait: Callable[[float], None] | None = None) -> float:
        """Block until one more request fits in the window, and count it. Returns the wait.

        A wait that would end after ``latest`` (on this limiter's clock) raises TimeoutError
        at once, without sleeping; ``on_wait(seconds)`` hears of each wait before it starts.
        """
        waited = 0.0
        # Holding the lock while sleeping is the point: other readers of the same graph queue.
        with self._lock:
            while True:
                now = self._clock()
                while self._sent and now - self._sent[0] >= self.period:
                    self._sent.popleft()
                if len(self._sent) < self.calls:
                    self._sent.append(now)
                    return waited
                pause = self.period - (now - self._sent[0])
                if now + pause > latest:
                    raise TimeoutError(pause)
                if on_wait is not None:
                    on_wait(pause)
                self._sleep(pause)
                waited += pause


# The quota is the graph's on the server, not one read's: an add-on that syncs every few
# minutes must share one window per graph across reads, so limiters outlive a read.
_limiters: dict[tuple[str, str], RateLimiter] = {}
_limiters_lock = threading.Lock()


def limiter_for(base_url: str, graph: str) -> RateLimiter:
    with _limiters_lock:
        return _limiters.setdefault((base_url.rstrip("/"), graph), RateLimiter())


def read(
    graph: str,
    token: str,
    base_url: str = DEFAULT_BASE_URL,
    *,
    session: requests.Session | None = None,
    timeout: float = limits.HTTP_TIMEOUT,
    chunk: int = DEFAULT_CHUNK,
    progress: Callable[[int, int], None] | None = None,
    notice: Callable[[str], None] | None = None,
    limiter: RateLimiter | None = None,
    retries: int = 4,
    backoff: float = 1.0,
    answer_bytes: int = limits.HTTP_ANSWER_BYTES,
    answer_seconds: float = limits.HTTP_ANSWER_SECONDS,
    read_seconds: float = limits.API_READ_SECONDS,
) -> Graph:
    """Read ``graph`` through the API into a Graph (source "roam", name ``graph``).

    ``chunk`` is the most pages one pull asks for; ``progress(done, total)`` is called with
    pages read, and ``notice(text)`` before each wait (the quota, a 429 or 503). ``retries``
    bounds the retries of one request after 429 / 503, waiting ``Retry-After`` or
    ``backoff`` doubling from one retry to the next. ``timeout`` bounds connecting and each
    read of the socket; ``answer_bytes`` and ``answer_seconds`` one answer, ``read_seconds``
    the whole read (the defaults are ``limits``').
    """
    if chunk < 1:
        raise ValueError("chunk must be at least 1 page")
    own_session = session is None
    client = connect(graph, token, base_url, session=session, timeout=timeout,
                     limiter=limiter, retries=retries, backoff=backoff,
                     answer_bytes=answer_bytes, answer_seconds=answer_seconds,
                     read_seconds=read_seconds, notice=notice)
    try:
        with gc_paused():
            return _read(client, chunk, progress)
    finally:
        if own_session:
            client.session.close()


def _read(client: _Client, chunk: int, progress: Callable[[int, int], None] | None) -> Graph:
    label = client.label
    try:
        listing, _ = client.q(_LIST_PAGES, [])
    except (_QueryTooLong, _AnswerTooLarge) as err:
        raise SourceError(label, f"the Roam API could not list the graph's pages ({err}); the "
                                 "graph is too large for the API: sync from an export instead"
                          ) from None
    order = _page_uids(listing, label)
    del listing
    total = len(order)
    if not total:
        raise SourceError(label, "the graph has no pages (or the token cannot read them)")
    if progress is not None:
        progress(0, total)
    pulled: dict[str, dict[str, Any]] = {}
    size = min(chunk, total)
    done = 0
    while done < total:
        uids = order[done:done + size]
        try:
            result, elapsed = client.q(_PULL_PAGES, [uids])
        except (_QueryTooLong, _AnswerTooLarge) as err:
            if size == 1:
                why = (f"within the API's {QUERY_LIMIT:g}-second query limit"
                       if isinstance(err, _QueryTooLong) else f"through the API ({err})")
                raise SourceError(
                    label, f"page {_printable(uids[0])} is too large to pull {why}"
                ) from None
            # Never grow back to a size that failed: each failure costs the server 20 s.
            chunk = size = max(1, size // 2)
            log.info("Roam API: %s; pulling %d pages at a time", err, size)
            continue
        for row in _rows(result, label):
            page = _export_page(row, label)
            pulled[page["uid"]] = page
        del result
        done += len(uids)
        size = _next_chunk(size, chunk, elapsed, client.timeout)
        if progress is not None:
            progress(done, total)
    # A page deleted between the listing and its pull is simply not there any more.
    return build_graph([pulled[uid] for uid in order if uid in pulled], client.graph, label)


def _next_chunk(size: int, most: int, elapsed: float, timeout: float) -> int:
    """Halve the chunk after a slow answer, grow it back (up to ``most``) after fast ones.

    "Slow" is a quarter of the time a query may take: pages differ wildly in size, so the
    next chunk may well be heavier than this one.
    """
    budget = min(timeout, QUERY_LIMIT)
    if elapsed > budget / 4:
        return max(1, size // 2)
    if elapsed < budget / 16:
        return min(most, size * 2)
    return size


def _page_uids(listing: Any, label: str) -> list[str]:
    if not isinstance(listing, list):
        raise SourceError(label, "unexpected answer to the page query (not a list)")
    rows: dict[str, int] = {}
    for row in listing:
        if not (
            isinstance(row, list) and len(row) == 2
            and isinstance(row[0], int) and isinstance(row[1], str)
        ):
            raise SourceError(label, "unexpected answer to the page query (rows of id and uid)")
        rows[row[1]] = row[0]
    return sorted(rows, key=rows.__getitem__)


def _rows(result: Any, label: str) -> list[Any]:
    if not isinstance(result, list) or not all(
        isinstance(row, list) and len(row) == 1 for row in result
    ):
        raise SourceError(label, "unexpected answer to a pull (rows of one page each)")
    return [row[0] for row in result]


def _attr(raw: dict[str, Any], name: str) -> Any:
    # Since November 2022 the API answers ":block/string"; before, "block/string".
    value = raw.get(":" + name)
    return raw.get(name) if value is None else value


def _export_page(raw: Any, label: str) -> dict[str, Any]:
    """A pulled page as the JSON export writes it, children sorted by ``:block/order``.

    Iterative, like the JSON reader: real pages nest deeper than Python's recursion allows.
    """
    if not isinstance(raw, dict):
        raise SourceError(label, "unexpected answer to a pull (a page is not an object)")
    page: dict[str, Any] = {"title": _attr(raw, "node/title"), "uid": _attr(raw, "block/uid")}
    stack: list[tuple[dict[str, Any], dict[str, Any]]] = [(raw, page)]
    while stack:
        source, into = stack.pop()
        kids = _attr(source, "block/children")
        if not kids:
            continue
        if not isinstance(kids, list) or not all(isinstance(k, dict) for k in kids):
            raise SourceError(label, f"unexpected answer: children of {into.get('uid')!r}")
        children = []
        for kid in sorted(kids, key=_order):
            block: dict[str, Any] = {
                "string": _attr(kid, "block/string") or "", "uid": _attr(kid, "block/uid"),
            }
            heading = _attr(kid, "block/heading")
            if heading:
                block["heading"] = heading
            children.append(block)
            stack.append((kid, block))
        into["children"] = children
    return page


def _order(raw: dict[str, Any]) -> float:
    order = _attr(raw, "block/order")
    return order if isinstance(order, int) else math.inf


class _QueryTooLong(Exception):
    """The server stopped the query at its time limit: ask for less."""

    def __str__(self) -> str:
        return f"the query took longer than the API's {QUERY_LIMIT:g}-second limit"


class _AnswerTooLarge(Exception):
    """The answer passed the byte limit: ask for less."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit

    def __str__(self) -> str:
        return f"its answer holds more than {size_text(self.limit)}"


@dataclass
class _Answer:
    status: int
    headers: Mapping[str, str]
    body: bytearray
    elapsed: float


@dataclass
class _Client:
    """One graph's HTTP conversation: auth header, redirects, quota, retries, limits, errors."""

    graph: str
    token: str
    base_url: str
    session: requests.Session
    timeout: float
    limiter: RateLimiter
    retries: int
    backoff: float
    answer_bytes: int
    answer_seconds: float
    deadline: float  # time.monotonic() by which the whole read must be over
    read_seconds: float
    notice: Callable[[str], None] | None = None
    # Where the API sent us (its peer machine); later calls go there directly, saving a
    # round trip and a request from the quota.
    peer: str = ""
    _scrub: Callable[[str], str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._scrub = scrubber(self.token)

    def __repr__(self) -> str:  # never the token, even in a debugger or a traceback dump
        return f"_Client(graph={self.graph!r}, base_url={self.base_url!r})"

    @property
    def label(self) -> str:
        return f"{SCHEME}{self.graph}"

    def q(self, query: str, args: list[Any]) -> tuple[Any, float]:
        """Run a datalog query; its ``result`` and the seconds the answer took."""
        return self._call("q", {"query": query, "args": args})

    def update_block(self, uid: str, text: str) -> None:
        """Set one block's text (``update-block``; the token needs edit access)."""
        self._call("write", {"action": "update-block", "block": {"uid": uid, "string": text}})

    def _call(self, endpoint: str, body: dict[str, Any]) -> tuple[Any, float]:
        path = f"/api/graph/{quote(self.graph, safe='')}/{endpoint}"
        payload = orjson.dumps(body)
        writing = endpoint == "write"
        attempt = 0
        while True:
            answer = self._post(path, payload)
            status = answer.status
            if status == 200:
                # A write answers with no result to speak of.
                return (None if writing else self._result(answer)), answer.elapsed
            message = self._server_message(answer)
            if status == 500 and "took too long" in message.lower():
                raise _QueryTooLong
            if status not in (429, 503) or attempt >= self.retries:
                raise self._error(status, message, attempt + 1, writing)
            delay = self._delay(answer, attempt)
            log.info("Roam API: HTTP %d, retrying in %.1f s", status, delay)
            self._say(f"HTTP {status}: waiting {delay:.0f} s before trying again")
            time.sleep(delay)
            attempt += 1

    def _post(self, path: str, payload: bytes) -> _Answer:
        url = (self.peer or self.base_url) + path
        headers = {
            "X-Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
        }
        for _ in range(MAX_REDIRECTS + 1):
            self._wait_for_quota()
            started = time.monotonic()
            timeout = max(0.01, min(self.timeout, self.deadline - started))
            try:
                with self.session.post(
                    url, data=payload, headers=headers, timeout=timeout,
                    allow_redirects=False, stream=True,
                ) as response:
                    status = response.status_code
                    log.debug("Roam API: POST %s -> %d", path, status)
                    if status in (307, 308):
                        url = self._follow(url, path, response)
                        continue
                    limit = self.answer_bytes if status == 200 else ERROR_BYTES
                    body = self._body(response, url, started, limit, status == 200)
            except (requests.Timeout, urllib3.exceptions.TimeoutError):
                self._check_deadline()
                raise SourceError(
                    self.label, f"no answer from the Roam API at {_host(url)} within "
                    f"{timeout:g} s; check the network and try again later"
                ) from None
            except (requests.RequestException, urllib3.exceptions.HTTPError) as err:
                raise SourceError(
                    self.label, f"cannot reach the Roam API at {_host(url)} "
                    f"(network error: {type(err).__name__})"
                ) from None
            return _Answer(status, response.headers, body, time.monotonic() - started)
        raise SourceError(self.label, "the Roam API redirected too many times")

    def _body(self, response: requests.Response, url: str, started: float, limit: int,
              result: bool) -> bytearray:
        """The answer's body, read as it arrives and stopped at ``limit`` bytes (an error's
        body is cut there; a result's raises _AnswerTooLarge) or when it takes too long."""
        try:
            return read_body(response, limit, min(started + self.answer_seconds, self.deadline),
                             cut=not result)
        except BodyTooLarge:
            raise _AnswerTooLarge(limit) from None
        except BodyTooSlow as slow:
            self._check_deadline()
            raise SourceError(
                self.label, f"the Roam API at {_host(url)} sent its answer too slowly "
                f"({size_text(slow.received)} in {self.answer_seconds:g} s); try again later"
            ) from None

    def _wait_for_quota(self) -> None:
        try:
            self.limiter.wait(self.deadline, lambda pause: self._say(
                f"waiting {pause:.0f} s for the API's quota of {QUOTA_CALLS} requests a minute"
            ))
        except TimeoutError:
            self._check_deadline(force=True)

    def restart(self) -> None:
        """A new read begins: the whole-read deadline counts from now."""
        self.deadline = time.monotonic() + self.read_seconds

    def _check_deadline(self, force: bool = False) -> None:
        if force or time.monotonic() >= self.deadline:
            raise SourceError(self.label, f"reading the graph through the Roam API takes more "
                                          f"than {_duration(self.read_seconds)}; sync from an "
                                          "export instead, or try again later")

    def _say(self, text: str) -> None:
        if self.notice is not None:
            self.notice(text)

    def _follow(self, url: str, path: str, response: requests.Response) -> str:
        """Where a 307/308 points, if the token may go there (see the module doc)."""
        location = response.headers.get("Location", "")
        if not location:
            raise SourceError(self.label, "the Roam API redirected without saying where")
        target = urljoin(url, location)
        if not _trusted(self.base_url, target):
            to = urlsplit(target)
            where = _printable(f"{to.scheme}://{to.netloc.rpartition('@')[2]}")
            raise SourceError(
                self.label, f"the Roam API redirected to {where}, outside "
                f"{_printable(_origin(self.base_url))}; not following it (the token was not "
                "sent there)"
            )
        to = urlsplit(target)
        prefix = to.path[: -len(path)] if to.path.endswith(path) and not to.query else ""
        self.peer = f"{to.scheme}://{to.netloc}{prefix}"
        return target

    def _delay(self, answer: _Answer, attempt: int) -> float:
        after = _retry_after(answer.headers.get("Retry-After"))
        if after is None:
            return min(limits.MAX_RETRY_AFTER, self.backoff * 2**attempt)
        if after > limits.MAX_RETRY_AFTER:
            when = time.strftime("%H:%M", time.localtime(time.time() + after))
            raise SourceError(
                self.label, f"the Roam API asks to wait {_duration(after)} before the next "
                f"request (HTTP {answer.status}, Retry-After); try again after {when}"
            )
        if time.monotonic() + after > self.deadline:
            self._check_deadline(force=True)
        return after

    def _result(self, answer: _Answer) -> Any:
        try:
            data = orjson.loads(answer.body)
        except orjson.JSONDecodeError as err:
            problem = json_problem(err)
            if problem.startswith("not valid JSON"):
                problem = "something not JSON"
            raise SourceError(self.label, f"the Roam API answered with {problem}") from None
        if not isinstance(data, dict) or "result" not in data:
            raise SourceError(self.label, "unexpected answer from the Roam API (no 'result')")
        return data["result"]

    def _server_message(self, answer: _Answer) -> str:
        """The server's own words: one line of printable text, short, never the token."""
        try:
            data = orjson.loads(answer.body)
            text = str(data.get("message", "")) if isinstance(data, dict) else ""
        except orjson.JSONDecodeError:
            text = answer.body.decode("utf-8", errors="replace")
        # Scrub before shortening: a cut could leave the token's first characters behind.
        return _printable(self._scrub(text))

    def _error(self, status: int, message: str, tries: int, writing: bool = False
               ) -> SourceError:
        if writing and (status in (401, 403) or "privilege" in message.lower()):
            return SourceError(self.label, (
                f"the Roam API refused to write to graph {self.graph!r} (HTTP {status}): the "
                "token has no edit access; create one with edit access in Roam (Settings > "
                "Graph > API tokens) to write Anki edits back, or turn write-back off"))
        if status in (401, 403) or (status == 400 and "token" in message.lower()):
            text = (
                f"the Roam API refused the token (HTTP {status}): it is wrong, revoked, or not "
                f"a token of graph {self.graph!r} with read access; set a valid one as "
                f"roam_api_token in Roam Bridge's settings or in the {TOKEN_ENV} environment "
                "variable"
            )
        elif status == 429:
            text = (
                f"the Roam API still answered 429 Too Many Requests after {tries} tries (it "
                f"allows {QUOTA_CALLS} requests a minute per graph); try again in a minute"
            )
        elif status == 503:
            text = (
                f"graph {self.graph!r} is not ready on the Roam API (503 after {tries} tries); "
                "try again in a minute"
            )
        else:
            text = f"the Roam API answered HTTP {status}" + (f": {message}" if message else "")
        return SourceError(self.label, text)


# The token in what a server says -----------------------------------------------------------

# One character as a server may write it: percent-, HTML- or backslash-escaped, or itself.
_ESCAPED_CHAR = re.compile(
    r"%(?P<pct>[0-9A-Fa-f]{2})|&#(?P<dec>\d{1,7});|&#[xX](?P<hex>[0-9A-Fa-f]{1,6});"
    r"|&(?P<named>[A-Za-z]{2,8});|\\u(?P<u>[0-9A-Fa-f]{4})|\\x(?P<x>[0-9A-Fa-f]{2})|(?P<char>.)",
    re.S,
)
# Any this many letters and digits of the token in a row, in order, count as the token.
_TOKEN_PIECE = 10


def scrubber(token: str) -> Callable[[str], str]:
    """A function that replaces the token in a text by ``[token]``, however it is written.

    The text is compared by its letters and digits only, case-folded, with escapes undone:
    ``T O K E N``, ``token`` upper-cased, ``%74oken`` and ``&#116;oken`` are all the token,
    and so is any run of ten of its letters and digits (a message cut short, or a token with
    its first part changed)."""
    skeleton = "".join(c for c in token.casefold() if c.isalnum())
    size = min(_TOKEN_PIECE, len(skeleton))
    pieces = {skeleton[i:i + size] for i in range(len(skeleton) - size + 1)}

    def scrub(text: str) -> str:
        if not size:
            return text
        spans: list[tuple[int, int]] = []  # of each letter or digit, in the text
        letters: list[str] = []
        for match in _ESCAPED_CHAR.finditer(text):
            char = _unescaped(match)
            for folded in unicodedata.normalize("NFKC", char).casefold():
                if folded.isalnum():
                    letters.append(folded)
                    spans.append(match.span())
        flat = "".join(letters)
        hidden = bytearray(len(flat))
        for start in range(len(flat) - size + 1):
            if flat[start:start + size] in pieces:
                hidden[start:start + size] = b"\x01" * size
        if not any(hidden):
            return text
        out: list[str] = []
        cursor = 0
        index = 0
        while index < len(flat):
            if not hidden[index]:
                index += 1
                continue
            end = index
            while end + 1 < len(flat) and hidden[end + 1]:
                end += 1
            out.append(text[cursor:spans[index][0]])
            out.append("[token]")
            cursor = spans[end][1]
            index = end + 1
        out.append(text[cursor:])
        return "".join(out)

    return scrub


def _unescaped(match: re.Match[str]) -> str:
    kind = match.lastgroup
    value = match.group(kind or "char")
    if kind == "char":
        return value
    if kind == "named":
        return html.unescape(f"&{value};")
    try:
        return chr(int(value, 10 if kind == "dec" else 16))
    except (ValueError, OverflowError):
        return match.group()


def _printable(text: str, limit: int = 200) -> str:
    """``text`` as one short line of printable characters: control characters (terminal
    escapes), line breaks and invisible formatting become spaces, runs of spaces one."""
    text = "".join(c if c.isprintable() else " " for c in text[: limit * 4])
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _trusted(base_url: str, target: str) -> bool:
    """Whether a redirect to ``target`` stays with the API at ``base_url``: the same scheme,
    and the same host and port, or a ``peer-N`` host under the API's host (any port)."""
    try:
        base, to = urlsplit(base_url), urlsplit(target)
        if to.scheme != base.scheme or base.scheme not in _DEFAULT_PORTS:
            return False
        host, base_host = (to.hostname or "").lower(), (base.hostname or "").lower()
        if host == base_host:
            default = _DEFAULT_PORTS[base.scheme]
            return (to.port or default) == (base.port or default)
        peer, dot, rest = host.partition(".")
        return bool(dot) and rest == base_host and _PEER.fullmatch(peer) is not None
    except ValueError:  # a port out of range, a malformed host
        return False


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} seconds"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} hours"
    return f"{seconds / 86400:.0f} days"


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number (fractions accepted) or an HTTP date."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, OverflowError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _host(url: str) -> str:
    try:
        host = urlsplit(url).hostname or url
    except ValueError:
        host = url
    return _printable(host, 80)


# Incremental pulls (roam_mirror.py) and the desktop app (roam_local.py) -----------------


def connect(
    graph: str,
    token: str,
    base_url: str = DEFAULT_BASE_URL,
    *,
    session: requests.Session | None = None,
    timeout: float = limits.HTTP_TIMEOUT,
    limiter: RateLimiter | None = None,
    retries: int = 4,
    backoff: float = 1.0,
    answer_bytes: int = limits.HTTP_ANSWER_BYTES,
    answer_seconds: float = limits.HTTP_ANSWER_SECONDS,
    read_seconds: float = limits.API_READ_SECONDS,
    notice: Callable[[str], None] | None = None,
) -> _Client:
    """A checked client for ``graph`` (its ``q`` runs one query), for readers that talk to
    the API more than once, such as incremental pulls (roam_mirror.py). SourceError for a
    missing or malformed token, graph name or base URL, as ``read`` checks them. Each read
    through it must call ``restart()`` first: ``read_seconds`` bounds one read, not the
    client's life."""
    label = f"{SCHEME}{graph}"
    try:
        name = graph_name(graph)
    except ValueError as err:
        raise SourceError(label, str(err)) from None
    if not token or not token.strip():
        raise SourceError(label, _NO_TOKEN)
    token = token.strip()
    if not (token.isascii() and token.isprintable()) or " " in token:
        # A token pasted with a smart quote or an invisible character: HTTP headers cannot
        # carry it (a UnicodeEncodeError deep in http.client), and no Roam token holds one.
        raise SourceError(label, _BAD_TOKEN)
    base = base_url.strip().rstrip("/")
    if urlsplit(base).scheme not in ("http", "https") or not urlsplit(base).hostname:
        raise SourceError(label, f"the Roam API base URL {_printable(base_url)!r} is not an "
                                 "http(s) URL")
    return _Client(
        graph=name,
        token=token,
        base_url=base,
        session=session or requests.Session(),
        timeout=timeout,
        limiter=limiter or limiter_for(base, name),
        retries=retries,
        backoff=backoff,
        answer_bytes=answer_bytes,
        answer_seconds=answer_seconds,
        deadline=time.monotonic() + read_seconds,
        read_seconds=read_seconds,
        notice=notice,
    )


def read_with(
    client: Any, chunk: int = DEFAULT_CHUNK,
    progress: Callable[[int, int], None] | None = None,
) -> Graph:
    """The whole graph through ``client``: this API's (``connect``) or the desktop app's
    (roam_local), anything with a ``label``, ``graph``, ``timeout`` and ``q`` as ``_Client``
    has them (roam_mirror.Querying)."""
    return _read(client, chunk, progress)


def pull_pages(
    client: Any, order: list[str], chunk: int = DEFAULT_CHUNK,
    progress: Callable[[int, int], None] | None = None, pages_only: bool = False,
) -> dict[str, dict[str, Any]]:
    """The pages of these uids as the JSON export writes them, by uid, pulled in chunks that
    adapt to the API's query limit. A uid that names nothing (any more) is left out; with
    ``pages_only``, so is an entity that is not a page (it has no title)."""
    label = client.label
    total = len(order)
    if progress is not None:
        progress(0, total)
    pulled: dict[str, dict[str, Any]] = {}
    size = min(chunk, total)
    done = 0
    while done < total:
        uids = order[done:done + size]
        try:
            result, elapsed = client.q(_PULL_PAGES, [uids])
        except _QueryTooLong:
            if size == 1:
                raise SourceError(
                    label, f"page {uids[0]} is too large to pull within the API's "
                    f"{QUERY_LIMIT:g}-second query limit"
                ) from None
            # Never grow back to a size that failed: each failure costs the server 20 s.
            chunk = size = max(1, size // 2)
            log.info("Roam API: query took too long; pulling %d pages at a time", size)
            continue
        for row in _rows(result, label):
            page = _export_page(row, label)
            if isinstance(page["title"], str) or not pages_only:
                pulled[page["uid"]] = page
        done += len(uids)
        size = _next_chunk(size, chunk, elapsed, client.timeout)
        if progress is not None:
            progress(done, total)
    return pulled

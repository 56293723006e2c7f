"""Roam backend API (``roam-api://GRAPH``) -> Graph.

Reads a hosted, unencrypted Roam graph through the official backend API
(``POST {base}/api/graph/{graph}/q``, datalog with pulls) and builds exactly the Graph the
graph's JSON export would give: the same pages in creation order, children by ``:block/order``,
uids, strings and headings. Guarantees:

- the token travels only in ``X-Authorization`` and only to the API's host or a host under it
  (the ``peer-N`` machine its 308 names): requests drops ``Authorization`` when it follows a
  redirect to another host, and a redirect anywhere else is refused, not followed with the token;
- the token never appears in a log record or an error message (server messages are scrubbed);
- at most 50 requests a minute leave this process per graph (the API's quota); a 429 waits for
  ``Retry-After`` and a 503 (graph waking up) is retried with back-off, a bounded number of times;
- each pull stays under the API's 20-second query limit: pages are pulled in chunks that shrink
  when an answer is slow or the server says the query took too long;
- every failure raises ``SourceError("roam-api://GRAPH", one line)``; a half-read graph is never
  returned.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit

import orjson
import requests

from ..model import Graph, SourceError, gc_paused, graph_name
from .roam_json import build_graph

SCHEME = "roam-api://"
DEFAULT_BASE_URL = "https://api.roamresearch.com"
TOKEN_ENV = "ROAM_API_TOKEN"
# The API's documented limits: requests per graph per minute, and seconds a query may run.
QUOTA_CALLS = 50
QUOTA_PERIOD = 60.0
QUERY_LIMIT = 20.0
DEFAULT_CHUNK = 300
MAX_WAIT = 60.0
MAX_REDIRECTS = 3

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

    def wait(self) -> float:
        """Block until one more request fits in the window, and count it. Returns the wait."""
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
    timeout: float = 30,
    chunk: int = DEFAULT_CHUNK,
    progress: Callable[[int, int], None] | None = None,
    limiter: RateLimiter | None = None,
    retries: int = 4,
    backoff: float = 1.0,
) -> Graph:
    """Read ``graph`` through the API into a Graph (source "roam", name ``graph``).

    ``chunk`` is the most pages one pull asks for; ``progress(done, total)`` is called with
    pages read. ``retries`` bounds the retries of one request after 429 / 503, waiting
    ``Retry-After`` or ``backoff`` doubling from one retry to the next.
    """
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
        raise SourceError(label, f"the Roam API base URL {base_url!r} is not an http(s) URL")
    if chunk < 1:
        raise ValueError("chunk must be at least 1 page")
    own_session = session is None
    client = _Client(
        graph=name,
        token=token,
        base_url=base,
        session=session or requests.Session(),
        timeout=timeout,
        limiter=limiter or limiter_for(base, name),
        retries=retries,
        backoff=backoff,
    )
    try:
        with gc_paused():
            return _read(client, chunk, progress)
    finally:
        if own_session:
            client.session.close()


def _read(client: _Client, chunk: int, progress: Callable[[int, int], None] | None) -> Graph:
    label = client.label
    listing, _ = client.q(_LIST_PAGES, [])
    order = _page_uids(listing, label)
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
            pulled[page["uid"]] = page
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


@dataclass
class _Client:
    """One graph's HTTP conversation: auth header, redirects, quota, retries, errors."""

    graph: str
    token: str
    base_url: str
    session: requests.Session
    timeout: float
    limiter: RateLimiter
    retries: int
    backoff: float
    # The peer machine the API redirected to; later calls go there directly, saving a
    # round trip and a request from the quota.
    peer: str = ""

    def __repr__(self) -> str:  # never the token, even in a debugger or a traceback dump
        return f"_Client(graph={self.graph!r}, base_url={self.base_url!r})"

    @property
    def label(self) -> str:
        return f"{SCHEME}{self.graph}"

    def q(self, query: str, args: list[Any]) -> tuple[Any, float]:
        """Run a datalog query; its ``result`` and the seconds the answer took."""
        return self._call("q", {"query": query, "args": args})

    def _call(self, endpoint: str, body: dict[str, Any]) -> tuple[Any, float]:
        path = f"/api/graph/{quote(self.graph, safe='')}/{endpoint}"
        payload = orjson.dumps(body)
        attempt = 0
        while True:
            response, elapsed = self._post(path, payload)
            status = response.status_code
            if status == 200:
                return self._result(response), elapsed
            if status == 500 and "took too long" in self._server_message(response).lower():
                raise _QueryTooLong
            if status not in (429, 503) or attempt >= self.retries:
                raise self._error(response, attempt + 1)
            delay = self._delay(response, attempt)
            log.info("Roam API: HTTP %d, retrying in %.1f s", status, delay)
            time.sleep(delay)
            attempt += 1

    def _post(self, path: str, payload: bytes) -> tuple[requests.Response, float]:
        url = (self.peer or self.base_url) + path
        headers = {
            "X-Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
        }
        for _ in range(MAX_REDIRECTS + 1):
            self.limiter.wait()
            started = time.monotonic()
            try:
                response = self.session.post(
                    url, data=payload, headers=headers, timeout=self.timeout,
                    allow_redirects=False,
                )
            except requests.Timeout:
                raise SourceError(
                    self.label, f"no answer from the Roam API at {_host(url)} within "
                    f"{self.timeout:g} s; check the network and try again later"
                ) from None
            except requests.RequestException as err:
                raise SourceError(
                    self.label, f"cannot reach the Roam API at {_host(url)} "
                    f"(network error: {type(err).__name__})"
                ) from None
            elapsed = time.monotonic() - started
            log.debug("Roam API: POST %s -> %d in %.2f s", path, response.status_code, elapsed)
            if response.status_code not in (307, 308):
                return response, elapsed
            url = self._follow(url, response)
        raise SourceError(self.label, "the Roam API redirected too many times")

    def _follow(self, url: str, response: requests.Response) -> str:
        """Where a 307/308 points, if the token may go there."""
        location = response.headers.get("Location", "")
        if not location:
            raise SourceError(self.label, "the Roam API redirected without saying where")
        target = urljoin(url, location)
        to, base = urlsplit(target), urlsplit(self.base_url)
        host, base_host = (to.hostname or "").lower(), (base.hostname or "").lower()
        trusted = host == base_host or host.endswith("." + base_host)
        if not trusted or (base.scheme == "https" and to.scheme != "https"):
            raise SourceError(
                self.label, f"the Roam API redirected to {to.scheme}://{host}, outside "
                f"{base_host}; not following it (the token was not sent there)"
            )
        self.peer = f"{to.scheme}://{to.netloc}"
        return target

    def _delay(self, response: requests.Response, attempt: int) -> float:
        after = _retry_after(response.headers.get("Retry-After"))
        return min(MAX_WAIT, self.backoff * 2**attempt if after is None else after)

    def _result(self, response: requests.Response) -> Any:
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise SourceError(self.label, "the Roam API answered with something not JSON") from None
        if not isinstance(data, dict) or "result" not in data:
            raise SourceError(self.label, "unexpected answer from the Roam API (no 'result')")
        return data["result"]

    def _server_message(self, response: requests.Response) -> str:
        """The server's own words, one line, short, and never holding the token."""
        try:
            data = orjson.loads(response.content)
            text = str(data.get("message", "")) if isinstance(data, dict) else ""
        except orjson.JSONDecodeError:
            text = response.text
        # Scrub before shortening: a cut could leave the token's first characters behind.
        text = " ".join(text.replace(self.token, "[token]").split())
        return text[:200]

    def _error(self, response: requests.Response, tries: int) -> SourceError:
        status = response.status_code
        message = self._server_message(response)
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


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number (fractions accepted) or an HTTP date."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _host(url: str) -> str:
    return urlsplit(url).hostname or url

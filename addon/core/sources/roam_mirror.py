"""A Roam graph kept in step through an API by incremental pulls (cloud API and desktop app).

``RoamMirror(client)`` holds the whole graph in memory. The first ``refresh`` reads it all;
each later one asks only what changed and pulls only the pages it touched:

1. one query lists the entities whose ``:edit/time`` is later than the cursor, minus a small
   overlap (edits synced from another device can arrive with a slightly older time). The cursor
   is Roam's own time, the latest ``:edit/time`` it has answered, never this machine's clock.
   An entity seen before with the same time is not news, so a quiet graph costs that one query;
2. one query finds the page of each changed block (a moved block is on its new page);
3. those pages are pulled whole and compared with the mirror's copy: a page that reads the
   same changes nothing.

``:edit/time`` is per entity: it does not bubble up to parents or pages, and a deleted block
leaves no entity behind. So ``refresh(sweep=True)`` (every few minutes, and for Sync now) also
asks for the number of blocks on every page, one cheap query: a page whose count differs from
the mirror's lost (or gained) blocks unseen, and is pulled again; a page that is gone is
dropped with its blocks.

Guarantees: after a refresh the mirror equals what a full read would give, for every page
the refresh touched, and ``Refresh.scope`` names every block whose note may read differently:
the blocks of the pages that changed (before and after), and the blocks of any page that shows
a changed block through a ``((ref))``. A refresh that finds nothing says so (an empty scope),
and the caller writes nothing. Too many changes at once (an import, a first poll after long)
fall back to a full read. Errors are SourceErrors; a failed refresh leaves the mirror as it
was before that refresh began, so the next one simply tries again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..model import Block, Graph, Page, SourceError, gc_paused
from .roam_api import DEFAULT_CHUNK, pull_pages, read_with
from .roam_json import build_graph

# Edits this much older than the cursor (milliseconds) are still asked for.
OVERLAP_MS = 120_000
# Changed entities in one poll beyond which a full read is cheaper than following them.
MAX_CHANGED = 20_000
# Share of the graph's pages beyond which a poll reads the whole graph instead.
FULL_READ_SHARE = 0.25
# Uids per query when asking for the pages of changed blocks.
UIDS_PER_QUERY = 1_000

_LATEST = "[:find (max ?t) :where [?e :edit/time ?t]]"
_CHANGED = (
    "[:find ?uid ?t :in $ ?since :where [?e :edit/time ?t] [(> ?t ?since)] [?e :block/uid ?uid]]"
)
_PAGES_OF = (
    "[:find ?uid ?page :in $ [?uid ...] :where [?b :block/uid ?uid] [?b :block/page ?p]"
    " [?p :block/uid ?page]]"
)
_PAGE_SIZES = "[:find ?page (count ?b) :where [?b :block/page ?p] [?p :block/uid ?page]]"
# A ((block ref)), as the renderer reads one.
_REF = re.compile(r"\(\(([\w-]{5,})\)\)")


class Querying(Protocol):
    """What a mirror needs of a client (roam_api's and roam_local's have it): a label for
    errors, the graph's name, a timeout, and ``q`` (one datalog query: its result and the
    seconds it took)."""

    @property
    def graph(self) -> str: ...

    timeout: float

    @property
    def label(self) -> str: ...

    def q(self, query: str, args: list[Any]) -> tuple[Any, float]: ...


@dataclass
class Refresh:
    """What one refresh found. ``full``: the graph was read whole (plan every note);
    otherwise ``scope`` holds the uids of the blocks whose notes may have changed."""

    full: bool = False
    scope: set[str] = field(default_factory=set)
    requests: int = 0

    @property
    def changed(self) -> bool:
        return self.full or bool(self.scope)


class _Counted:
    """The client, counting the queries that leave."""

    def __init__(self, client: Querying) -> None:
        self.client = client
        self.count = 0

    @property
    def graph(self) -> str:
        return self.client.graph

    @property
    def timeout(self) -> float:
        return self.client.timeout

    @property
    def label(self) -> str:
        return self.client.label

    def q(self, query: str, args: list[Any]) -> tuple[Any, float]:
        self.count += 1
        return self.client.q(query, args)


class RoamMirror:
    def __init__(
        self, client: Querying, chunk: int = DEFAULT_CHUNK,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.client = client
        self.chunk = chunk
        self.progress = progress
        self.graph: Graph | None = None
        # Roam's latest :edit/time seen, and the entities seen within the overlap, with the
        # time they had.
        self.cursor = 0
        self._seen: dict[str, int] = {}
        self._pages: dict[str, Page] = {}  # page uid -> page
        self._sizes: dict[str, int] = {}  # page uid -> its blocks
        self._shown_by: dict[str, set[str]] = {}  # block uid -> pages that ((ref)) it

    def refresh(self, sweep: bool = False, whole: bool = False) -> Refresh:
        """Bring the mirror up to date (see the module docstring); ``whole`` reads the whole
        graph again."""
        counted = _Counted(self.client)
        with gc_paused():
            result = (self._read_all(counted) if self.graph is None or whole
                      else self._poll(counted, sweep))
        result.requests = counted.count
        return result

    # Whole reads ------------------------------------------------------------------------

    def _read_all(self, client: _Counted) -> Refresh:
        # The cursor first: an edit made during the read is newer, so the next poll sees it.
        # What the overlap holds now is in the read, so the next poll need not pull it again.
        cursor = self._latest(client)
        rows, _ = client.q(_CHANGED, [cursor - OVERLAP_MS])
        seen = _changed_rows(rows, client.label)
        graph = read_with(client, self.chunk, self.progress)
        if self.graph is not None:
            self.graph.release()
        self.graph, self.cursor, self._seen = graph, cursor, seen
        self._pages = {page.uid: page for page in graph.pages.values() if page.uid}
        self._sizes = {uid: _size(page) for uid, page in self._pages.items()}
        self._shown_by = {}
        self._index_refs(graph.blocks.values())
        return Refresh(full=True)

    def _latest(self, client: _Counted) -> int:
        result, _ = client.q(_LATEST, [])
        if result == []:
            return 0
        if not (isinstance(result, list) and len(result) == 1 and isinstance(result[0], list)
                and len(result[0]) == 1 and _is_time(result[0][0])):
            raise SourceError(client.label, "unexpected answer to the query for the latest "
                              "edit time")
        return int(result[0][0])

    # Polls ------------------------------------------------------------------------------

    def _poll(self, client: _Counted, sweep: bool) -> Refresh:
        assert self.graph is not None
        since = self.cursor - OVERLAP_MS
        rows, _ = client.q(_CHANGED, [since])
        changed = _changed_rows(rows, client.label)
        news = {uid: t for uid, t in changed.items() if self._seen.get(uid) != t}
        if len(news) > MAX_CHANGED:
            return self._read_all(client)
        pages: set[str] = set()
        if news:
            pages |= self._pages_of(client, list(news))
        if sweep:
            pages |= self._pages_that_lost_blocks(client)
        if pages and len(pages) > max(50, FULL_READ_SHARE * len(self._pages)):
            return self._read_all(client)
        result = Refresh()
        if pages:
            result.scope = self._repull(client, pages)
        # Only now, with the pages safely in the mirror, is the news taken as known.
        latest = max([self.cursor, *changed.values()])
        self._seen = {u: t for u, t in {**self._seen, **changed}.items()
                      if t > latest - OVERLAP_MS}
        self.cursor = latest
        return result

    def _pages_of(self, client: _Counted, uids: list[str]) -> set[str]:
        """The pages to pull for these changed entities: each block's page as Roam has it
        now, and its page in the mirror (it may have moved off it, or be gone); an entity
        that is on no page is a page itself."""
        assert self.graph is not None
        found: dict[str, str] = {}
        for start in range(0, len(uids), UIDS_PER_QUERY):
            result, _ = client.q(_PAGES_OF, [uids[start:start + UIDS_PER_QUERY]])
            if not isinstance(result, list) or not all(
                isinstance(r, list) and len(r) == 2 and all(isinstance(v, str) for v in r)
                for r in result
            ):
                raise SourceError(client.label, "unexpected answer to the query for the "
                                  "pages of changed blocks")
            found.update((uid, page) for uid, page in result)
        pages = set()
        for uid in uids:
            pages.add(found.get(uid, uid))
            known = self.graph.blocks.get(uid)
            if known is not None and known.page.uid:
                pages.add(known.page.uid)
        return pages

    def _pages_that_lost_blocks(self, client: _Counted) -> set[str]:
        result, _ = client.q(_PAGE_SIZES, [])
        if not isinstance(result, list) or not all(
            isinstance(r, list) and len(r) == 2 and isinstance(r[0], str)
            and isinstance(r[1], int) for r in result
        ):
            raise SourceError(client.label, "unexpected answer to the query for page sizes")
        sizes = dict(result)
        differ = {uid for uid, size in sizes.items() if self._sizes.get(uid, 0) != size}
        gone = {uid for uid, size in self._sizes.items() if size and uid not in sizes}
        return differ | gone

    def _repull(self, client: _Counted, uids: set[str]) -> set[str]:
        """Pull these pages again and put them in the mirror; returns the scope (see the
        module docstring)."""
        assert self.graph is not None
        pulled = pull_pages(client, sorted(uids), self.chunk, pages_only=True)
        fresh = self._build(pulled, client.label)
        # A block that moved here from a page not pulled is still there in the mirror:
        # pull that page too, so the block is not on two pages.
        elsewhere = {self.graph.blocks[b.uid].page.uid for page in fresh.values()
                     for b in _blocks(page) if b.uid in self.graph.blocks} - uids - {""}
        if elsewhere:
            more = pull_pages(client, sorted(elsewhere), self.chunk, pages_only=True)
            fresh.update(self._build(more, client.label))
            uids = uids | elsewhere
        scope: set[str] = set()
        changed: set[str] = set()
        for uid in sorted(uids):
            old, new = self._pages.get(uid), fresh.get(uid)
            before = _texts(old) if old is not None else {}
            after = _texts(new) if new is not None else {}
            if old is not None and new is not None and _shape(old) == _shape(new):
                continue
            if old is not None:
                self.graph.remove_page(old)
                del self._pages[uid]
                self._sizes.pop(uid, None)
            if new is not None:
                self.graph.add_page(new)
                for block in _blocks(new):
                    self.graph.add_block(block)
                self._pages[uid] = new
                self._sizes[uid] = len(after)
                self._index_refs(_blocks(new))
            scope |= before.keys() | after.keys()
            changed |= {b for b in before.keys() | after.keys() if before.get(b) != after.get(b)}
        for uid in changed:
            for page_uid in self._shown_by.get(uid, ()):
                page = self._pages.get(page_uid)
                if page is not None:
                    scope.update(b.uid for b in _blocks(page))
        return scope

    def _build(self, pulled: dict[str, dict[str, Any]], label: str) -> dict[str, Page]:
        """Pulled pages as Pages of their own (not yet in the mirror's graph), by uid."""
        if not pulled:
            return {}
        assert self.graph is not None
        built = build_graph(list(pulled.values()), self.graph.name, label)
        return {page.uid: page for page in built.pages.values()}

    def _index_refs(self, blocks: Iterable[Block]) -> None:
        for block in blocks:
            if "((" in block.string and block.page.uid:
                for uid in _REF.findall(block.string):
                    self._shown_by.setdefault(uid, set()).add(block.page.uid)


def _changed_rows(rows: Any, label: str) -> dict[str, int]:
    if not isinstance(rows, list) or not all(
        isinstance(r, list) and len(r) == 2 and isinstance(r[0], str) and _is_time(r[1])
        for r in rows
    ):
        raise SourceError(label, "unexpected answer to the query for changed blocks")
    changed: dict[str, int] = {}
    for uid, t in rows:
        changed[uid] = max(int(t), changed.get(uid, 0))
    return changed


def _is_time(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _blocks(page: Page) -> list[Block]:
    """A page's blocks in document order (iteratively: pages nest deep)."""
    found: list[Block] = []
    stack = list(reversed(page.children))
    while stack:
        block = stack.pop()
        found.append(block)
        stack.extend(reversed(block.children))
    return found


def _size(page: Page) -> int:
    return len(_blocks(page))


def _texts(page: Page) -> dict[str, str]:
    return {b.uid: b.string for b in _blocks(page)}


def _shape(page: Page) -> tuple[Any, ...]:
    """Everything a reader takes from a page: its title and its tree."""
    return (page.title, page.uid, tuple(
        (b.uid, b.string, b.heading, b.parent.uid if b.parent else "") for b in _blocks(page)
    ))

"""A notes folder's parsed pages, kept between reads, so that a re-read parses only the files
that changed.

A long-lived caller (the add-on's controller, ``tools.bridge watch``) holds one ``FolderCache``
per folder source and passes it to the reader (``ReadOptions.folder_cache``); a one-shot CLI
run passes none and reads every file. With a cache, the Logseq, Obsidian and Roam Markdown
folder readers:

- look at each file's size, modification and change time: a file whose stat is as cached is
  not read again; one whose stat moved is read and hashed, and is parsed again only when its
  bytes (or what its parse depends on besides them: its title) changed. Deleted files leave
  the cache;
- parse each file on its own, against no other file (``Parsed``): a page, its blocks and
  their uids as a graph of that one page would give them;
- assemble the Graph from the cached pages in path order. Pages meet only through the uids
  of their blocks: a page whose uids are all free in the graph assembled so far gets exactly
  the uids a full read gives it (a synthetic uid only changes to stay clear of a uid already
  taken; an id is only given up when another block took it first). A page with a uid already
  taken (a copied ``id::``, two files of one title) is parsed again from its text against the
  graph, as a full read does. So the Graph equals the one a full read gives, in pages,
  blocks, uids, order and text.

``changes`` says which blocks' notes may read differently since the last read the caller
settled (``settle``): the blocks of the pages that changed (before and after), and of every
page that shows one of them, through a ``((ref))`` or by embedding a page of a changed title,
followed until nothing more is reached. It is None when that is not known (the first read, a
read that failed): plan every note. Whether a scoped plan is sound also depends on the
collection and the other files; pipeline.py decides (``pipeline.scope_for``).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Collection, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..model import Block, Graph, Page
from .files import Budget, read_file
from .outline import digest

# A file whose times are this close to its read may change again within the file system's
# clock tick without moving them: it is hashed again at the next read rather than trusted.
_RACY_NS = 2_000_000_000
# Anything written as ((…)): a superset of the refs the renderer follows.
_REF = re.compile(r"\(\(([^()\s]+)\)\)")


@dataclass(eq=False, slots=True)
class Parsed:
    """One file, parsed on its own: its page and its blocks by uid, in document order.
    ``extra`` is what the parse depended on besides the bytes (the page's title from its
    path); ``text`` is kept to parse the file again against the graph (see the module doc);
    ``data`` holds what a reader keeps besides (Obsidian: the note's block ids and embeds)."""

    page: Page
    blocks: dict[str, Block]
    text: str
    extra: Hashable = None
    data: Any = None
    stat: tuple[int, int, int] = (-1, -1, -1)
    digest: str = ""
    _refs: frozenset[str] | None = None
    _embeds: tuple[str, ...] | None = None

    def refs(self) -> frozenset[str]:
        """What its blocks write as ``((…))`` (computed once)."""
        if self._refs is None:
            self._refs = frozenset(uid for block in self.blocks.values()
                                   if "((" in block.string
                                   for uid in _REF.findall(block.string))
        return self._refs

    def embeds(self) -> tuple[str, ...]:
        """The casefolded texts of its blocks that may embed a page (computed once)."""
        if self._embeds is None:
            self._embeds = tuple(_folded(block.string) for block in self.blocks.values()
                                 if "[[" in block.string and "embed" in block.string.lower())
        return self._embeds


@dataclass(eq=False, slots=True)
class Shown:
    """A page as the last assembled graph holds it (the cached one, or one parsed again)."""

    page: Page
    uids: Collection[str]
    refs: frozenset[str]
    embeds: tuple[str, ...]
    # Texts that other files decided (Obsidian's resolved embeds), to see them change.
    settled_texts: tuple[str, ...] = ()
    # For a page parsed again against the graph (a new object at every read): what it holds.
    signature: tuple[Any, ...] | None = None


@dataclass(eq=False)
class FolderCache:
    """The parsed files of one notes folder, and what changed since the caller settled."""

    where: tuple[str, str] = ("", "")  # (reader, folder) the entries belong to
    files: dict[str, Parsed] = field(default_factory=dict)
    shown: dict[str, Shown] = field(default_factory=dict)
    # Uids whose notes may read differently since ``settle``; None: unknown, plan all.
    changes: set[str] | None = None
    # Whatever the caller settled the last time (see pipeline.scope_for), with the read.
    mark: Any = None
    reads: int = 0
    parsed: int = 0  # files parsed by the last read (the others came from the cache)

    def begin(self, reader: str, root: str | os.PathLike[str]) -> Session:
        """Start a read of ``root`` by ``reader``; a cache of another folder starts empty."""
        where = (reader, os.path.abspath(os.fspath(root)))
        if where != self.where:
            self.where = where
            self.files, self.shown, self.changes, self.mark = {}, {}, None, None
        pending, self.changes = self.changes, None  # a read that fails leaves "unknown"
        self.reads += 1
        return Session(self, pending)

    def settle(self, read: int, mark: Any) -> None:
        """The graph of read number ``read`` was planned and applied, leaving nothing for
        later; ``mark`` is what that depended on (pipeline.scope_for compares it)."""
        if read == self.reads:
            self.changes = set()
            self.mark = mark
        else:
            self.mark = None

    def page_files(self) -> set[str]:
        return set(self.shown)


class Session:
    """One read through the cache: ``parsed`` per file in path order, then ``finish``."""

    def __init__(self, cache: FolderCache, pending: set[str] | None) -> None:
        self.cache = cache
        self.pending = pending
        self.seen: dict[str, Parsed] = {}
        self.now = time.time_ns()
        cache.parsed = 0

    def parsed(self, rel: str, path: str, budget: Budget | None, extra: Hashable,
               parse: Callable[[bytes], Parsed]) -> Parsed:
        """The file ``rel`` (opened by ``path``) parsed on its own: the cached parse when
        its bytes and ``extra`` are as cached, else ``parse(bytes)``."""
        old = self.cache.files.get(rel)
        try:
            st = os.stat(path)
            stat = (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        except OSError:
            stat = (-1, -1, -1)  # read_file says what is wrong
        if old is not None and old.extra == extra and old.stat == stat and stat[1] != -1:
            if budget is not None:
                budget.take(stat[0])
            self.seen[rel] = old
            return old
        data = read_file(path, budget)
        found = digest(data)
        if self.now - max(stat[1], stat[2]) < _RACY_NS:
            stat = (stat[0], -1, stat[2])
        if old is not None and old.extra == extra and old.digest == found:
            old.stat = stat
            self.seen[rel] = old
            return old
        new = parse(data)
        new.extra, new.stat, new.digest = extra, stat, found
        new.refs()  # while the page is at hand, not at the first read that needs a scope
        new.embeds()
        self.cache.files[rel] = new
        self.cache.parsed += 1
        self.seen[rel] = new
        return new

    def finish(self, shown: dict[str, Shown]) -> None:
        """The read is over: ``shown`` is each page file's page as the graph holds it."""
        cache = self.cache
        for rel in [rel for rel in cache.files if rel not in self.seen]:
            del cache.files[rel]
        before, cache.shown = cache.shown, shown
        if self.pending is not None:
            cache.changes = self.pending | _affected(before, shown)


def assemble(graph: Graph, read: list[tuple[str, Parsed]],
             reparse: Callable[[str, Parsed], Page],
             kept: Callable[[str, Parsed, Page], None] | None = None) -> dict[str, Shown]:
    """Put each page parsed on its own into the (empty) graph, in path order, and say what
    each shows. A page whose uids are all still free goes in as cached (``kept`` is then told
    of it, for what the reader keeps beside the graph); one with a uid another page took
    first is parsed again from its text against the graph by ``reparse``, as a full read
    would parse it."""
    blocks = graph.blocks
    for _, parsed in read:
        blocks.update(parsed.blocks)
    clash_free = len(blocks) == sum(len(parsed.blocks) for _, parsed in read)
    if not clash_free:
        blocks.clear()  # assembled page by page below
    shown: dict[str, Shown] = {}
    for rel, parsed in read:
        if clash_free or blocks.keys().isdisjoint(parsed.blocks):
            page = graph.add_page(parsed.page)
            if not clash_free:
                blocks.update(parsed.blocks)
            if kept is not None:
                kept(rel, parsed, page)
            shown[rel] = shown_as_cached(parsed)
        else:
            known = len(blocks)
            page = reparse(rel, parsed)
            shown[rel] = shown_as_parsed(page, list(blocks.values())[known:])
    return shown


def shown_as_cached(parsed: Parsed) -> Shown:
    return Shown(parsed.page, parsed.blocks.keys(), parsed.refs(), parsed.embeds())


def shown_as_parsed(page: Page, blocks: list[Block]) -> Shown:
    """A page parsed again against the graph (its own uids and texts)."""
    return Shown(page, [b.uid for b in blocks],
                 frozenset(u for b in blocks if "((" in b.string for u in _REF.findall(b.string)),
                 tuple(_folded(b.string) for b in blocks
                       if "[[" in b.string and "embed" in b.string.lower()),
                 signature=(page.title, tuple(
                     (b.uid, b.string, b.heading, b.parent.uid if b.parent else "",
                      tuple(c.uid for c in b.children)) for b in blocks),
                     tuple(b.uid for b in page.children)))


def with_texts(shown: Shown, texts: tuple[str, ...]) -> Shown:
    """``shown`` whose blocks' ``texts`` were settled by other files (their refs count)."""
    shown.settled_texts = texts
    extra = {u for text in texts if "((" in text for u in _REF.findall(text)}
    if extra - shown.refs:
        shown.refs = shown.refs | extra
    embeds = tuple(_folded(t) for t in texts if "[[" in t and "embed" in t.lower())
    if embeds:
        shown.embeds = shown.embeds + embeds
    return shown


def _folded(text: str) -> str:
    return text.replace("[[", "").replace("]]", "").casefold()


def _affected(before: dict[str, Shown], after: dict[str, Shown]) -> set[str]:
    """The uids (before and after) of the pages that changed and of every page that shows
    them (see the module doc)."""
    changed = {rel for rel in before.keys() | after.keys()
               if (old := before.get(rel)) is None or (new := after.get(rel)) is None
               or (old.page is not new.page
                   and (old.signature is None or old.signature != new.signature))
               or old.settled_texts != new.settled_texts}
    uids: set[str] = set()
    titles: set[str] = set()

    def take(rels: Iterator[str] | set[str]) -> None:
        for rel in rels:
            for side in (before.get(rel), after.get(rel)):
                if side is not None:
                    uids.update(side.uids)
                    titles.add(side.page.title.casefold())

    take(changed)
    showing = [(rel, s) for rel, s in after.items() if s.refs or s.embeds]
    while True:
        more = {rel for rel, s in showing if rel not in changed and (
            not s.refs.isdisjoint(uids)
            or any(title in text for text in s.embeds for title in titles))}
        if not more:
            return uids
        changed |= more
        take(more)

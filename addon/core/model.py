"""The one normalized shape every reader produces: a Graph of Pages and Blocks.

Readers build a Graph and nothing else; everything downstream (cards, rendering, sync) reads
only this module's types. A Graph guarantees:
- every block is reachable by uid (``graph.blocks``) and every page by title (``graph.pages``);
- children keep their source order;
- each block knows its page and parent, so the ancestor chain is a walk, not a search.
"""

from __future__ import annotations

import gc
import hashlib
import re
import unicodedata
from collections.abc import Container, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol
from urllib.parse import quote

SOURCE_KINDS = ("roam", "logseq", "obsidian", "markdown")

# A key is short and plain: "{{c1::x}}" and "see http://x" must not read as attributes; and a
# space (or the end) follows "::", so "std::move" and "Studio::Bank::load()" are text.
_ATTRIBUTE = re.compile(r"^\s*([^:`{}()\n]{1,60}?)::(?!:)(?=\s|\Z)\s?(.*)\Z", re.DOTALL)


class SourceError(Exception):
    """Bad input: the file cannot be read as the format it claims. Nothing was written."""

    def __init__(self, path: object, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = str(path)
        self.message = message


@dataclass(eq=False, slots=True)
class Block:
    uid: str
    string: str
    page: Page = field(repr=False)
    parent: Block | None = field(default=None, repr=False)
    children: list[Block] = field(default_factory=list, repr=False)
    heading: int = 0

    def ancestors(self) -> list[Block]:
        """Parent blocks from the top of the page down to this block's parent."""
        chain: list[Block] = []
        node = self.parent
        while node is not None:
            chain.append(node)
            node = node.parent
        chain.reverse()
        return chain

    def descendants(self) -> Iterator[Block]:
        """Every block below this one, in document order. A walk with a stack of its own:
        the user's nesting may go deeper than Python's recursion does."""
        stack = self.children[::-1]
        while stack:
            block = stack.pop()
            yield block
            if block.children:
                stack.extend(reversed(block.children))

    @property
    def attribute(self) -> tuple[str, str] | None:
        """``(key, value)`` when the block is a ``Key:: value`` attribute, else None."""
        return parse_attribute(self.string)


@dataclass(eq=False, slots=True)
class Page:
    """A page. ``path`` is the page's file relative to the source's root folder (folder and
    Markdown sources; "" for Roam JSON/EDN/API), used for deep links and local images."""

    title: str
    uid: str = ""
    children: list[Block] = field(default_factory=list, repr=False)
    path: str = ""

    def attributes(self) -> dict[str, tuple[str, str]]:
        """Page attributes: top-level ``Key:: value`` blocks, by normalized key.

        Values map to ``(key as written, raw value)``; the first occurrence of a key wins.
        """
        found: dict[str, tuple[str, str]] = {}
        for block in self.children:
            attr = block.attribute if "::" in block.string else None
            if attr is not None:
                found.setdefault(attribute_key(attr[0]), attr)
        return found


@dataclass(eq=False)
class Graph:
    """Pages and blocks of one notes graph, from one source.

    ``source`` is one of SOURCE_KINDS and ``name`` the graph's name; together they prefix every
    card key (``roam:my-graph:<uid>``).
    """

    source: str
    name: str
    pages: dict[str, Page] = field(default_factory=dict)
    blocks: dict[str, Block] = field(default_factory=dict)
    # The folder that relative page paths and local images resolve against ("" if none).
    root: str = ""
    # Page file (Page.path) -> fingerprint of its bytes when read, so a write-back can refuse
    # to overwrite a file that changed since (folder sources only).
    file_digests: dict[str, str] = field(default_factory=dict)
    _by_uid: dict[str, Page] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.name = graph_name(self.name)

    def add_page(self, page: Page) -> Page:
        self.pages[page.title] = page
        self._by_uid = None
        return page

    def add_block(self, block: Block) -> Block:
        self.blocks[block.uid] = block
        return block

    def remove_page(self, page: Page) -> None:
        """Take a page and its blocks out (for readers that patch a graph in place); a uid
        now held by a block elsewhere (it moved) stays with that block."""
        if self.pages.get(page.title) is page:
            del self.pages[page.title]
        stack = list(page.children)
        while stack:
            block = stack.pop()
            if self.blocks.get(block.uid) is block:
                del self.blocks[block.uid]
            stack.extend(block.children)
        self._by_uid = None

    def release(self) -> None:
        """Break the page/parent/child links, so the graph is freed by reference counting as
        soon as it is dropped, on the thread that drops it. Left to the cyclic collector, a
        large graph would be freed later by a full collection on whichever thread (in Anki,
        maybe the UI's) happened to trigger it. Blocks are freed one at a time, not with
        their dict in one go: freeing 200k objects at once holds the GIL for ~100 ms."""
        blocks, self.blocks = self.blocks, {}
        pages, self.pages = self.pages, {}
        self._by_uid = None
        for page in pages.values():
            page.children = []
        while blocks:
            block = blocks.popitem()[1]
            block.parent = None
            block.children = []
        pages.clear()

    def link(self, uid: str) -> str:
        """A URL that opens the block (or page, by page uid) in the app it came from.

        Synthetic uids (``md-…``) name no block the app knows, so they open the block's page.
        """
        block = self.blocks.get(uid)
        page = block.page if block is not None else self._page_by_uid(uid)
        name = self._quoted_name
        if self.source == "roam":
            if is_synthetic(uid):
                target = page.uid if page is not None and page.uid else ""
                base = f"https://roamresearch.com/#/app/{name}"
                return f"{base}/page/{quote(target)}" if target else base
            return f"https://roamresearch.com/#/app/{name}/page/{quote(uid)}"
        if self.source == "logseq":
            base = f"logseq://graph/{name}"
            if block is not None and not is_synthetic(uid):
                return f"{base}?block-id={quote(uid, safe='')}"
            return f"{base}?page={quote(page.title, safe='')}" if page is not None else base
        if self.source == "obsidian" and page is not None:
            file = page.path.removesuffix(".md") or page.title
            if block is not None and not is_synthetic(uid):
                file = f"{file}#^{uid}"
            return f"obsidian://open?vault={name}&file={quote(file, safe='')}"
        return ""

    @cached_property
    def _quoted_name(self) -> str:
        # Roam keeps "/" in its URLs' graph part; the deep-link schemes take it as a value.
        return quote(self.name) if self.source == "roam" else quote(self.name, safe="")

    def _page_by_uid(self, uid: str) -> Page | None:
        if not uid:
            return None
        if self._by_uid is None:
            self._by_uid = {p.uid: p for p in self.pages.values() if p.uid}
        return self._by_uid.get(uid)

    @property
    def app_name(self) -> str:
        return {"roam": "Roam", "logseq": "Logseq", "obsidian": "Obsidian"}.get(
            self.source, "notes"
        )


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many long-lived objects.

    A graph is hundreds of thousands of small objects that all live until the sync ends;
    collecting while they are made only re-scans them (it tripled the reader's time).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def drop_gradually(container: list[Any] | dict[Any, Any]) -> None:
    """Empty a large container one item at a time, so that freeing what it held never holds
    the GIL for long (emptying it in one call frees everything in one C call)."""
    pop = container.popitem if isinstance(container, dict) else container.pop
    while container:
        pop()


def graph_name(name: str) -> str:
    """A graph name as it goes into keys: NFC (as Anki stores fields), trimmed, no ':'.

    macOS gives file names in decomposed Unicode; without normalising, "Café" from a folder
    name would never match the "Café" Anki stored, and every run would add the notes again.
    A ':' would make one graph's keys a prefix of another's.
    """
    name = unicodedata.normalize("NFC", name).strip()
    if not name or ":" in name:
        raise ValueError(f"graph name {name!r} must be non-empty and contain no ':'")
    return name


SYNTHETIC_PREFIX = "md-"
_blake2b = hashlib.blake2b
# ASCII whitespace that str.split() splits on, besides " ", "\t" and "\n": a reader can rule
# these out for a whole file at once (see PageUids).
RARE_SPACES = "\r\x0b\x0c\x1c\x1d\x1e\x1f"


class PageUids(Protocol):
    def __call__(
        self, text: str, taken: Container[str] = ..., plain: bool = ...
    ) -> str: ...


def page_uids(page_title: str) -> PageUids:
    """``synthetic_uid`` for the blocks of one page, for readers of whole files.

    The page's share of the hash is computed once. ``plain=True`` is the caller's word that
    ``text`` holds none of RARE_SPACES (checked once per file), so ASCII text needs no
    ``isprintable`` test. The uids are exactly those of ``synthetic_uid``.
    """
    seeded = _blake2b(f"{page_title}\x1f".encode(), digest_size=8).copy

    def uid_of(text: str, taken: Container[str] = frozenset(), plain: bool = False) -> str:
        # isprintable() rules out every whitespace but " ".
        if (
            (plain and text.isascii() and "\t" not in text and "\n" not in text)
            or text.isprintable()
        ) and "  " not in text and len(text.strip(" ")) == len(text):
            normalized = text
        else:
            normalized = " ".join(text.split())
        state = seeded()
        state.update(normalized.encode())
        uid = SYNTHETIC_PREFIX + state.hexdigest()
        return _unique(uid, taken) if uid in taken else uid

    return uid_of


def synthetic_uid(page_title: str, text: str, taken: Container[str] = frozenset()) -> str:
    """A uid for a block its source gives none: ``md-`` + a hash of its page and text.

    Identical blocks on one page get ``-2``, ``-3``… in document order, so each still has its
    own key. The key changes when the text changes; sync re-matches such notes by similarity.
    Whitespace is normalized first (runs of any whitespace are one space, none at the ends).
    ``page_uids`` computes the same uids for many blocks of one page.
    """
    if text.isprintable() and "  " not in text and len(text.strip(" ")) == len(text):
        normalized = text
    else:
        normalized = " ".join(text.split())
    uid = SYNTHETIC_PREFIX + _blake2b(
        f"{page_title}\x1f{normalized}".encode(), digest_size=8
    ).hexdigest()
    return _unique(uid, taken)


def _unique(uid: str, taken: Container[str]) -> str:
    if uid not in taken:
        return uid
    n = 2
    while f"{uid}-{n}" in taken:
        n += 1
    return f"{uid}-{n}"


def is_synthetic(uid: str) -> bool:
    return uid.startswith(SYNTHETIC_PREFIX)


def attribute_key(name: str) -> str:
    """Normalize an attribute name: case-insensitive, with space, '-' and '_' alike."""
    return re.sub(r"[\s_-]+", "_", name.strip().strip("[]#").strip().lower())


def parse_attribute(text: str) -> tuple[str, str] | None:
    match = _ATTRIBUTE.match(text)
    if match is None:
        return None
    key = match.group(1).strip()
    if not key:
        return None
    return key.strip("[]"), match.group(2).strip()

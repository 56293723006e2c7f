"""Marked blocks -> CardSpecs: which blocks are cards, of what kind, in which deck, with which
tags.

Marking rules (the README's "Marking cards in your notes"): a block carrying a card tag
(``#card``, ``#[[card]]``, ``[[card]]``; configurable; marks.py says which forms mark a card in
which dialect) is a card. Front is the block, back its children (attribute children left out).
Cloze syntax (clozes.py, per dialect) makes a cloze note. ``#reversed`` or ``direction:: <->``
adds the reverse card. ``#no-card`` or ``disable-anki-sync:: true`` on the block, an ancestor
or the page excludes it. A ``Tags::`` attribute is page metadata, never a card, even when it
lists a card tag.

Guarantees: collecting cards never renders. A CardSpec is a plain value: what the note should
be (key, kind, deck, tags), not what it says; note_fields.NoteRenderer renders it. Each spec
carries a ``source_hash`` over every input its rendered fields depend on (the block, its
children, parents, page, and the blocks its refs and embeds reach), so sync can skip unchanged
blocks without rendering them. Work is linear in the text of the blocks it looks at.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .clozes import ClozeMemory, ClozeSyntax, has_cloze
from .config import CardOptions
from .fields import Kind
from .identity import stored_text
from .limits import card_problem
from .marks import Marks
from .model import Block, Graph, Page, attribute_key, gc_paused, parse_attribute
from .render import EMBED_BLOCKS, REF, REF_DEPTH_LIMIT, page_title_text
from .state_tags import is_state_tag
from .textscan import link_ends

__all__ = ["CardSpec", "ClozeMemory", "collect", "key_for", "tag_names"]

# Bump when rendering or card building changes output, so every note is re-rendered once.
RENDER_VERSION = "6"

HASH_LENGTH = 20  # hex digits of a source hash
REVERSE_TAG = "reversed"
EXCLUDE_TAG = "no-card"


_TAG_START = re.compile(r"#?\[\[|(?<![\w#/])#([\w\-/]+)")
# ((uid)) inside an embed widget: the embed shows the block's children too.
_EMBEDDED_REF = re.compile(
    r"\{\{\s*(?:\[\[)?embed(?:-path|-children)?(?:\]\])?\s*:?\s*<?\(\(([\w-]+)\)\)")
# Stops at the next "[[": linear even in a text of unclosed embeds.
_EMBEDDED_PAGE = re.compile(
    r"\{\{\s*(?:\[\[)?embed(?:\]\])?\s*:?\s*\[\[((?:(?!\]\]|\[\[).)+)\]\]\s*\}\}")


@dataclass(frozen=True, eq=False)
class CardSpec:
    """One card block, as the Anki note it should become (a plain value: rendering it is
    note_fields.NoteRenderer's job)."""

    key: str
    uid: str
    kind: Kind
    reversed: bool
    deck: str
    tags: tuple[str, ...]
    source_hash: str
    location: str
    block: Block


def key_for(graph: Graph, uid: str) -> str:
    """``<source>:<graph>:<uid>``, in the form Anki stores field text (identity.stored_text),
    so the key read back from a note compares equal."""
    return stored_text(f"{graph.source}:{graph.name}:{uid}")


def cloze_syntax(graph: Graph, options: CardOptions) -> ClozeSyntax:
    """The cloze syntaxes of ``graph``'s blocks under ``options``."""
    return ClozeSyntax.of(graph.source, brace=options.brace_clozes,
                          highlight=options.highlight_cloze)


def marks_for(graph: Graph, options: CardOptions) -> Marks:
    """The tags that mark blocks (card tags, ``reversed``, ``no-card``), in ``graph``'s dialect."""
    return Marks((*options.card_tags, REVERSE_TAG, EXCLUDE_TAG), graph.source)


def collect(
    graph: Graph, options: CardOptions, source_deck: str = "",
    skipped: dict[str, str] | None = None, blocks: Iterable[Block] | None = None,
) -> list[CardSpec]:
    """Every card block of ``graph``, in document order, as a CardSpec (not rendered);
    ``blocks`` limits the search to these blocks of the graph (an incremental sync).

    A card block past a limit (``limits.card_problem``) gets no spec: its key goes into
    ``skipped`` with a warning naming it, and the rest of the graph is collected."""
    builder = _Builder(graph, options, source_deck)
    if skipped is not None:
        builder.skipped = skipped
    names = tuple(builder.card_tags)
    specs = []
    with gc_paused():
        for block in graph.blocks.values() if blocks is None else blocks:
            # Cheap first tests (most blocks are not cards): a tag needs "#" or "[[", and
            # a card tag's name must occur in the text.
            text = block.string
            if "#" not in text and "[[" not in text:
                continue
            lowered = text.lower()
            for name in names:
                if name in lowered:
                    if spec := builder.card_for(block):
                        specs.append(spec)
                    break
    return specs


@dataclass(frozen=True)
class _PageInfo:
    deck: str
    tags: tuple[str, ...]
    digest_parts: tuple[str, str]


class _Builder:
    """Finds card blocks. Work happens only for blocks that mention a card tag: page,
    ancestor and attribute facts are computed on first need and cached, since a graph of
    200k blocks holds only a few thousand cards."""

    def __init__(self, graph: Graph, options: CardOptions, source_deck: str) -> None:
        self.graph = graph
        self.options = options
        self.fallback_deck = source_deck or options.default_deck
        self.card_tags = frozenset(t.lower() for t in options.card_tags)
        self.marks = marks_for(graph, options)
        self.syntax = cloze_syntax(graph, options)
        self.salt = f"{RENDER_VERSION}|{options.fingerprint()}|{graph.source}|{graph.name}"
        self._pages: dict[int, _PageInfo | None] = {}
        self._attributes: dict[str, dict[str, tuple[str, str]]] = {}
        self._excluded: dict[str, bool] = {}
        self._tags: dict[str, frozenset[str]] = {}
        self._reach: dict[tuple[str, int, bool], str] = {}
        self.skipped: dict[str, str] = {}

    def card_for(self, block: Block) -> CardSpec | None:
        if not self._is_card(block):
            return None
        page = self._page_info(block.page)
        if page is None:
            return None
        own = self._child_attributes(block)
        if self._is_excluded(block):
            return None
        deck = _deck_value(own.get("deck"))
        ancestors = block.ancestors()
        for ancestor in reversed(ancestors):
            if self._is_excluded(ancestor):
                return None
            deck = deck or _deck_value(self._child_attributes(ancestor).get("deck"))
        if (problem := card_problem(block, ancestors, deck or page.deck)) is not None:
            key = key_for(self.graph, block.uid)
            self.skipped[key] = _skip_warning(key, block, problem)
            return None
        return self._spec(block, own, deck or page.deck, page, ancestors)

    def _is_card(self, block: Block) -> bool:
        if not self.card_tags & self._tags_in(block):
            return False
        attr = block.attribute
        return attr is None or attribute_key(attr[0]) != "tags"

    def _is_excluded(self, block: Block) -> bool:
        excluded = self._excluded.get(block.uid)
        if excluded is None:
            excluded = self._excluded[block.uid] = (
                _is_true(self._child_attributes(block).get("disable_anki_sync"))
                or EXCLUDE_TAG in self._tags_in(block)
            )
        return excluded

    def _child_attributes(self, block: Block) -> dict[str, tuple[str, str]]:
        found = self._attributes.get(block.uid)
        if found is None:
            found = self._attributes[block.uid] = _child_attributes(block)
        return found

    def _tags_in(self, block: Block) -> frozenset[str]:
        """The marks (card tags, reversed, no-card) the block's text carries."""
        found = self._tags.get(block.uid)
        if found is None:
            found = self._tags[block.uid] = self.marks.names_in(block.string)
        return found

    def _page_info(self, page: Page) -> _PageInfo | None:
        key = id(page)
        if key not in self._pages:
            attrs = page.attributes()
            page_tags = self._page_tags(page, attrs)
            excluded = _is_true(attrs.get("disable_anki_sync")) or EXCLUDE_TAG in {
                t.lower() for t in page_tags
            }
            self._pages[key] = None if excluded else _PageInfo(
                deck=_deck_value(attrs.get("deck")) or self.fallback_deck,
                tags=self._note_tags(attrs, page_tags),
                digest_parts=(page.title, repr(sorted(attrs.values()))),
            )
        return self._pages[key]

    @staticmethod
    def _page_tags(page: Page, attrs: dict[str, tuple[str, str]]) -> list[str]:
        """Tags given to the whole page: the ``Tags::`` value and top-level tag-only blocks."""
        found: list[str] = []
        tags_attr = attrs.get("tags")
        if tags_attr:
            found.extend(_listed_tags(tags_attr[1]))
        for block in page.children:
            if _only_tags(block.string):
                found.extend(tag_names(block.string))
        return found

    def _note_tags(
        self, attrs: dict[str, tuple[str, str]], page_tags: list[str]
    ) -> tuple[str, ...]:
        tags: list[str] = []
        anki_tag = attrs.get("anki_tag")
        if anki_tag:
            tags.extend(_anki_tag(t) for t in (tag_names(anki_tag[1]) or anki_tag[1].split()))
        skip = self.card_tags | {REVERSE_TAG, EXCLUDE_TAG}
        tags.extend(f"roam::{_anki_tag(t)}" for t in page_tags if t.strip().lower() not in skip)
        # The bridge's own state tags are never the notes' to give (see state_tags.py).
        return tuple(dict.fromkeys(t for t in tags if t.strip("_:") and not is_state_tag(t)))

    # One card -----------------------------------------------------------------------------

    def _spec(
        self,
        block: Block,
        own: dict[str, tuple[str, str]],
        deck: str,
        page: _PageInfo,
        ancestors: list[Block],
    ) -> CardSpec:
        kind: Kind = "cloze" if has_cloze(block.string, self.syntax) else "basic"
        direction = own.get("direction")
        is_reversed = kind == "basic" and (
            REVERSE_TAG in self._tags_in(block) or bool(direction and "<->" in direction[1])
        )
        location = _digest(page.digest_parts[0], *(a.uid for a in ancestors))
        shown = [  # every text the note shows
            *page.digest_parts, block.string,
            *(a.string for a in ancestors),
            *(f"{depth}\x1e{d.string}" for depth, d in _descendants(block)),
        ]
        inputs = [self.salt, kind, str(is_reversed), deck, "\x1e".join(page.tags),
                  str(block.heading), *shown, *(self._reached(text) for text in shown)]
        return CardSpec(
            key=key_for(self.graph, block.uid),
            uid=block.uid,
            kind=kind,
            reversed=is_reversed,
            deck=deck,
            tags=page.tags,
            source_hash=_digest(*inputs),
            location=location,
            block=block,
        )

    def _reached(self, text: str, depth: int = REF_DEPTH_LIMIT) -> str:
        """A digest of the blocks ``text`` shows through ((refs)) and embeds, as deep as the
        renderer follows them: the texts of refs, and for embeds their children (and, for a
        page embed, the page's blocks). Memoized by (uid, depth), so a web of refs shared by
        many cards is walked once per run."""
        if depth <= 0 or ("((" not in text and "{{" not in text):
            return ""
        parts: list[str] = []
        if "((" in text:
            embedded = set(_EMBEDDED_REF.findall(text)) if "embed" in text else set()
            for uid in dict.fromkeys(REF.findall(text)):
                parts.append(self._reach_of(uid, depth, uid in embedded))
        if "embed" in text and "[[" in text:
            for title in _EMBEDDED_PAGE.findall(text):
                page = self.graph.pages.get(page_title_text(title).strip())
                parts.append(f"[[{title}]]\x1e" + (self._tree_digest(page.children, depth)
                                                     if page is not None else ""))
        return _digest(*parts) if parts else ""

    def _reach_of(self, uid: str, depth: int, embedded: bool) -> str:
        key = (uid, depth, embedded)
        found = self._reach.get(key)
        if found is None:  # depth falls at every step: a cycle of refs ends too
            target = self.graph.blocks.get(uid)
            if target is None:
                found = f"{uid}\x1e"
            else:
                found = _digest(uid, target.string, self._reached(target.string, depth - 1),
                                *((a.string for a in target.ancestors()) if embedded else ()),
                                self._tree_digest(target.children, depth) if embedded else "")
            self._reach[key] = found
        return found

    def _tree_digest(self, children: list[Block], depth: int) -> str:
        """The texts an embed shows below its block (as many as the renderer shows)."""
        parts: list[str] = []
        for level, block in _walk(children, EMBED_BLOCKS):
            parts.append(f"{level}\x1e{block.string}\x1e{self._reached(block.string, depth - 1)}")
        return _digest(*parts)


# Small helpers ----------------------------------------------------------------------------


def tag_names(text: str) -> list[str]:
    """Page names referenced as ``#tag``, ``#[[tag]]`` or ``[[tag]]`` in ``text``."""
    return [name for _, _, name in _tag_spans(text) if name]


def _tag_spans(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, page name)`` of every ``#tag``, ``#[[tag]]`` and ``[[tag]]``; brackets
    balanced (``[[a [[b]]]]`` is one name), in one pass."""
    found: list[tuple[int, int, str]] = []
    ends: dict[int, int] | None = None
    cursor = 0
    for m in _TAG_START.finditer(text):
        if m.start() < cursor:
            continue
        if m.group(1) is not None:
            found.append((m.start(), m.end(), m.group(1)))
            continue
        if ends is None:
            ends = link_ends(text)
        opener = m.end() - 2
        end = ends.get(opener, -1)
        if end > 0:
            found.append((m.start(), end, page_title_text(text[opener + 2 : end - 2]).strip()))
            cursor = end
    return found


def _listed_tags(value: str) -> list[str]:
    """Tags in an attribute value: links and #tags, and plain comma-separated words."""
    found: list[str] = []
    for item in value.split(","):
        found.extend(tag_names(item) or ([item.strip()] if item.strip() else []))
    return found


def _only_tags(text: str) -> bool:
    stripped = text.lstrip()
    if not stripped.startswith(("#", "[[")):
        return False
    pieces, cursor = [], 0
    for start, end, _ in _tag_spans(stripped):
        pieces.append(stripped[cursor:start])
        cursor = end
    pieces.append(stripped[cursor:])
    return not "".join(pieces).strip(" ,")


def _child_attributes(block: Block) -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for child in block.children:
        attr = parse_attribute(child.string) if "::" in child.string else None
        if attr is not None:
            found.setdefault(attribute_key(attr[0]), attr)
    return found


def _deck_value(attr: tuple[str, str] | None) -> str:
    if not attr:
        return ""
    return page_title_text(attr[1]).strip().strip("#").strip()


def _is_true(attr: tuple[str, str] | None) -> bool:
    return attr is not None and attr[1].strip().lower() in ("true", "yes", "1")


def _anki_tag(name: str) -> str:
    """Anki tags cannot hold spaces; Roam page names can."""
    return re.sub(r"\s+", "_", page_title_text(name).strip().lstrip("#"))


def _skip_warning(key: str, block: Block, problem: str) -> str:
    """One line naming a skipped card block: its key, its page and how its text begins."""
    start = " ".join(block.string[:80].split())
    start = start if len(start) <= 40 else start[:39] + "…"
    return (f"{key} (page {block.page.title[:80]!r}, {start!r}): {problem}; skipped, and a "
            "note it made before is left as it is")


def _descendants(block: Block) -> Iterator[tuple[int, Block]]:
    """``(depth below block, descendant)`` in document order, without recursion."""
    return _walk(block.children)


def _walk(children: list[Block], limit: int | None = None) -> Iterator[tuple[int, Block]]:
    """``(level, block)`` for ``children`` and everything below them, in document order (at
    most ``limit`` blocks); iterative, so a deep outline cannot exhaust the stack."""
    stack = [(0, child) for child in reversed(children)]
    count = 0
    while stack:
        level, block = stack.pop()
        yield level, block
        count += 1
        if limit is not None and count >= limit:
            return
        stack.extend((level + 1, child) for child in reversed(block.children))


def _digest(*parts: str) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=HASH_LENGTH // 2).hexdigest()

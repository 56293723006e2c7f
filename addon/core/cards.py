"""Marked blocks -> CardSpecs: what each Anki note should say, where it goes, how it is tagged.

Marking rules (DESIGN.md): a block carrying a card tag (``#card``, ``#[[card]]``, ``[[card]]``;
configurable) is a card and the tag is hidden from what is shown. Front is the block, back its
children (attribute children left out). Cloze syntax makes a cloze note. ``#reversed`` or
``direction:: <->`` adds the reverse card. ``#no-card`` or ``disable-anki-sync:: true`` on the
block, an ancestor or the page excludes it. A ``Tags::`` attribute is page metadata, never a
card, even when it lists a card tag.

Guarantees: collecting cards never renders. Each CardSpec carries a ``source_hash`` over every
input its fields depend on, so sync can skip unchanged blocks; ``fields`` renders on first use.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from .config import CardOptions
from .context import ContextBuilder
from .model import Block, Graph, Page, attribute_key, gc_paused, parse_attribute
from .render import (
    REF,
    REF_DEPTH_LIMIT,
    ImageResolver,
    Renderer,
    defuse_tex,
    page_title_text,
)

# Bump when rendering or card building changes output, so every note is re-rendered once.
RENDER_VERSION = "4"

Kind = Literal["basic", "cloze"]
# Which number each auto-numbered cloze got: ``(content digest, number)`` in text order; an
# entry with an empty digest only records the highest number ever given (see number_clozes).
ClozeMemory = tuple[tuple[str, int], ...]
HASH_LENGTH = 20  # hex digits of a source hash
REVERSE_TAG = "reversed"
EXCLUDE_TAG = "no-card"

BASIC_FIELDS = ("Front", "Back", "Context", "Source", "Add Reverse")
CLOZE_FIELDS = ("Text", "Back Extra", "Context", "Source")

# Code, math and {{widgets}} are opaque to cloze shorthand; same-length masks keep positions.
_OPAQUE = re.compile(r"```.*?```|`[^`]*`|\$\$.*?\$\$|\{\{(?!c\d+::|cloze[\s:])(?:.*?)\}\}", re.S)
_CODE = re.compile(r"```.*?```|`[^`]*`", re.S)
_EXPLICIT_CLOZE = re.compile(r"\{\{c(\d+)::(?!\}\})")
_LOGSEQ_CLOZE = re.compile(r"\{\{cloze[\s:]\s*(.+?)\}\}", re.S)
_NUMBERED_SHORT = re.compile(r"(?<!\{)\{c(\d+):(?!:)([^{}]+)\}(?!\})")
_BARE_SHORT = re.compile(r"(?<!\{)\{([^{}]+)\}(?!\})")
_HIGHLIGHT = re.compile(r"\^\^(.+?)\^\^|==(.+?)==")
_TAG_TOKEN = re.compile(r"#\[\[(.+?)\]\](?!\])|\[\[(.+?)\]\](?!\])|(?<![\w#/])#([\w\-/]+)")
_URL = re.compile(r"https?://\S+", re.IGNORECASE)


@dataclass(eq=False)
class CardSpec:
    """One card block, as the Anki note it should become."""

    key: str
    uid: str
    kind: Kind
    reversed: bool
    deck: str
    tags: tuple[str, ...]
    source_hash: str
    location: str
    block: Block = field(repr=False)
    _render: Callable[[CardSpec], dict[str, str]] = field(repr=False)
    context: ContextBuilder = field(repr=False)
    # Cloze numbers the note's previous content used (set by sync before rendering), and the
    # ones this rendering gave (to remember next time).
    cloze_memory: ClozeMemory = ()
    clozes: ClozeMemory = ()

    @cached_property
    def fields(self) -> dict[str, str]:
        """Field name -> HTML, for this spec's note type. Rendered once, on first use."""
        return self._render(self)


def key_for(graph: Graph, uid: str) -> str:
    """``<source>:<graph>:<uid>``, in NFC like every field Anki stores."""
    key = f"{graph.source}:{graph.name}:{uid}".strip()
    return key if key.isascii() else unicodedata.normalize("NFC", key)


def collect(
    graph: Graph, options: CardOptions, source_deck: str = "",
    images: ImageResolver | None = None,
) -> list[CardSpec]:
    """Every card block of ``graph``, in document order, as a CardSpec (not yet rendered).
    ``images`` gives the renderer media file names for images (see media.MediaStore)."""
    builder = _Builder(graph, options, source_deck, images)
    names = tuple(builder.card_tags)
    specs = []
    with gc_paused():
        for block in graph.blocks.values():
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

    def __init__(
        self, graph: Graph, options: CardOptions, source_deck: str,
        images: ImageResolver | None,
    ) -> None:
        self.graph = graph
        self.options = options
        self.fallback_deck = source_deck or options.default_deck
        self.card_tags = frozenset(t.lower() for t in options.card_tags)
        self.renderer = Renderer(
            graph, hidden_tags=(*self.card_tags, REVERSE_TAG, EXCLUDE_TAG), images=images
        )
        self.salt = f"{RENDER_VERSION}|{options.fingerprint()}|{graph.source}|{graph.name}"
        self._pages: dict[int, _PageInfo | None] = {}
        self._attributes: dict[str, dict[str, tuple[str, str]]] = {}
        self._excluded: dict[str, bool] = {}
        self._tags: dict[str, frozenset[str]] = {}
        self.context = ContextBuilder(graph, self.renderer, options.context_depth)

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
        found = self._tags.get(block.uid)
        if found is None:
            text = block.string
            found = self._tags[block.uid] = (
                frozenset(t.lower() for t in tag_names(_mask_opaque(text, code_only=True)))
                if "#" in text or "[[" in text else frozenset()
            )
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
        return tuple(dict.fromkeys(t for t in tags if t.strip("_:")))

    # One card -----------------------------------------------------------------------------

    def _spec(
        self,
        block: Block,
        own: dict[str, tuple[str, str]],
        deck: str,
        page: _PageInfo,
        ancestors: list[Block],
    ) -> CardSpec:
        kind: Kind = "cloze" if has_cloze(block.string, self.options.highlight_cloze) else "basic"
        direction = own.get("direction")
        is_reversed = kind == "basic" and (
            REVERSE_TAG in self._tags_in(block) or bool(direction and "<->" in direction[1])
        )
        location = _digest(page.digest_parts[0], *(a.uid for a in ancestors))
        shown = [  # every text the note shows
            *page.digest_parts, block.string,
            *(a.string for a in ancestors),
            *(f"{_depth(d, block)}\x1e{d.string}" for d in block.descendants()),
        ]
        inputs = [self.salt, kind, str(is_reversed), deck, "\x1e".join(page.tags),
                  str(block.heading), *shown, *self._referenced_strings(shown)]
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
            _render=self._render,
            context=self.context,
        )

    def _referenced_strings(self, texts: list[str]) -> list[str]:
        """Texts of blocks reached through ((refs)), since they show on the card."""
        seen: set[str] = set()
        found: list[str] = []
        frontier = texts
        for _ in range(REF_DEPTH_LIMIT):
            next_frontier: list[str] = []
            for text in frontier:
                if "((" not in text:
                    continue
                for uid in REF.findall(text):
                    if uid in seen:
                        continue
                    seen.add(uid)
                    target = self.graph.blocks.get(uid)
                    found.append(f"{uid}\x1e{target.string if target else ''}")
                    if target is not None:
                        next_frontier.append(target.string)
            if not next_frontier:
                break
            frontier = next_frontier
        return found

    # Rendering (lazy) ---------------------------------------------------------------------

    def _render(self, spec: CardSpec) -> dict[str, str]:
        # Anki typesets TeX anywhere in a field, not only in our math: see render.defuse_tex.
        return {name: defuse_tex(value) for name, value in self._fields(spec).items()}

    def _fields(self, spec: CardSpec) -> dict[str, str]:
        block, r = spec.block, self.renderer
        back = self._children_html(block)
        context = self.context.card_html(block)
        source = self.context.open_link_html(block)
        if spec.kind == "cloze":
            numbered = number_clozes(block.string, self.options.highlight_cloze,
                                     spec.cloze_memory)
            text, spec.clozes = numbered if numbered is not None else (block.string, ())
            return {"Text": r.inline(text, page=block.page), "Back Extra": back, "Context": context,
                    "Source": source}
        return {"Front": r.block(block), "Back": back, "Context": context, "Source": source,
                "Add Reverse": "y" if spec.reversed else ""}

    def _children_html(self, block: Block) -> str:
        items = [
            f"<li>{self.renderer.block(c)}"
            # A {{[[table]]}} block's rendering is its children, as rows.
            f"{'' if self.renderer.renders_children(c) else self._children_html(c)}</li>"
            for c in block.children
            if c.attribute is None and c.string.strip()
        ]
        return f'<ul class="rb-children">{"".join(items)}</ul>' if items else ""


# Cloze syntax -----------------------------------------------------------------------------


def cloze_text(text: str, highlight: bool = False, memory: ClozeMemory = ()) -> str | None:
    """``text`` with every cloze syntax rewritten as Anki's ``{{cN::…}}``, or None if the
    block has no cloze. See ``number_clozes``."""
    numbered = number_clozes(text, highlight, memory)
    return numbered[0] if numbered is not None else None


def number_clozes(
    text: str, highlight: bool = False, memory: ClozeMemory = ()
) -> tuple[str, ClozeMemory] | None:
    """``text`` with every cloze rewritten as ``{{cN::…}}``, and the numbers the
    auto-numbered ones got (to remember for next time); None if the block has no cloze.

    Explicit numbers (``{{c2::x}}``, ``{c2:x}``) always win. An auto-numbered cloze keeps the
    number ``memory`` gave the same content, so inserting a cloze before others never moves
    their review history to another card; a cloze whose content was edited keeps the number
    of the one it replaced (in order); a new one takes a number never used before. Without
    memory, auto clozes take the lowest free numbers in order. Shorthand inside code, math or
    ``{{widgets}}`` is left alone.
    """
    found = _cloze_spans(text, highlight)
    if found is None:
        return None
    spans, used = found
    spans.sort()
    autos = [(i, _cloze_digest(content)) for i, (_, _, n, content) in enumerate(spans)
             if n is None]
    numbers = _auto_numbers([d for _, d in autos], used, memory)
    assigned = dict(zip((i for i, _ in autos), numbers, strict=True))
    pieces: list[str] = []
    cursor = 0
    for i, (start, end, number, content) in enumerate(spans):
        pieces.append(text[cursor:start])
        pieces.append(f"{{{{c{assigned.get(i, number)}::{content}}}}}")
        cursor = end
    pieces.append(text[cursor:])
    remembered = tuple(zip((d for _, d in autos), numbers, strict=True))
    # A removed cloze's card stays (suspended, with its history): its number is retired for
    # good, even when it was the highest, so the highest number ever given is kept too.
    highest = max((n for _, n in memory), default=0)
    if highest > max(numbers, default=0):
        remembered += (("", highest),)
    return "".join(pieces), remembered


def has_cloze(text: str, highlight: bool = False) -> bool:
    """Whether the block is a cloze note (cheaper than numbering its clozes)."""
    return _cloze_spans(text, highlight) is not None


def _cloze_spans(
    text: str, highlight: bool
) -> tuple[list[tuple[int, int, int | None, str]], set[int]] | None:
    """Every cloze in ``text`` as ``(start, end, explicit number or None, content)``, and the
    explicit numbers; None when there is no cloze."""
    if "{" not in text and not (highlight and ("^^" in text or "==" in text)):
        return None
    masked = _mask_opaque(text)
    used = {int(n) for n in _EXPLICIT_CLOZE.findall(masked)}
    spans: list[tuple[int, int, int | None, str]] = []  # start, end, number, content
    for m in _LOGSEQ_CLOZE.finditer(masked):
        spans.append((m.start(), m.end(), None, text[m.start(1) : m.end(1)]))
    shorthand = _mask_spans(masked, spans)
    for m in _NUMBERED_SHORT.finditer(shorthand):
        number = int(m.group(1))
        used.add(number)
        spans.append((m.start(), m.end(), number, text[m.start(2) : m.end(2)]))
    shorthand = _mask_spans(shorthand, spans)
    for m in _BARE_SHORT.finditer(shorthand):
        spans.append((m.start(), m.end(), None, text[m.start(1) : m.end(1)]))
    if highlight:
        shorthand = _mask_spans(shorthand, spans)
        for m in _HIGHLIGHT.finditer(shorthand):
            group = 1 if m.group(1) is not None else 2
            spans.append((m.start(), m.end(), None, text[m.start(group) : m.end(group)]))
    if not spans and not used:
        return None
    return spans, used


def _auto_numbers(digests: list[str], explicit: set[int], memory: ClozeMemory) -> list[int]:
    """Numbers for auto-numbered clozes (by content digest, in text order); see
    ``number_clozes``."""
    taken = set(explicit)
    result: list[int | None] = [None] * len(digests)
    remembered: dict[str, list[int]] = defaultdict(list)
    for digest, number in memory:
        if digest:
            remembered[digest].append(number)
    # 1. Same content, same number.
    for i, digest in enumerate(digests):
        for number in remembered.get(digest, ()):
            if number not in taken:
                result[i] = number
                taken.add(number)
                remembered[digest].remove(number)
                break
    # 2. Edited content takes the number of the cloze it replaced, in order.
    leftover = [n for d, n in memory if n not in taken and n in remembered.get(d, ())]
    for i in range(len(digests)):
        if result[i] is None and leftover:
            result[i] = leftover.pop(0)
            taken.add(result[i])
    # 3. The rest: numbers never used, so no card's history is handed to new content.
    next_free = max((n for _, n in memory), default=0) + 1 if memory else 1
    for i in range(len(digests)):
        if result[i] is None:
            while next_free in taken:
                next_free += 1
            result[i] = next_free
            taken.add(next_free)
    return [n for n in result if n is not None]


def _cloze_digest(content: str) -> str:
    return hashlib.blake2b(" ".join(content.split()).encode(), digest_size=4).hexdigest()


def _mask_opaque(text: str, code_only: bool = False) -> str:
    """``text`` with code, math, URLs (and unless ``code_only``, ``{{widgets}}``) blanked out
    character for character, so positions still match the original."""
    if "://" in text:
        text = _URL.sub(lambda m: "\x00" * len(m.group(0)), text)
    if "`" not in text and "$$" not in text and (code_only or "{{" not in text):
        return text
    pattern = _CODE if code_only else _OPAQUE
    return pattern.sub(lambda m: "\x00" * len(m.group(0)), text)


def _mask_spans(text: str, spans: list[tuple[int, int, int | None, str]]) -> str:
    chars = list(text)
    for start, end, _, _ in spans:
        chars[start:end] = "\x00" * (end - start)
    return "".join(chars)


# Small helpers ----------------------------------------------------------------------------


def tag_names(text: str) -> list[str]:
    """Page names referenced as ``#tag``, ``#[[tag]]`` or ``[[tag]]`` in ``text``."""
    names = []
    for m in _TAG_TOKEN.finditer(text):
        name = m.group(1) or m.group(2) or m.group(3)
        names.append(page_title_text(name).strip())
    return [n for n in names if n]


def _listed_tags(value: str) -> list[str]:
    """Tags in an attribute value: links and #tags, and plain comma-separated words."""
    found: list[str] = []
    for item in value.split(","):
        found.extend(tag_names(item) or ([item.strip()] if item.strip() else []))
    return found


def _only_tags(text: str) -> bool:
    stripped = text.lstrip()
    return stripped.startswith(("#", "[[")) and not _TAG_TOKEN.sub("", stripped).strip(" ,")


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
    return bool(attr) and attr[1].strip().lower() in ("true", "yes", "1")


def _anki_tag(name: str) -> str:
    """Anki tags cannot hold spaces; Roam page names can."""
    return re.sub(r"\s+", "_", page_title_text(name).strip().lstrip("#"))


def _depth(node: Block, top: Block) -> int:
    depth, parent = 0, node.parent
    while parent is not None and parent is not top:
        depth += 1
        parent = parent.parent
    return depth


def _digest(*parts: str) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=HASH_LENGTH // 2).hexdigest()

"""The card's Context field: where the card's block came from, as HTML that travels with the note.

``CardContext.field_html`` is a breadcrumb (page › parent › parent, each crumb a link to its
block) and the page's attributes (Author, Source, Tags…). It is part of the note, so AnkiDroid
and AnkiMobile show it too; the desktop reviewer's panel (panel.py) reuses its pieces.

Guarantees: all block text goes through the Renderer (escaped, links only to http(s) and the
notes apps); links we build ourselves point only at the source app (https for Roam, logseq://
or obsidian:// deep links). A crumb reads as its block does on a card (math stays math, code
stays code, lines are spaced apart), shortened without cutting into math or a tag.
"""

from __future__ import annotations

import html
import re

from .apps import LINK_SCHEMES
from .model import Block, Graph, Page
from .render import Renderer, page_title_text

SHORT_CRUMB = 60
CONTROL_ATTRIBUTES = frozenset({"deck", "anki_tag", "disable_anki_sync", "direction"})
SEPARATOR = '<span class="rb-sep"> › </span>'


class CardContext:
    """Builds the Context field of the cards of one graph; memoizes per page and per block."""

    def __init__(self, graph: Graph, renderer: Renderer, depth: int | None = None) -> None:
        self.graph = graph
        self.renderer = renderer
        self.depth = depth  # parents on the card: None for all, 0 for the page only
        self._attributes: dict[int, str] = {}
        self._crumbs: dict[str, str] = {}

    def field_html(self, block: Block) -> str:
        page = block.page
        parents = block.ancestors()
        crumbs = [self.page_crumb(page)]
        if self.depth is not None and len(parents) > self.depth:
            parents = parents[len(parents) - self.depth :] if self.depth else []
            crumbs.append('<span class="rb-crumb rb-more">…</span>')
        crumbs.extend(self._crumb(p) for p in parents)
        return (f'<div class="rb-context"><div class="rb-crumbs">{SEPARATOR.join(crumbs)}'
                f"</div>{self.attributes_html(page)}</div>")

    def attributes_html(self, page: Page) -> str:
        """The page's attributes (Author, Source, …) as small labelled items, once per page."""
        cached = self._attributes.get(id(page))
        if cached is None:
            # One div per item: a line each where no card CSS applies (Anki's editor).
            items = "".join(
                f'<div class="rb-attr"><span class="rb-attr-key">'
                f"{html.escape(key)}</span> "
                f'<span class="rb-attr-value">{self.renderer.inline(value, page=page)}</span>'
                "</div>"
                for norm, (key, value) in page.attributes().items()
                if norm not in CONTROL_ATTRIBUTES and value
            )
            cached = self._attributes[id(page)] = (
                f'<div class="rb-attrs">{items}</div>' if items else ""
            )
        return cached

    def open_link_html(self, block: Block) -> str:
        return link(self.graph.link(block.uid), f"Open in {self.graph.app_name}", "rb-open")

    def page_crumb(self, page: Page) -> str:
        title = html.escape(page_title_text(page.title))
        url = self.graph.link(page.uid) if page.uid else ""
        return link(url, title, "rb-crumb rb-page-title") if url else (
            f'<span class="rb-crumb rb-page-title">{title}</span>'
        )

    def _crumb(self, block: Block) -> str:
        """A parent as a breadcrumb: its text as the card shows it, shortened, linking to
        the block."""
        cached = self._crumbs.get(block.uid)
        if cached is None:
            cached = self._crumbs[block.uid] = link(
                self.graph.link(block.uid), crumb_html(self.renderer.block(block)), "rb-crumb"
            )
        return cached


def link(url: str, label_html: str, css_class: str) -> str:
    if not url.startswith(LINK_SCHEMES):
        return f'<span class="{css_class}">{label_html}</span>'
    href = html.escape(url)
    return f'<a class="{css_class}" href="{href}" data-rb-open="{href}">{label_html}</a>'


def crumb_html(rendered: str, limit: int = SHORT_CRUMB) -> str:
    """A block's rendered HTML as one line inside a link: headings, paragraphs and lists
    flattened (lines and blocks spaced apart), links and reveals made plain text, images shown
    by their alt text; past ``limit`` visible characters it is cut at a word, never inside
    math or a tag, and ends in "…"."""
    if "<" not in rendered:
        text = html.unescape(rendered)
        if len(text) <= limit:
            return rendered
        return html.escape(_cut_words(text, limit), quote=False) + "…"
    return _Crumb(limit).feed(rendered)


# Elements a crumb keeps as they are (inline styling); any other is flattened to its text.
_INLINE = frozenset({"strong", "em", "mark", "del", "code", "span"})
_BREAKS = frozenset({"br", "hr", "p", "div", "li", "ul", "blockquote", "pre", "tr", "td",
                     "h1", "h2", "h3", "table", "tbody", "details", "summary"})
# Our own sanitised HTML, as tokens: a tag, or the text up to the next one.
_TOKEN = re.compile(r"<(/?)([a-z0-9]+)([^>]*)>|[^<]+")
_CLASS = re.compile(r'\sclass="([^"]*)"')
_ALT = re.compile(r'\salt="([^"]*)"')


def _cut_words(text: str, room: int) -> str:
    head = text[:room]
    if len(text) > room and " " in head:
        head = head.rsplit(" ", 1)[0]
    return head.rstrip(" ,;:–-")


class _Crumb:
    """Rebuilds our own (sanitised) HTML as a short, flat crumb, one token at a time."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.out: list[str] = []
        self.open: list[str] = []
        self.math = 0  # depth inside a math span: kept whole or not at all
        self.atom: list[str] = []
        self.atom_size = 0
        self.full = False

    def feed(self, rendered: str) -> str:
        for m in _TOKEN.finditer(rendered):
            if self.full:
                break
            name = m.group(2)
            if name is None:
                self._text(m.group(0))
            elif m.group(1):
                self._end(name)
            else:
                self._start(name, m.group(3))
        closing = "".join(f"</{tag}>" for tag in reversed(self.open))
        return "".join(self.out).strip() + closing

    def _start(self, tag: str, attrs: str) -> None:
        if tag == "img":
            alt = _ALT.search(attrs)
            self._text(f"[{alt.group(1) if alt and alt.group(1) else 'image'}]")
            return
        if tag in _BREAKS:
            self._space()
            return
        if tag not in _INLINE:
            return
        found = _CLASS.search(attrs)
        classes = found.group(1) if found else ""
        if self.math or "rb-math" in classes.split():
            self.math += 1
            self.atom.append(f'<{tag} class="rb-math">' if not self.atom else f"<{tag}>")
            return
        self.out.append(f'<{tag} class="{classes}">' if classes else f"<{tag}>")
        self.open.append(tag)

    def _end(self, tag: str) -> None:
        if tag in _BREAKS:
            self._space()
            return
        if tag not in _INLINE:
            return
        if self.math:
            self.atom.append(f"</{tag}>")
            self.math -= 1
            if not self.math:
                self._flush_atom()
            return
        if self.open and self.open[-1] == tag:
            self.open.pop()
            self.out.append(f"</{tag}>")

    def _text(self, text: str) -> None:
        size = len(html.unescape(text)) if "&" in text else len(text)
        if self.math:
            self.atom.append(text)
            self.atom_size += size
            return
        if self.used + size <= self.limit:
            self.out.append(text)
            self.used += size
            return
        plain = html.unescape(text) if "&" in text else text
        self.out.append(html.escape(_cut_words(plain, self.limit - self.used), quote=False))
        self._cut()

    def _space(self) -> None:
        if self.out and not self.out[-1].endswith(" ") and self.used:
            self._text(" ")

    def _flush_atom(self) -> None:
        atom = "".join(self.atom)
        size = self.atom_size
        self.atom, self.atom_size = [], 0
        if self.used + size <= self.limit or not self.used:
            # A display formula reads inline in a crumb.
            self.out.append(atom.replace("\\[", "\\(").replace("\\]", "\\)"))
            self.used += size
        else:
            self._cut()

    def _cut(self) -> None:
        self.out.append("…")
        self.full = True

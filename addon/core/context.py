"""Where a card came from, as HTML: on the card itself and in the desktop reviewer's panel.

- ``card_html`` is the ``Context`` field: a breadcrumb (page › parent › parent, each crumb a
  link to its block) and the page's attributes (Author, Source, Tags…). It travels with the
  note, so AnkiDroid and AnkiMobile show it too.
- ``panel_html`` is what the desktop reviewer adds below the answer: the full parent chain,
  the sibling blocks just before and after, and the children the card does not show.

Everything is computed at sync time; at review time there is only a lookup. All block text
goes through the Renderer (escaped, links only to http(s)); links we build ourselves point
only at the source app (https for Roam, logseq:// or obsidian:// deep links).
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .model import Block, Graph, Page
from .render import Renderer, page_title_text, plain_text

if TYPE_CHECKING:
    from .cards import CardSpec

SHORT_CRUMB = 60
PANEL_VERSION = "1"  # bump when panel_html's output changes
CONTROL_ATTRIBUTES = frozenset({"deck", "anki_tag", "disable_anki_sync", "direction"})
LINK_SCHEMES = ("https://", "http://", "logseq://", "obsidian://")
_SEPARATOR = '<span class="rb-sep"> › </span>'


class ContextBuilder:
    """Builds context HTML for the blocks of one graph; memoizes per page and per block."""

    def __init__(self, graph: Graph, renderer: Renderer, depth: int | None = None) -> None:
        self.graph = graph
        self.renderer = renderer
        self.depth = depth  # parents on the card: None for all, 0 for the page only
        self._attributes: dict[int, str] = {}
        self._crumbs: dict[str, str] = {}
        self._pages: dict[int, str] = {}

    # On the card --------------------------------------------------------------------------

    def card_html(self, block: Block) -> str:
        page = block.page
        parents = block.ancestors()
        crumbs = [self._page_crumb(page)]
        if self.depth is not None and len(parents) > self.depth:
            parents = parents[len(parents) - self.depth :] if self.depth else []
            crumbs.append('<span class="rb-crumb rb-more">…</span>')
        crumbs.extend(self._crumb(p) for p in parents)
        return (f'<div class="rb-context"><div class="rb-crumbs">{_SEPARATOR.join(crumbs)}'
                f"</div>{self.attributes_html(page)}</div>")

    def attributes_html(self, page: Page) -> str:
        """The page's attributes (Author, Source, …) as small labelled items, once per page."""
        cached = self._attributes.get(id(page))
        if cached is None:
            items = "".join(
                f'<span class="rb-attr"><span class="rb-attr-key">{html.escape(key)}</span> '
                f'<span class="rb-attr-value">{self.renderer.inline(value)}</span></span>'
                for norm, (key, value) in page.attributes().items()
                if norm not in CONTROL_ATTRIBUTES and value
            )
            cached = self._attributes[id(page)] = (
                f'<div class="rb-attrs">{items}</div>' if items else ""
            )
        return cached

    def open_link_html(self, block: Block) -> str:
        return _link(self.graph.link(block.uid), f"Open in {self.graph.app_name}", "rb-open")

    # In the desktop panel -----------------------------------------------------------------

    def panel_digest(self, block: Block, salt: str) -> str:
        """Changes whenever anything the panel shows changes; cheap (no rendering)."""
        parts = [salt, self.graph.name, block.uid, self._page_digest(block.page)]
        parts.extend(f"{a.uid}\x1e{a.string}" for a in block.ancestors())
        parts.extend(f"{b.uid}\x1e{b.string}" for b in self._nearby(block))
        parts.extend(c.string for c in block.children if c.attribute is not None)
        return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=10).hexdigest()

    def panel_html(self, block: Block, nearby: bool = True) -> str:
        page = block.page
        chain = [f"<li>{self._page_crumb(page)}</li>"]
        chain.extend(f"<li>{self._block_html(a)}</li>" for a in block.ancestors())
        sections = [f'<ol class="rb-chain">{"".join(chain)}</ol>']
        before, after = self._siblings(block) if nearby else ([], [])
        if before or after:
            rows = [f'<div class="rb-near rb-before">{self._block_html(b)}</div>' for b in before]
            rows.append('<div class="rb-near rb-this">this card</div>')
            rows.extend(f'<div class="rb-near rb-after">{self._block_html(b)}</div>'
                        for b in after)
            sections.append(f'<div class="rb-nearby">{"".join(rows)}</div>')
        hidden = [c for c in block.children if c.attribute is not None]
        if hidden:
            items = "".join(f"<li>{self._block_html(c)}</li>" for c in hidden)
            sections.append(f'<div class="rb-hidden"><div class="rb-label">Not on the card'
                            f'</div><ul>{items}</ul></div>')
        sections.append(self.attributes_html(page))
        sections.append(f'<div class="rb-panel-open">{self.open_link_html(block)}</div>')
        return "".join(sections)

    def _page_digest(self, page: Page) -> str:
        cached = self._pages.get(id(page))
        if cached is None:
            cached = self._pages[id(page)] = f"{page.title}\x1e{sorted(page.attributes().values())}"
        return cached

    # Pieces -------------------------------------------------------------------------------

    def _page_crumb(self, page: Page) -> str:
        title = html.escape(page_title_text(page.title))
        link = self.graph.link(page.uid) if page.uid else ""
        return _link(link, title, "rb-crumb rb-page-title") if link else (
            f'<span class="rb-crumb rb-page-title">{title}</span>'
        )

    def _crumb(self, block: Block) -> str:
        """A parent as a breadcrumb: its text, plain and shortened, linking to the block."""
        cached = self._crumbs.get(block.uid)
        if cached is None:
            text = plain_text(self.renderer.block(block))
            if len(text) > SHORT_CRUMB:
                text = text[:SHORT_CRUMB].rsplit(" ", 1)[0].rstrip(" ,;:–-") + "…"
            cached = self._crumbs[block.uid] = _link(
                self.graph.link(block.uid), html.escape(text, quote=False), "rb-crumb"
            )
        return cached

    def _block_html(self, block: Block) -> str:
        link = self.graph.link(block.uid)
        arrow = _link(link, "↗", "rb-go") if link else ""
        return f'<span class="rb-block">{self.renderer.block(block)}</span> {arrow}'

    def _siblings(self, block: Block) -> tuple[list[Block], list[Block]]:
        siblings = block.parent.children if block.parent else block.page.children
        for index, sibling in enumerate(siblings):
            if sibling is block:
                return siblings[max(0, index - 1) : index], siblings[index + 1 : index + 2]
        return [], []

    def _nearby(self, block: Block) -> list[Block]:
        before, after = self._siblings(block)
        return before + after


def _link(url: str, label_html: str, css_class: str) -> str:
    if not url.startswith(LINK_SCHEMES):
        return f'<span class="{css_class}">{label_html}</span>'
    href = html.escape(url)
    return (f'<a class="{css_class}" href="{href}" data-rb-open="{href}">{label_html}</a>')


def panel_index(
    specs: Iterable[CardSpec], previous: dict[str, dict[str, str]], nearby: bool = True
) -> dict[str, dict[str, str]]:
    """The reviewer panel's HTML for every card, by key: ``{"d": digest, "html": html}``.

    An entry whose digest is unchanged is taken from ``previous`` without rendering, so a
    resync renders only the panels whose blocks, parents or neighbours changed.
    """
    index: dict[str, dict[str, str]] = {}
    salt = f"{PANEL_VERSION}|{nearby}"
    for spec in specs:
        digest = spec.context.panel_digest(spec.block, salt)
        old = previous.get(spec.key)
        if old is not None and old.get("d") == digest:
            index[spec.key] = old
        else:
            index[spec.key] = {"d": digest, "html": spec.context.panel_html(spec.block, nearby)}
    return index

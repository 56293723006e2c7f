"""The desktop reviewer's context panel: the HTML shown below a card's answer in Anki desktop.

``panel_index`` gives, for every card of a graph, the panel's HTML, and only what the card
does not show already: the parents its breadcrumb leaves out or shortens, the sibling blocks
just before and after, and the children the card does not show (its ``deck::`` attribute and
such). The page, its attributes and the link to the block are in the card's own footer. It
is computed when the graph is synced and stored by the add-on (gui/context_panel.py);
reviewing only looks it up.

Guarantees: a panel whose blocks, parents and neighbours did not change is taken from the
previous index without rendering; everything shown goes through the Renderer, and Anki's own
markup and live TeX are defused as on the card.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from .cards import CardSpec, cloze_syntax, marks_for
from .config import CardOptions
from .context import SHORT_CRUMB, CardContext, link
from .model import Block, Graph, Page
from .render import Renderer, defuse_anki, defuse_tex, plain_text

PANEL_VERSION = "3"  # bump when the panel's HTML changes


class ContextPanel:
    """Builds the panel of the cards of one graph (one Renderer, so shared parents render
    once)."""

    def __init__(self, graph: Graph, options: CardOptions) -> None:
        self.graph = graph
        self.renderer = Renderer(graph, marks=marks_for(graph, options),
                                 clozes=cloze_syntax(graph, options))
        self.context = CardContext(graph, self.renderer, options.context_depth)
        self._pages: dict[int, str] = {}

    def digest(self, block: Block, salt: str) -> str:
        """Changes whenever anything the panel shows changes; cheap (no rendering)."""
        parts = [salt, str(self.context.depth), self.graph.name, block.uid,
                 self._page_digest(block.page)]
        parts.extend(f"{a.uid}\x1e{a.string}" for a in block.ancestors())
        parts.extend(f"{b.uid}\x1e{b.string}" for b in self._nearby(block))
        parts.extend(c.string for c in block.children if c.attribute is not None)
        return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=10).hexdigest()

    def html(self, block: Block, nearby: bool = True) -> str:
        """"" when the card's own footer already shows everything."""
        with self.renderer.budget():
            return self._html(block, nearby)

    def _html(self, block: Block, nearby: bool) -> str:
        chain = [f"<li>{self._block_html(a)}</li>" for a in self._beyond_breadcrumb(block)]
        sections = [f'<div class="rb-label">Parents the card leaves out</div>'
                    f'<ol class="rb-chain">{"".join(chain)}</ol>'] if chain else []
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
        return defuse_anki(defuse_tex("".join(sections)))

    def _beyond_breadcrumb(self, block: Block) -> list[Block]:
        """Parents the breadcrumb leaves out (past its depth) or shows shortened."""
        parents = block.ancestors()
        depth = self.context.depth
        shown = len(parents) if depth is None else min(depth, len(parents))
        hidden = parents[: len(parents) - shown]
        return hidden + [p for p in parents[len(hidden):]
                         if len(plain_text(self.renderer.block(p))) > SHORT_CRUMB]

    def _page_digest(self, page: Page) -> str:
        cached = self._pages.get(id(page))
        if cached is None:
            cached = self._pages[id(page)] = f"{page.title}\x1e{sorted(page.attributes().values())}"
        return cached

    def _block_html(self, block: Block) -> str:
        url = self.graph.link(block.uid)
        arrow = link(url, "↗", "rb-go") if url else ""
        return f'<span class="rb-block">{self.renderer.block(block)}</span> {arrow}'

    @staticmethod
    def _siblings(block: Block) -> tuple[list[Block], list[Block]]:
        """The blocks just before and after; attributes are not blocks around (a page's
        show in the card's footer)."""
        siblings = block.parent.children if block.parent else block.page.children
        for index, sibling in enumerate(siblings):
            if sibling is block:
                before = next((s for s in reversed(siblings[:index]) if _is_text(s)), None)
                after = next((s for s in siblings[index + 1 :] if _is_text(s)), None)
                return [before] if before else [], [after] if after else []
        return [], []

    def _nearby(self, block: Block) -> list[Block]:
        before, after = self._siblings(block)
        return before + after


def _is_text(block: Block) -> bool:
    return "::" not in block.string or block.attribute is None


def panel_index(
    graph: Graph, specs: Iterable[CardSpec], previous: dict[str, dict[str, str]],
    options: CardOptions, nearby: bool = True,
) -> dict[str, dict[str, str]]:
    """The panel's HTML for every card of ``graph``, by key: ``{"d": digest, "html": html}``.

    An entry whose digest is unchanged is taken from ``previous`` without rendering, so a
    resync renders only the panels whose blocks, parents or neighbours changed.
    """
    panel = ContextPanel(graph, options)
    index: dict[str, dict[str, str]] = {}
    salt = f"{PANEL_VERSION}|{nearby}|{options.fingerprint()}"
    for spec in specs:
        digest = panel.digest(spec.block, salt)
        old = previous.get(spec.key)
        if old is not None and old.get("d") == digest:
            index[spec.key] = old
        else:
            index[spec.key] = {"d": digest, "html": panel.html(spec.block, nearby)}
    return index

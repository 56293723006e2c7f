"""Whole exports, every block rendered: no Roam markup left raw outside code, nothing live.

The exports are the real ones in ``tests/fixtures`` (copies of /work/shared/fixtures, JSON and
EDN), the demo seed in every format, and ``render_corpus/syntax.json``, which uses every piece
of syntax, nested in one another.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from addon.core.model import Graph
from addon.core.render import Renderer
from addon.core.sources import roam_json
from addon.core.sources.detect import read_source
from tests.test_render import assert_harmless

ROOT = Path(__file__).parent
SEEDS = ROOT.parent / "seeds"
EXPORTS = [*sorted((ROOT / "fixtures").glob("*/*.json")),
           *sorted((ROOT / "fixtures").glob("*/*.edn")),
           SEEDS / "roam-bridge-demo.json", SEEDS / "roam-edn", SEEDS / "roam-markdown",
           SEEDS / "logseq", SEEDS / "obsidian",
           ROOT / "render_corpus" / "syntax.json"]
MARKUP = ("[[", "((", "{{", "^^", "**", "__", "$$")
# Anki's cloze markers are meant to survive rendering.
_CLOZE = re.compile(r"\{\{c\d+::")


# Muted widget text is shown literally ("calc: 2**3"), but never with Roam's brackets.
BRACKETS = ("[[", "((", "{{")


class _VisibleText(HTMLParser):
    """Text a reader sees as prose, apart from code, math (TeX) and URLs shown as link text;
    widget text (literal by design) apart too."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, str]] = []
        self.prose: list[str] = []
        self.literal: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"br", "hr", "img"}:
            return
        classes = (dict(attrs).get("class") or "").split()
        if tag in {"code", "pre", "a"} or "rb-math" in classes:
            kind = "opaque"
        elif "rb-widget" in classes:
            kind = "literal"
        else:
            kind = ""
        self.stack.append((tag, kind))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        kinds = {kind for _, kind in self.stack}
        if "opaque" in kinds:
            return
        (self.literal if "literal" in kinds else self.prose).append(data)


def leaks(out: str) -> list[str]:
    parser = _VisibleText()
    parser.feed(_CLOZE.sub("", out))
    prose, literal = " ".join(parser.prose), " ".join(parser.literal)
    return [token for token in MARKUP
            if token in prose or (token in BRACKETS and token in literal)]


def load(path: Path) -> Graph:
    if path.suffix == ".json":
        return roam_json.read(path, path.stem.replace(":", "-"))
    return read_source(path, "fidelity")


@pytest.mark.parametrize("path", EXPORTS, ids=lambda p: p.name)
def test_every_block_renders_without_raw_markup_or_live_html(path: Path) -> None:
    graph = load(path)
    renderer = Renderer(graph, hidden_tags=["card"])
    assert graph.blocks, f"{path} has blocks"
    for block in graph.blocks.values():
        out = renderer.block(block)
        assert not leaks(out), (block.string, out)
        assert_harmless(out)


def test_the_corpus_uses_every_syntax_item() -> None:
    """The corpus is only a check if it holds what the renderer knows."""
    text = "\n".join(b.string for b in load(ROOT / "render_corpus" / "syntax.json").blocks.values())
    for sample in ("```", "{{[[TODO]]}}", "{{TODO}}", "{{[[DONE]]}}", "{{embed: ((",
                   "{{[[embed]]: ((", "{{embed-path:", "{{embed-children:", "{{embed: [[",
                   "]([[", "](((", "](<((", "{{[[video]]:", "{{video:", "{{youtube:",
                   "{{iframe:", "{{pdf:", ":: ", "> ", "[[>]]", "---", "{{=:", "{{[[table]]}}",
                   "{{[[query]]", "{{roam/render", "{{calc", "\n", "$$", "#[[a/b]]", "#c++",
                   "==", "{{cloze ", "{{c1::", "![", "https://"):
        assert sample in text, sample


def test_the_leak_check_catches_raw_markup() -> None:
    assert leaks("a **b") == ["**"]
    assert leaks("<code>[[x]]</code> and <span class=\"rb-math\">\\(a__b\\)</span>") == []
    assert leaks("{{c1::x}} and {{x}}") == ["{{"]
    assert leaks('<span class="rb-widget">calc: 2**3</span>') == []
    assert leaks('<span class="rb-widget">query: [[a]]</span>') == ["[["]

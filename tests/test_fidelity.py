"""Whole exports, every block rendered: no markup left raw outside code and math, no clozes the
author did not write, nothing live.

The exports are the real ones in ``tests/fixtures`` (Roam JSON and EDN, the Logseq docs graph,
an Obsidian vault), the demo seed in every format, and our own corpora in ``render_corpus/``:
``syntax.json`` uses every piece of Roam syntax, nested in one another;
``roam-everyday.json``, the Logseq graph ``logseq/`` and the
Obsidian vault ``obsidian/`` are written in the style of real graphs of each dialect (written
for this project, not copied from anyone's notes), with the traps real graphs hold: braces
that are no clozes, card tags used as words, fence marks mid-line, unclosed-looking markup.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from addon.core.clozes import ClozeSyntax, number_clozes
from addon.core.config import DEFAULT_CARD_TAGS
from addon.core.model import Graph
from addon.core.render import Renderer
from addon.core.sources import roam_json
from addon.core.sources.detect import read_source
from tests.test_render import assert_harmless

ROOT = Path(__file__).parent
SEEDS = ROOT.parent / "seeds"
CORPUS = ROOT / "render_corpus"
SEED_CLOZES = {"[[nines of reliability]]", "easy examples to hard examples",
               "large failure rate"}
# Every export, with the clozes its author wrote (as the source's cloze syntax reads them).
EXPORTS: dict[Path, set[str]] = {
    **{path: set() for path in sorted((ROOT / "fixtures").glob("*/*.json"))},
    **{path: set() for path in sorted((ROOT / "fixtures").glob("*/*.edn"))},
    **{SEEDS / name: SEED_CLOZES for name in (
        "roam-bridge-demo.json", "roam-edn", "roam-markdown", "logseq", "obsidian")},
    # Real graphs (see their READMEs): the clozes are the ones the Logseq docs write.
    ROOT / "fixtures" / "logseq-docs": {
        "something", "clozes", "red::color", "\\\\", "@white999 on Discord",
        "selection, a single block, a page, or the entire graph"},
    ROOT / "fixtures" / "kepano-obsidian": set(),
    CORPUS / "syntax.json": {"Paris::city", "[[France]]", "hidden answer"},
    CORPUS / "roam-everyday.json": {"1885", "Ebbinghaus", "spaced", "massed"},
    CORPUS / "logseq": {"forgetting curve", "Hermann Ebbinghaus"},
    CORPUS / "obsidian": {"Hermann Ebbinghaus", "1885"},
}
MARKUP = ("[[", "{{", "^^", "**", "__", "$$", "~~")
# Anki's cloze markers are meant to survive rendering.
_CLOZE = re.compile(r"\{\{c\d+::")
# What a block ref looks like; "((a remark))" in parentheses is text, as written.
_REF = re.compile(r"\(\((?:[\w-]{9}|[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12})\)\)")
# Emphasis that did not render: a closed pair of marks around text (Markdown dialects also
# write *italic* and _italic_).
_LEFT_EMPHASIS = re.compile(r"==(?=\S)[^=\n]+(?<=\S)==")
_LEFT_ITALIC = re.compile(
    r"(?<![\w*\\])\*(?=[^\s*])[^*\n]+(?<=[^\s*])\*(?![\w*])"
    r"|(?<![\w\\])_(?=[^\s_])[^_\n]+(?<=[^\s_])_(?!\w)")


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


def leaks(out: str, markdown: bool = False) -> list[str]:
    parser = _VisibleText()
    parser.feed(_CLOZE.sub("", out))
    prose, literal = " ".join(parser.prose), " ".join(parser.literal)
    found = [token for token in MARKUP
             if token in prose or (token in BRACKETS and token in literal)]
    found.extend(m.group(0) for m in _REF.finditer(f"{prose} {literal}"))
    found.extend(m.group(0) for m in _LEFT_EMPHASIS.finditer(prose))
    if markdown:
        found.extend(m.group(0) for m in _LEFT_ITALIC.finditer(prose))
    return found


def load(path: Path) -> Graph:
    if path.suffix == ".json":
        return roam_json.read(path, path.stem.replace(":", "-"))
    return read_source(path, "fidelity")


@pytest.mark.parametrize("path", EXPORTS, ids=lambda p: p.name)
def test_every_block_renders_without_raw_markup_or_live_html(path: Path) -> None:
    graph = load(path)
    renderer = Renderer(graph, hidden_tags=DEFAULT_CARD_TAGS,
                        clozes=ClozeSyntax.of(graph.source))
    assert graph.blocks, f"{path} has blocks"
    for block in graph.blocks.values():
        out = renderer.block(block)
        assert not leaks(out, graph.source != "roam"), (block.string, out)
        assert_harmless(out)


@pytest.mark.parametrize("path", EXPORTS, ids=lambda p: p.name)
def test_no_clozes_but_the_ones_the_author_wrote(path: Path) -> None:
    graph = load(path)
    syntax = ClozeSyntax.of(graph.source)
    found: set[str] = set()
    for block in graph.blocks.values():
        numbered = number_clozes(block.string, syntax)
        if numbered is not None:
            found.update(re.findall(r"\{\{c\d+::(.*?)\}\}", numbered[0]))
    assert found == EXPORTS[path]


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


def test_the_dialect_corpora_hold_the_traps_of_real_graphs() -> None:
    text = {name: "\n".join(b.string for b in load(CORPUS / name).blocks.values())
            for name in ("logseq", "obsidian", "roam-everyday.json")}
    for sample in ("TODO [#A]", "DONE ", "#+BEGIN_QUOTE", "{{cloze ", "{{embed ((", "$",
                   "{:height", "{1, 2, 3}", "``` mid-line", "*", "_easiness", "[[Anki]]",
                   "std::move", "](https://arxiv.org/abs/2507.19457)", "<https://",
                   "{{query ", "((not a block ref))", "***both***"):
        assert sample in text["logseq"], sample
    for sample in ("> [!tip]", "> [!warning]-", "> ```", "~~~python", "{{c1::", "==",
                   "$I(n)", "$$\n", "![chart.png](</Attachments/chart.png>)", "I_{0}",
                   "\\frac{2}{3}", "[[card]]", "[[Leitner system|", "\\*star,"):
        assert sample in text["obsidian"], sample
    for sample in ("{c1:", "{{c1::", "$$\\frac{((", "{1, 2, 3}", "[{:tag", "[[Anki]]",
                   "{{[[query]]: {and:", "((parenthetical remark))", "std::move", "[[>]]",
                   "\n"):
        assert sample in text["roam-everyday.json"], sample


def test_the_leak_check_catches_raw_markup() -> None:
    assert leaks("a **b") == ["**"]
    assert leaks("see ((abcdefghi))") == ["((abcdefghi))"]
    assert leaks("a ((remark in parentheses))") == []
    assert leaks("==mark== and *it*", markdown=True) == ["==mark==", "*it*"]
    assert leaks("2 * 3 * 4 and snake_case_x", markdown=True) == []
    assert leaks("<code>[[x]]</code> and <span class=\"rb-math\">\\(a__b\\)</span>") == []
    assert leaks("{{c1::x}} and {{x}}") == ["{{"]
    assert leaks('<span class="rb-widget">calc: 2**3</span>') == []
    assert leaks('<span class="rb-widget">query: [[a]]</span>') == ["[["]

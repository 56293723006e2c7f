"""Rendering ends in bounded time and memory, whatever the text: work is linear in the length
of a block, and block refs and embeds are rendered once per run and reused.

The hostile texts run in a child process with a memory limit and a deadline that only catch a
hang or a runaway (the speed itself is measured by ``make bench``).
"""

from __future__ import annotations

import json
import re
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from addon.core.cards import collect
from addon.core.config import CardOptions
from addon.core.limits import MAX_BLOCK_CHARS, MAX_DEPTH
from addon.core.note_fields import CHILD_LEVELS, NoteRenderer
from addon.core.render import REF_BUDGET, SHORT_REF, Renderer, plain_text
from addon.core.sources.roam_json import build_graph
from tests.roam import block, page
from tests.test_render import assert_harmless

ROOT = Path(__file__).resolve().parent.parent
MEMORY_LIMIT = 1536 * 2**20
DEADLINE = 240  # seconds: far above the few a megabyte takes; only a hang reaches it

# Unclosed markup of every kind the renderer and the cloze engine look for.
UNCLOSED = ["{{", "[[", "((", "**", "__", "^^", "~~", "==", "`", "```", "$$", "$", "{",
            "[", "![", "](", "{{c1::", "{{cloze ", "{{[[", "#[[", "<", "&", "\\(", "[sound:",
            "{{embed: [[", "{{embed: ((", "~~~\n", "> [!", "#+BEGIN_QUOTE\n", "[[a]](", "<https://"]


def _run_child(code: str) -> dict:
    """Run ``code`` (which prints one JSON line) in a child with the memory limit."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True,
        text=True, timeout=DEADLINE, preexec_fn=limit, check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("dialect", ["roam", "logseq"])
def test_a_megabyte_of_unclosed_markup_renders_in_bounded_time_and_memory(dialect: str) -> None:
    result = _run_child(f"""
        import json
        from addon.core.cards import collect
        from addon.core.config import CardOptions
        from addon.core.limits import MAX_BLOCK_CHARS
        from addon.core.model import Block, Graph, Page
        from addon.core.note_fields import NoteRenderer

        units = {UNCLOSED!r}
        body = " x ".join(u * 40 for u in units) + " "
        # As long as a block may be (limits.MAX_BLOCK_CHARS), the card tag included.
        size = MAX_BLOCK_CHARS - 64
        body = (body * (size // len(body) + 1))[:size]
        graph = Graph({dialect!r}, "g")
        home = graph.add_page(Page("Home", "home"))
        card = graph.add_block(Block("cardblock", "What is this? #card " + body, home))
        home.children.append(card)
        child = graph.add_block(Block("childblock", body, home, card))
        card.children.append(child)
        options = CardOptions(brace_clozes=True, highlight_cloze=True)
        [spec] = collect(graph, options)
        note = NoteRenderer(graph, options).render(spec)
        print(json.dumps({{"kind": spec.kind, "sizes": {{k: len(v) for k, v in
                                                      note.fields.items()}}}}))
    """)
    sizes = result["sizes"]
    front, back = ("Text", "Back Extra") if result["kind"] == "cloze" else ("Front", "Back")
    size = MAX_BLOCK_CHARS - 64
    assert size <= sizes[front] < 16 * size, "all of it shown, escaped, in linear size"
    assert size <= sizes[back] < 16 * size


def test_a_quarter_megabyte_of_each_unclosed_opener_renders_in_bounded_time() -> None:
    result = _run_child(f"""
        import json
        from addon.core.clozes import ClozeSyntax, number_clozes
        from addon.core.model import Graph
        from addon.core.render import Renderer

        syntax = ClozeSyntax.of("obsidian", brace=True, highlight=True)
        renderer = Renderer(Graph("obsidian", "g"), hidden_tags=["card"], clozes=syntax)
        sizes = {{}}
        for unit in {UNCLOSED!r}:
            text = unit * (2**18 // len(unit))
            number_clozes(text, syntax)
            sizes[unit] = len(renderer.inline(text))
        print(json.dumps(sizes))
    """)
    assert set(result) == set(UNCLOSED)
    assert all(0 < size < 16 * 2**18 for size in result.values()), result


def _ref_web(layers: int = 5, width: int = 14) -> list[dict]:
    """A card that refs ``width`` blocks, each of which refs all ``width`` blocks of the next
    layer, ``layers`` deep: ``width ** layers`` paths through ``layers * width`` blocks."""
    blocks = []
    for layer in range(layers):
        for i in range(width):
            refs = " ".join(f"((web{layer + 1}x{j:02d}))" for j in range(width)) if (
                layer + 1 < layers) else ""
            blocks.append(block(f"layer {layer} block {i} {refs}", uid=f"web{layer}x{i:02d}"))
    card_refs = " ".join(f"((web0x{j:02d}))" for j in range(width))
    card = block(f"The web {card_refs} #card", block("also {{embed: ((web0x00))}}"),
                 uid="webcard")
    return [page("Web", card, *blocks)]


def test_a_wide_web_of_block_refs_renders_once_per_block_and_depth() -> None:
    result = _run_child(f"""
        import json
        from addon.core.cards import collect
        from addon.core.config import CardOptions
        from addon.core.note_fields import NoteRenderer
        from addon.core.sources.roam_json import build_graph

        graph = build_graph({_ref_web()!r}, "g")
        renderer = NoteRenderer(graph, CardOptions())
        calls = 0
        text_of = renderer.renderer._text_of

        def counted(block):
            global calls
            calls += 1
            return text_of(block)

        renderer.renderer._text_of = counted
        specs = collect(graph, CardOptions())
        note = renderer.render(next(s for s in specs if s.uid == "webcard"))
        print(json.dumps({{"calls": calls, "front": note.fields["Front"],
                          "back": note.fields["Back"]}}))
    """)
    # 14 blocks in each of 5 layers, each rendered at most once per depth it is seen at:
    # never once per path (14**5 = 537,824 of them).
    assert result["calls"] <= 5 * 14 * 5
    front = result["front"]
    assert len(front) < 1_000_000
    for i in range(14):
        assert f"layer 0 block {i}" in front
    assert "((" not in front and "[…]" not in front[:200]
    assert_harmless(front)
    assert "layer 0 block 0" in result["back"] and "rb-embed" in result["back"]


def test_a_ref_web_gives_every_card_the_same_html() -> None:
    """Reusing a rendered ref must not change what a card shows: a card rendered after many
    others that share its refs shows what it shows alone."""
    pages = _ref_web(layers=3, width=4)
    pages[0]["children"].append(block("Another ((web0x01)) #card", uid="second"))
    graph = build_graph(pages, "g")
    specs = {s.uid: s for s in collect(graph, CardOptions())}
    shared = NoteRenderer(graph, CardOptions())
    shared.render(specs["webcard"])
    alone = NoteRenderer(build_graph(pages, "g"), CardOptions())
    assert shared.render(specs["second"]).fields == alone.render(specs["second"]).fields


def test_refs_past_the_budget_show_in_short_and_nothing_is_lost_silently() -> None:
    long_text = "word " * 2000  # a block whose HTML is longer than a ref may be
    graph = build_graph([page("P", block(long_text, uid="longblock1"),
                              block("short target", uid="shortone1"))], "g")
    renderer = Renderer(graph)
    out = renderer.inline("see ((longblock1)) and ((shortone1))")
    assert '<span class="rb-ref">word word' in out and out.count("word") < 100
    assert '<span class="rb-ref">short target</span>' in out
    many = renderer.inline(" ".join(["((longblock1))"] * 40 + ["((shortone1))"] * 3000))
    assert many.count("short target") == 3000
    assert len(many) < 3000 * 200 + 40 * 800
    assert plain_text(many).startswith("word word")


def test_deep_children_are_shown_to_a_limit_without_recursion() -> None:
    """A card with children nested as deep as a card may go (limits.MAX_DEPTH) renders; its
    back stops at a muted "…" (deeper still, the card is skipped: test_hostile_blocks)."""
    nested = block("the deepest")
    top = MAX_DEPTH - 3
    for level in range(top + 1):
        nested = block(f"level {level}", nested)
    graph = build_graph([page("P", block("Deep? #card", nested, uid="deep"))], "g")
    [spec] = collect(graph, CardOptions())
    back = NoteRenderer(graph, CardOptions()).render(spec).fields["Back"]
    shown = top - CHILD_LEVELS + 1
    assert f"level {top}" in back and f"level {shown}" in back
    assert f"level {shown - 1}" not in back
    assert back.count("<ul") == back.count("</ul>") and 'rb-more">…' in back


def test_a_notes_ref_budget_counts_the_blocks_it_shows_from_the_cache() -> None:
    """Children shown from the cache still spend the note's budget: a note showing many
    children full of refs stays bounded, and the same block shows the same everywhere
    while the budget lasts."""
    target = block("word " * 900, uid="bigtarget")  # about 4,500 characters of HTML
    children = [block(" ".join(["((bigtarget))"] * 10), uid=f"child{i:04d}")
                for i in range(20)]
    pages = [page("P", target, block("Q #card", *children, uid="q"),
                  block("R #card", *children[:1], uid="r"))]
    graph = build_graph(pages, "g")
    specs = {s.uid: s for s in collect(graph, CardOptions())}
    renderer = NoteRenderer(graph, CardOptions())
    alone = renderer.render(specs["r"]).fields["Back"]
    back = renderer.render(specs["q"]).fields["Back"]
    refs = re.findall(r'<span class="rb-ref">([^<]*)</span>', back)
    assert len(refs) == 200  # every ref shown, the first in full and the rest in short
    full = [r for r in refs if len(r) > 1000]
    assert 10 <= len(full) <= REF_BUDGET // 4400 + 1 and refs[: len(full)] == full
    assert len(back) < REF_BUDGET + 200 * (SHORT_REF + 100)
    assert renderer.render(specs["r"]).fields["Back"] == alone

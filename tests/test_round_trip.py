"""The way back is exact: for every card block of the seeds, the real exports and the syntax
corpora, a field that reads back as markup (markup.py) renders to that same field again.

This is what makes writing an Anki edit back safe: write-back proposes only text that renders
to what Anki holds, and this checks, over every real card we have, that the conversion from
the notes' own rendering lands there. Fields with no markup of their own (refs, embeds,
images…) read back as nothing and are one-way; the test also checks that most fronts are not.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from addon.core.cards import REVERSE_TAG, cloze_syntax, collect
from addon.core.config import CardOptions
from addon.core.edit_back import with_tags
from addon.core.editor_html import editor_stable
from addon.core.markup import to_markup
from addon.core.note_fields import NoteRenderer
from addon.core.render import Renderer
from addon.core.sources.detect import read_source
from addon.core.two_way import same
from addon.core.write_back import render_with, target
from tests.test_fidelity import EXPORTS

CARDS = CardOptions(brace_clozes=True)
HIDDEN = (*CARDS.card_tags, REVERSE_TAG)


def _round_trips(path: Path) -> tuple[int, int, list[str]]:
    """(fields read back, fields tried, the ones whose read-back renders differently)."""
    graph = read_source(path)
    dialect = {"roam": "roam", "logseq": "logseq", "obsidian": "obsidian"}[graph.source]
    renderer = NoteRenderer(graph, CARDS)
    mapped = tried = 0
    wrong: list[str] = []
    for spec in collect(graph, CARDS):
        note = renderer.render(spec)
        for name in ("Front", "Text", "Back", "Back Extra"):
            if name not in note.fields:
                continue
            found = target(spec, name)
            if isinstance(found, str):
                continue  # one-way by its shape
            block, inner = found
            shown = inner(editor_stable(note.fields[name]))
            if shown is None or not shown.strip():
                continue
            tried += 1
            markup = to_markup(shown, dialect)  # type: ignore[arg-type]
            if markup is None:
                continue  # one-way: a ref, an embed, an image…
            mapped += 1
            text = with_tags(markup, block.string, HIDDEN) if block is spec.block else markup
            again = render_with(graph, CARDS, "", spec, note.clozes, {block: text})
            back = inner(editor_stable(again.fields[name])) if again else None
            if back is None or not same(back, shown):
                wrong.append(f"{spec.key} {name}: {block.string!r} -> {text!r}")
    return mapped, tried, wrong


def _blocks_round_trip(path: Path) -> tuple[int, int, list[str]]:
    """The same for every block of the export, card or not, as a card would show it."""
    graph = read_source(path)
    dialect = {"roam": "roam", "logseq": "logseq", "obsidian": "obsidian"}[graph.source]
    syntax = cloze_syntax(graph, CARDS)
    mapped = tried = 0
    wrong: list[str] = []
    for block in list(graph.blocks.values()):
        shown = editor_stable(Renderer(graph, clozes=syntax).block(block))
        if not shown.strip():
            continue
        tried += 1
        markup = to_markup(shown, dialect)  # type: ignore[arg-type]
        if markup is None:
            continue
        mapped += 1
        before, block.string = block.string, markup
        try:
            back = editor_stable(Renderer(graph, clozes=syntax).block(block))
        finally:
            block.string = before
        if not same(back, shown):
            wrong.append(f"{block.uid}: {before!r} -> {markup!r}")
    return mapped, tried, wrong


@pytest.mark.parametrize("path", sorted(EXPORTS), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_card_field_that_reads_back_renders_the_same(path: Path) -> None:
    _, _, wrong = _round_trips(path)
    assert not wrong, "\n".join(wrong[:20])


@pytest.mark.parametrize("path", sorted(EXPORTS), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_block_that_reads_back_renders_the_same(path: Path) -> None:
    _, tried, wrong = _blocks_round_trip(path)
    assert not wrong, "\n".join(wrong[:20])
    assert tried > 0


def test_most_fields_of_real_notes_read_back() -> None:
    """A converter that gave up on everything would pass the tests above."""
    mapped = tried = 0
    for path in EXPORTS:
        m, t, _ = _round_trips(path)
        mapped, tried = mapped + m, tried + t
    assert tried >= 20 and mapped >= 0.6 * tried, f"only {mapped} of {tried} fields read back"

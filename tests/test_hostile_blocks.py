"""One bad block is one warning: a card block past a limit (a deck Anki cannot create, nesting
past the limit, text past the limit) is skipped with a warning naming it, its note from an
earlier sync is left exactly as it was, and the rest of the graph syncs."""

from __future__ import annotations

from typing import Any

import pytest
from anki.collection import Collection

from addon.core import limits, sync
from addon.core.config import SyncOptions
from addon.core.model import Block, Graph, Page
from addon.core.sources.roam_json import build_graph
from tests.roam import block, page
from tests.test_sync import review, snapshot


def chain(depth: int, top: str = "level") -> dict[str, Any]:
    """A block with ``depth - 1`` levels of single children below it (built without recursion,
    and never deep-copied: copy.deepcopy would recurse)."""
    node: dict[str, Any] = {"string": f"{top} {depth - 1}", "uid": f"{top}-{depth - 1}"}
    for level in range(depth - 2, -1, -1):
        node = {"string": f"{top} {level}", "uid": f"{top}-{level}", "children": [node]}
    return node


def run(col: Collection, pages: list[dict[str, Any]]) -> sync.Report:
    return sync.apply(sync.plan(build_graph(pages, "test"), col, SyncOptions()), col)


def nid_of(col: Collection, uid: str) -> int:
    nids = col.find_notes(f'"SourceID:roam:test:{uid}"')
    assert len(nids) == 1
    return nids[0]


GOOD = block("Still synced #card", block("its answer"), uid="good")


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (block("Deep deck #card", block("deck:: " + "::".join(f"d{i}" for i in range(300))),
               uid="bad"), "has 300 levels; Anki creates at most 11"),
        (block("Deep answer #card", chain(600), uid="bad"),
         f"nested more than {limits.MAX_DEPTH} levels deep"),
        (block("Long " + "x" * (limits.MAX_BLOCK_CHARS + 1) + " #card", uid="bad"),
         f"characters (the limit is {limits.MAX_BLOCK_CHARS:,})"),
        (block("Long answer #card", block("y" * (limits.MAX_BLOCK_CHARS + 5)), uid="bad"),
         f"characters (the limit is {limits.MAX_BLOCK_CHARS:,})"),
        (block("Wide answer #card",
               *(block("z" * 100_000) for _ in range(limits.MAX_NOTE_CHARS // 100_000 + 1)),
               uid="bad"),
         f"more than {limits.MAX_NOTE_CHARS:,} characters together"),
    ],
    ids=["deck-300-levels", "children-600-deep", "block-too-long", "child-too-long",
         "children-too-long-together"],
)
def test_a_card_block_past_a_limit_is_one_warning_and_the_rest_syncs(
    col: Collection, bad: dict[str, Any], reason: str
) -> None:
    report = run(col, [page("Odd", bad, uid="odd"), page("Fine", GOOD)])
    assert report.created == 1
    assert col.get_note(nid_of(col, "good"))["Front"] == "Still synced"
    assert not col.find_notes('"SourceID:roam:test:bad"')
    assert len(report.warnings) == 1
    warning = report.warnings[0]
    assert warning.startswith("roam:test:bad (page 'Odd', ") and reason in warning
    assert "skipped" in warning
    again = run(col, [page("Odd", bad, uid="odd"), page("Fine", GOOD)])
    assert (again.created, again.updated, again.unchanged, again.orphaned) == (0, 0, 1, 0)


def test_a_card_nested_past_the_limit_is_skipped_and_its_parents_cards_too(
    col: Collection
) -> None:
    # 1,200 levels, each a card, as a Markdown outline of 1,200 indents gives: every card
    # shows (or sits under) more than MAX_DEPTH levels, so none fits; the top card of another
    # page does.
    node: dict[str, Any] = {"string": "level 1199 #card", "uid": "l1199"}
    for level in range(1198, -1, -1):
        node = {"string": f"level {level} #card", "uid": f"l{level}", "children": [node]}
    report = run(col, [page("Deep", node), page("Fine", GOOD)])
    assert report.created == 1 and nid_of(col, "good")
    assert len(report.warnings) == 1200
    assert all("levels deep" in w for w in report.warnings)
    shallow = [w for w in report.warnings if w.startswith("roam:test:l0 ")]
    assert len(shallow) == 1 and "the blocks below it are nested more than" in shallow[0]
    deep = [w for w in report.warnings if w.startswith("roam:test:l1199 ")]
    assert len(deep) == 1 and "it is nested 1200 levels deep" in deep[0]


def test_a_note_whose_block_goes_past_a_limit_keeps_its_cards_and_history(
    col: Collection
) -> None:
    fine = [page("P", block("Keep me #card", block("deck:: Languages::French"), uid="kept"),
                 GOOD)]
    assert run(col, fine).created == 2
    nid = nid_of(col, "kept")
    review(col, nid)
    before = snapshot(col, nid)
    note_before = col.get_note(nid)
    assert before["revlog"]
    too_deep = [page("P", block("Keep me, edited #card",
                                block("deck:: " + "::".join(f"d{i}" for i in range(20))),
                                uid="kept"), GOOD)]
    report = run(col, too_deep)
    assert (report.created, report.updated, report.unchanged, report.orphaned) == (0, 0, 2, 0)
    assert len(report.warnings) == 1 and report.warnings[0].startswith("roam:test:kept ")
    after = col.get_note(nid)
    assert after.fields == note_before.fields and after.tags == note_before.tags
    assert snapshot(col, nid) == before
    assert col.decks.name(col.get_card(col.card_ids_of_note(nid)[0]).did) == "Languages::French"
    # Back within the limits, the block updates the same note, history and all.
    report = run(col, [page("P", block("Keep me, edited #card", uid="kept"), GOOD)])
    assert report.updated == 1 and not report.warnings
    assert nid_of(col, "kept") == nid
    assert snapshot(col, nid)["revlog"] == before["revlog"]
    assert col.get_note(nid)["Front"] == "Keep me, edited"


def test_eleven_deck_levels_are_created_as_anki_allows(col: Collection) -> None:
    deck = "::".join(f"d{i}" for i in range(limits.MAX_DECK_LEVELS))
    report = run(col, [page("P", block("Deep but fine #card", block(f"deck:: {deck}"),
                                       uid="ok"))])
    assert report.created == 1 and not report.warnings
    card = col.get_card(col.card_ids_of_note(nid_of(col, "ok"))[0])
    assert col.decks.name(card.did) == deck


def test_descendants_walk_any_depth_in_document_order() -> None:
    graph = Graph(source="roam", name="t")
    pg = graph.add_page(Page(title="P"))
    top = parent = Block("top", "top", pg)
    for level in range(5000):  # far past Python's recursion limit
        child = Block(f"b{level}", "x", pg, parent)
        parent.children.append(child)
        parent = child
    sibling = Block("sibling", "y", pg, top)
    top.children.append(sibling)
    uids = [b.uid for b in top.descendants()]
    assert uids == [f"b{level}" for level in range(5000)] + ["sibling"]


def test_uids_anki_cannot_store_or_repeated_still_make_one_stable_note_each(
    col: Collection,
) -> None:
    # Anki drops control characters from a field, so a key holding one would never match
    # the key it stored; and a copied block repeating a uid must not hide the first.
    pages = [page("Odd", block("Control #card", uid="a\nb\x00c"), block("First #card", uid="dup"),
                  block("Copy #card", uid="dup"), GOOD)]
    first = run(col, pages)
    assert first.created == 4 and not first.warnings
    nids = sorted(col.find_notes('"SourceID:roam:test:*"'))
    keys = {col.get_note(n)["SourceID"] for n in nids}
    assert "roam:test:dup" in keys and all(k.isprintable() for k in keys)
    again = run(col, pages)
    assert (again.created, again.updated, again.unchanged, again.orphaned) == (0, 0, 4, 0)
    assert sorted(col.find_notes('"SourceID:roam:test:*"')) == nids
    assert col.get_note(nid_of(col, "dup"))["Front"] == "First"

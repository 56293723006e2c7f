"""What the bridge owns is unmistakable, and the removal guard counts from its mark.

Against real collections: keys read back as written, state tags never come from the notes,
removals in slices are caught, and a sync of any size stays one undo step.
"""

from __future__ import annotations

import pytest
from anki.collection import Collection
from anki.consts import QUEUE_TYPE_SUSPENDED

from addon.core import guard, identity, sync, writing
from addon.core.sync import ORPHAN_TAG, MassOrphanRefused
from tests.conftest import Syncer
from tests.roam import block, page


def cards(n: int, prefix: str = "c") -> list[dict]:
    return [page("Many", *(block(f"Card {i} #card", block(f"a{i}"), uid=f"{prefix}{i:05d}")
                           for i in range(n)), uid="many")]


def test_block_ids_that_anki_stores_differently_never_duplicate_their_note(
    syncer: Syncer,
) -> None:
    pages = [page("P", block("Control #card", uid="ab\x01cd"), block("Spaced #card",
                  uid="spaced "), block("Café #card", uid="cafe\u0301"), uid="p")]
    assert syncer(pages).created == 3
    again = syncer(pages)
    assert (again.created, again.orphaned, again.unchanged) == (0, 0, 3)
    keys = {syncer.col.get_note(n)["SourceID"] for n in syncer.col.find_notes("")}
    assert {"roam:test:café", "roam:test:spaced"} < keys and len(keys) == 3
    assert all(key.isprintable() for key in keys)


def test_two_block_ids_that_store_alike_are_two_notes_that_stay_put(syncer: Syncer) -> None:
    pages = [page("P", block("One #card", uid="same\x02"), block("Two #card", uid="same"),
                  uid="p")]
    first = syncer(pages)
    assert first.created == 2
    again = syncer(pages)
    assert (again.created, again.orphaned, again.unchanged) == (0, 0, 2)
    assert sorted(again.updated_ids + first.created_ids) == sorted(first.created_ids)


@pytest.mark.parametrize("attribute", ["Tags:: #orphaned", "Anki Tag:: roam::orphaned",
                                       "Tags:: #[[Duplicate]]"])
def test_the_notes_cannot_give_a_note_the_bridges_own_state_tags(
    syncer: Syncer, attribute: str
) -> None:
    pages = [page("P", block(attribute), block("Q #card", uid="q"),
                  block("R #card", uid="r"), block("S #card", uid="s"), uid="p")]
    syncer(pages)
    tags = syncer.note("q").tags
    assert not {t.lower() for t in tags} & {"roam::orphaned", "roam::duplicate"}
    assert any(t.lower().endswith("_") for t in tags)
    assert syncer(pages).updated == 0  # a no-op stays a no-op
    pages[0]["children"] = pages[0]["children"][:3]  # block s is gone
    report = syncer(pages)
    assert report.orphaned == 1
    note = syncer.note("s")
    assert ORPHAN_TAG in note.tags
    assert all(c.queue == QUEUE_TYPE_SUSPENDED for c in note.cards())


def test_removals_in_slices_are_caught_by_the_mark(syncer: Syncer) -> None:
    syncer(cards(100))
    first = syncer.plan(cards(51))
    assert not first.refused and len(first.orphans) == 49
    sync.apply(first, syncer.col)
    second = syncer.plan(cards(26))
    assert second.refused and len(second.orphans) == 25
    with pytest.raises(MassOrphanRefused):
        sync.apply(second, syncer.col)
    assert len(syncer.col.find_notes(f'"tag:{ORPHAN_TAG}"')) == 49  # nothing written
    forced = syncer(cards(26), force=True)
    assert forced.orphaned == 25
    assert syncer.col.get_config(guard.CONFIG_KEY)["roam:test:"] == 26
    assert not syncer.plan(cards(14)).refused  # confirmed: 12 of 26 is less than half


def test_an_export_that_leaves_no_live_notes_is_always_refused(syncer: Syncer) -> None:
    syncer(cards(4))
    sync.apply(syncer.plan(cards(2)), syncer.col)  # half: allowed
    empty = [page("Many", block("no cards here"), uid="many")]
    assert syncer.plan(empty).refused
    assert syncer(empty, force=True).orphaned == 2


def test_a_no_op_on_a_collection_without_a_mark_writes_nothing(syncer: Syncer) -> None:
    syncer(cards(3))
    col: Collection = syncer.col
    col.remove_config(guard.CONFIG_KEY)
    before = col.mod
    assert not syncer.plan(cards(3)).has_changes
    syncer(cards(3))
    assert col.mod == before


def test_a_sync_of_more_writes_than_anki_keeps_undo_steps_is_one_undo_step(
    syncer: Syncer, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncer(cards(80))
    monkeypatch.setattr(writing, "WRITE_BATCH", 1)
    monkeypatch.setattr(writing.batches, "__defaults__", (1,))
    edited = cards(80)
    for raw in edited[0]["children"]:
        raw["string"] = raw["string"].replace("Card", "Edited card")
    report = syncer(edited)  # 80 update_notes calls, Anki keeps 30 undo steps
    assert report.updated == 80
    col = syncer.col
    assert col.undo_status().undo == sync.UNDO_NAME
    col.undo()
    assert syncer.note("c00079")["Front"].startswith("Card 79")


def test_new_notes_and_cards_get_ids_derived_from_their_keys(syncer: Syncer) -> None:
    syncer([page("P", block("Flip #card #reversed", block("back"), uid="flip"), uid="p")])
    note = syncer.note("flip")
    key = "roam:test:flip"
    assert note.id == identity.note_id(key)
    assert sorted(c.id for c in note.cards()) == sorted(
        identity.card_id(key, ord_) for ord_ in (0, 1))
    assert note.note_type()["id"] == identity.notetype_id("basic")
    assert syncer.col.decks.id("Roam", create=False) == identity.deck_id("Roam")

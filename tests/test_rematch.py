"""Blocks without ids: an edit or a move updates the note in place, never duplicates it."""

from __future__ import annotations

import copy

import pytest
from anki.collection import Collection

from addon.core.rematch import Item, ambiguous_keys, comparable_text, pair_by_similarity
from addon.core.sync import ORPHAN_TAG
from tests.conftest import Syncer
from tests.test_stable_clozes import BraceSyncer
from tests.test_sync import review, snapshot


@pytest.fixture
def syncer(col: Collection) -> Syncer:
    return BraceSyncer(col)  # the notes below write a cloze as {x}


def raw(text: str, *children: dict) -> dict:
    """A block as a Markdown export gives it: no uid."""
    return {"string": text, "children": list(children)} if children else {"string": text}


PAGES = [
    {"title": "Biology", "children": [
        raw("What is a cell? #card", raw("The smallest unit of life.")),
        raw("What is DNA? #card", raw("The molecule of heredity.")),
        raw("Ribosomes make proteins {from RNA} #card"),
    ]},
    {"title": "Chemistry", "children": [
        raw("What is a mole? #card", raw("6.022e23 particles.")),
        raw("Notes"),
    ]},
]


def managed(col: Collection) -> dict[str, int]:
    """SourceID -> note id for every note of the graph."""
    return {col.get_note(nid)["SourceID"]: nid for nid in col.find_notes('"SourceID:roam:*"')}


def by_front(col: Collection) -> dict[str, int]:
    out = {}
    for nid in col.find_notes('"SourceID:roam:*"'):
        note = col.get_note(nid)
        out[note.fields[0]] = nid
    return out


def test_identical_text_pairs_anywhere_and_similar_text_on_the_same_page() -> None:
    old = [Item("A", "what is a cell"), Item("A", "what is dna"), Item("B", "gone for good")]
    new = [Item("C", "what is a cell"), Item("A", "what is dna really"), Item("A", "brand new")]
    assert sorted(pair_by_similarity(old, new)) == [(0, 0), (1, 1)]


def test_pairs_go_to_the_best_match_first() -> None:
    old = [Item("A", "the capital of france is paris")]
    new = [Item("A", "the capital of spain is madrid"), Item("A", "the capital of france: paris")]
    assert pair_by_similarity(old, new) == [(0, 1)]


def test_across_pages_only_a_close_match_counts() -> None:
    old = [Item("A", "what is a cell")]
    assert pair_by_similarity(old, [Item("B", "what is a cello player")]) == []


def test_a_page_unknown_to_old_notes_still_pairs_identical_text() -> None:
    assert pair_by_similarity([Item("", "x y z")], [Item("P", "x y z")]) == [(0, 0)]


def test_edit_updates_the_note_in_place_with_its_history(syncer: Syncer) -> None:
    assert syncer(PAGES).created == 4
    before = by_front(syncer.col)
    nid = before["What is a cell?"]
    review(syncer.col, nid)
    history = snapshot(syncer.col, nid)
    guid = syncer.col.get_note(nid).guid

    pages = copy.deepcopy(PAGES)
    pages[0]["children"][0]["string"] = "What is a living cell? #card"
    report = syncer(pages)

    assert (report.created, report.updated, report.orphaned) == (0, 1, 0)
    after = by_front(syncer.col)
    assert after["What is a living cell?"] == nid
    assert snapshot(syncer.col, nid) == history
    note = syncer.col.get_note(nid)
    assert note.guid == guid  # identity across devices stays
    assert note["SourceID"] in managed(syncer.col)
    assert syncer(pages).unchanged == 4  # and the new key is stable


def test_move_to_another_page_keeps_the_note_and_counts_as_moved(syncer: Syncer) -> None:
    syncer(PAGES)
    nid = by_front(syncer.col)["What is DNA?"]
    pages = copy.deepcopy(PAGES)
    dna = pages[0]["children"].pop(1)
    pages[1]["children"].append(dna)
    report = syncer(pages)
    assert (report.created, report.updated, report.moved, report.orphaned) == (0, 1, 1, 0)
    assert by_front(syncer.col)["What is DNA?"] == nid
    assert "Chemistry" in syncer.col.get_note(nid)["Context"]


def test_a_cloze_edit_keeps_the_note_and_its_cloze_numbers(syncer: Syncer) -> None:
    syncer(PAGES)
    nid = by_front(syncer.col)["Ribosomes make proteins {{c1::from RNA}}"]
    pages = copy.deepcopy(PAGES)
    pages[0]["children"][2]["string"] = "{Ribosomes} make proteins {from RNA} #card"
    report = syncer(pages)
    assert (report.created, report.updated) == (0, 1)
    assert syncer.col.get_note(nid)["Text"] == "{{c2::Ribosomes}} make proteins {{c1::from RNA}}"


def test_truly_new_and_truly_gone_blocks(syncer: Syncer) -> None:
    syncer(PAGES)
    ids = by_front(syncer.col)
    pages = copy.deepcopy(PAGES)
    pages[1]["children"][0] = raw("Who wrote the periodic table? #card", raw("Mendeleev"))
    report = syncer(pages)
    assert (report.created, report.updated, report.orphaned) == (1, 0, 1)
    assert ORPHAN_TAG in syncer.col.get_note(ids["What is a mole?"]).tags


def test_two_edits_on_one_page_pair_each_with_its_own_block(syncer: Syncer) -> None:
    syncer(PAGES)
    ids = by_front(syncer.col)
    pages = copy.deepcopy(PAGES)
    pages[0]["children"][0]["string"] = "What is a cell, exactly? #card"
    pages[0]["children"][1]["string"] = "What is DNA, in short? #card"
    report = syncer(pages)
    assert (report.created, report.updated, report.orphaned) == (0, 2, 0)
    after = by_front(syncer.col)
    assert after["What is a cell, exactly?"] == ids["What is a cell?"]
    assert after["What is DNA, in short?"] == ids["What is DNA?"]


def test_a_block_that_gains_a_real_id_keeps_its_note(syncer: Syncer) -> None:
    """Logseq's write-back gives a block an id:: — the note moves to the stable key."""
    syncer(PAGES)
    nid = by_front(syncer.col)["What is a mole?"]
    pages = copy.deepcopy(PAGES)
    pages[1]["children"][0]["uid"] = "64f0c0de-0000-4000-8000-000000000001"
    report = syncer(pages)
    assert (report.created, report.updated, report.orphaned) == (0, 1, 0)
    assert syncer.note("64f0c0de-0000-4000-8000-000000000001").id == nid


def test_notes_with_real_ids_are_never_rematched(syncer: Syncer) -> None:
    pages = [{"title": "P", "children": [{"string": "Question one #card", "uid": "abcdefghi"}]}]
    syncer(pages)
    nid = syncer.note("abcdefghi").id
    moved = [{"title": "P", "children": [{"string": "Question one #card", "uid": "zyxwvutsr"}]}]
    report = syncer(moved, force=True)
    assert (report.created, report.orphaned) == (1, 1)
    assert ORPHAN_TAG in syncer.col.get_note(nid).tags


def test_a_new_block_with_the_text_a_rematched_note_once_had_gets_its_own_note(
    syncer: Syncer,
) -> None:
    """The rematched note keeps the GUID of its first key; a new block that later takes that
    key (same page, same text) is a different block and must still get a note."""
    pages = [{"title": "P", "children": [raw("What is a cell? #card", raw("Unit of life."))]}]
    syncer(pages)
    pages[0]["children"][0]["string"] = "What is a cell, really? #card"
    assert syncer(pages).updated == 1
    pages[0]["children"].append(raw("What is a cell? #card", raw("A room in a prison.")))

    report = syncer(pages)

    assert (report.created, report.unchanged, report.warnings) == (1, 1, [])
    notes = by_front(syncer.col)
    assert set(notes) == {"What is a cell, really?", "What is a cell?"}
    guids = {syncer.col.get_note(nid).guid for nid in notes.values()}
    assert len(guids) == 2
    # And the next run is a no-op that finds both.
    assert syncer(pages).unchanged == 2


def _copies(*children: list[str]) -> list[dict]:
    """One page holding a copy of the same card block per list of children."""
    return [{"title": "Copies", "children": [
        raw("Example: #card", *(raw(text) for text in kids)) for kids in children]}]


def notes_by_back(col: Collection) -> dict[str, int]:
    return {col.get_note(nid)["Back"]: nid for nid in col.find_notes('"SourceID:roam:*"')}


def test_deleting_one_of_two_copies_of_a_text_keeps_each_note_with_its_block(
    syncer: Syncer,
) -> None:
    syncer(_copies(["first answer"], ["second answer"]))
    ids = notes_by_back(syncer.col)
    first, second = (next(n for b, n in ids.items() if word in b) for word in ("first",
                                                                           "second"))
    review(syncer.col, second)
    history = snapshot(syncer.col, second)

    report = syncer(_copies(["second answer"]), force=True)

    assert (report.created, report.updated, report.orphaned) == (0, 1, 1)
    note = syncer.col.get_note(second)
    assert "second answer" in note["Back"] and ORPHAN_TAG not in note.tags
    assert snapshot(syncer.col, second) == history
    assert ORPHAN_TAG in syncer.col.get_note(first).tags
    assert "first answer" in syncer.col.get_note(first)["Back"]
    assert syncer(_copies(["second answer"])).unchanged == 2  # settled

    # The first copy comes back: its note returns to it, and each keeps its own history.
    report = syncer(_copies(["first answer"], ["second answer"]))
    assert (report.created, report.orphaned) == (0, 0)
    assert notes_by_back(syncer.col) == ids
    assert ORPHAN_TAG not in syncer.col.get_note(first).tags
    assert snapshot(syncer.col, second) == history
    keys = [syncer.col.get_note(n)["SourceID"] for n in (first, second)]
    assert len(set(keys)) == 2 and all("~" not in k for k in keys)


def test_adding_or_removing_the_last_copy_leaves_the_others_alone(syncer: Syncer) -> None:
    syncer(_copies(["a"], ["b"]))
    before = notes_by_back(syncer.col)
    report = syncer(_copies(["a"], ["b"], ["c"]))
    assert (report.created, report.orphaned) == (1, 0)
    after = notes_by_back(syncer.col)
    assert {b: n for b, n in after.items() if b in before} == before
    report = syncer(_copies(["a"], ["b"]), force=True)
    assert report.orphaned == 1 and notes_by_back(syncer.col).items() >= before.items()


def test_copies_that_did_not_change_are_a_no_op(syncer: Syncer) -> None:
    syncer(_copies(["a"], ["b"]))
    modified = syncer.col.mod
    report = syncer(_copies(["a"], ["b"]))
    assert (report.unchanged, report.updated) == (2, 0)
    assert syncer.col.mod == modified


def test_an_image_only_block_is_not_rematched_to_another_image(
    syncer: Syncer, tmp_path
) -> None:
    def pages(where: str, url: str) -> list[dict]:
        return [{"title": "A", "children": [raw("kept #card")]},
                {"title": where, "children": [raw(f"![]({url}) #card")]}]

    syncer(pages("A", "https://img.example/cat.png"), download_images=False)
    cat = by_front(syncer.col)['<img alt="" src="https://img.example/cat.png">']
    report = syncer(pages("B", "https://img.example/dog.png"), download_images=False,
                    force=True)
    assert (report.created, report.orphaned) == (1, 1)
    assert ORPHAN_TAG in syncer.col.get_note(cat).tags
    # The same image moved to another page is the same block.
    report = syncer(pages("C", "https://img.example/dog.png"), download_images=False)
    assert (report.created, report.updated, report.moved, report.orphaned) == (0, 1, 1, 0)


def test_ambiguous_keys_are_the_copies_whose_set_changed() -> None:
    a, a2, a3 = "roam:g:md-00aa", "roam:g:md-00aa-2", "roam:g:md-00aa-3"
    b, b2 = "roam:g:md-00bb", "roam:g:md-00bb-2"
    real = "roam:g:abcdefghi"
    assert ambiguous_keys([a, a2, b, b2, real], [a, b, b2, real]) == {a, a2}
    assert ambiguous_keys([a, a2], [a, a2, a3]) == {a, a2, a3}
    assert ambiguous_keys([a], ["roam:g:md-00cc"]) == set()  # no copies: plain rematching
    assert comparable_text({"Front": '<img alt="" src="rb-1.png"> x', "Back": ""}) == (
        "[image rb-1.png]  x")

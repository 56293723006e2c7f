"""Sync against a real Anki collection: identity, in-place updates, history, tags, orphans."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from anki.collection import Collection
from anki.consts import QUEUE_TYPE_SUSPENDED

from addon.core import sync
from addon.core.sync import ORPHAN_TAG, MassOrphanRefused, guid_for
from tests.conftest import Syncer
from tests.roam import block, find_block, page

# A graph with five cards and some context, in the shape real notes have.
BASE = [
    page(
        "Neural nets",
        block("Author:: [[Ada]]"),
        block("Anki Tag:: nn_notes"),
        block("Tags:: #[[Machine Learning]]"),
        block(
            "Basics",
            block("What is a neuron? #card", block("A weighted sum and a nonlinearity."),
                  uid="neuron"),
            block("{{cloze Backprop}} computes gradients #card", uid="backprop"),
            uid="basics",
        ),
        block("Flip me #card #reversed", block("Flipped"), uid="flip"),
        block("Formula #card", block("$$y = wx + b$$"), uid="formula"),
        block("Other", block("What is a loss? #card", block("What we minimise."), uid="loss"),
              uid="other"),
        uid="nn",
    ),
    page("Elsewhere", block("Landing spot", uid="landing"), uid="else"),
]


def edited(pages: list[dict], uid: str, text: str) -> list[dict]:
    result = copy.deepcopy(pages)
    find_block(result, uid)["string"] = text
    return result


def snapshot(col: Collection, nid: int) -> dict:
    """What must survive an update: ids, scheduling and review history."""
    rows = col.db.all(
        f"select id, ord, reps, due, ivl, queue, type from cards where nid = {nid} order by ord"
    )
    revlog = col.db.all(
        "select id, cid, ease from revlog where cid in "
        f"(select id from cards where nid = {nid}) order by id"
    )
    return {"cards": rows, "revlog": revlog}


def reviewed(synced: Syncer, uid: str) -> tuple[int, dict]:
    """The note of block ``uid``, after answering its cards once, and its snapshot."""
    nid = synced.note(uid).id
    review(synced.col, nid)
    return nid, snapshot(synced.col, nid)


def review(col: Collection, nid: int) -> None:
    for cid in col.card_ids_of_note(nid):
        card = col.get_card(cid)
        card.start_timer()
        col.sched.answerCard(card, 3)


@pytest.fixture
def synced(syncer: Syncer) -> Syncer:
    report = syncer(BASE)
    assert report.created == 5
    return syncer


def test_first_sync_creates_one_note_per_card_block(synced: Syncer) -> None:
    col = synced.col
    neuron = synced.note("neuron")
    assert neuron.note_type()["name"] == "Roam Bridge Basic"
    assert neuron["Front"] == "What is a neuron?"
    assert "A weighted sum" in neuron["Back"]
    assert "Neural nets" in neuron["Context"] and "Basics" in neuron["Context"]
    assert "Ada" in neuron["Context"]
    assert "https://roamresearch.com/#/app/test/page/neuron" in neuron["Source"]
    assert neuron["SourceID"] == "roam:test:neuron"
    assert neuron.guid == guid_for("roam:test:neuron")
    assert sorted(neuron.tags) == ["nn_notes", "roam::Machine_Learning"]
    assert col.decks.name(neuron.cards()[0].did) == "Roam"
    backprop = synced.note("backprop")
    assert backprop.note_type()["name"] == "Roam Bridge Cloze"
    assert backprop["Text"] == "{{c1::Backprop}} computes gradients"
    assert len(synced.note("flip").cards()) == 2
    assert len(neuron.cards()) == 1
    assert col.note_count() == 5


def test_no_op_resync_writes_nothing(synced: Syncer) -> None:
    col = synced.col
    mod_before = col.mod
    undo_before = col.undo_status().undo
    report = synced(BASE)
    assert (report.created, report.updated, report.unchanged, report.orphaned) == (0, 0, 5, 0)
    assert col.mod == mod_before
    assert col.undo_status().undo == undo_before


def test_edit_front_updates_in_place_and_keeps_review_history(synced: Syncer) -> None:
    col = synced.col
    nid, before = reviewed(synced, "neuron")
    assert before["revlog"], "the review must have left a revlog row"
    report = synced(edited(BASE, "neuron", "What is an artificial neuron? #card"))
    assert (report.created, report.updated, report.unchanged) == (0, 1, 4)
    assert report.moved == 0
    note = synced.note("neuron")
    assert note.id == nid
    assert note["Front"] == "What is an artificial neuron?"
    assert snapshot(col, nid) == before


def test_edit_back_updates_only_that_note(synced: Syncer) -> None:
    answer_uid = find_block(BASE, "neuron")["children"][0]["uid"]
    report = synced(edited(BASE, answer_uid, "A weighted sum, then an activation."))
    assert (report.updated, report.unchanged) == (1, 4)
    assert "then an activation" in synced.note("neuron")["Back"]


def test_move_to_another_page_updates_context_and_counts_as_moved(synced: Syncer) -> None:
    col = synced.col
    nid, before = reviewed(synced, "loss")
    moved = copy.deepcopy(BASE)
    other = find_block(moved, "other")
    loss = other["children"].pop(0)
    find_block(moved, "landing").setdefault("children", []).append(loss)
    report = synced(moved)
    assert (report.updated, report.moved, report.created, report.orphaned) == (1, 1, 0, 0)
    note = synced.note("loss")
    assert note.id == nid
    assert "Elsewhere" in note["Context"] and "Landing spot" in note["Context"]
    assert "Neural nets" not in note["Context"]
    assert snapshot(col, nid) == before
    assert set(note.tags) == set(), "the new page has no tags, so the old page's are removed"


def test_untag_orphans_and_retag_restores(synced: Syncer) -> None:
    col = synced.col
    nid = synced.note("neuron").id
    review(col, nid)
    history = snapshot(col, nid)["revlog"]
    report = synced(edited(BASE, "neuron", "What is a neuron?"))
    assert (report.orphaned, report.updated, report.unchanged) == (1, 0, 4)
    note = col.get_note(nid)
    assert ORPHAN_TAG in note.tags
    assert all(c.queue == QUEUE_TYPE_SUSPENDED for c in note.cards())
    again = synced(edited(BASE, "neuron", "What is a neuron?"))
    assert (again.orphaned, again.unchanged) == (0, 5), "a note that stays orphaned is unchanged"
    report = synced(BASE)
    assert (report.updated, report.orphaned) == (1, 0)
    note = col.get_note(nid)
    assert ORPHAN_TAG not in note.tags
    assert all(c.queue != QUEUE_TYPE_SUSPENDED for c in note.cards())
    assert snapshot(col, nid)["revlog"] == history


def test_restore_leaves_cards_the_user_suspended_suspended(synced: Syncer) -> None:
    col = synced.col
    flip = synced.note("flip")
    user_suspended, other = (c.id for c in flip.cards())
    col.sched.suspend_cards([user_suspended])
    synced(edited(BASE, "flip", "Flip me"))
    synced(BASE)
    assert col.get_card(user_suspended).queue == QUEUE_TYPE_SUSPENDED
    assert col.get_card(other).queue != QUEUE_TYPE_SUSPENDED


def test_deleted_block_is_orphaned_never_deleted(synced: Syncer) -> None:
    gone = copy.deepcopy(BASE)
    find_block(gone, "basics")["children"].pop(0)
    report = synced(gone)
    assert report.orphaned == 1
    assert synced.col.note_count() == 5
    assert ORPHAN_TAG in synced.note("neuron").tags


def test_on_removed_delete_and_keep(synced: Syncer) -> None:
    gone = copy.deepcopy(BASE)
    find_block(gone, "basics")["children"].pop(0)
    kept = synced(gone, on_removed="keep")
    assert kept.orphaned == 1
    note = synced.note("neuron")
    assert ORPHAN_TAG in note.tags
    assert all(c.queue != QUEUE_TYPE_SUSPENDED for c in note.cards())
    synced(BASE)
    deleted = synced(gone, on_removed="delete")
    assert (deleted.deleted, deleted.orphaned) == (1, 0)
    assert synced.col.note_count() == 4


def test_basic_to_cloze_and_back_keeps_note_card_ids_and_history(synced: Syncer) -> None:
    col = synced.col
    nid = synced.note("loss").id
    review(col, nid)
    (card_id,) = col.card_ids_of_note(nid)
    before = snapshot(col, nid)
    to_cloze = synced(edited(BASE, "loss", "A {{cloze loss}} is what we minimise #card"))
    assert (to_cloze.updated, to_cloze.kind_changes, to_cloze.created) == (1, 1, 0)
    note = col.get_note(nid)
    assert note.note_type()["name"] == "Roam Bridge Cloze"
    assert note["Text"] == "A {{c1::loss}} is what we minimise"
    assert col.card_ids_of_note(nid) == [card_id]
    assert snapshot(col, nid)["revlog"] == before["revlog"]
    assert snapshot(col, nid)["cards"] == before["cards"]
    back = synced(BASE)
    assert (back.updated, back.kind_changes) == (1, 1)
    note = col.get_note(nid)
    assert note.note_type()["name"] == "Roam Bridge Basic"
    assert note["Front"] == "What is a loss?"
    assert col.card_ids_of_note(nid) == [card_id]
    assert snapshot(col, nid) == before


def test_deck_change_moves_cards_and_keeps_scheduling(synced: Syncer) -> None:
    col = synced.col
    nid, before = reviewed(synced, "loss")
    decked = copy.deepcopy(BASE)
    find_block(decked, "loss")["children"].append(block("deck:: Study::Losses"))
    report = synced(decked)
    assert report.updated == 1
    assert {col.decks.name(c.did) for c in col.get_note(nid).cards()} == {"Study::Losses"}
    assert snapshot(col, nid) == before


def test_a_card_the_user_moved_stays_put_until_its_deck_changes(synced: Syncer) -> None:
    col = synced.col
    note = synced.note("neuron")
    mine = col.decks.id("My Own Deck")
    col.set_deck([c.id for c in note.cards()], mine)
    synced(edited(BASE, "neuron", "What is a neuron, really? #card"))
    assert {c.did for c in col.get_note(note.id).cards()} == {mine}


def test_user_tags_marked_and_leech_survive_while_bridge_tags_follow_the_page(
    synced: Syncer,
) -> None:
    col = synced.col
    note = synced.note("neuron")
    note.tags += ["marked", "leech", "my_own"]
    col.update_note(note)
    retagged = copy.deepcopy(BASE)
    find_block(retagged, "neuron")["string"] = "What is a neuron?? #card"
    retagged[0]["children"][1]["string"] = "Anki Tag:: nn_notes_v2"
    retagged[0]["children"][2]["string"] = "Tags:: #[[Deep Learning]]"
    synced(retagged)
    tags = set(synced.note("neuron").tags)
    assert tags == {"marked", "leech", "my_own", "nn_notes_v2", "roam::Deep_Learning"}


def test_a_page_tag_the_user_already_had_is_never_taken_away(synced: Syncer) -> None:
    col = synced.col
    note = synced.note("loss")
    note.tags += ["exam"]
    col.update_note(note)
    with_exam = copy.deepcopy(BASE)
    with_exam[0]["children"][1]["string"] = "Anki Tag:: exam"
    synced(with_exam)
    synced(BASE)
    assert "exam" in synced.note("loss").tags


def test_guids_are_equal_across_two_fresh_collections(tmp_path: Path) -> None:
    guids = []
    for name in ("one", "two"):
        col = Collection(str(tmp_path / f"{name}.anki2"))
        try:
            Syncer(col)(BASE)
            guids.append(sorted(col.db.list("select guid from notes")))
        finally:
            col.close()
    assert guids[0] == guids[1]
    assert len(set(guids[0])) == 5


def test_mass_orphan_guard_refuses_unless_forced(synced: Syncer) -> None:
    col = synced.col
    mod_before = col.mod
    nearly_empty = [page("Neural nets", block("What is a loss? #card", uid="loss"))]
    refused = synced.plan(nearly_empty)
    assert refused.refused and len(refused.orphans) == 4
    with pytest.raises(MassOrphanRefused):
        sync.apply(refused, col)
    assert col.mod == mod_before
    report = synced(nearly_empty, force=True)
    assert report.orphaned == 4


def test_half_or_fewer_orphans_pass_the_guard(synced: Syncer) -> None:
    fewer = copy.deepcopy(BASE)
    fewer[0]["children"] = [b for b in fewer[0]["children"]
                            if b["uid"] not in ("flip", "formula")]
    assert synced(fewer).orphaned == 2


def test_undo_reverts_the_whole_sync(synced: Syncer) -> None:
    col = synced.col
    changed = edited(BASE, "neuron", "Changed #card")
    changed[1]["children"].append(block("New card #card", uid="new"))
    synced(changed)
    assert col.undo_status().undo == sync.UNDO_NAME
    col.undo()
    assert synced.note("neuron")["Front"] == "What is a neuron?"
    assert not col.find_notes('"SourceID:roam:test:new"')
    report = synced(changed)
    assert (report.created, report.updated) == (1, 1), "state is undone with the notes"


def test_undo_of_the_first_sync_removes_everything(syncer: Syncer) -> None:
    syncer(BASE)
    syncer.col.undo()
    assert syncer.col.note_count() == 0


def test_hostile_block_is_stored_as_harmless_text(syncer: Syncer) -> None:
    evil = "<script>alert(1)</script><img src=x onerror=alert(1)> #card"
    syncer([page("P", block(evil, block("[x](javascript:alert(1))"), uid="evil"))])
    note = syncer.note("evil")
    assert "<script" not in note["Front"] and "<img" not in note["Front"]
    assert "&lt;script&gt;" in note["Front"]
    assert 'href="javascript' not in note["Back"]


def test_notes_of_another_graph_are_left_alone(col: Collection) -> None:
    Syncer(col, graph="first")(BASE)
    other = Syncer(col, graph="second")
    report = other([page("P", block("Only one #card", uid="one"))])
    assert (report.created, report.orphaned) == (1, 0)
    assert col.note_count() == 6


def test_lost_state_is_healed_by_comparing_content(synced: Syncer) -> None:
    col = synced.col
    note = synced.note("neuron")
    note["Source"] = sync.strip_state(note["Source"])
    col.update_note(note)
    mod_before = col.mod
    report = synced(BASE)
    assert (report.updated, report.unchanged) == (0, 5)
    assert col.mod != mod_before, "the remembered state is written back once"
    mod_after = col.mod
    assert synced(BASE).unchanged == 5
    assert col.mod == mod_after


def test_fixture_export_syncs_once_marked(tmp_path: Path) -> None:
    from addon.core.sources import roam_json
    from tests.conftest import FIXTURES

    graph = roam_json.read(FIXTURES / "roam-to-csv" / "backup.json", "fixture")
    graph.blocks["FsF3FaIio"].string = "five #card"
    col = Collection(str(tmp_path / "c.anki2"))
    try:
        report = sync.apply(sync.plan(graph, col), col)
        assert report.created == 1
        note = col.get_note(col.find_notes("")[0])
        assert note["Front"] == "five" and "six" in note["Back"]
        assert "June 28th, 2021" in note["Context"] and "four" in note["Context"]
    finally:
        col.close()


def test_dropping_reversed_suspends_the_reverse_card_and_restoring_brings_it_back(
    synced: Syncer,
) -> None:
    col = synced.col
    nid = synced.note("flip").id
    review(col, nid)
    forward, reverse = (c.id for c in synced.note("flip").cards())
    history = snapshot(col, nid)["revlog"]
    report = synced(edited(BASE, "flip", "Flip me #card"))
    assert report.updated == 1
    assert synced.note("flip")["Add Reverse"] == ""
    assert col.get_card(reverse).queue == QUEUE_TYPE_SUSPENDED, "no blank card in review"
    assert col.get_card(forward).queue != QUEUE_TYPE_SUSPENDED
    assert synced(edited(BASE, "flip", "Flip me #card")).unchanged == 5
    synced(BASE)
    assert col.get_card(reverse).queue != QUEUE_TYPE_SUSPENDED
    assert snapshot(col, nid)["revlog"] == history


def test_cloze_to_basic_suspends_the_cards_of_clozes_that_are_gone(syncer: Syncer) -> None:
    col = syncer.col
    two = [page("P", block("{{cloze Paris}} is in {{cloze France}} #card", block("Answer"),
                           uid="c"))]
    syncer(two)
    nid = syncer.note("c").id
    first, second = col.card_ids_of_note(nid)
    syncer([page("P", block("Where is Paris? #card", block("France"), uid="c"))])
    assert col.get_card(first).queue != QUEUE_TYPE_SUSPENDED
    assert col.get_card(second).queue == QUEUE_TYPE_SUSPENDED
    syncer(two)
    assert col.card_ids_of_note(nid) == [first, second]
    assert all(col.get_card(c).queue != QUEUE_TYPE_SUSPENDED for c in (first, second))


def test_two_sources_apply_as_one_undo_step(col: Collection) -> None:
    first, second = Syncer(col, graph="first"), Syncer(col, graph="second")
    plans = [first.plan(BASE), second.plan([page("P", block("Only #card", uid="only"))])]
    report = sync.apply_all(plans, col)
    assert report.created == 6
    assert col.undo_status().undo == sync.UNDO_NAME
    col.undo()
    assert col.note_count() == 0


def test_deferred_kind_changes_leave_the_note_as_it_is(synced: Syncer) -> None:
    plan = synced.plan(edited(BASE, "loss", "A {{cloze loss}} #card"))
    assert plan.kind_changes == 1
    plan.defer_kind_changes()
    report = sync.apply(plan, synced.col)
    assert (report.updated, report.unchanged, report.kind_changes) == (0, 5, 0)
    assert any("deferred" in w for w in report.warnings)
    assert synced.note("loss").note_type()["name"] == "Roam Bridge Basic"
    assert synced(edited(BASE, "loss", "A {{cloze loss}} #card")).kind_changes == 1


def test_skipping_removals_lets_a_refused_run_sync_the_rest(synced: Syncer) -> None:
    nearly_empty = [page("Neural nets", block("What is a loss?? #card", uid="loss"))]
    plan = synced.plan(nearly_empty)
    assert plan.refused
    plan.skip_removals()
    report = sync.apply(plan, synced.col)
    assert (report.updated, report.orphaned, report.unchanged) == (1, 0, 4)
    assert ORPHAN_TAG not in synced.note("neuron").tags


def test_a_decomposed_unicode_graph_name_never_duplicates_notes(tmp_path: Path) -> None:
    import unicodedata

    col = Collection(str(tmp_path / "c.anki2"))
    try:
        decomposed = Syncer(col, graph=unicodedata.normalize("NFD", "Café"))
        for _ in range(3):
            decomposed(BASE)
        assert col.note_count() == 5
    finally:
        col.close()


def test_a_users_clone_of_our_note_type_is_never_treated_as_ours(synced: Syncer) -> None:
    col = synced.col
    ours = col.models.by_name("Roam Bridge Basic")
    clone = col.models.copy(ours, add=False)
    clone["name"] = "AAA my clone"
    col.models.add_dict(clone)
    report = synced(BASE)
    assert (report.created, report.unchanged) == (0, 5)
    assert col.note_count() == 5


def test_two_plans_for_one_graph_create_each_note_once(col: Collection) -> None:
    syncer = Syncer(col)
    report = sync.apply_all([syncer.plan(BASE, deck="A"), syncer.plan(BASE, deck="B")], col)
    assert report.created == 5 and col.note_count() == 5
    assert any("not added again" in w for w in report.warnings)


def test_an_empty_cloze_is_not_a_cloze(syncer: Syncer) -> None:
    syncer([page("P", block("Fill in {{c1::}} later #card", uid="e"))])
    assert syncer.note("e").note_type()["name"] == "Roam Bridge Basic"


def test_a_second_note_with_the_same_key_and_no_reviews_is_healed_away(synced: Syncer) -> None:
    col = synced.col
    original = synced.note("neuron")
    twin = col.new_note(original.note_type())
    twin.fields = list(original.fields)
    twin.tags = [*original.tags, "mine"]
    col.add_note(twin, col.decks.id("Roam"))  # an import can do this: same key, new GUID
    report = synced(edited(BASE, "neuron", "What is a neuron, twice? #card"))
    assert (report.created, report.updated, report.orphaned, report.healed) == (0, 1, 0, 1)
    assert col.find_notes(f"nid:{twin.id}") == []
    kept = col.get_note(original.id)
    assert kept["Front"] == "What is a neuron, twice?"
    assert "mine" in kept.tags  # the user's tag on the deleted copy moved over

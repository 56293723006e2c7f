"""What a user can decide before a sync writes: leave notes out, pin them, cancel; and the
preview that shows each change. Against a real collection."""

from __future__ import annotations

import time

import pytest
from anki.consts import QUEUE_TYPE_SUSPENDED

from addon.core import preview, sync
from addon.core.progress import IMAGES, PLANNING, RENDERING, WRITING, Cancelled
from addon.core.state_tags import PINNED
from tests.conftest import Syncer
from tests.http_server import LocalServer, Reply
from tests.roam import block, page
from tests.test_media import PNG
from tests.test_sync import review, snapshot

PAGES = [page("P", block("One #card", block("first"), uid="one"),
              block("Two #card", uid="two"), block("Three #card", uid="three"))]


def with_texts(**texts: str) -> list[dict]:
    blocks = [block(texts.get(uid, f"{uid.title()} #card"), uid=uid)
              for uid in ("one", "two", "three") if texts.get(uid, "") is not None]
    return [page("P", *blocks)]


@pytest.fixture
def synced(syncer: Syncer) -> Syncer:
    assert syncer(PAGES).created == 3
    return syncer


def test_a_note_left_out_keeps_what_it_has_this_time_only(synced: Syncer) -> None:
    pages = with_texts(one="One, edited #card", two="Two, edited #card")
    the_plan = synced.plan(pages)
    assert the_plan.leave_out({"roam:test:one"}) == 1
    report = sync.apply(the_plan, synced.col)
    assert (report.updated, report.unchanged) == (1, 2)
    assert synced.note("one")["Front"] == "One"
    assert synced.note("two")["Front"] == "Two, edited"
    assert synced(pages).updated == 1, "the next run plans it again"
    assert synced.note("one")["Front"] == "One, edited"


def test_a_new_block_left_out_adds_no_note(synced: Syncer) -> None:
    pages = [page("P", *PAGES[0]["children"], block("Four #card", uid="four"))]
    the_plan = synced.plan(pages)
    the_plan.leave_out({"roam:test:four"})
    report = sync.apply(the_plan, synced.col)
    assert report.created == 0 and report.created_ids == []
    assert synced.col.find_notes('"SourceID:roam:test:four"') == []


def test_a_removal_left_out_is_neither_orphaned_nor_suspended(synced: Syncer) -> None:
    nid = synced.note("three").id
    the_plan = synced.plan(with_texts(three=None))
    assert [u.note.id for u in the_plan.orphans] == [nid]
    the_plan.leave_out({"roam:test:three"})
    report = sync.apply(the_plan, synced.col)
    assert report.orphaned == 0
    assert sync.ORPHAN_TAG not in synced.col.get_note(nid).tags
    assert all(synced.col.get_card(c).queue != QUEUE_TYPE_SUSPENDED
               for c in synced.col.card_ids_of_note(nid))


def test_a_pinned_note_is_never_overwritten_moved_or_orphaned(synced: Syncer) -> None:
    note = synced.note("one")
    review(synced.col, note.id)
    before = snapshot(synced.col, note.id)
    note.tags.append(PINNED)
    synced.col.update_note(note)
    report = synced(with_texts(one="One, edited #card"))
    assert (report.updated, report.unchanged) == (0, 3)
    pinned = synced.note("one")
    assert pinned["Front"] == "One" and pinned.tags == note.tags
    assert snapshot(synced.col, note.id) == before
    gone = synced(with_texts(one=None))
    assert gone.orphaned == 0
    assert sync.ORPHAN_TAG not in synced.note("one").tags
    assert snapshot(synced.col, note.id) == before

    pinned.remove_tag(PINNED)
    synced.col.update_note(pinned)
    assert synced(with_texts(one="One, edited #card")).updated == 1, "unpinned, it follows"
    assert synced.note("one")["Front"] == "One, edited"


def test_a_page_cannot_pin_its_notes(syncer: Syncer) -> None:
    syncer([page("P", block(f"Anki Tag:: {PINNED} mine"), block("Card #card", uid="c"))])
    tags = [t.lower() for t in syncer.note("c").tags]
    assert PINNED not in tags and "mine" in tags
    assert syncer([page("P", block(f"Anki Tag:: {PINNED} mine"),
                         block("Card, edited #card", uid="c"))]).updated == 1


def test_planning_stops_at_a_cancel_and_writes_nothing(synced: Syncer) -> None:
    pages = [page("P", *(block(f"Card {i} #card", uid=f"c{i}") for i in range(600)))]
    seen: list[tuple[str, int, int]] = []

    def cancel_while_rendering(phase: str, done: int, total: int) -> None:
        seen.append((phase, done, total))
        if phase == RENDERING and done >= 200:
            raise Cancelled

    mod = synced.col.mod
    with pytest.raises(Cancelled):
        synced.plan(pages, progress=cancel_while_rendering)
    assert synced.col.mod == mod
    assert synced.col.find_notes('"SourceID:roam:test:c1"') == []
    assert (PLANNING, 0, 600) in seen and seen[-1] == (RENDERING, 200, 600)


def test_writing_reports_progress_and_cannot_be_cancelled(synced: Syncer) -> None:
    calls: list[tuple[str, int, int]] = []

    def refuse_to_wait(phase: str, done: int, total: int) -> None:
        calls.append((phase, done, total))
        raise Cancelled

    pages = [page("P", *PAGES[0]["children"], block("Four #card", uid="four"))]
    report = sync.apply_all([synced.plan(pages)], synced.col, progress=refuse_to_wait)
    assert report.created == 1
    assert synced.col.find_notes('"SourceID:roam:test:four"') == report.created_ids
    assert calls[0] == (WRITING, 0, 1) and calls[-1] == (WRITING, 1, 1)


def test_image_downloads_report_progress_and_a_cancel_does_not_wait_for_them(
    syncer: Syncer,
) -> None:
    with LocalServer() as server:
        fast = server.add("/fast.png", Reply(body=PNG, content_type="image/png"))
        slow = [server.add(f"/slow{i}.png", Reply(body=PNG, content_type="image/png",
                                                  delay=3)) for i in range(6)]
        pages = [page("P", block(f"![a]({fast}) #card", uid="fast"),
                      *(block(f"![s]({url}) #card", uid=f"s{i}") for i, url in enumerate(slow)))]
        images: list[tuple[int, int]] = []

        def cancel_after_the_first(phase: str, done: int, total: int) -> None:
            if phase == IMAGES:
                images.append((done, total))
                if done >= 1:
                    raise Cancelled

        started = time.monotonic()
        with pytest.raises(Cancelled):
            syncer.plan(pages, progress=cancel_after_the_first)
        waited = time.monotonic() - started
    assert images == [(0, 7), (1, 7)]
    # Four workers, six slow images: waiting for them all would take two rounds of 3 s.
    assert waited < 5.5, f"the cancel waited {waited:.1f} s for the downloads"


def test_preview_lists_each_change_with_its_text(synced: Syncer) -> None:
    one, three = synced.note("one").id, synced.note("three").id
    pages = [page("P", block("One, edited #card", block("first"), uid="one"),
                  block("Two #card", uid="two"), block("Four #card", uid="four")),
             page("Q", block("Moved", block("Two again? no: Five #card", uid="five")))]
    found = preview.changes(synced.plan(pages))
    assert [(c.action, c.key, c.note_id) for c in found] == [
        ("create", "roam:test:four", None),
        ("create", "roam:test:five", None),
        ("update", "roam:test:one", one),
        ("orphan", "roam:test:three", three),
    ]
    created, _, updated, orphaned = found
    assert created.text == "Four" and created.label == "new"
    assert (updated.before, updated.text, updated.label) == (
        "One — first", "One, edited — first", "updated")
    assert updated.text_changed
    assert orphaned.text == "Three" and "suspended" in orphaned.details[0]
    grouped = preview.by_action(found)
    assert [len(grouped[a]) for a in preview.ACTIONS] == [2, 1, 1, 0]


def test_preview_names_moves_kind_changes_and_tags(synced: Syncer) -> None:
    pages = [page("P", block("Three #card", uid="three"), block("{c1:Two} #card", uid="two")),
             page("Elsewhere", block("Tags:: #new"), block("Parent",
                                                          block("One #card", block("first"),
                                                                uid="one")))]
    by_key = {c.key: c for c in preview.changes(synced.plan(pages))}
    moved, kind = by_key["roam:test:one"], by_key["roam:test:two"]
    assert moved.moved and moved.label == "moved" and not moved.text_changed
    assert "tag +roam::new" in moved.details
    assert any(d.startswith("new place: Elsewhere › Parent") for d in moved.details)
    assert kind.kind == "basic → cloze" and kind.label == "basic → cloze"


def test_preview_text_keeps_words_of_separate_blocks_apart(syncer: Syncer) -> None:
    the_plan = syncer.plan([page("P", block("Question #card", block("first."),
                                            block("Second"), uid="q"))])
    (change,) = preview.changes(the_plan)
    assert change.text == "Question — first. Second"

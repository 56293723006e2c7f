"""Cloze numbers stay with their content, so a card's review history stays with its cloze."""

from __future__ import annotations

import dataclasses

import pytest
from anki.collection import Collection

from addon.core import sync
from addon.core.cards import collect
from addon.core.clozes import ClozeSyntax, cloze_text
from addon.core.clozes import number_clozes as numbered_in
from addon.core.config import CardOptions
from addon.core.note_fields import NoteRenderer
from addon.core.note_state import NoteState
from addon.core.sources.roam_json import build_graph
from tests.conftest import Syncer
from tests.roam import block, page
from tests.test_sync import edited, review, snapshot

BRACES = ClozeSyntax(brace=True)


class BraceSyncer(Syncer):
    """Syncs with the {x} cloze shorthand on, as these notes are written with it."""

    def plan(self, pages: list[dict], **options):
        options.setdefault("cards", CardOptions(brace_clozes=True))
        return super().plan(pages, **options)


@pytest.fixture
def syncer(col: Collection) -> Syncer:
    return BraceSyncer(col)


def number_clozes(text: str, memory: tuple = ()):
    return numbered_in(text, BRACES, memory)


def card_of(synced: Syncer, nid: int, ord_: int) -> int:
    return synced.col.db.scalar(f"select id from cards where nid = {nid} and ord = {ord_}")


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        # A cloze inserted first: the others keep their numbers, the new one takes a new one.
        ("{a} {b}", "{x} {a} {b}", "{{c3::x}} {{c1::a}} {{c2::b}}"),
        # Reordered: numbers follow the content.
        ("{a} {b}", "{b} {a}", "{{c2::b}} {{c1::a}}"),
        # Edited content keeps the number of the cloze it replaced.
        ("{a} {b} {c}", "{a} {B!} {c}", "{{c1::a}} {{c2::B!}} {{c3::c}}"),
        # A cloze removed while another is added in one edit reads as an edit of it.
        ("{a} {b}", "{b} {new}", "{{c2::b}} {{c1::new}}"),
        ("{a} {b}", "{b}", "{{c2::b}}"),
        # Explicit numbers always win, even over a remembered one.
        ("{a} {b}", "{{c1::b}} {a}", "{{c1::b}} {{c2::a}}"),
        # The same content twice keeps both numbers, in order.
        ("{a} {a}", "{z} {a} {a}", "{{c3::z}} {{c1::a}} {{c2::a}}"),
        ("{{cloze a}} {b}", "{{cloze q}} {{cloze a}} {b}", "{{c3::q}} {{c1::a}} {{c2::b}}"),
    ],
)
def test_numbers_follow_their_content(before: str, after: str, expected: str) -> None:
    numbered = number_clozes(before)
    assert numbered is not None
    assert cloze_text(after, BRACES, numbered[1]) == expected


def test_removed_then_new_content_takes_a_fresh_number() -> None:
    _, memory = number_clozes("{a} {b} {c}")  # type: ignore[misc]
    _, memory = number_clozes("{a} {c}", memory=memory)  # type: ignore[misc]
    # b's number (2) stays retired while a and c are remembered; new content goes past it.
    assert cloze_text("{a} {c} {d}", BRACES, memory) == "{{c1::a}} {{c3::c}} {{c4::d}}"


def test_the_number_of_a_removed_last_cloze_stays_retired() -> None:
    _, memory = number_clozes("{a} {b}")  # type: ignore[misc]
    _, memory = number_clozes("{a}", memory=memory)  # type: ignore[misc]
    # b's card (c2) still exists, with b's history: a later cloze must not inherit it.
    numbered = number_clozes("{a} {z}", memory=memory)
    assert numbered is not None and numbered[0] == "{{c1::a}} {{c3::z}}"
    # Nor the one after that, once z is gone again.
    _, memory = number_clozes("{a}", memory=numbered[1])  # type: ignore[misc]
    assert cloze_text("{a} {y}", BRACES, memory) == "{{c1::a}} {{c4::y}}"


def test_a_cloze_added_after_one_was_removed_gets_a_card_of_its_own(syncer: Syncer) -> None:
    pages = [page("P", block("{Paris} is in {France} #card", uid="cap"))]
    syncer(pages)
    nid = syncer.note("cap").id
    review(syncer.col, nid)
    france = card_of(syncer, nid, 1)
    syncer(edited(pages, "cap", "{Paris} is a city #card"))
    syncer(edited(pages, "cap", "{Paris} is a city on the {Seine} #card"))
    text = syncer.note("cap")["Text"]
    assert "{{c2::" not in text and "{{c3::Seine}}" in text
    # France's reviewed card stays suspended; the Seine has a new card.
    assert syncer.col.get_card(france).queue == -1
    assert card_of(syncer, nid, 2) not in (None, france)


def test_without_memory_numbers_are_the_lowest_free_in_order() -> None:
    assert cloze_text("{x} {{c1::y}} {z}", BRACES) == "{{c2::x}} {{c1::y}} {{c3::z}}"


def test_inserting_a_cloze_keeps_every_cards_scheduling(syncer: Syncer) -> None:
    pages = [page("P", block("{Paris} is the capital of {France} #card", uid="cap"))]
    syncer(pages)
    nid = syncer.note("cap").id
    review(syncer.col, nid)
    paris, france = card_of(syncer, nid, 0), card_of(syncer, nid, 1)
    before = snapshot(syncer.col, nid)

    report = syncer(edited(pages, "cap", "{Paris} is the capital of {France}, {Europe} #card"))
    assert report.updated == 1
    text = "{Rome}, {Paris} is the capital of {France}, {Europe} #card"
    assert syncer(edited(pages, "cap", text)).updated == 1
    text = "{Rome}, {Paris} is the capital of {France} #card"
    assert syncer(edited(pages, "cap", text)).updated == 1

    note = syncer.note("cap")
    assert note.id == nid
    assert note["Text"].startswith("{{c4::Rome}}, {{c1::Paris}} is the capital of {{c2::France}}")
    assert card_of(syncer, nid, 0) == paris and card_of(syncer, nid, 1) == france
    after = snapshot(syncer.col, nid)
    # The two reviewed cards are the same cards with the same history; Europe's (c3) card
    # is left empty and suspended, Rome has a new card of its own.
    assert after["revlog"] == before["revlog"]
    assert [row for row in after["cards"] if row[1] in (0, 1)] == before["cards"]
    suspended = syncer.col.db.list(f"select ord from cards where nid = {nid} and queue = -1")
    assert suspended == [2]


def test_a_resync_without_changes_keeps_the_numbers(syncer: Syncer) -> None:
    pages = [page("P", block("{a} and {b} #card", uid="ab"))]
    syncer(pages)
    moved = edited(pages, "ab", "{new} {a} and {b} #card")
    syncer(moved)
    text = syncer.note("ab")["Text"]
    assert syncer(moved).unchanged == 1
    assert syncer.note("ab")["Text"] == text


def remembered(syncer: Syncer, nid: int) -> tuple[tuple[str, int], ...]:
    state = NoteState.from_field(syncer.col.get_note(nid)["Source"])
    assert state is not None
    return state.clozes


def _plain(syncer: Syncer, pages: list[dict]) -> sync.Report:
    return syncer(pages)


def _dry_run_then_apply(syncer: Syncer, pages: list[dict]) -> sync.Report:
    """The plan is made (and reported) first, and written later, as the GUI does."""
    plan = syncer.plan(pages)
    plan.report()
    return sync.apply(plan, syncer.col)


def _beside_a_rematch(syncer: Syncer, pages: list[dict]) -> sync.Report:
    """A block without an id vanishes in the same run, so planning pairs notes by text
    before it decides which notes are new."""
    gone = [{"title": "Other", "children": [{"string": "A block without an id #card"}]}]
    syncer(gone)
    return syncer([*pages, {"title": "Other", "children": [{"string": "Something else"}]}],
                  force=True)


def _with_an_empty_card_skipped(syncer: Syncer, pages: list[dict]) -> sync.Report:
    """A card block with nothing but its tag is filtered out before notes are made."""
    return syncer([page("P", block("#card", uid="empty"), *pages[0]["children"])])


@pytest.mark.parametrize(
    "run", [_plain, _dry_run_then_apply, _beside_a_rematch, _with_an_empty_card_skipped])
def test_a_new_notes_cloze_numbers_are_remembered_whichever_way_it_was_planned(
    syncer: Syncer, run
) -> None:
    pages = [page("P", block("{Paris} is the capital of {France} #card", uid="cap"))]
    report = run(syncer, pages)
    assert report.created >= 1
    nid = syncer.note("cap").id
    assert [n for _, n in remembered(syncer, nid)] == [1, 2]
    review(syncer.col, nid)
    paris, france = card_of(syncer, nid, 0), card_of(syncer, nid, 1)
    history = snapshot(syncer.col, nid)["revlog"]

    # A cloze inserted first: without the remembered numbers it would take c1 and hand
    # Paris's history to Rome.
    syncer(edited(pages, "cap", "{Rome}, {Paris} is the capital of {France} #card"),
           force=True)
    assert syncer.note("cap")["Text"].startswith(
        "{{c3::Rome}}, {{c1::Paris}} is the capital of {{c2::France}}")
    assert (card_of(syncer, nid, 0), card_of(syncer, nid, 1)) == (paris, france)
    assert snapshot(syncer.col, nid)["revlog"] == history


def test_rendering_a_spec_twice_gives_the_same_note_and_leaves_the_spec_as_it_was() -> None:
    graph = build_graph([page("P", block("{a} and {b} #card", uid="ab"))], "g")
    options = CardOptions(brace_clozes=True)
    [spec] = collect(graph, options)
    before = [getattr(spec, f.name) for f in dataclasses.fields(spec)]
    renderer = NoteRenderer(graph, options)
    first = renderer.render(spec)
    _, memory = number_clozes("{b} and {a}")  # type: ignore[misc]
    other = renderer.render(spec, memory)
    again = renderer.render(spec)
    assert first == again and [n for _, n in first.clozes] == [1, 2]
    assert other.fields["Text"] == "{{c2::a}} and {{c1::b}}"
    assert [getattr(spec, f.name) for f in dataclasses.fields(spec)] == before
    assert spec.block.string == "{a} and {b} #card"

"""Cloze numbers stay with their content, so a card's review history stays with its cloze."""

from __future__ import annotations

import pytest

from addon.core.cards import cloze_text, number_clozes
from tests.conftest import Syncer
from tests.roam import block, page
from tests.test_sync import edited, review, snapshot


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
    assert cloze_text(after, memory=numbered[1]) == expected


def test_removed_then_new_content_takes_a_fresh_number() -> None:
    _, memory = number_clozes("{a} {b} {c}")  # type: ignore[misc]
    _, memory = number_clozes("{a} {c}", memory=memory)  # type: ignore[misc]
    # b's number (2) stays retired while a and c are remembered; new content goes past it.
    assert cloze_text("{a} {c} {d}", memory=memory) == "{{c1::a}} {{c3::c}} {{c4::d}}"


def test_the_number_of_a_removed_last_cloze_stays_retired() -> None:
    _, memory = number_clozes("{a} {b}")  # type: ignore[misc]
    _, memory = number_clozes("{a}", memory=memory)  # type: ignore[misc]
    # b's card (c2) still exists, with b's history: a later cloze must not inherit it.
    numbered = number_clozes("{a} {z}", memory=memory)
    assert numbered is not None and numbered[0] == "{{c1::a}} {{c3::z}}"
    # Nor the one after that, once z is gone again.
    _, memory = number_clozes("{a}", memory=numbered[1])  # type: ignore[misc]
    assert cloze_text("{a} {y}", memory=memory) == "{{c1::a}} {{c4::y}}"


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
    assert cloze_text("{x} {{c1::y}} {z}") == "{{c2::x}} {{c1::y}} {{c3::z}}"


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

"""The Browser's Source column and search terms, against a real collection: page titles and
parents that hold quotes, ampersands, regex characters and Anki's wildcards are found
exactly, and the terms combine with Anki's own search syntax."""

from __future__ import annotations

import pytest

from addon.gui.browser_source import (
    expand_terms,
    page_search,
    pages_by_graph,
    sorted_by_source,
    source_text,
)
from tests.conftest import Syncer
from tests.roam import block, page

TRICKY = 'Q&A: "C++" (draft) [v2] 100% a.b*c_d'
PAGES = [
    page(TRICKY, block("Parent with it's quote", block("One #card", uid="one")),
         block("Two #card", uid="two"), uid="p1"),
    page("Plain page", block("Three #card", uid="three"),
         block("Deep", block("Deeper", block("Four #card", uid="four"))), uid="p2"),
    page("Plain page, too", block("Five #card", uid="five"), uid="p3"),
]


@pytest.fixture
def synced(syncer: Syncer) -> Syncer:
    assert syncer(PAGES).created == 5
    return syncer


def found(synced: Syncer, search: str) -> set[str]:
    nids = synced.col.find_notes(expand_terms(search))
    return {synced.col.get_note(n)["SourceID"].rsplit(":", 1)[1] for n in nids}


def test_the_source_column_shows_page_and_parents(synced: Syncer) -> None:
    assert source_text(synced.note("one")["Context"]) == f"{TRICKY} › Parent with it's quote"
    assert source_text(synced.note("four")["Context"]) == "Plain page › Deep › Deeper"
    assert source_text("<b>not ours</b>") == ""


def test_a_page_is_found_by_its_exact_title_whatever_it_holds(synced: Syncer) -> None:
    assert found(synced, page_search(TRICKY)) == {"one", "two"}
    assert found(synced, page_search("Plain page")) == {"three", "four"}, "whole title only"
    assert found(synced, 'roam-page:"plain PAGE"') == {"three", "four"}, "case is ignored"
    assert found(synced, 'roam-page:"Plain page*"') == {"three", "four", "five"}
    assert found(synced, 'roam-page:"Plain_page"') == {"three", "four"}, "_ is one character"
    assert found(synced, r'roam-page:"Q&A: \"C++\" (draft) [v2] 100% a.b\*c\_d"') == {
        "one", "two"}, "escaped wildcards are literal"
    assert found(synced, r'roam-page:"Q&A: \"C++\" (draft) [v2] 100% aXb\*c\_d"') == set()


def test_roam_source_searches_page_and_parents_and_combines_with_anki_terms(
    synced: Syncer,
) -> None:
    assert found(synced, "roam-source:deeper") == {"four"}
    assert found(synced, "roam-source:\"it's quote\"") == {"one"}
    assert found(synced, "roam-source:plain") == {"three", "four", "five"}
    assert found(synced, "roam-source:plain -roam-source:deep") == {"three", "five"}
    assert found(synced, "roam-source:plain or roam-page:Q*") == {
        "one", "two", "three", "four", "five"}
    assert found(synced, "roam-source:Four") == set(), "the card's own text is not its source"
    assert found(synced, "roam-source:p2") == set(), "links' addresses are not searched"
    assert found(synced, '"roam-page:Plain page"') == {"three", "four"}, "Anki's quoted form"


def test_sorting_by_source_orders_by_page_then_parents(synced: Syncer) -> None:
    col = synced.col
    nids = col.find_notes("")
    ordered = sorted_by_source(col, nids, notes=True, reverse=False)
    keys = [col.get_note(n)["SourceID"].rsplit(":", 1)[1] for n in ordered]
    assert keys == ["three", "four", "five", "two", "one"]
    assert sorted_by_source(col, nids, notes=True, reverse=True) == ordered[::-1]
    cards = col.find_cards("")
    by_card = sorted_by_source(col, cards, notes=False, reverse=False)
    assert [col.get_card(c).nid for c in by_card] == ordered


def test_the_sidebar_lists_each_graphs_pages(synced: Syncer) -> None:
    assert pages_by_graph(synced.col) == {
        "roam:test:": {TRICKY, "Plain page", "Plain page, too"}}

"""Context on the card (breadcrumb, attributes, link) and in the reviewer panel."""

from __future__ import annotations

import copy

from addon.core.cards import collect
from addon.core.config import CardOptions
from addon.core.panel import ContextPanel, panel_index
from addon.core.render import plain_text
from addon.core.sources.roam_json import build_graph
from tests.conftest import Syncer
from tests.roam import block, find_block, page
from tests.test_cards import Card, cards_of
from tests.test_render import assert_harmless

LONG = "A very long parent block that goes on " + "and on " * 20

PAGES = [page(
    "Neural nets",
    block("Author:: [[Ada Lovelace]]"),
    block("Source:: [paper](https://example.com/paper)"),
    block("Anki Tag:: control_attributes_are_not_shown"),
    block("Top section", block(
        LONG,
        block("Just before", uid="before"),
        block("What is a neuron? #card", block("deck:: Hidden::Deck"), block("An answer"),
              uid="q"),
        block("Just after", uid="after"),
        uid="long",
    ), uid="top"),
    uid="nnpage",
)]


def spec_for(pages: list[dict], uid: str = "q", **options) -> Card:
    return cards_of(pages, **options)[uid]


def panel_of(pages: list[dict], uid: str = "q", nearby: bool = True, **options) -> str:
    graph = build_graph(copy.deepcopy(pages), "g")
    spec = {s.uid: s for s in collect(graph, CardOptions(**options))}[uid]
    return ContextPanel(graph, CardOptions(**options)).html(spec.block, nearby)


def test_breadcrumb_links_page_and_every_parent_to_its_block() -> None:
    context = spec_for(PAGES).fields["Context"]
    assert 'href="https://roamresearch.com/#/app/g/page/nnpage"' in context
    assert ">Neural nets</a>" in context
    assert 'href="https://roamresearch.com/#/app/g/page/top"' in context
    assert ">Top section</a>" in context
    assert 'href="https://roamresearch.com/#/app/g/page/long"' in context


def test_long_parents_are_shortened_on_the_card() -> None:
    context = spec_for(PAGES).fields["Context"]
    assert "A very long parent block that goes on" in context and "…" in context
    assert LONG.strip() not in context


def test_depth_limits_the_parents_on_the_card() -> None:
    page_only = spec_for(PAGES, context_depth=0).fields["Context"]
    assert "Neural nets" in page_only and "Top section" not in page_only
    assert "A very long" not in page_only and "rb-more" in page_only
    nearest = spec_for(PAGES, context_depth=1).fields["Context"]
    assert "A very long" in nearest and "Top section" not in nearest
    everything = spec_for(PAGES).fields["Context"]
    assert "Top section" in everything and "rb-more" not in everything


def test_page_attributes_show_as_labelled_items_without_control_attributes() -> None:
    context = spec_for(PAGES).fields["Context"]
    assert '<span class="rb-attr-key">Author</span>' in context
    assert "Ada Lovelace" in context
    assert '<a href="https://example.com/paper">paper</a>' in context
    assert "control_attributes_are_not_shown" not in context


def test_a_moved_block_shows_its_new_context_after_resync(syncer: Syncer) -> None:
    syncer(PAGES)
    moved = copy.deepcopy(PAGES)
    card = find_block(moved, "long")["children"].pop(1)
    moved.append(page("Elsewhere", block("New home", card, uid="home"), uid="elsewhere"))
    report = syncer(moved, force=True)
    assert report.moved == 1
    context = syncer.note("q")["Context"]
    assert "Elsewhere" in context and "New home" in context
    assert "Neural nets" not in context and "Top section" not in context


def test_panel_shows_only_what_the_card_does_not() -> None:
    panel = panel_of(PAGES)
    assert LONG.strip() in panel, "a parent the breadcrumb shortens, in full"
    assert "Top section" not in panel, "a parent the breadcrumb shows as it is"
    assert "Just before" in panel and "Just after" in panel
    assert "deck: Hidden::Deck" in plain_text(panel), "attribute children are not on the card"
    assert "Ada Lovelace" not in panel and "Open in Roam" not in panel, "the footer has them"
    assert "Neural nets" not in panel, "the breadcrumb starts with the page"
    without_nearby = panel_of(PAGES, nearby=False)
    assert "Just before" not in without_nearby


def test_panel_shows_the_parents_a_shorter_breadcrumb_leaves_out() -> None:
    panel = panel_of(PAGES, context_depth=0)
    assert "Top section" in panel and LONG.strip() in panel
    assert panel.index("Top section") < panel.index("A very long"), "top first"


def test_a_card_whose_footer_says_it_all_has_no_panel() -> None:
    pages = [page("P", block("Author:: Ada"), block("Only #card", block("answer"), uid="q"))]
    assert panel_of(pages) == ""


def test_panel_index_rerenders_only_panels_whose_context_changed() -> None:
    def index(pages: list[dict], previous: dict) -> dict:
        graph = build_graph(copy.deepcopy(pages), "g")
        return panel_index(graph, collect(graph, CardOptions()), previous, CardOptions())

    first = index(PAGES, {})
    assert set(first) == {"roam:g:q"}
    again = index(PAGES, first)
    assert again["roam:g:q"] is first["roam:g:q"]
    edited = copy.deepcopy(PAGES)
    find_block(edited, "after")["string"] = "A new neighbour"
    changed = index(edited, first)
    assert "A new neighbour" in changed["roam:g:q"]["html"]


def test_hostile_page_titles_and_parents_cannot_run_script() -> None:
    evil = "<script>alert(1)</script><img src=x onerror=alert(1)>"
    pages = [page(evil, block(f"Author:: {evil}"),
                  block(evil, block("[x](javascript:alert(1)) #card", uid="q")), uid="p")]
    spec = spec_for(pages)
    assert_harmless(spec.fields["Context"])
    assert_harmless(panel_of(pages))
    assert "&lt;script&gt;" in spec.fields["Context"]

"""Card marking rules: which blocks become cards, of what kind, in which deck, with which tags."""

from __future__ import annotations

import copy
import re

import pytest

from addon.core.cards import CardSpec, collect
from addon.core.clozes import ClozeSyntax, cloze_text
from addon.core.config import CardOptions
from addon.core.model import Graph
from addon.core.note_fields import NoteRenderer
from addon.core.sources.roam_json import build_graph
from tests.roam import block, find_block, page

BRACES = ClozeSyntax(brace=True)


class Card:
    """A card block's spec and its note's fields, as the renderer step gives them."""

    def __init__(self, spec: CardSpec, fields: dict[str, str]) -> None:
        self.spec, self.fields = spec, fields

    def __getattr__(self, name: str):
        return getattr(self.spec, name)


def rendered_cards(graph: Graph, options: CardOptions | None = None) -> list[Card]:
    """Every card of ``graph`` with its note's fields, as a first sync renders them."""
    options = options or CardOptions()
    renderer = NoteRenderer(graph, options)
    return [Card(spec, renderer.render(spec).fields) for spec in collect(graph, options)]


def cards_of(pages: list[dict], **options) -> dict[str, Card]:
    graph = build_graph(copy.deepcopy(pages), "g")
    return {card.uid: card for card in rendered_cards(graph, CardOptions(**options))}


@pytest.mark.parametrize(
    "marked", ["Q #card", "Q #[[card]]", "Q [[card]]", "Q #flashcard", "Q #anki", "Q #Card"]
)
def test_every_card_tag_form_marks_a_card_and_is_hidden(marked: str) -> None:
    specs = cards_of([page("P", block(marked, uid="q"))])
    assert specs["q"].fields["Front"] == "Q"


def test_card_tags_are_configurable() -> None:
    pages = [page("P", block("A #card", uid="a"), block("B #srs", uid="b"))]
    assert set(cards_of(pages, card_tags=("srs",))) == {"b"}


def test_unmarked_blocks_todos_and_tags_attributes_are_not_cards() -> None:
    pages = [page(
        "P",
        block("Tags:: #card #podcast", uid="attr"),
        block("{{[[TODO]]}} learn this", uid="todo"),
        block("just a note", uid="plain"),
        block("`#card` in code is not a mark", uid="code"),
    )]
    assert cards_of(pages) == {}


def test_front_is_the_block_and_back_its_children_without_attributes() -> None:
    pages = [page("P", block(
        "What is **X**? #card",
        block("deck:: Elsewhere"),
        block("X is a letter", block("nested detail")),
        block("also [[Y]]"),
        uid="q",
    ))]
    fields = cards_of(pages)["q"].fields
    assert fields["Front"] == "What is <strong>X</strong>?"
    assert "deck::" not in fields["Back"] and "Elsewhere" not in fields["Back"]
    assert fields["Back"] == (
        '<ul class="rb-children"><li>X is a letter<ul class="rb-children">'
        "<li>nested detail</li></ul></li>"
        '<li>also <span class="rb-page">Y</span></li></ul>'
    )


@pytest.mark.parametrize(
    ("text", "anki"),
    [
        ("Paris is {{c1::France}}'s capital", "Paris is {{c1::France}}'s capital"),
        ("{{cloze Paris}} is a capital", "{{c1::Paris}} is a capital"),
        ("{Paris} and {Rome}", "{{c1::Paris}} and {{c2::Rome}}"),
        ("{c2:Paris} and {Rome}", "{{c2::Paris}} and {{c1::Rome}}"),
        ("{{c1::a}} then {b}", "{{c1::a}} then {{c2::b}}"),
    ],
)
def test_cloze_syntaxes_become_anki_clozes(text: str, anki: str) -> None:
    assert cloze_text(text, BRACES) == anki


@pytest.mark.parametrize(
    "text", ["$$\\frac{a}{b}$$", "`{x}`", "{{[[TODO]]}} task", "{{embed: ((abc))}}", "plain"]
)
def test_braces_in_math_code_and_widgets_are_not_clozes(text: str) -> None:
    assert cloze_text(text, BRACES) is None


def test_highlight_counts_as_cloze_only_when_enabled() -> None:
    assert cloze_text("a ^^b^^ ==c==") is None
    assert cloze_text("a ^^b^^ ==c==", ClozeSyntax(highlight=True)) == "a {{c1::b}} {{c2::c}}"


def test_cloze_block_makes_a_cloze_note_with_children_as_back_extra() -> None:
    spec = cards_of([page("P", block("{Paris} is a capital #card", block("in France"),
                                     uid="c"))], brace_clozes=True)["c"]
    assert spec.kind == "cloze"
    assert spec.fields["Text"] == "{{c1::Paris}} is a capital"
    assert "in France" in spec.fields["Back Extra"]


def test_reversed_tag_and_direction_attribute_add_the_reverse_card() -> None:
    pages = [page(
        "P",
        block("A #card #reversed", block("a"), uid="tagged"),
        block("B #card", block("direction:: <->"), block("b"), uid="attr"),
        block("C #card", block("c"), uid="plain"),
    )]
    specs = cards_of(pages)
    assert specs["tagged"].reversed and specs["attr"].reversed
    assert not specs["plain"].reversed
    assert specs["tagged"].fields["Front"] == "A"
    assert specs["tagged"].fields["Add Reverse"] == "y"
    assert specs["plain"].fields["Add Reverse"] == ""


def test_deck_comes_from_block_then_ancestor_then_page_then_source_then_default() -> None:
    pages = [
        page("Decked",
             block("deck:: Page Deck"),
             block("Section", block("deck:: [[Section Deck]]"),
                   block("In section #card", uid="anc"),
                   block("Own #card", block("deck:: Own::Deck"), uid="own")),
             block("Top #card", uid="page")),
        page("Plain", block("Q #card", uid="fallback")),
    ]
    specs = cards_of(pages)
    assert specs["own"].deck == "Own::Deck"
    assert specs["anc"].deck == "Section Deck"
    assert specs["page"].deck == "Page Deck"
    assert specs["fallback"].deck == "Roam"
    assert cards_of(pages, default_deck="Mine")["fallback"].deck == "Mine"
    graph = build_graph(copy.deepcopy(pages), "g")
    by_source = {s.uid: s for s in collect(graph, CardOptions(), source_deck="From Source")}
    assert by_source["fallback"].deck == "From Source"
    assert by_source["page"].deck == "Page Deck"


def test_page_tags_become_note_tags() -> None:
    pages = [page(
        "Podcast notes",
        block("Anki Tag:: dwarkesh_gpt7"),
        block("Tags:: #[[Video]] #podcast [[Large Language Models (LLM)]]"),
        block("#[[Machine Learning]] #ai"),
        block("Q #card", uid="q"),
    )]
    assert cards_of(pages)["q"].tags == (
        "dwarkesh_gpt7", "roam::Video", "roam::podcast", "roam::Large_Language_Models_(LLM)",
        "roam::Machine_Learning", "roam::ai",
    )


def test_attribute_names_match_case_space_dash_and_underscore_alike() -> None:
    pages = [page("P", block("anki-tag:: mine"), block("Q #card", uid="q"))]
    assert cards_of(pages)["q"].tags == ("mine",)


@pytest.mark.parametrize(
    "pages",
    [
        [page("P", block("Q #card #no-card", uid="q"))],
        [page("P", block("Parent #no-card", block("Q #card", uid="q")))],
        [page("P", block("Parent", block("disable-anki-sync:: true"), block("Q #card", uid="q")))],
        [page("P", block("Tags:: #no-card"), block("Q #card", uid="q"))],
        [page("P", block("disable anki sync:: true"), block("Q #card", uid="q"))],
    ],
)
def test_no_card_on_block_ancestor_or_page_excludes(pages: list[dict]) -> None:
    assert cards_of(pages) == {}


def test_source_links_to_the_block_in_roam() -> None:
    source = cards_of([page("P", block("Q #card", uid="abc123XYZ"))])["abc123XYZ"]
    assert 'href="https://roamresearch.com/#/app/g/page/abc123XYZ"' in source.fields["Source"]


def test_source_hash_follows_every_input_the_card_shows() -> None:
    pages = [page(
        "P",
        block("Author:: A"),
        block("Parent", block("Q ((ref000001)) #card", block("answer", uid="ans"), uid="q")),
        block("ref text", uid="ref000001"),
        block("unrelated", uid="other"),
    )]
    base = cards_of(pages)["q"].source_hash
    assert cards_of(pages)["q"].source_hash == base

    def changed(uid: str, text: str) -> str:
        edited = copy.deepcopy(pages)
        find_block(edited, uid)["string"] = text
        return cards_of(edited)["q"].source_hash

    assert changed("other", "still unrelated") == base
    assert changed("ans", "new answer") != base
    assert changed("ref000001", "new ref text") != base
    parent_uid = pages[0]["children"][1]["uid"]
    assert changed(parent_uid, "Renamed parent") != base
    author_uid = pages[0]["children"][0]["uid"]
    assert changed(author_uid, "Author:: B") != base


def test_a_card_tag_inside_a_url_is_not_a_mark() -> None:
    assert cards_of([page("P", block("see https://example.com/docs/#anki", uid="u"))]) == {}
    spec = cards_of([page("P", block("Q https://x.org/#card #card", uid="q"))])["q"]
    assert 'href="https://x.org/#card"' in spec.fields["Front"]


def test_tags_attribute_mixes_links_and_plain_words() -> None:
    pages = [page("P", block("Tags:: [[Machine Learning]], physics, #stats"),
                  block("Q #card", uid="q"))]
    assert cards_of(pages)["q"].tags == ("roam::Machine_Learning", "roam::physics",
                                         "roam::stats")


LIVE_TEX = re.compile(r"\\(href|style|class|cssId|data|mmlToken|bbox)\b")


def test_tex_outside_math_markup_cannot_make_links_or_styles_on_the_card() -> None:
    """Anki typesets \\( \\) and \\[ \\] anywhere in a field, with no "safe" filter: TeX written
    as plain text (in the block, in code of a parent shown as a crumb, in a page title or an
    attribute name) must not reach the card as a live \\href or \\style."""
    tex = r"\(\href{javascript:alert(1)}{x}\)"
    pages = [page(
        f"Page {tex}",
        block(r"\[\style{background:url(https://e.example/a.png)}{x}\]:: v"),
        block(
            f"parent `{tex}`",
            block(f"Q {tex} #card", block(f"answer {tex}"), uid="q"),
            block(f"{{a}} {tex} #card", uid="c"),
        ),
    )]
    specs = cards_of(pages, brace_clozes=True)
    for spec in specs.values():
        for name, value in spec.fields.items():
            assert not LIVE_TEX.search(value), (name, value)
    # Still shown as written, apart from an invisible break after the backslash.
    shown = specs["q"].fields.get("Front") or specs["q"].fields["Text"]
    assert "href" in shown and "alert(1)" in shown

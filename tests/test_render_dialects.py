"""Each dialect's everyday markup, no false clozes, and card tags that are tags: input and HTML.

The dialect is the graph's source: Roam (JSON, EDN, Markdown export, API), Logseq, Obsidian.
Where the dialects differ, each case names the ones it holds for.
"""

from __future__ import annotations

import pytest

from addon.core.cards import collect
from addon.core.clozes import ClozeSyntax, cloze_text, has_cloze
from addon.core.config import CardOptions
from addon.core.model import Block, Graph, Page, parse_attribute
from addon.core.render import Renderer
from addon.core.sources.roam_json import build_graph
from tests.roam import block, page
from tests.test_cards import cards_of

ROAM, LOGSEQ, OBSIDIAN = "roam", "logseq", "obsidian"
MARKDOWN = (LOGSEQ, OBSIDIAN)
EVERY = (ROAM, LOGSEQ, OBSIDIAN)


def graph_of(dialect: str, *blocks: tuple[str, str]) -> Graph:
    graph = Graph(dialect, "g")
    home = graph.add_page(Page("Home", "home"))
    for uid, text in blocks:
        home.children.append(graph.add_block(Block(uid, text, home)))
    return graph


def render(text: str, dialect: str, graph: Graph | None = None) -> str:
    renderer = Renderer(graph or Graph(dialect, "g"), hidden_tags=["card"],
                        clozes=ClozeSyntax.of(dialect))
    return renderer.inline(text)


CASES = [
    # Emphasis: Roam's __ is italic, Markdown's bold; *x* and _x_ italic in Markdown only.
    (EVERY, "****bold****", "<strong>bold</strong>"),
    ((ROAM,), "__it__ *not* _not_", "<em>it</em> *not* _not_"),
    (MARKDOWN, "__bold__ *it* _it_", "<strong>bold</strong> <em>it</em> <em>it</em>"),
    (MARKDOWN, "***both*** and **bold *inside* it**",
     "<strong><em>both</em></strong> and <strong>bold <em>inside</em> it</strong>"),
    (MARKDOWN, "snake_case_name, 2 * 3 * 4 and \\*stars\\*",
     "snake_case_name, 2 * 3 * 4 and *stars*"),
    # Fences: ~~~ in Markdown; a fence on its own lines inside text; a ``` mid-line is text.
    (MARKDOWN, "~~~python\nx = **1**\n~~~",
     '<pre><code class="language-python">x = **1**\n</code></pre>'),
    (EVERY, "before\n```\ncode [[x]]\n```\nafter",
     "<p>before</p>\n<pre><code>code [[x]]\n</code></pre>\n<p>after</p>"),
    (MARKDOWN, "Type ``` to open a fence", "Type ``` to open a fence"),
    # Inline math in Markdown; dollars that are money stay money.
    (MARKDOWN, "$e^{2i\\pi} = 1$ but $5 and $10",
     '<span class="rb-math">\\(e^{2i\\pi} = 1\\)</span> but $5 and $10'),
    ((ROAM,), "$5 and $x$", "$5 and $x$"),
    # Callouts, and a quote holding a fence.
    ((OBSIDIAN,), "> [!warning] Mind the gap\n> between **trains**",
     '<blockquote class="rb-callout rb-callout-warning">\n<div class="rb-callout-title">'
     "<strong>Mind the gap</strong></div>\n<p>between <strong>trains</strong></p>\n"
     "</blockquote>"),
    ((OBSIDIAN,), "> [!tip]\n> short",
     '<blockquote class="rb-callout rb-callout-tip">\n<div class="rb-callout-title">'
     "<strong>Tip</strong></div>\n<p>short</p>\n</blockquote>"),
    (EVERY, "> said:\n> ```\n> x = 1\n> ```",
     "<blockquote>\n<p>said:</p>\n<pre><code>x = 1\n</code></pre>\n</blockquote>"),
    # Links: brackets in the text, escaped brackets, titles, autolinks.
    (EVERY, "[[2507.19457] A paper](https://arxiv.org/abs/2507.19457)",
     '<a href="https://arxiv.org/abs/2507.19457">[2507.19457] A paper</a>'),
    (EVERY, "[a \\[b\\] c](https://x.org)", '<a href="https://x.org">a [b] c</a>'),
    (EVERY, '[x](https://x.org "the title")', '<a href="https://x.org" title="the title">x</a>'),
    (EVERY, "see <https://x.org/a?b=1>",
     'see <a href="https://x.org/a?b=1">https://x.org/a?b=1</a>'),
    # Logseq: images with a size or spaces, org blocks, task markers and priorities.
    ((LOGSEQ,), "![a cat](https://x.org/my%20cat.png){:height 560, :width 960}",
     '<img alt="a cat" src="https://x.org/my%20cat.png">'),
    ((LOGSEQ,), "![a cat](../assets/my cat.png){:height 560, :width 960} ok",
     '<span class="rb-missing rb-image">a cat</span> ok'),
    ((LOGSEQ,), "#+BEGIN_QUOTE\nTo be, **or** not\n#+END_QUOTE",
     "<blockquote>\n<p>To be, <strong>or</strong> not</p>\n</blockquote>"),
    ((LOGSEQ,), "#+BEGIN_SRC python\nx = [[1]]\n#+END_SRC",
     '<pre><code class="language-python">x = [[1]]\n</code></pre>'),
    ((LOGSEQ,), "#+BEGIN_NOTE\nRead this\n#+END_NOTE",
     '<blockquote class="rb-callout rb-callout-note">\n<div class="rb-callout-title">'
     "<strong>Note</strong></div>\n<p>Read this</p>\n</blockquote>"),
    ((LOGSEQ,), "TODO [#A] write it", '<span class="rb-todo">☐</span> '
     '<span class="rb-priority">A</span> write it'),
    ((LOGSEQ,), "DONE written", '<span class="rb-done">☑</span> written'),
    ((LOGSEQ,), "LATER read", '<span class="rb-todo">☐</span> read'),
    ((ROAM, OBSIDIAN), "TODO is a word here", "TODO is a word here"),
    # Attributes need a space after "::".
    (EVERY, "std::move(x) moves", "std::move(x) moves"),
    (EVERY, "Studio::Bank::load() loads", "Studio::Bank::load() loads"),
    (EVERY, "Type:: book", '<span class="rb-attr-name">Type:</span> book'),
    # ((text)) that is no block uid stays as written; a query has no stray braces.
    (EVERY, "((see above)) and ((alsotext))", "((see above)) and ((alsotext))"),
    ((ROAM,), "{{[[query]]: {and: [[ex-A]] {not: [[ex-B]]}}}}",
     '<span class="rb-widget">query: and: ex-A not: ex-B</span>'),
    ((LOGSEQ,), "{{query (and [[a]] (task TODO))}}",
     '<span class="rb-widget">query (and a (task TODO))</span>'),
]


@pytest.mark.parametrize(
    ("dialect", "text", "html"),
    [(dialect, text, html) for dialects, text, html in CASES for dialect in dialects])
def test_markup_renders_as_each_dialect_shows_it(dialect: str, text: str, html: str) -> None:
    assert render(text, dialect) == html


def test_an_attribute_needs_a_space_after_its_colons() -> None:
    assert parse_attribute("std::move") is None
    assert parse_attribute("Studio::Bank::load()") is None
    assert parse_attribute("Type:: book") == ("Type", "book")
    assert parse_attribute("Empty::") == ("Empty", "")


def test_block_refs_inside_math_are_resolved() -> None:
    graph = graph_of(ROAM, ("numer0001", "a + b"), ("denom0001", "$$c^2$$"))
    out = render("$$\\frac{((numer0001))}{((denom0001))}$$", ROAM, graph)
    assert out == '<span class="rb-math rb-display">\\[\\frac{a + b}{c^2}\\]</span>'
    logseq = graph_of(LOGSEQ, ("64f0c1a2-0000-4000-8000-000000000001", "x"))
    assert render("$((64f0c1a2-0000-4000-8000-000000000001))^2$", LOGSEQ, logseq) == (
        '<span class="rb-math">\\(x^2\\)</span>')


def test_a_missing_uid_is_a_missing_block_but_other_text_in_parentheses_is_text() -> None:
    assert render("((abcdefghi))", ROAM) == '<span class="rb-ref rb-missing">[missing block]</span>'
    assert render("((not a uid))", ROAM) == "((not a uid))"


@pytest.mark.parametrize(("text", "html"), [
    ("Queries ask.\n[:div [:img {:src \"https://x.org/a__b.jpg\"}]]",
     'Queries ask.<br><span class="rb-widget">hiccup: [:div [:img {:src '
     '"https://x.org/a__b.jpg"}]]</span>'),
    ("[:hr]", '<span class="rb-widget">hiccup: [:hr]</span>'),
    ("a [:b] in a sentence", "a [:b] in a sentence"),
])
def test_a_line_of_logseq_hiccup_is_muted_text_never_html(text: str, html: str) -> None:
    assert render(text, LOGSEQ) == html
    assert "rb-widget" not in render(text, ROAM), "hiccup is Logseq's"


# No false clozes ---------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", EVERY)
@pytest.mark.parametrize("text", [
    "Let S = {1, 2, 3} be a set",
    "[{:tag :h3}Title](https://x.org)",
    "I_{0} is the current",
    "Costs $1 \\frac{2}{3}$ here",
    "{{query (and [[a]] {b})}} lists them",
    "![cat](cat.png){:height 560, :width 960}",
    "$$\\frac{a}{b}$$ and `{x}`",
])
def test_braces_in_ordinary_text_are_not_clozes(dialect: str, text: str) -> None:
    assert not has_cloze(text, ClozeSyntax.of(dialect))


@pytest.mark.parametrize("text", [
    "[{:tag :h3}Title](https://x.org)",
    "I_{0} is the current",
    "Costs $1 \\frac{2}{3}$ here",
    "![cat](cat.png){:height 560, :width 960}",
    "x^{2} and \\sqrt{2} and f(x)_{min}",
])
def test_with_brace_clozes_on_tex_and_edn_braces_are_still_not_clozes(text: str) -> None:
    assert not has_cloze(text, ClozeSyntax.of(ROAM, brace=True))


def test_which_cloze_syntaxes_each_dialect_reads() -> None:
    text = "{{c1::a}}, {{cloze b}}, {c3:c}, {d}, ^^e^^ and ==f=="
    for dialect in EVERY:
        syntax = ClozeSyntax.of(dialect)
        assert cloze_text(text, syntax) == (
            "{{c1::a}}, {{c2::b}}, {{c3::c}}, {d}, ^^e^^ and ==f==")
        assert cloze_text(text, ClozeSyntax.of(dialect, brace=True, highlight=True)) == (
            "{{c1::a}}, {{c2::b}}, {{c3::c}}, {{c4::d}}, {{c5::e}} and {{c6::f}}")
    assert has_cloze("$x {a}$", ClozeSyntax.of(ROAM, brace=True))
    assert not has_cloze("$x {a}$", ClozeSyntax.of(OBSIDIAN, brace=True))  # inline math


@pytest.mark.parametrize(("text", "anki"), [
    # Logseq's own docs (pages/Cloze.md of logseq/docs) write a cue after " \\\\ ".
    ("Most apples are {{cloze red \\\\ color}}.", "Most apples are {{c1::red::color}}."),
    ("The regular expression {{cloze \\\\ \\\\}} matches a backslash.",
     "The regular expression {{c1::\\\\}} matches a backslash."),
    ("{{cloze a \\\\ b \\\\ the cue}}", "{{c1::a \\\\ b::the cue}}"),
    ("{{cloze no cue}}", "{{c1::no cue}}"),
])
def test_a_logseq_cloze_cue_is_anki_s_hint(text: str, anki: str) -> None:
    assert cloze_text(text, ClozeSyntax.of(LOGSEQ)) == anki


def test_a_cloze_outside_its_own_card_shows_its_content_not_braces() -> None:
    pages = [page("P", block("Parent with {{c1::a cloze}}", block(
        "{{cloze Paris}} is #card", block("child {c1:shown} and {{c2::too}}"), uid="c")))]
    card = cards_of(pages)["c"]
    assert card.fields["Text"] == "{{c1::Paris}} is"
    assert card.fields["Back Extra"] == (
        '<ul class="rb-children"><li>child <span class="rb-cloze">shown</span> and '
        '<span class="rb-cloze">too</span></li></ul>')
    assert 'Parent with <span class="rb-cloze">a cloze</span>' in card.fields["Context"]


def test_cloze_text_holds_no_marker_but_its_own() -> None:
    """Code in a cloze note's text that spells a cloze must not give Anki a card."""
    pages = [page("P", block("{{c1::real}} and `{{c2::in code}}` #card", uid="c"))]
    text = cards_of(pages)["c"].fields["Text"]
    assert "{{c1::real}}" in text and "{{c2::" not in text
    assert "<code>{&#123;c2::in code}}</code>" in text


# A card tag is a tag ----------------------------------------------------------------------


def test_a_card_tag_used_as_a_word_does_not_make_a_card() -> None:
    pages = [page("P", block("I review my [[Anki]] deck every morning", uid="word"),
                  block("What does [[Anki]] schedule? #card", uid="q"),
                  block("A [[card]] in the middle is a link too", uid="mid"),
                  block("Question? [[card]] #reversed", block("a"), uid="end"))]
    cards = cards_of(pages)
    assert set(cards) == {"q", "end"}
    assert cards["q"].fields["Front"] == (
        'What does <span class="rb-page">Anki</span> schedule?')
    assert cards["end"].fields["Front"] == "Question?" and cards["end"].reversed


@pytest.mark.parametrize(("dialect", "marks"), [
    (ROAM, {"a", "b", "c"}), (LOGSEQ, {"a", "b", "c"}), (OBSIDIAN, {"a", "b"})])
def test_which_tag_forms_mark_a_card_in_each_dialect(dialect: str, marks: set[str]) -> None:
    graph = build_graph([page("P", block("A #card", uid="a"), block("B #[[card]]", uid="b"),
                              block("C [[card]]", uid="c"))], "g")
    graph.source = dialect
    assert {s.uid for s in collect(graph, CardOptions())} == marks


def test_a_parent_crumb_hides_its_card_tag_but_keeps_a_word() -> None:
    pages = [page("P", block("Parent about [[Anki]] decks #card",
                             block("Child? #card", uid="k"), uid="p"))]
    context = cards_of(pages)["k"].fields["Context"]
    assert 'Parent about <span class="rb-page">Anki</span> decks</a>' in context
    assert "#card" not in context


# Breadcrumbs -------------------------------------------------------------------------------


def test_breadcrumbs_show_math_code_and_lines_as_the_card_does() -> None:
    long_math = "$$" + " + ".join(f"x_{i}" for i in range(30)) + "$$"
    pages = [page("P", block("$$E = mc^2$$", block("line one\nline two", block(
        "`code` and **bold**", block(f"see {long_math} here", block("Q? #card", uid="q")))),
        uid="math"))]
    context = cards_of(pages)["q"].fields["Context"]
    assert '<span class="rb-math">\\(E = mc^2\\)</span></a>' in context
    assert ">line one line two</a>" in context
    assert "><code>code</code> and <strong>bold</strong></a>" in context
    # A formula too long for a crumb is left out whole, never cut in the middle.
    assert ">see …</a>" in context and "x_29" not in context

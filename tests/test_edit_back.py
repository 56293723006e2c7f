"""An Anki edit becomes block markup only when rendering that markup gives the edit back."""

from __future__ import annotations

import pytest

from addon.core.clozes import ClozeSyntax, cloze_text
from addon.core.edit_back import block_text, same, transplant
from addon.core.markup import to_markup


@pytest.mark.parametrize(("html", "dialect", "markup"), [
    ("<strong>bold</strong> and <b>also</b>", "roam", "**bold** and **also**"),
    ("<em>it</em> <i>too</i>", "roam", "__it__ __too__"),
    ("<em>it</em>", "logseq", "*it*"),
    ("<mark>hi</mark>", "roam", "^^hi^^"),
    ("<mark>hi</mark>", "obsidian", "==hi=="),
    ("<del>no</del> <s>nor</s>", "roam", "~~no~~ ~~nor~~"),
    ("<code>a &lt; b</code>", "roam", "`a < b`"),
    ('<a href="https://example.com/x">a link</a>', "roam", "[a link](https://example.com/x)"),
    ('<span class="rb-page">Machine Learning</span>', "roam", "[[Machine Learning]]"),
    ('<span class="rb-page" data-page="ML">Machine Learning</span>', "roam", "[[ML]]"),
    ('<span class="rb-tag">#ml</span> <span class="rb-tag">#two words</span>', "roam",
     "#ml #[[two words]]"),
    ('<span class="rb-math">\\(e^{i\\pi}\\)</span>', "roam", "$$e^{i\\pi}$$"),
    ('<span class="rb-math">\\(e^{i\\pi}\\)</span>', "obsidian", "$e^{i\\pi}$"),
    ("one<br>two", "roam", "one\ntwo"),
    # Found in the Logseq docs graph: a link's label keeps its emphasis and code, and italic
    # around bold is written the way that reads back as italic around bold.
    ('<a href="https://x.org"><strong>join</strong></a>', "logseq", "[**join**](https://x.org)"),
    ('<a href="https://x.org"><code>beta</code> channel</a>', "logseq",
     "[`beta` channel](https://x.org)"),
    ("<em><strong>Linked references</strong></em>", "logseq", "_**Linked references**_"),
    ("<em>Child <strong>D</strong></em>", "obsidian", "_Child **D**_"),
    ("<em><strong>both</strong></em>", "roam", "__**both**__"),
    ("a&nbsp;b", "roam", "a b"),
])
def test_field_html_reads_back_as_the_dialects_markup(html: str, dialect: str, markup: str
                                                      ) -> None:
    assert to_markup(html, dialect) == markup  # type: ignore[arg-type]


@pytest.mark.parametrize("html", [
    '<span class="rb-ref">a block ref</span>',
    '<div class="rb-embed">an embed</div>',
    '<span class="rb-widget">{{query}}</span>',
    '<img src="x.png">',
    "<ul><li>a list</li></ul>",
    '<a href="javascript:alert(1)">x</a>',
    "<u>underlined</u>",
])
def test_what_has_no_markup_of_its_own_is_not_guessed(html: str) -> None:
    assert to_markup(html, "roam") is None


def test_a_typo_fix_is_transplanted_into_the_markup_around_it() -> None:
    original = "What does **knowledge distilation** do? #card"
    assert transplant(original, "What does knowledge distilation do?",
                      "What does knowledge distillation do?") == (
        "What does **knowledge distillation** do? #card")


def test_a_change_on_text_the_markup_does_not_hold_is_not_transplanted() -> None:
    # The "…" of a shortened ref has no counterpart in the block's text.
    assert transplant("See ((abc123def))", "See the referenced block",
                      "See the other block") is None


def test_the_editors_spellings_count_as_the_same() -> None:
    assert same("<strong>x</strong>&nbsp;y", "<b>x</b> y")
    assert not same("<strong>x</strong>", "<em>x</em>")


def _render(markup: str) -> str:
    """A toy renderer standing in for the bridge's (the real one is tested through sync)."""
    html = markup.replace(" #card", "")
    while "**" in html:
        html = html.replace("**", "<strong>", 1).replace("**", "</strong>", 1)
    return html


def test_a_candidate_is_accepted_only_when_it_renders_to_the_edit() -> None:
    original = "A **bold** claim #card"
    assert block_text("A <b>bold</b> claim, fixed", "A <strong>bold</strong> claim", original,
                      "roam", _render, ["card"]) == "A **bold** claim, fixed #card"
    assert block_text("A <u>bold</u> claim", "A <strong>bold</strong> claim", original, "roam",
                      _render, ["card"]) is None  # underline has no markup: kept in Anki


def test_clozes_are_written_back_in_the_syntax_the_block_used() -> None:
    original = "{Paris} is the capital #card"

    def render(markup: str) -> str:
        return markup.replace(" #card", "").replace("{Paris}", "{{c1::Paris}}").replace(
            "{France}", "{{c2::France}}")

    assert block_text("{{c1::Paris}} is the capital of {{c2::France}}",
                      "{{c1::Paris}} is the capital", original, "roam", render, ["card"]) == (
        "{Paris} is the capital of {France} #card")


def test_a_logseq_cue_goes_back_as_a_cue() -> None:
    original = "Most apples are {{cloze red \\\\ color}}. #card"

    def render(markup: str) -> str:
        return cloze_text(markup.replace(" #card", ""), ClozeSyntax.of("logseq")) or markup

    edited = "Most apples are {{c1::green::color}}."
    assert block_text(edited, "Most apples are {{c1::red::color}}.", original, "logseq",
                      render, ["card"]) == "Most apples are {{cloze green \\\\ color}}. #card"

"""Baseline rendering: Roam's everyday markup as HTML, and block text always treated as data."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from addon.core.model import Block, Graph, Page
from addon.core.render import Renderer


def graph_with(*blocks: tuple[str, str]) -> Graph:
    graph = Graph("roam", "g")
    home = graph.add_page(Page("Home", "home"))
    for uid, text in blocks:
        home.children.append(graph.add_block(Block(uid, text, home)))
    return graph


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("plain words", "plain words"),
        ("**bold**", "<strong>bold</strong>"),
        ("__italic__", "<em>italic</em>"),
        ("^^highlight^^", "<mark>highlight</mark>"),
        ("~~struck~~", "<del>struck</del>"),
        ("`a **b** [[c]]`", "<code>a **b** [[c]]</code>"),
        ("[[Some Page]]", '<span class="rb-page">Some Page</span>'),
        ("#tag", '<span class="rb-tag">#tag</span>'),
        ("#[[multi word]]", '<span class="rb-tag">#multi word</span>'),
        ("[[a [[b]] c]]", '<span class="rb-page">a b c</span>'),
        ("[[[[AI]] Agents]]", '<span class="rb-page">AI Agents</span>'),
        ("[alias](https://example.com/x)", '<a href="https://example.com/x">alias</a>'),
        ("$$E = mc^2$$", "<span class=\"rb-math rb-display\">\\[E = mc^2\\]</span>"),
        ("so $$E = mc^2$$", "so <span class=\"rb-math\">\\(E = mc^2\\)</span>"),
        ("{{[[TODO]]}} write", '<span class="rb-todo">☐</span> write'),
        ("line one\nline two", "line one<br>line two"),
        ("tag at end #done.", 'tag at end <span class="rb-tag">#done</span>.'),
        ("(#inside) parens", '(<span class="rb-tag">#inside</span>) parens'),
    ],
)
def test_markup_renders_as_styled_html(text: str, html: str) -> None:
    assert Renderer().inline(text) == html


def test_hash_inside_words_and_urls_is_not_a_tag() -> None:
    out = Renderer().inline("C# is fine; see https://roamresearch.com/#/app/g")
    assert "rb-tag" not in out
    assert '<a href="https://roamresearch.com/#/app/g">' in out


def test_hidden_tags_render_as_nothing_in_every_form() -> None:
    renderer = Renderer(hidden_tags=["card"])
    for text in ("Question #card", "Question #[[card]]", "Question [[card]]", "Question #Card"):
        assert renderer.inline(text) == "Question"


def test_block_ref_shows_the_target_block_rendered() -> None:
    graph = graph_with(("target123", "the **answer**"))
    out = Renderer(graph).inline("see ((target123))")
    assert out == 'see <span class="rb-ref">the <strong>answer</strong></span>'


def test_block_ref_cycles_and_missing_targets_end_in_a_muted_placeholder() -> None:
    graph = graph_with(("aaaaaaaaa", "A says ((bbbbbbbbb))"), ("bbbbbbbbb", "B says ((aaaaaaaaa))"))
    out = Renderer(graph).inline("((aaaaaaaaa))")
    assert "A says" in out and "B says" in out
    assert out.count("A says") == 1
    assert "((" not in out
    missing = Renderer(graph).inline("((nowhere99))")
    assert "rb-missing" in missing and "((" not in missing


def test_cloze_markers_survive_with_their_content_rendered() -> None:
    out = Renderer().inline("{{c1::**Paris**::city}} is in {{c2::[[France]]}}", cloze=True)
    assert out == ('{{c1::<strong>Paris</strong>::city}} is in '
                   '{{c2::<span class="rb-page">France</span>}}')


HOSTILE = [
    "<script>alert(1)</script><img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "[click](javascript:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD4=)",
    "![x](javascript:alert(1))",
    '<svg onload="alert(1)">',
    '[x](https://ok.example/" onmouseover="alert(1))',
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    '<style>body{background:url("javascript:alert(1)")}</style>',
    # schemes in every disguise
    "[x](JaVaScRiPt:alert(1))",
    "[x](java&#x09;script:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](vbscript:msgbox(1))",
    "[x](//evil.example/a)",
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    '![x](https://x.example/"onerror="alert(1))',
    "{{iframe: javascript:alert(1)}}",
    "{{video: data:text/html;base64,PHNjcmlwdD4=}}",
    "{{pdf: file:///etc/passwd}}",
    # markup inside our own constructs
    "<svg><script>alert(1)</script></svg>",
    '<div style="width:expression(alert(1))">x</div>',
    "[[<img src=x onerror=alert(1)>]]",
    "#<b>tag</b>",
    "x<b onclick=alert(1)>:: y",
    "{{=: <b>a</b> | <i onmouseover=alert(1)>b</i>}}",
    "[<img src=x onerror=alert(1)>]([[Page]])",
    "{{embed: [[<script>]]}}",
    "```html\n<script>alert(1)</script>\n```",
    "`<script>alert(1)</script>`",
    "$$\\href{javascript:alert(1)}{x}$$",
    # entities split across markup
    "&l**t;**script&g**t;**alert(1)&lt;/script&gt;",
    "&#x3C;script&#x3E;alert(1)&#x3C;/script&#x3E;",
    "&#60;img src=x onerror=alert(1)&#62;",
    "<scr__ipt__>alert(1)</script>",
]


class _Elements(HTMLParser):
    """Every element and attribute a browser would build from the HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def assert_harmless(out: str) -> None:
    parser = _Elements()
    parser.feed(out)
    for tag, attrs in parser.found:
        assert tag not in {"script", "style", "svg", "iframe", "object", "embed"}, out
        for name, value in attrs.items():
            assert not name.startswith("on") and name != "style", out
            if name == "href":
                assert (value or "").startswith(("http://", "https://", "roam://",
                                                 "logseq://", "obsidian://")), out
            if name == "src":
                assert (value or "").startswith(("http://", "https://")) or (
                    value and "/" not in value and ":" not in value and ".." not in value), out


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_block_text_is_shown_as_harmless_text(text: str) -> None:
    assert_harmless(Renderer().inline(text))


def test_xss_block_is_visible_text() -> None:
    out = Renderer().inline("<script>alert(1)</script><img src=x onerror=alert(1)>")
    assert out == ("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;")


def test_urls_with_balanced_parentheses_stay_whole() -> None:
    url = "https://en.wikipedia.org/wiki/Mercury_(planet)"
    assert Renderer().inline(f"[Mercury]({url})") == f'<a href="{url}">Mercury</a>'
    assert Renderer().inline(f"see {url}.") == f'see <a href="{url}">{url}</a>.'


@pytest.mark.parametrize("command", ["href", "style", "class", "cssId", "data", "unicode"])
def test_math_cannot_make_links_or_styles(command: str) -> None:
    out = Renderer().inline(f"$$\\{command}{{javascript:alert(1)}}{{x}}$$")
    assert f"\\{command}{{" not in out and f"\\text{{{command}}}" in out


def test_math_cannot_make_links_through_mml_tokens() -> None:
    # MathJax's \mmlToken takes href, style and class attributes; Anki loads no "safe" filter.
    out = Renderer().inline('$$\\mmlToken{mi}[href="javascript:alert(1)",style="x"]{x}$$')
    assert "\\mmlToken" not in out and "\\text{mmlToken}" in out


def test_entities_show_as_written_never_as_markup() -> None:
    out = Renderer().inline("&#x3C;script&#x3E; and &lt;b&gt; **x**")
    assert out == "&amp;#x3C;script&amp;#x3E; and &amp;lt;b&amp;gt; <strong>x</strong>"


@pytest.mark.parametrize("name", ["javascript:alert(1)", "../../etc/passwd", "/etc/passwd",
                                  'a" onerror="alert(1).png', "data:image/png;base64,AAAA",
                                  ".hidden.png", "sub/dir.png"])
def test_an_image_resolver_cannot_smuggle_a_bad_src(name: str) -> None:
    renderer = Renderer(images=lambda src, page: name)
    for text in ("![a](https://x.example/a.png)", "![a](../assets/a.png)"):
        out = renderer.inline(text)
        assert_harmless(out)
        assert out == '<span class="rb-missing rb-image">a</span>'


def test_deep_links_to_the_notes_apps_are_links() -> None:
    for url in ("roam://x", "logseq://graph/g?page=p", "obsidian://open?vault=v"):
        assert Renderer().inline(f"[go]({url})") == f'<a href="{url}">go</a>'

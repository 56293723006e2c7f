"""Every piece of Roam syntax (and the Logseq/Obsidian variants), as input and expected HTML."""

from __future__ import annotations

import pytest

from addon.core.model import Graph, Page
from addon.core.render import Renderer, image_sources, plain_text
from addon.core.sources.roam_json import build_graph
from tests.roam import block, page


def notes() -> Graph:
    return build_graph([
        page("Home",
             block("Embedded **text**", block("first child"), block("second child"),
                   uid="embedded1"),
             block("Parent", block("Leaf block", uid="leafblock"), uid="parent001"),
             block("{{[[table]]}}",
                   block("Name", block("Capital", uid="cap000001"), uid="row000001"),
                   block("France", block("**Paris**"), uid="row000002"),
                   uid="table0001"),
             block("Loop {{embed: ((selfloop1))}}", uid="selfloop1"),
             block("A big title", uid="heading01", heading=2),
             uid="home"),
        page("Reading", block("top one", block("under it")), block("top two")),
    ], "g")


def render(text: str) -> str:
    return Renderer(notes()).inline(text)


@pytest.mark.parametrize(
    ("text", "html"),
    [
        # Code: fenced with a language, inline left untouched by every other rule
        ("```python\nx = **1**\n\ny = [[2]]\n```",
         '<pre><code class="language-python">x = **1**\n\ny = [[2]]\n</code></pre>'),
        ("```\nplain\n```", "<pre><code>plain\n</code></pre>"),
        ("run ```sh\nls -l``` now", 'run <code class="rb-fence language-sh">ls -l</code> now'),
        ("`{{[[TODO]]}} ((embedded1)) $$x$$ #t`",
         "<code>{{[[TODO]]}} ((embedded1)) $$x$$ #t</code>"),
        # Checkboxes
        ("{{[[TODO]]}} write", '<span class="rb-todo">☐</span> write'),
        ("{{TODO}} write", '<span class="rb-todo">☐</span> write'),
        ("{{[[DONE]]}} written", '<span class="rb-done">☑</span> written'),
        # Alias links
        ("[the page]([[Some Page]])",
         '<span class="rb-page rb-alias" title="Some Page">the page</span>'),
        ("[that block](((embedded1)))", '<span class="rb-ref rb-alias">that block</span>'),
        ("[that block](<((embedded1))>)", '<span class="rb-ref rb-alias">that block</span>'),
        ("[**bold** site](https://example.com)",
         '<a href="https://example.com"><strong>bold</strong> site</a>'),
        # Media widgets
        ("{{[[video]]: https://www.youtube.com/watch?v=dQw4w9WgXcQ}}",
         '<a class="rb-media" href="https://www.youtube.com/watch?v=dQw4w9WgXcQ">'
         '<img alt="" class="rb-thumb" src="https://img.youtube.com/vi/dQw4w9WgXcQ/hqdefault.jpg">'
         '<span class="rb-media-label">YouTube · youtube.com</span></a>'),
        ("{{youtube: https://youtu.be/dQw4w9WgXcQ}}",
         '<a class="rb-media" href="https://youtu.be/dQw4w9WgXcQ">'
         '<img alt="" class="rb-thumb" src="https://img.youtube.com/vi/dQw4w9WgXcQ/hqdefault.jpg">'
         '<span class="rb-media-label">YouTube · youtu.be</span></a>'),
        ("{{video: https://vimeo.com/123}}",
         '<a class="rb-media" href="https://vimeo.com/123">'
         '<span class="rb-media-label">Video · vimeo.com</span></a>'),
        ("{{iframe: https://example.org/app}}",
         '<a class="rb-media" href="https://example.org/app">'
         '<span class="rb-media-label">Web page · example.org</span></a>'),
        ("{{pdf: https://arxiv.org/pdf/1706.03762}}",
         '<a class="rb-media" href="https://arxiv.org/pdf/1706.03762">'
         '<span class="rb-media-label">PDF · arxiv.org</span></a>'),
        # Attributes
        ("Author:: [[Ada Lovelace]]",
         '<span class="rb-attr-name">Author:</span> <span class="rb-page">Ada Lovelace</span>'),
        ("[[Source]]:: a book", '<span class="rb-attr-name">Source:</span> a book'),
        # Emphasis in the name renders too: no raw ** or __ left in what is shown.
        ("**Key**:: v", '<span class="rb-attr-name"><strong>Key</strong>:</span> v'),
        ("__Note__ on it:: v", '<span class="rb-attr-name"><em>Note</em> on it:</span> v'),
        # Quotes and rules
        ("> to be or not", "<blockquote>\n<p>to be or not</p>\n</blockquote>"),
        ("[[>]] to be or not", "<blockquote>\n<p>to be or not</p>\n</blockquote>"),
        ("---", "<hr>"),
        # Click to reveal
        ("{{=: Capital of France | **Paris**}}",
         '<details class="rb-reveal"><summary>Capital of France</summary>'
         "<span><strong>Paris</strong></span></details>"),
        # Widgets we cannot run: muted literal text, never braces or brackets
        ("{{[[query]]: {and: [[a]] {or: [[b]] [[c]]}}}}",
         '<span class="rb-widget">query: and: a or: b c</span>'),
        ("{{roam/render: ((leafblock))}}",
         '<span class="rb-widget">roam/render: Leaf block</span>'),
        ("{{calc: 1 + 2}}", '<span class="rb-widget">calc: 1 + 2</span>'),
        ("{{word-count}}", '<span class="rb-widget">word-count</span>'),
        # Line breaks and math
        ("one\ntwo\nthree", "one<br>two<br>three"),
        ("$$\\sum_i x_i$$", '<span class="rb-math rb-display">\\[\\sum_i x_i\\]</span>'),
        ("so $$a^2$$ holds", 'so <span class="rb-math">\\(a^2\\)</span> holds'),
        # Tags
        ("#[[a/b]]", '<span class="rb-tag">#a/b</span>'),
        ("#c++ #Q&A #v1.2 #don't #2024-01-01",
         '<span class="rb-tag">#c++</span> <span class="rb-tag">#Q&amp;A</span> '
         '<span class="rb-tag">#v1.2</span> <span class="rb-tag">#don\'t</span> '
         '<span class="rb-tag">#2024-01-01</span>'),
        ("see #idea, then", 'see <span class="rb-tag">#idea</span>, then'),
        # Logseq and Obsidian variants
        ("==marked== but a == b", "<mark>marked</mark> but a == b"),
        ("{{cloze Paris}} is the capital", '<span class="rb-cloze">Paris</span> is the capital'),
        # Deep links into the notes apps
        ("[open](obsidian://open?vault=v&file=x)",
         '<a href="obsidian://open?vault=v&amp;file=x">open</a>'),
        ("logseq://graph/g?page=p",
         '<a href="logseq://graph/g?page=p">logseq://graph/g?page=p</a>'),
        # Images
        ("![a cat](https://example.com/cat.png)",
         '<img alt="a cat" src="https://example.com/cat.png">'),
        ("![a cat](../assets/cat.png){:height 120, :width 300}",
         '<span class="rb-missing rb-image">a cat</span>'),
    ],
)
def test_syntax_renders_as_html(text: str, html: str) -> None:
    assert render(text) == html


def test_block_embed_shows_the_block_and_its_children() -> None:
    for text in ("{{embed: ((embedded1))}}", "{{[[embed]]: ((embedded1))}}"):
        assert render(text) == (
            '<div class="rb-embed">Embedded <strong>text</strong><ul class="rb-children">'
            "<li>first child</li><li>second child</li></ul></div>"
        )


def test_embed_path_shows_where_the_block_lives() -> None:
    assert render("{{embed-path: ((leafblock))}}") == (
        '<div class="rb-embed"><div class="rb-embed-path">Home › Parent</div>Leaf block</div>'
    )


def test_embed_children_shows_only_the_children() -> None:
    assert render("{{embed-children: ((embedded1))}}") == (
        '<div class="rb-embed"><ul class="rb-children"><li>first child</li>'
        "<li>second child</li></ul></div>"
    )


def test_page_embed_shows_the_page_top_blocks() -> None:
    assert render("{{embed: [[Reading]]}}") == (
        '<div class="rb-embed"><div class="rb-embed-title">Reading</div>'
        '<ul class="rb-children"><li>top one<ul class="rb-children"><li>under it</li></ul></li>'
        "<li>top two</li></ul></div>"
    )


def test_embed_cycles_and_missing_targets_end_in_a_muted_placeholder() -> None:
    graph = notes()
    out = Renderer(graph).block(graph.blocks["selfloop1"])
    assert out.count("Loop") == 2, "the block once, then itself embedded once"
    assert out.endswith('<span class="rb-ref rb-missing">[…]</span></div>')
    assert "{{" not in out and "((" not in out
    assert "rb-missing" in render("{{embed: ((nowhere99))}}")
    assert "rb-missing" in render("{{embed: [[No Such Page]]}}")


def test_embeds_nest_only_to_the_depth_limit() -> None:
    chain = [block(f"level {i} {{{{embed: ((chain{i + 1:05d}))}}}}", uid=f"chain{i:05d}")
             for i in range(12)]
    graph = build_graph([page("Chain", *chain)], "g")
    out = Renderer(graph).inline("{{embed: ((chain00000))}}")
    assert "level 4" in out and "level 5" not in out
    assert "[…]" in out


def test_table_children_are_rows_and_first_children_are_cells() -> None:
    graph = notes()
    renderer = Renderer(graph)
    table = graph.blocks["table0001"]
    assert renderer.block(table) == (
        '<table class="rb-table"><tbody><tr><td>Name</td><td>Capital</td></tr>'
        "<tr><td>France</td><td><strong>Paris</strong></td></tr></tbody></table>"
    )
    assert renderer.renders_children(table)
    assert not renderer.renders_children(graph.blocks["embedded1"])


def test_a_table_without_its_block_stays_muted_text() -> None:
    assert render("{{[[table]]}}") == '<span class="rb-widget">table</span>'


def test_heading_blocks_render_as_headings_and_read_plain_in_breadcrumbs() -> None:
    graph = notes()
    out = Renderer(graph).block(graph.blocks["heading01"])
    assert out == "<h2>A big title</h2>"
    assert plain_text(out) == "A big title"


def test_pipe_aliases_only_outside_roam() -> None:
    logseq = Graph("logseq", "l")
    assert Renderer(logseq).inline("[[Real Page|shown]]") == (
        '<span class="rb-page" title="Real Page">shown</span>'
    )
    assert Renderer(logseq).inline("#[[Real Page|shown]]") == '<span class="rb-tag">#shown</span>'
    assert render("[[a|b]]") == '<span class="rb-page">a|b</span>'


def test_logseq_property_lines_are_hidden() -> None:
    logseq = Graph("logseq", "l")
    text = "What is X?\nid:: 64f0c1a2-1111\ncollapsed:: true\ndeck:: Science\nX is **this**"
    assert Renderer(logseq).inline(text) == "What is X?<br>X is <strong>this</strong>"
    assert "id::" in render("a\nid:: kept in Roam")


class Images:
    """An ImageResolver that records its calls and knows one file."""

    def __init__(self, known: dict[str, str]) -> None:
        self.known = known
        self.calls: list[tuple[str, Page | None]] = []

    def __call__(self, src: str, page: Page | None) -> str | None:
        self.calls.append((src, page))
        return self.known.get(src)


def test_images_resolve_through_the_resolver_with_their_page() -> None:
    graph = build_graph([page("Pics", block("![cat](../assets/cat.png) and "
                                            "![dog](https://x.org/dog.png) and "
                                            "![gone](../assets/gone.png)", uid="pics00001"))], "g")
    images = Images({"../assets/cat.png": "cat-1a2b.png"})
    out = Renderer(graph, images=images).block(graph.blocks["pics00001"])
    assert out == ('<img alt="cat" src="cat-1a2b.png"> and '
                   '<img alt="dog" src="https://x.org/dog.png"> and '
                   '<span class="rb-missing rb-image">gone</span>')
    assert [src for src, _ in images.calls] == [
        "../assets/cat.png", "https://x.org/dog.png", "../assets/gone.png"]
    assert all(p is graph.pages["Pics"] for _, p in images.calls)


def test_inline_passes_its_page_to_the_resolver() -> None:
    images = Images({"https://x.org/a.png": "a.png"})
    where = Page("Somewhere")
    assert Renderer(images=images).inline("![a](https://x.org/a.png)", page=where) == (
        '<img alt="a" src="a.png">')
    assert images.calls == [("https://x.org/a.png", where)]


def test_image_sources_lists_every_image_outside_code() -> None:
    text = ("![a](https://x.org/a.png) `![b](b.png)` ![c](<../assets/my file.png>)\n"
            "```\n![d](d.png)\n``` ![e](../e.png){:width 20} ![a](https://x.org/a.png)")
    assert image_sources(text) == ["https://x.org/a.png", "../assets/my file.png",
                                   "../e.png", "https://x.org/a.png"]
    assert image_sources("no images [x](y)") == []

"""Roam markup -> safe HTML, through python-markdown and one extension of our own.

Guarantees:
- block text is data: raw HTML in a block is shown as text, never passed through;
- only http(s) URLs become links or images;
- Anki's cloze markers ``{{cN::…}}`` survive rendering, with their content rendered;
- ``((uid))`` block refs are replaced by the target's rendered text, with a depth limit and a
  cycle guard; a missing target shows as a muted placeholder, never as raw parentheses.

A Renderer is not thread-safe: it reuses its Markdown instances (building one costs far more
than converting a block). Use one Renderer per thread.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as etree
from collections.abc import Iterable

import markdown
from markdown.extensions import Extension
from markdown.inlinepatterns import InlineProcessor

from .model import Block, Graph

REF_DEPTH_LIMIT = 5

REF = re.compile(r"\(\(([\w-]{5,})\)\)")
_SAFE_URL = re.compile(r"https?://[^\s\"'<>]+\Z", re.IGNORECASE)
# Text with none of these characters renders as itself, escaped: skip markdown entirely.
_NEEDS_MARKDOWN = re.compile(r"[`*_^~\[\]()#{}$>!&\n\\]|https?:|^\s*-{3,}", re.IGNORECASE)
# A link target: no spaces, parentheses only balanced one level deep, as in
# https://en.wikipedia.org/wiki/Mercury_(planet)
_URL_BODY = r"(?:[^()\s]|\([^()\s]*\))+"
# MathJax commands that make links, styles or raw HTML: shown as text, never run.
_UNSAFE_TEX = re.compile(r"\\(href|style|class|cssId|data|unicode|require|html|fbox|bbox)\b")
_EMPHASIS_TAGS = {"**": "strong", "__": "em", "^^": "mark", "~~": "del"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TAGS = re.compile(r"<[^>]*>")
_ONE_PARAGRAPH = re.compile(r"\A<p>((?:(?!<p>).)*)</p>\Z", re.DOTALL)
# Markdown's block syntax we keep: blank-line paragraphs, quotes, rules. Without any of it,
# a block is one paragraph and only the inline patterns need to run.
_BLOCK_SYNTAX = re.compile(r"\n\s*\n|^[ \t]*>|^[ \t]*(?:-[ \t]*){3,}$", re.MULTILINE)


def is_safe_url(url: str) -> bool:
    return bool(_SAFE_URL.match(url))


def page_title_text(inner: str) -> str:
    """``[[a [[b]] c]]`` shows as ``a b c``: nested link brackets are dropped."""
    return inner.replace("[[", "").replace("]]", "")


def find_closing(data: str, start: int) -> int:
    """Index just past the ``]]`` that balances the ``[[`` ending at ``start``, or -1."""
    depth, i, n = 1, start, len(data)
    while i < n - 1:
        pair = data[i : i + 2]
        if pair == "[[":
            depth += 1
            i += 2
        elif pair == "]]":
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return -1


class Renderer:
    """Renders block strings of one Graph. ``hidden_tags`` (lower case) render as nothing:
    they are the card-marking tags, which say how to study a block, not what it says."""

    def __init__(self, graph: Graph | None = None, hidden_tags: Iterable[str] = ()) -> None:
        self.graph = graph
        self.hidden_tags = frozenset(t.lower() for t in hidden_tags)
        names = "|".join(re.escape(t) for t in sorted(self.hidden_tags, key=len, reverse=True))
        # Hidden tags in their three forms, with the space before them.
        self._hidden = (
            re.compile(rf"\s*(?:#\[\[(?:{names})\]\]|\[\[(?:{names})\]\]|(?<![\w#/])#(?:{names}))"
                       r"(?![\w\-/\]])", re.IGNORECASE)
            if names else None
        )
        self._instances: dict[tuple[int, frozenset[str]], markdown.Markdown] = {}
        self._ref_stack: list[str] = []
        self._block_cache: dict[str, str] = {}

    # Public API ---------------------------------------------------------------------------

    def inline(self, text: str) -> str:
        """HTML for one block's text; a single paragraph is unwrapped."""
        if not text.isprintable():
            text = _CONTROL.sub("", text)
        text = text.strip()
        if self._hidden is not None and "`" not in text and self._mentions_hidden(text):
            # Dropped up front (the patterns would render them as nothing anyway) so that a
            # plain "Question? #card" takes the fast path below.
            text = self._hidden.sub("", text).strip()
        if not text:
            return ""
        if not _NEEDS_MARKDOWN.search(text):
            return html.escape(text, quote=False)
        md = self._instance(len(self._ref_stack), text)
        if _BLOCK_SYNTAX.search(text):
            out = md.reset().convert(text)
            match = _ONE_PARAGRAPH.match(out)
            out = match.group(1) if match else out
        else:
            out = _convert_inline(md, text)
        return _restore_clozes(out).strip()

    def _mentions_hidden(self, text: str) -> bool:
        lowered = text.lower()
        return any(tag in lowered for tag in self.hidden_tags)

    def block(self, block: Block) -> str:
        """HTML for a block's own text, memoized by uid (ancestors are shared by many cards)."""
        cached = self._block_cache.get(block.uid)
        if cached is None:
            cached = self._block_cache[block.uid] = self.inline(block.string)
        return cached

    def ref(self, uid: str) -> str:
        """HTML standing in for ``((uid))``."""
        target = self.graph.blocks.get(uid) if self.graph else None
        if target is None:
            return '<span class="rb-ref rb-missing">[missing block]</span>'
        if uid in self._ref_stack or len(self._ref_stack) >= REF_DEPTH_LIMIT:
            return '<span class="rb-ref rb-missing">[…]</span>'
        self._ref_stack.append(uid)
        try:
            return f'<span class="rb-ref">{self.inline(target.string)}</span>'
        finally:
            self._ref_stack.pop()

    # Internals ----------------------------------------------------------------------------

    def _instance(self, depth: int, text: str) -> markdown.Markdown:
        """A Markdown instance with only the patterns ``text`` can use.

        python-markdown tries every registered pattern on every text node, and that loop,
        not the matching, is most of its cost; a pattern whose opening characters do not
        occur in the text cannot match. One instance per ref depth, too: a ((ref)) renders
        inside another conversion.
        """
        names = frozenset([name for trigger, name in _TRIGGER_PAIRS if trigger in text])
        md = self._instances.get((depth, names))
        if md is None:
            md = markdown.Markdown(extensions=[RoamExtension(self, names)], output_format="html")
            self._instances[(depth, names)] = md
        return md


def _convert_inline(md: markdown.Markdown, text: str) -> str:
    """What ``md.convert`` gives for a one-paragraph text, unwrapped, at half the cost: the
    same inline patterns, serializer and postprocessors, without the block parser."""
    md.reset()
    root = etree.Element("div")
    paragraph = etree.SubElement(root, "p")
    paragraph.text = text
    md.treeprocessors["inline"].run(root)
    out = md.serializer(paragraph)
    for postprocessor in md.postprocessors:
        out = postprocessor.run(out)
    return out[3:-4]  # drop <p> and </p>


def plain_text(rendered: str) -> str:
    return html.unescape(_TAGS.sub("", rendered)).strip()


def _restore_clozes(out: str) -> str:
    if "<rbcloze" not in out:
        return out
    out = re.sub(r'<rbcloze n="(\d+)">', r"{{c\1::", out)
    return out.replace("<rbhint>", "::").replace("</rbhint>", "").replace("</rbcloze>", "}}")


# The markdown extension -------------------------------------------------------------------


# What must occur in a text for each inline pattern to have a chance of matching.
TRIGGERS: dict[str, tuple[str, ...]] = {
    "backtick": ("`",),
    "rb_math": ("$$",),
    "rb_cloze": ("{{c",),
    "rb_ref": ("((",),
    "rb_widget": ("{{",),
    "rb_image": ("![",),
    "rb_alias": ("](",),
    "rb_url": ("://",),
    "rb_page": ("[[",),
    "rb_tag": ("#",),
    "rb_emphasis": ("**", "__", "^^", "~~"),
    "rb_newline": ("\n",),
}

_TRIGGER_PAIRS = [(trigger, name) for name, triggers in TRIGGERS.items() for trigger in triggers]


class RoamExtension(Extension):
    """Roam's inline syntax, one small pattern each; markdown's own HTML and link syntax off."""

    def __init__(self, renderer: Renderer, names: frozenset[str] | None = None) -> None:
        super().__init__()
        self.renderer = renderer
        self.names = frozenset(TRIGGERS) if names is None else names

    def extendMarkdown(self, md: markdown.Markdown) -> None:
        md.preprocessors.deregister("html_block")
        for name in ("indent", "code", "hashheader", "setextheader", "olist", "ulist",
                     "reference"):
            md.parser.blockprocessors.deregister(name)
        for name in [p for p in md.inlinePatterns._data
                     if p != "backtick" or p not in self.names]:
            md.inlinePatterns.deregister(name)
        r = self.renderer
        patterns: list[tuple[InlineProcessor, str, int]] = [
            (MathPattern(r"\$\$(.+?)\$\$"), "rb_math", 185),
            (ClozePattern(r"\{\{c(\d+)::(.+?)(?:::([^{}]*?))?\}\}"), "rb_cloze", 180),
            (RefPattern(REF.pattern, r), "rb_ref", 178),
            (WidgetPattern(r"\{\{(.*?)\}\}"), "rb_widget", 176),
            (ImagePattern(rf"!\[([^\]]*)\]\(({_URL_BODY})\)"), "rb_image", 175),
            (AliasPattern(rf"\[([^\[\]]+)\]\(({_URL_BODY})\)"), "rb_alias", 170),
            (UrlPattern(r"https?://(?:[^\s<>\[\]()]|\([^\s<>\[\]()]*\))+"
                        r"(?<![.,;:!?\"'])"), "rb_url", 165),
            (PageLinkPattern(r"(#?)\[\[", r), "rb_page", 160),
            (TagPattern(r"(?<![\w/#&])#([\w\-/]+(?:[.:][\w\-/]+)*)", r),
             "rb_tag", 155),
            (EmphasisPattern(r"(\*\*|__|\^\^|~~)(.+?)\1"), "rb_emphasis", 140),
            (NewlinePattern(r"\n"), "rb_newline", 100),
        ]
        for pattern, name, priority in patterns:
            if name in self.names:
                pattern.md = md
                md.inlinePatterns.register(pattern, name, priority)


def _span(cls: str, text: str = "") -> etree.Element:
    el = etree.Element("span", {"class": cls})
    el.text = markdown.util.AtomicString(text)
    return el


class MathPattern(InlineProcessor):
    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:
        tex = _UNSAFE_TEX.sub(r"\\text{\1}", m.group(1))
        return _span("rb-math", f"\\({tex}\\)"), m.start(0), m.end(0)


class ClozePattern(InlineProcessor):
    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:
        el = etree.Element("rbcloze", {"n": m.group(1)})
        el.text = m.group(2)
        if m.group(3):
            hint = etree.SubElement(el, "rbhint")
            hint.text = markdown.util.AtomicString(m.group(3))
        return el, m.start(0), m.end(0)


class RefPattern(InlineProcessor):
    def __init__(self, pattern: str, renderer: Renderer) -> None:
        super().__init__(pattern)
        self.renderer = renderer

    def handleMatch(self, m: re.Match[str], data: str) -> tuple[str, int, int]:
        stashed = self.md.htmlStash.store(self.renderer.ref(m.group(1)))
        return stashed, m.start(0), m.end(0)


class WidgetPattern(InlineProcessor):
    """``{{…}}`` widgets. TODO/DONE become checkboxes; the rest stay as muted literal text."""

    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:
        inner = m.group(1).strip()
        name = page_title_text(inner).split(":", 1)[0].strip().lower()
        if name == "todo":
            return _span("rb-todo", "☐"), m.start(0), m.end(0)
        if name == "done":
            return _span("rb-done", "☑"), m.start(0), m.end(0)
        return _span("rb-widget", page_title_text(inner)), m.start(0), m.end(0)


class ImagePattern(InlineProcessor):
    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:
        alt, url = m.group(1), m.group(2)
        if not is_safe_url(url):
            return _span("rb-broken", alt or url), m.start(0), m.end(0)
        return etree.Element("img", {"src": url, "alt": alt}), m.start(0), m.end(0)


class AliasPattern(InlineProcessor):
    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:
        label, url = m.group(1), m.group(2)
        if not is_safe_url(url):
            el = etree.Element("span", {"class": "rb-alias"})
        else:
            el = etree.Element("a", {"href": url})
        el.text = label
        return el, m.start(0), m.end(0)


class UrlPattern(InlineProcessor):
    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:
        el = etree.Element("a", {"href": m.group(0)})
        el.text = markdown.util.AtomicString(m.group(0))
        return el, m.start(0), m.end(0)


class PageLinkPattern(InlineProcessor):
    """``[[page]]``, ``#[[tag]]`` and nested ``[[a [[b]]]]``: brackets balanced by hand,
    since a regex cannot count them."""

    def __init__(self, pattern: str, renderer: Renderer) -> None:
        super().__init__(pattern)
        self.renderer = renderer

    def handleMatch(
        self, m: re.Match[str], data: str
    ) -> tuple[etree.Element | str | None, int | None, int | None]:
        end = find_closing(data, m.end(0))
        if end < 0:
            return None, None, None
        title = page_title_text(data[m.end(0) : end - 2]).strip()
        if title.lower() in self.renderer.hidden_tags:
            return "", m.start(0), end
        if m.group(1):
            return _span("rb-tag", f"#{title}"), m.start(0), end
        return _span("rb-page", title), m.start(0), end


class TagPattern(InlineProcessor):
    def __init__(self, pattern: str, renderer: Renderer) -> None:
        super().__init__(pattern)
        self.renderer = renderer

    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element | str, int, int]:
        if m.group(1).lower() in self.renderer.hidden_tags:
            return "", m.start(0), m.end(0)
        return _span("rb-tag", m.group(0)), m.start(0), m.end(0)


class EmphasisPattern(InlineProcessor):
    """``**bold**``, ``__italic__``, ``^^highlight^^`` and ``~~strike~~``: one pattern for
    the four, since each costs a pass over every text node."""

    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:
        el = etree.Element(_EMPHASIS_TAGS[m.group(1)])
        el.text = m.group(2)
        return el, m.start(0), m.end(0)


class NewlinePattern(InlineProcessor):
    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:
        return etree.Element("br"), m.start(0), m.end(0)

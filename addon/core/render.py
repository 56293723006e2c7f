"""Roam markup (and the Logseq and Obsidian dialects) -> safe HTML, through python-markdown and
one extension of our own.

Every piece of syntax is one small named pattern (inline) or block processor of
``RoamExtension``; the dialect of the graph (``Graph.source``) switches on the ones that are
its own (``*italic*``, ``$math$``, ``~~~`` fences, callouts… in Logseq and Obsidian).

Guarantees:
- block text is data: raw HTML in a block is shown as text, never passed through;
- the output passes an allow-list of tags and attributes (``SanitizeTreeprocessor``): links
  only to http(s) and the deep-link schemes (roam, logseq, obsidian), images only from
  http(s) or a plain media file name, no event handlers, no ``style``;
- Anki's cloze markers ``{{cN::…}}`` survive only in a cloze note's own text
  (``inline(…, cloze=True)``), with their content rendered; anywhere else a cloze shows its
  content, emphasised;
- ``((uid))`` block refs and ``{{embed: …}}`` embeds are replaced by the target's rendered
  text, with a depth limit and a cycle guard; a missing target shows as a muted placeholder.
  Each is rendered once per run and depth and reused; a ref too long to show whole, or past a
  text's (or note's) budget of ref HTML, shows its first words;
- no Roam markup (``[[``, ``((``, ``{{``…) is left raw outside code: a widget we cannot
  render shows as muted literal text;
- time and memory are linear in the length of the text: brackets are matched in one pass
  (textscan.py), and a long text is converted in pieces (``_pieces``).

A Renderer is not thread-safe: it reuses its Markdown instances (building one costs far more
than converting a block). Use one Renderer per thread.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as etree
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from urllib.parse import parse_qs, urlsplit

import markdown
from markdown.blockprocessors import BlockProcessor
from markdown.extensions import Extension
from markdown.inlinepatterns import InlineProcessor
from markdown.treeprocessors import Treeprocessor
from markdown.util import AtomicString

from .apps import APPS, MARKDOWN_DIALECTS, TEXT_URL_SCHEMES
from .clozes import ClozeSyntax, number_clozes
from .marks import Marks
from .model import Block, Graph, Page
from .textscan import ClosingIndex, blank, brace_ends, link_ends

# Given an image's src as written and the page of the block showing it, the media file name
# that holds the image (downloaded or copied into Anki's media folder), or None.
ImageResolver = Callable[[str, Page | None], str | None]

REF_DEPTH_LIMIT = 5
# A ref whose HTML is longer shows in short (its first SHORT_REF characters, plain); so do the
# refs and embeds of a text (or note) past REF_BUDGET characters of ref HTML.
REF_HTML = 8000
SHORT_REF = 120
REF_BUDGET = 256_000
# Characters of text python-markdown converts at once; a longer text is cut (see _pieces).
PIECE = 4000
HARD_PIECE = 8 * PIECE
# Blocks one embed shows (the embedded block's or page's blocks, all levels together).
EMBED_BLOCKS = 200

REF = re.compile(r"\(\(([\w-]{5,})\)\)")
_HTTP_URL = re.compile(r"https?://[^\s\"'<>]+\Z", re.IGNORECASE)
_SAFE_URL = re.compile(TEXT_URL_SCHEMES + r"://[^\s\"'<>]+\Z", re.IGNORECASE)
_SCHEME = re.compile(r"[a-zA-Z][\w+.-]*:")
# A file in Anki's media folder: a bare name, nothing that could climb out or name a scheme.
_MEDIA_NAME = re.compile(r"[^/\\:\s\"'<>?#]+\Z")
# Text with none of these characters (nor "::", "==", "://" or a leading "---") renders as
# itself, escaped: skip markdown entirely. A character class and three substring tests are a
# third of the cost of one regex with alternatives.
_MARKUP_CHARS = re.compile(r"[`*_^~\[\]()#{}$>!&\n\\]")
# A link target: no spaces, parentheses only balanced one level deep, as in
# https://en.wikipedia.org/wiki/Mercury_(planet)
_URL_BODY = r"(?:[^()\s]|\([^()\s]*\))+"
# MathJax commands that make links, styles or raw HTML (\mmlToken takes href and style
# attributes): shown as text, never run.
_UNSAFE_TEX_NAMES = "href|style|class|cssId|data|unicode|require|html|fbox|bbox|mmlToken"
_UNSAFE_TEX = re.compile(rf"\\({_UNSAFE_TEX_NAMES})\b")
# The same commands anywhere else in a field: Anki typesets \( \) and \[ \] wherever they
# occur, so plain text (a page title, code of a parent shown as a crumb) can hold live TeX.
_UNSAFE_TEX_ANYWHERE = re.compile(rf"\\(?=(?:{_UNSAFE_TEX_NAMES})\b)")
# Anki's own markup, matched as loosely as Anki might (any case, "[ sound:"): see defuse_anki.
_ANKI_MARKUP = re.compile(r"\[(?=\s*(?:sound:|anki:|/anki:|/?latex\]|/?\$\$?\]))", re.IGNORECASE)
# "****bold****" is bold: the extra marks go with the ones they double.
_EMPHASIS = r"(\*\*|__|\^\^|~~)\1*(.+?)\1+"
_EMPHASIS_MARKS = ("**", "__", "^^", "~~")
# Roam's __ is italic; in Markdown (Logseq, Obsidian) it is bold, and *x* or _x_ is italic.
_EMPHASIS_TAGS = {"**": "strong", "__": "em", "^^": "mark", "~~": "del"}
_MARKDOWN_EMPHASIS_TAGS = {**_EMPHASIS_TAGS, "__": "strong"}
_STRONG_EM = r"(?<![*_])(\*\*\*|___)(?![\s*_])(.+?)(?<![\s*_])\1(?![*_])"
_STAR_ITALIC = r"(?<![\w*\\])\*(?![\s*])(.+?)(?<![\s*\\])\*(?![\w*])"
_UNDER_ITALIC = r"(?<![\w\\])_(?![\s_])(.+?)(?<![\s_\\])_(?![\w])"
# "Key:: value": a space (or the end) after "::", so "std::move" is text.
_ATTRIBUTE_START = r"\A[ \t]*([^:`{}()\n]{1,60}?)::(?!:)(?=\s|\Z)"
_ESCAPE = r"\\([\\`*_{}\[\]()#+\-.!|~=^$<>])"
_INLINE_MATH = r"(?<![\\$])\$(?=[^\s$])([^$\n]*?[^\s\\$])\$(?![\d$])"
_AUTOLINK = rf"<({TEXT_URL_SCHEMES}://[^\s<>]+)>"
_BARE_URL = (TEXT_URL_SCHEMES + r"://(?:[^\s<>\[\]()]|\([^\s<>\[\]()]*\))+"
             r"(?<![.,;:!?\"'])")
_TAG = r"(?<![\w/#&])#([\w\-/]+(?:[.:'’+&@][\w\-/]+)*\+*)"
# A link's label may hold brackets one level deep ("[[2507.19457] Title](url)") and escaped
# ones ("[a \\[b\\] c](url)").
_LABEL_PART = r"(?:[^\[\]\\]|\\.)"
_ALIAS = rf"(?<!!)\[((?:{_LABEL_PART}|\[{_LABEL_PART}*\])+)\]\("
# Logseq's task markers, at the start of a block.
_MARKER_WORDS = ("TODO", "DOING", "NOW", "LATER", "WAIT", "IN-PROGRESS", "DONE", "CANCEL")
_MARKER = (r"\A(TODO|DOING|NOW|LATER|WAITING|WAIT|IN-PROGRESS|DONE|CANCELED|CANCELLED)"
           r"(?:[ \t]+|\Z)")
_OPEN_MARKERS = frozenset({"TODO", "DOING", "NOW", "LATER", "WAITING", "WAIT", "IN-PROGRESS"})
_UID_SHAPE = re.compile(
    r"[\w-]{9}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TAGS = re.compile(r"<[^>]*>")
_ONE_PARAGRAPH = re.compile(r"\A<p>((?:(?!<p>).)*)</p>\Z", re.DOTALL)
# Block syntax: blank-line paragraphs, quotes, rules, code fences. Without any of it, a block
# is one paragraph and only the inline patterns need to run.
_BLOCK_SYNTAX = re.compile(
    r"\n\s*\n|^[ \t]*>|^[ \t]*\[\[>\]\]|^[ \t]*(?:-[ \t]*){3,}$|```|^[ \t]*~~~"
    r"|^[ \t]*#\+BEGIN_", re.MULTILINE | re.IGNORECASE
)
# Logseq writes block properties as lines of their own after the first: ``id:: …``.
_PROPERTY_LINE = re.compile(r"^[ \t]*[\w][\w\-/.]*::(?:[ \t].*)?$")
_FENCE = (r"```([\w+#.-]*)[ \t]*\n(.*?)\n?[ \t]*```"  # ```lang\ncode```
          r"|```(.+?)```")                              # ```code``` on one line
_FENCE_WHOLE = re.compile(rf"\A\s*(?:{_FENCE})\s*\Z", re.DOTALL)
_FENCE_PAIR = re.compile(r"```.*?```", re.S)
# A fence that starts a line, and one that fills lines from the start of a text to its end.
_FENCE_LINE = re.compile(r"^[ \t]*```", re.MULTILINE)
_FENCE_WHOLE_START = re.compile(
    r"\A[ \t]*```[\w+#.-]*[ \t]*\n.*?\n[ \t]*```[ \t]*(?:\n|\Z)", re.DOTALL)
_MARKER_RE = re.compile(_MARKER)
# A line of Logseq hiccup (``[:div [:img {:src "…"}]]``), which Logseq shows as the HTML it
# builds: live HTML is never built here, so it is muted text like other widgets.
_HICCUP = r"(?m)^[ \t]*(\[:[A-Za-z][\w.#-]*(?:[ \t][^\n]*)?\])[ \t]*$"
_SIMPLE_WIDGET = re.compile(r"\{\{[^{}]*\}\}")
_SIMPLE_LINK = re.compile(r"\[\[[^\[\]]*\]\]")
_LABEL_ESCAPE = re.compile(r"\\([\[\]])")
_TILDE_OPEN = re.compile(r"[ \t]*(~{3,})[ \t]*([\w+#.-]*)[^\n]*(?:\n|\Z)")
_CALLOUT = re.compile(r"[ \t]*>[ \t]*\[!([\w-]+)\][+-]?[ \t]*(.*)")
_QUOTE_PREFIX = re.compile(r"^[ \t]*>[ \t]?", re.MULTILINE)
_ORG_OPEN = re.compile(r"[ \t]*#\+BEGIN_(\w+)[ \t]*([^\n]*)(?:\n|\Z)", re.IGNORECASE)
_DISPLAY_MATH_PAIR = re.compile(r"\$\$.*?\$\$", re.S)
# ![alt](src): src in <…>, a URL, or a local path with spaces (Logseq writes them so); a
# "title" after it and Logseq's {:height 560, :width 960} after the image are dropped.
_IMAGE_TITLE = r"(?:[ \t]+\"[^\"\n]*\")?"
_IMAGE = (rf"!\[([^\[\]\n]*)\]\((?:<([^<>\n]+)>|({_URL_BODY}){_IMAGE_TITLE}"
          rf"|([^()<>\n]+?){_IMAGE_TITLE})\)(?:\{{:[^}}\n]*\}})?")
_IMAGE_RE = re.compile(_IMAGE)
_CODE = re.compile(rf"{_FENCE}|`[^`\n]+`", re.DOTALL)
_TABLE = re.compile(r"\{\{\s*(?:\[\[\s*table\s*\]\]|table)\s*:?\s*\}\}", re.IGNORECASE)
_WIDGET_NAME = re.compile(r"\s*(\[\[[^\]]*\]\]|[^\s:]+)\s*:?\s*(.*)\Z", re.DOTALL)
_YOUTUBE_ID = re.compile(r"[\w-]{11}\Z")
_MEDIA = {"video": "Video", "youtube": "YouTube", "iframe": "Web page", "pdf": "PDF"}
EMBEDS = ("embed", "embed-path", "embed-children")


def is_safe_url(url: str) -> bool:
    """A link target we allow: http(s), or a deep link into Roam, Logseq or Obsidian."""
    return bool(_SAFE_URL.match(url))


def is_safe_image_src(src: str) -> bool:
    """An ``img src`` we allow: an http(s) URL or a plain media file name."""
    if _HTTP_URL.match(src):
        return True
    return bool(_MEDIA_NAME.match(src)) and ".." not in src and not src.startswith(".")


def defuse_tex(html_text: str) -> str:
    """``html_text`` with a zero-width space after the backslash of every TeX command that
    makes links or styles (see ``_UNSAFE_TEX``): it reads the same, but MathJax no longer sees
    the command. For a whole field, since Anki typesets TeX anywhere in it."""
    if "\\" not in html_text:
        return html_text
    return _UNSAFE_TEX_ANYWHERE.sub("\\\\\u200b", html_text)


def defuse_anki(html_text: str) -> str:
    """``html_text`` with Anki's own markup made text: ``[sound:…]``, ``[anki:tts]…``,
    ``[latex]``, ``[$]`` and ``[$$]`` (and their closing tags) get their ``[`` as the entity
    ``&#91;``, which shows the same but is not what Anki looks for, so nothing written in the
    notes is played, spoken or sent to LaTeX. For a whole field, since Anki looks everywhere
    in it, attributes included."""
    if "[" not in html_text:
        return html_text
    return _ANKI_MARKUP.sub("&#91;", html_text)


def _has_block_syntax(text: str) -> bool:
    """Whether ``text`` (stripped) needs markdown's block parser: the regex only when a
    cheap test says it might match, since most blocks are one line of prose."""
    if "\n" not in text and "```" not in text and text[:1] not in (">", "-", "["):
        return False
    return bool(_BLOCK_SYNTAX.search(text))


def needs_markdown(text: str) -> bool:
    """False when the stripped ``text`` holds no markup at all: it renders as itself."""
    return bool(_MARKUP_CHARS.search(text)) or "::" in text or "==" in text or (
        "://" in text) or text.startswith("---")


def page_title_text(inner: str) -> str:
    """``[[a [[b]] c]]`` shows as ``a b c``: nested link brackets are dropped."""
    return inner.replace("[[", "").replace("]]", "")


def image_sources(text: str) -> list[str]:
    """Every image src in ``text`` as written, in order, outside code: what ``images`` will
    be asked for, so a caller can fetch them all before rendering."""
    if "![" not in text:
        return []
    if "`" in text:
        text = _CODE.sub(" ", text)
    return [m.group(2) or m.group(3) or m.group(4) for m in _IMAGE_RE.finditer(text)]


def plain_text(rendered: str) -> str:
    return html.unescape(_TAGS.sub("", rendered)).strip()


class Renderer:
    """Renders block strings of one Graph. ``marks`` (or marks of ``hidden_tags`` in the
    graph's dialect) render as nothing where they mark a block: they say how to study a
    block, not what it says. ``images`` maps each image to a media file name (see
    ImageResolver); ``clozes`` is the source's cloze syntax (see ``inline``)."""

    def __init__(
        self,
        graph: Graph | None = None,
        hidden_tags: Iterable[str] = (),
        images: ImageResolver | None = None,
        *,
        marks: Marks | None = None,
        clozes: ClozeSyntax | None = None,
    ) -> None:
        self.graph = graph
        self.images = images
        source = graph.source if graph is not None else "roam"
        # The marks (card tags…) render as nothing, where they mark: see marks.py.
        self.marks = marks if marks is not None else (
            Marks(hidden_tags, source) if hidden_tags else None)
        self.hidden_tags = self.marks.names if self.marks is not None else frozenset()
        # The source's cloze syntax: outside a cloze note's own text, a cloze shows its
        # content, emphasised (never the braces, never a live Anki cloze).
        self.clozes = replace(clozes, highlight=False) if clozes is not None else None
        self.dialect = source
        self.syntax = dialect_syntax(source)
        self._trigger_pairs = [(t, s.name) for s in self.syntax for t in s.triggers]
        self._triggers = tuple(dict.fromkeys(t for t, _ in self._trigger_pairs))
        self.emphasis_tags = (
            _MARKDOWN_EMPHASIS_TAGS if source in MARKDOWN_DIALECTS else _EMPHASIS_TAGS)
        # Obsidian's [[page|alias]]; in Roam a "|" is part of the title.
        self.pipe_aliases = source in MARKDOWN_DIALECTS
        app = APPS.get(source)
        self.hide_properties = app is not None and app.block_properties
        self._instances: dict[tuple[int, frozenset[str]], markdown.Markdown] = {}
        self._names: dict[tuple[bool, ...], frozenset[str]] = {}
        # Uids (and page titles) being rendered inside one another: the cycle guard.
        self._ref_stack: list[str] = []
        # Rendered blocks by uid, with the ref HTML each spent (see budget).
        self._block_cache: dict[str, tuple[str, int]] = {}
        # The block and page whose text is being rendered: a table needs the block's
        # children, a local image the page's folder.
        self._block: Block | None = None
        self._page: Page | None = None
        self._pages_folded: dict[str, Page] | None = None
        # True while a cloze note's own text is rendered: only there are clozes live.
        self._cloze_mode = False
        # Balanced {{…}} and [[…]] of the texts being converted, one index per ref depth.
        self._closings: dict[tuple[int, bool], ClosingIndex] = {}
        # Refs and embeds rendered this run, by (kind, key, depth) (see _nested); the lowest
        # stack index a cycle cut reached, for the render under way; short refs by uid.
        self._ref_cache: dict[tuple[str, str, int], str] = {}
        self._cycle_at = 0
        self._shorts: dict[str, str] = {}
        # Ref and embed HTML spent (see budget); outside a budget scope, per text.
        self._spent = 0
        self._scoped = False

    # Public API ---------------------------------------------------------------------------

    def inline(self, text: str, page: Page | None = None, cloze: bool = False) -> str:
        """HTML for one block's text; a single paragraph is unwrapped. ``page`` is the page
        the text is on, for local images (``block()`` passes it). ``cloze``: the text is a
        cloze note's own, already numbered (clozes.number_clozes): its ``{{cN::…}}`` stay
        Anki's cloze markers, with their content rendered, and no other ``{{`` reaches Anki."""
        outer = self._page, self._cloze_mode
        self._page = page if page is not None else self._page
        self._cloze_mode = cloze
        try:
            return self._inline(text)
        finally:
            self._page, self._cloze_mode = outer

    def block(self, block: Block) -> str:
        """HTML for a block's own text (a heading as ``<h1>``-``<h3>``), memoized by uid
        (ancestors are shared by many cards)."""
        if self._ref_stack:  # inside a ref or embed the cycle guard shapes it: no caching
            return self._block_html(block)
        if not self._scoped:
            self._spent = 0  # outside a budget scope, each text has its own
        cached = self._block_cache.get(block.uid)
        if cached is not None and self._spent + cached[1] < REF_BUDGET:
            self._spent += cached[1]  # what it spends counts on every note that shows it
            return cached[0]
        before = self._spent
        out = self._block_html(block)
        if self._spent < REF_BUDGET:  # whole: no ref of it was cut short by the budget
            self._block_cache[block.uid] = (out, self._spent - before)
        return out

    @contextmanager
    def budget(self) -> Iterator[None]:
        """One budget of ref and embed HTML (``REF_BUDGET``) for everything rendered inside,
        such as the fields of one note; outside, each text has its own."""
        outer = self._spent, self._scoped
        self._spent, self._scoped = 0, True
        try:
            yield
        finally:
            self._spent, self._scoped = outer

    def ref(self, uid: str) -> str:
        """HTML standing in for ``((uid))``: the block's text, rendered once per run and
        depth; past the budget, or when too long, its words in short."""
        target = self.graph.blocks.get(uid) if self.graph else None
        if target is None:
            # "((text))" that is not a block's uid is text, as written.
            return _MISSING if _UID_SHAPE.fullmatch(uid) else html.escape(f"(({uid}))")
        if self._spent >= REF_BUDGET and not self._ref_stack:
            return self._short_ref(target)
        inner = self._nested(uid, ("ref", uid), lambda: self._text_of(target))
        if inner is None:
            return _CUT
        if len(inner) > REF_HTML:
            return self._short_ref(target, inner)
        self._spend(inner)
        return f'<span class="rb-ref">{inner}</span>'

    def embed(self, target: str, kind: str = "embed") -> str:
        """HTML for ``{{embed: target}}``; ``target`` is ``((uid))`` or ``[[Page]]``, ``kind``
        one of EMBEDS. The block and its children (an ``embed-path`` with its ancestors above,
        an ``embed-children`` without the block itself); a page's top blocks for a page."""
        target = target.strip().strip("<>").strip()
        ref = REF.fullmatch(target)
        if ref is not None:
            block = self.graph.blocks.get(ref.group(1)) if self.graph else None
            if block is None:
                return _MISSING
            if self._spent >= REF_BUDGET and not self._ref_stack:
                return self._short_ref(block)
            inner = self._nested(block.uid, (kind, block.uid),
                                 lambda: self._embed_block(block, kind))
        elif target.startswith("[[") and target.endswith("]]"):
            page = self._find_page(page_title_text(target[2:-2]).strip())
            if page is None:
                return '<span class="rb-ref rb-missing">[missing page]</span>'
            if self._spent >= REF_BUDGET and not self._ref_stack:
                return _span_html("rb-ref", page.title)
            key = f"[[{page.title}]]"
            inner = self._nested(key, ("page", key), lambda: self._embed_page(page))
        else:
            return _span_html("rb-widget", f"{kind}: {self._literal(target)}")
        if inner is None:
            return _CUT
        self._spend(inner)
        return f'<div class="rb-embed">{inner}</div>'

    def renders_children(self, block: Block) -> bool:
        """True when ``block(block)`` already shows the block's children (a
        ``{{[[table]]}}``), so a caller listing children should not list them again."""
        return bool(block.children) and "table" in block.string.lower() and bool(
            _TABLE.search(block.string))

    # Rendering internals ------------------------------------------------------------------

    def _inline(self, text: str) -> str:
        if not self._ref_stack and not self._scoped:
            self._spent = 0
        if not text.isprintable():
            text = _CONTROL.sub("", text)
        text = text.strip()
        if self.marks is not None and (marks := self.marks.spans(text)):
            text = _without_marks(text, marks).strip()
        if self.hide_properties and "::" in text and "\n" in text and "```" not in text:
            first, *rest = text.split("\n")
            text = "\n".join([first, *(line for line in rest
                                        if not _PROPERTY_LINE.match(line))]).strip()
        if not text:
            return ""
        live = self._cloze_mode and not self._ref_stack
        if not live and self.clozes is not None and "{" in text:
            # Shown, not studied: every cloze syntax as {{cN::…}}, which renders plain.
            numbered = number_clozes(text, self.clozes)
            text = numbered[0] if numbered is not None else text
        if len(text) <= PIECE:
            out = self._convert(text)
        else:
            pieces = _pieces(text)
            out = "".join(self._convert(text[start:end]) + joiner
                          for start, end, joiner in pieces)
        if live and "{{" in out:
            out = out.replace("{{", "{&#123;")  # only our own markers may read as clozes
        return _restore_clozes(out).strip()

    def _convert(self, text: str) -> str:
        """Markdown -> our HTML, for text already prepared by ``_inline`` (at most a piece
        long, or a code fence)."""
        text = text.strip()
        if not needs_markdown(text) and not (
                self.dialect == "logseq" and text[:1].isupper() and _MARKER_RE.match(text)):
            return html.escape(text, quote=False)
        md = self._instance(len(self._ref_stack), text)
        if _has_block_syntax(text):
            out = md.reset().convert(text)
            match = _ONE_PARAGRAPH.match(out)
            return match.group(1) if match else out
        return _convert_inline(md, text)

    def _block_html(self, block: Block) -> str:
        out = self._text_of(block)
        if 1 <= block.heading <= 3 and out:
            return f"<h{block.heading}>{out}</h{block.heading}>"
        return out

    def _text_of(self, block: Block) -> str:
        """The block's text rendered with the block and its page as the context."""
        outer = self._block, self._page
        self._block, self._page = block, block.page
        try:
            return self._inline(block.string)
        finally:
            self._block, self._page = outer

    def _nested(
        self, key: str, cache_key: tuple[str, str], render: Callable[[], str]
    ) -> str | None:
        """``render()`` one level deeper, or None when ``key`` is already being rendered
        (a cycle) or the nesting is too deep.

        A result is kept for the run, by ``cache_key`` and depth, unless a cycle cut it short
        at a block rendered outside it (then it depends on where it is shown): a web of refs
        is rendered once per depth, not once per path through it.
        """
        stack = self._ref_stack
        depth = len(stack)
        if key in stack:
            self._cycle_at = min(self._cycle_at, stack.index(key))
            return None
        if depth >= REF_DEPTH_LIMIT:
            return None
        at_depth = (*cache_key, depth)
        cached = self._ref_cache.get(at_depth)
        if cached is not None:
            return cached
        outer_cycle, self._cycle_at = self._cycle_at, depth + 1
        stack.append(key)
        try:
            result = render()
        finally:
            stack.pop()
        if self._cycle_at >= depth:
            self._ref_cache[at_depth] = result
        self._cycle_at = min(outer_cycle, self._cycle_at)
        return result

    def _spend(self, html_text: str) -> None:
        if not self._ref_stack:
            self._spent += len(html_text)

    def _short_ref(self, block: Block, inner: str | None = None) -> str:
        """A ref in short: the first words of the block as rendered (``inner``, or its text
        alone, its own refs cut), plain, as a crumb shows them."""
        short = self._shorts.get(block.uid)
        if short is None:
            if inner is None:
                stack, self._ref_stack = self._ref_stack, [""] * REF_DEPTH_LIMIT
                try:
                    inner = self._text_of(block)
                finally:
                    self._ref_stack = stack
            short = self._shorts[block.uid] = _span_html(
                "rb-ref", _short(" ".join(plain_text(inner).split()), SHORT_REF))
        return short

    def _embed_block(self, block: Block, kind: str) -> str:
        parts: list[str] = []
        if kind == "embed-path":
            crumbs = " › ".join(html.escape(plain_text(self._block_html(a)), quote=False)
                                for a in block.ancestors())
            parts.append(f'<div class="rb-embed-path">{html.escape(block.page.title)}'
                         f'{" › " + crumbs if crumbs else ""}</div>')
        if kind != "embed-children":
            parts.append(self._block_html(block))
        parts.append(self._children_list(block.children, REF_DEPTH_LIMIT, [EMBED_BLOCKS]))
        return "".join(parts)

    def _embed_page(self, page: Page) -> str:
        title = f'<div class="rb-embed-title">{html.escape(page.title)}</div>'
        return title + self._children_list(page.children, REF_DEPTH_LIMIT, [EMBED_BLOCKS])

    def _children_list(self, children: list[Block], levels: int, room: list[int]) -> str:
        """Nested lists of ``children``, ``levels`` deep and at most ``room[0]`` blocks in
        all (shared by the whole embed); what does not fit ends in a muted "…"."""
        if not children or levels <= 0:
            return ""
        items: list[str] = []
        for c in children:
            if not (c.string.strip() or c.children):
                continue
            if room[0] <= 0:
                items.append('<li><span class="rb-more">…</span></li>')
                break
            room[0] -= 1
            below = "" if self.renders_children(c) else self._children_list(
                c.children, levels - 1, room)
            items.append(f"<li>{self._block_html(c)}{below}</li>")
        return f'<ul class="rb-children">{"".join(items)}</ul>' if items else ""

    def _table(self) -> str | None:
        """``{{[[table]]}}`` of the block being rendered: each child is a row, and a row's
        cells are the child, its first child, that one's first child, and so on."""
        block = self._block
        if block is None or not block.children:
            return None

        def rows() -> str:
            out: list[str] = []
            for row in block.children:
                cells: list[str] = []
                node: Block | None = row
                while node is not None and len(cells) < 64:
                    cells.append(f"<td>{self._text_of(node)}</td>")
                    node = node.children[0] if node.children else None
                out.append(f"<tr>{''.join(cells)}</tr>")
            return f'<table class="rb-table"><tbody>{"".join(out)}</tbody></table>'

        return self._nested(f"table:{block.uid}", ("table", block.uid), rows)

    def _image(self, src: str, alt: str) -> etree.Element:
        name = self.images(src, self._page) if self.images is not None else None
        if name is not None:
            return etree.Element("img", {"src": name, "alt": alt})
        if _HTTP_URL.match(src):
            return etree.Element("img", {"src": src, "alt": alt})
        return _span("rb-missing rb-image", alt or src.rsplit("/", 1)[-1])

    def _tex(self, tex: str) -> str:
        """TeX as MathJax may see it: a ``((ref))`` becomes the block's text (its own math,
        without the dollars), and commands that make links or styles are made text."""
        if "((" in tex and self.graph is not None:
            blocks = self.graph.blocks

            def text_of(m: re.Match[str]) -> str:
                target = blocks.get(m.group(1))
                if target is None:
                    return m.group(0)
                inner = target.string.strip()
                while inner.startswith("$") and inner.endswith("$") and len(inner) > 1:
                    inner = inner[1:-1]
                return inner  # one level: a ref in the block's own text stays as written
            tex = REF.sub(text_of, tex)
        return _UNSAFE_TEX.sub(r"\\text{\1}", tex)

    def _closing(self, data: str, opener: int, braces: bool = False) -> int:
        """Index just past the ``}}`` (``braces``) or ``]]`` balancing the opener at
        ``opener`` in ``data``, a text python-markdown is converting; -1 if none. Every
        opener of a text is matched in one pass (see textscan.ClosingIndex)."""
        simple = (_SIMPLE_WIDGET if braces else _SIMPLE_LINK).match(data, opener)
        if simple is not None:  # nothing nested: the first closer is the one (most texts)
            return simple.end()
        key = (len(self._ref_stack), braces)
        index = self._closings.get(key)
        if index is None:
            index = self._closings[key] = ClosingIndex(brace_ends if braces else link_ends)
        return index.end(data, opener)

    def _find_page(self, title: str) -> Page | None:
        if self.graph is None:
            return None
        page = self.graph.pages.get(title)
        if page is None:  # Logseq and Obsidian match titles regardless of case
            if self._pages_folded is None:
                self._pages_folded = {t.casefold(): p for t, p in self.graph.pages.items()}
            page = self._pages_folded.get(title.casefold())
        return page

    def _literal(self, text: str) -> str:
        """A widget's text as muted literal text: refs by their target's words, links by
        their titles, never raw brackets."""
        if "((" in text:
            text = REF.sub(lambda m: _short(plain_text(self.ref(m.group(1)))), text)
        return page_title_text(text).replace("{{", "{").strip()

    def _instance(self, depth: int, text: str) -> markdown.Markdown:
        """A Markdown instance with only the patterns ``text`` can use.

        python-markdown tries every registered pattern on every text node, and that loop,
        not the matching, is most of its cost; a pattern whose opening characters do not
        occur in the text cannot match. One instance per ref depth, too: a ((ref)) renders
        inside another conversion.
        """
        # Which triggers occur, one C-level test each, names the patterns: cheaper than
        # building the set of names for every text.
        flags = tuple([trigger in text for trigger in self._triggers])
        names = self._names.get(flags)
        if names is None:
            present = {t for t, here in zip(self._triggers, flags, strict=True) if here}
            found = {name for trigger, name in self._trigger_pairs if trigger in present}
            if sum(m in present for m in _EMPHASIS_MARKS) < 2:
                found.discard("rb_emphasis_inner")  # nesting needs two kinds of emphasis
            names = self._names[flags] = frozenset(found)
        md = self._instances.get((depth, names))
        if md is None:
            md = markdown.Markdown(extensions=[RoamExtension(self, names)], output_format="html")
            self._instances[(depth, names)] = md
        return md


_MISSING = '<span class="rb-ref rb-missing">[missing block]</span>'
_CUT = '<span class="rb-ref rb-missing">[…]</span>'


def _convert_inline(md: markdown.Markdown, text: str) -> str:
    """What ``md.convert`` gives for a one-paragraph text, unwrapped, at half the cost: the
    same inline patterns, sanitiser, serializer and postprocessors, without the block parser."""
    md.reset()
    root = etree.Element("div")
    paragraph = etree.SubElement(root, "p")
    paragraph.text = text
    md.treeprocessors["inline"].run(root)
    md.treeprocessors["rb_sanitize"].run(root)
    # <p> and </p> dropped before the postprocessors, which would otherwise swap a
    # paragraph holding only a stashed <div> (an embed) for the div itself.
    out = md.serializer(paragraph)[3:-4]
    for postprocessor in md.postprocessors:
        out = postprocessor.run(out)
    return out


def _restore_clozes(out: str) -> str:
    if "<rbcloze" not in out:
        return out
    out = re.sub(r'<rbcloze n="(\d+)">', r"{{c\1::", out)
    return out.replace("<rbhint>", "::").replace("</rbhint>", "").replace("</rbcloze>", "}}")


def _pieces(text: str, size: int = PIECE) -> list[tuple[int, int, str]]:
    """``text`` cut into pieces that python-markdown converts in time linear in ``size``
    each: ``(start, end, HTML joining the piece to the next)``.

    python-markdown rebuilds a text node for every match in it, so a megabyte in one node
    costs a megabyte per match. Cuts fall on line breaks (joined by ``<br>``, or two for a
    blank line), else on spaces, else anywhere; never inside a code fence, ``$$math$$``, a
    ``{{widget}}`` or a ``[[link]]`` (unless one is longer than ``HARD_PIECE``: only hostile
    text has those). A fence that fills whole lines is a piece of its own, whatever its size:
    code is not parsed.
    """
    spans, fences = _atomic_spans(text)
    starts = [start for start, _ in spans]

    def inside(cut: int) -> bool:
        i = bisect_right(starts, cut) - 1
        return i >= 0 and spans[i][0] < cut < spans[i][1]

    def cut_in(pos: int, limit: int) -> int:
        for separator in ("\n", " "):
            cut = text.rfind(separator, pos + 1, limit + 1)
            while cut > pos and inside(cut):
                cut = text.rfind(separator, pos + 1, cut)
            if cut > pos:
                return cut
        i = bisect_right(starts, limit) - 1
        if i >= 0 and spans[i][0] < limit < spans[i][1]:
            return spans[i][0] if spans[i][0] > pos else spans[i][1]
        return limit

    bounds: list[tuple[int, int]] = []
    pos, n, next_fence = 0, len(text), 0
    while pos < n:
        while next_fence < len(fences) and fences[next_fence][1] <= pos:
            next_fence += 1
        fence = fences[next_fence] if next_fence < len(fences) else (n, n)
        if fence[0] == pos:
            end = fence[1]
        elif fence[0] - pos <= size:
            end = fence[0]
        else:
            end = cut_in(pos, pos + size)
        bounds.append((pos, end))
        pos = end
        while pos < n and text[pos] in " \t\n" and (text[pos] == "\n" or pos == end):
            pos += 1
    pieces: list[tuple[int, int, str]] = []
    for i, (start, end) in enumerate(bounds):
        gap = text[end : bounds[i + 1][0]] if i + 1 < len(bounds) else ""
        while end > start and text[end - 1] in " \t\n":  # a piece ending in its line break
            gap = text[end - 1] + gap
            end -= 1
        lines = gap.count("\n")
        joiner = "<br><br>" if lines > 1 else "<br>" if lines else " " if gap else ""
        pieces.append((start, end, joiner if i + 1 < len(bounds) else ""))
    return pieces


def _atomic_spans(text: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """What ``_pieces`` may not cut, as sorted disjoint spans, and the fences among them that
    fill whole lines."""
    spans: list[tuple[int, int]] = []
    fences: list[tuple[int, int]] = []
    if "```" in text:
        for m in _FENCE_PAIR.finditer(text):
            spans.append(m.span())
            line_end = text.find("\n", m.end())
            if (m.start() == 0 or text[m.start() - 1] == "\n") and not text[
                    m.end() : line_end if line_end >= 0 else len(text)].strip():
                fences.append(m.span())
    masked = blank(text, _FENCE_PAIR) if spans else text
    if "$$" in masked:
        spans.extend(m.span() for m in _DISPLAY_MATH_PAIR.finditer(masked)
                     if m.end() - m.start() <= HARD_PIECE)
    for opener, ends in (("{{", brace_ends), ("[[", link_ends)):
        if opener not in masked:
            continue
        found = ends(masked)
        cursor = 0
        for m in re.finditer(re.escape(opener), masked):
            end = found.get(m.start(), -1)
            if m.start() >= cursor and end > 0:
                if end - m.start() <= HARD_PIECE:
                    spans.append((m.start(), end))
                cursor = end
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged, fences


def _without_marks(text: str, marks: list[tuple[int, int, str]]) -> str:
    """``text`` without the marks at the given spans, nor the spaces just before them."""
    pieces: list[str] = []
    cursor = 0
    for start, end, _ in marks:
        pieces.append(text[cursor:start].rstrip(" \t"))
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _youtube_id(url: str) -> str | None:
    parts = urlsplit(url)
    host = parts.netloc.lower().removeprefix("www.").removeprefix("m.")
    if host == "youtu.be":
        candidate = parts.path.strip("/").split("/")[0]
    elif host.endswith("youtube.com") or host == "youtube-nocookie.com":
        segments = parts.path.strip("/").split("/")
        if segments[0] == "watch":
            candidate = parse_qs(parts.query).get("v", [""])[0]
        elif segments[0] in ("embed", "shorts", "live", "v") and len(segments) > 1:
            candidate = segments[1]
        else:
            return None
    else:
        return None
    return candidate if _YOUTUBE_ID.match(candidate) else None


# The markdown extension -------------------------------------------------------------------


MARKDOWN_ONLY = frozenset(MARKDOWN_DIALECTS)
LOGSEQ_ONLY = frozenset({"logseq"})


@dataclass(frozen=True)
class InlineSyntax:
    """One inline pattern, registered once: its name and priority in python-markdown's
    registry, what must occur in a text for it to have a chance to match (``_instance``
    leaves it out otherwise), the dialects whose syntax it is (None: every one), and how to
    make it for a Renderer."""

    name: str
    priority: float
    triggers: tuple[str, ...]
    make: Callable[[Renderer], InlineProcessor]
    dialects: frozenset[str] | None = None


INLINE_SYNTAX: tuple[InlineSyntax, ...] = (
    InlineSyntax("rb_attribute", 200, ("::",), lambda r: AttributePattern(_ATTRIBUTE_START)),
    InlineSyntax("rb_marker", 199, _MARKER_WORDS, lambda r: MarkerPattern(_MARKER),
                 LOGSEQ_ONLY),
    InlineSyntax("rb_fence", 195, ("```",), lambda r: FencePattern(_FENCE)),
    InlineSyntax("rb_code", 190, ("`",),
                 lambda r: CodePattern(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")),
    # After code, so a fence's lines stay code; before everything that could read inside it.
    InlineSyntax("rb_hiccup", 189, ("[:",), lambda r: HiccupPattern(_HICCUP), LOGSEQ_ONLY),
    InlineSyntax("rb_math", 185, ("$$",), lambda r: MathPattern(r"\$\$(.+?)\$\$", r)),
    InlineSyntax("rb_inline_math", 184, ("$",), lambda r: MathPattern(_INLINE_MATH, r),
                 MARKDOWN_ONLY),
    # Escapes after code and math, whose text is as written.
    InlineSyntax("rb_escape", 183, ("\\",), lambda r: EscapePattern(_ESCAPE), MARKDOWN_ONLY),
    InlineSyntax("rb_cloze", 180, ("{{c",), lambda r: ClozePattern(r"\{\{c(\d+)::", r)),
    InlineSyntax("rb_widget", 179, ("{{",), lambda r: WidgetPattern(r"\{\{", r)),
    InlineSyntax("rb_alias", 178, ("](",), lambda r: AliasPattern(_ALIAS, r)),
    InlineSyntax("rb_ref", 177, ("((",), lambda r: RefPattern(REF.pattern, r)),
    InlineSyntax("rb_priority", 176, ("[#",), lambda r: PriorityPattern(r"\[#([A-Ca-c])\]"),
                 LOGSEQ_ONLY),
    InlineSyntax("rb_image", 175, ("![",), lambda r: ImagePattern(_IMAGE, r)),
    InlineSyntax("rb_autolink", 166, ("<",), lambda r: AutolinkPattern(_AUTOLINK)),
    InlineSyntax("rb_url", 165, ("://",), lambda r: UrlPattern(_BARE_URL)),
    InlineSyntax("rb_page", 160, ("[[",), lambda r: PageLinkPattern(r"(#?)\[\[", r)),
    InlineSyntax("rb_tag", 155, ("#",), lambda r: TagPattern(_TAG)),
    InlineSyntax("rb_strong_em", 141, ("***", "___"),
                 lambda r: StrongEmPattern(_STRONG_EM),
                 MARKDOWN_ONLY),
    InlineSyntax("rb_emphasis", 140, _EMPHASIS_MARKS,
                 lambda r: EmphasisPattern(_EMPHASIS, r.emphasis_tags)),
    # A pattern never runs on its own output: the second pass renders one level of nesting,
    # as in **__both__**.
    InlineSyntax("rb_emphasis_inner", 139.5, _EMPHASIS_MARKS,
                 lambda r: EmphasisPattern(_EMPHASIS, r.emphasis_tags)),
    InlineSyntax("rb_highlight", 139, ("==",),
                 lambda r: HighlightPattern(r"==(?=\S)(.+?)(?<=\S)==")),
    InlineSyntax("rb_italic", 138, ("*",), lambda r: ItalicPattern(_STAR_ITALIC),
                 MARKDOWN_ONLY),
    InlineSyntax("rb_italic_under", 137.5, ("_",), lambda r: ItalicPattern(_UNDER_ITALIC),
                 MARKDOWN_ONLY),
    InlineSyntax("rb_newline", 100, ("\n",), lambda r: NewlinePattern(r"\n")),
)
SYNTAX_NAMES = frozenset(syntax.name for syntax in INLINE_SYNTAX)


def dialect_syntax(dialect: str) -> tuple[InlineSyntax, ...]:
    """The inline patterns of one dialect (a ``Graph.source``), in registry order."""
    return tuple(s for s in INLINE_SYNTAX if s.dialects is None or dialect in s.dialects)


class RoamExtension(Extension):
    """Roam's syntax, and the Logseq and Obsidian dialects', one small pattern or block
    processor each; markdown's own HTML, link, list and header syntax off (the dialects have
    their own, or the readers turn it into blocks)."""

    def __init__(self, renderer: Renderer, names: frozenset[str] | None = None) -> None:
        super().__init__()
        self.renderer = renderer
        self.names = SYNTAX_NAMES if names is None else names

    def extendMarkdown(self, md: markdown.Markdown) -> None:
        md.preprocessors.deregister("html_block")
        parser = md.parser
        for name in ("indent", "code", "hashheader", "setextheader", "olist", "ulist",
                     "reference"):
            parser.blockprocessors.deregister(name)
        r = self.renderer
        parser.blockprocessors.register(FenceProcessor(parser), "rb_fence", 110)
        parser.blockprocessors.register(RoamQuoteProcessor(parser), "rb_quote", 25)
        if r.dialect in MARKDOWN_DIALECTS:
            parser.blockprocessors.register(TildeFenceProcessor(parser), "rb_tilde_fence", 109)
            parser.blockprocessors.register(CalloutProcessor(parser), "rb_callout", 26)
        if r.dialect == "logseq":
            parser.blockprocessors.register(OrgBlockProcessor(parser), "rb_org_block", 108)
        for name in list(md.inlinePatterns._data):
            md.inlinePatterns.deregister(name)
        md.treeprocessors.register(SanitizeTreeprocessor(md), "rb_sanitize", 15)
        for syntax in r.syntax:
            if syntax.name in self.names:
                pattern = syntax.make(r)
                pattern.md = md
                md.inlinePatterns.register(pattern, syntax.name, syntax.priority)


def _span(cls: str, text: str = "") -> etree.Element:
    el = etree.Element("span", {"class": cls})
    el.text = AtomicString(text)
    return el


def _span_html(cls: str, text: str) -> str:
    return f'<span class="{cls}">{html.escape(text, quote=False)}</span>'


# Block processors -------------------------------------------------------------------------


class FenceProcessor(BlockProcessor):
    """A code fence may hold blank lines: rejoin the chunks the parser split it into. A
    block that is one fence becomes ``<pre><code class="language-…">``; a fence inside
    text is left to FencePattern."""

    def test(self, parent: etree.Element, block: str) -> bool:
        # A quote holding a fence is the quote's: it strips its "> " and parses what is left.
        return "```" in block and not block.lstrip().startswith((">", "[[>]]"))

    def run(self, parent: etree.Element, blocks: list[str]) -> None:
        # Counted chunk by chunk and taken in one slice: a fence of many paragraphs costs
        # one pass, not one pass per paragraph.
        count, taken = blocks[0].count("```"), 1
        while count % 2 and taken < len(blocks):
            count += blocks[taken].count("```")
            taken += 1
        block = "\n\n".join(blocks[:taken])
        del blocks[:taken]
        # A fence on lines of its own, then text; or text, then such a fence: each part on
        # its own (each split leaves a part that starts with its fence, or has none).
        fence = _FENCE_WHOLE_START.match(block)
        if fence is not None and block[fence.end() :].strip():
            blocks[0:0] = [block[: fence.end()], block[fence.end() :].strip("\n")]
            return
        whole = _FENCE_WHOLE.match(block)
        if whole is None:
            start = _FENCE_LINE.search(block) if not block.lstrip().startswith("```") else None
            if start is not None and block[: start.start()].strip():
                blocks[0:0] = [block[: start.start()].rstrip("\n"), block[start.start() :]]
                return
            etree.SubElement(parent, "p").text = block.strip()
            return
        language, code = whole.group(1) or "", whole.group(2)
        if code is None:
            code = whole.group(3)
        _code_block(parent, language, code)


class RoamQuoteProcessor(BlockProcessor):
    """``[[>]] text``: Roam's own quote marker."""

    def test(self, parent: etree.Element, block: str) -> bool:
        return block.lstrip().startswith("[[>]]")

    def run(self, parent: etree.Element, blocks: list[str]) -> None:
        block = blocks.pop(0).lstrip()[len("[[>]]"):].strip()
        quote = etree.SubElement(parent, "blockquote")
        self.parser.parseChunk(quote, block)


def _take_fenced(blocks: list[str], opening: re.Match[str], closer: re.Pattern[str]) -> str:
    """Take the fenced text that ``opening`` (matched at the start of ``blocks[0]``) begins,
    up to the first line ``closer`` matches (or to the end), out of ``blocks``; what follows
    the closing line on its chunk goes back as the next block. Returns the text between."""
    offset, found = 0, None
    for index, chunk in enumerate(blocks):
        found = closer.search(chunk, opening.end() if index == 0 else 0)
        if found is not None:
            break
        offset += len(chunk) + 2  # the blank line Markdown split the chunks at
    taken = index + 1
    whole = "\n\n".join(blocks[:taken])
    del blocks[:taken]
    if found is None:
        return whole[opening.end() :]
    rest = whole[offset + found.end() :].strip("\n")
    if rest:
        blocks.insert(0, rest)
    return whole[opening.end() : offset + found.start()]


def _code_block(parent: etree.Element, language: str, code: str) -> None:
    pre = etree.SubElement(parent, "pre")
    attrs = {"class": f"language-{language.lower()}"} if language else {}
    etree.SubElement(pre, "code", attrs).text = AtomicString(code)


class TildeFenceProcessor(BlockProcessor):
    """Markdown's ``~~~lang`` fences (Logseq, Obsidian), closed by a line of as many tildes;
    the chunks between are taken in one slice."""

    def test(self, parent: etree.Element, block: str) -> bool:
        return bool(_TILDE_OPEN.match(block))

    def run(self, parent: etree.Element, blocks: list[str]) -> None:
        opening = _TILDE_OPEN.match(blocks[0])
        assert opening is not None
        closer = re.compile(rf"^[ \t]*{opening.group(1)}~*[ \t]*$", re.MULTILINE)
        code = _take_fenced(blocks, opening, closer)
        _code_block(parent, opening.group(2), code.rstrip("\n") + "\n")


class CalloutProcessor(BlockProcessor):
    """Obsidian's callouts: ``> [!warning] Title`` and the quote's further lines, as a
    quote titled by its title (or its kind)."""

    def test(self, parent: etree.Element, block: str) -> bool:
        return block.lstrip().startswith(">") and bool(_CALLOUT.match(block))

    def run(self, parent: etree.Element, blocks: list[str]) -> None:
        block = blocks.pop(0)
        head, _, body = block.partition("\n")
        match = _CALLOUT.match(head)
        assert match is not None
        kind = match.group(1).lower()
        quote = etree.SubElement(parent, "blockquote",
                                 {"class": f"rb-callout rb-callout-{kind}"})
        title = etree.SubElement(etree.SubElement(quote, "div", {"class": "rb-callout-title"}),
                                 "strong")
        title.text = match.group(2).strip() or kind.replace("-", " ").capitalize()
        if body.strip():
            self.parser.parseChunk(quote, _QUOTE_PREFIX.sub("", body))


class OrgBlockProcessor(BlockProcessor):
    """Logseq's org-mode blocks in Markdown: ``#+BEGIN_QUOTE`` … ``#+END_QUOTE`` is a quote,
    ``SRC``/``EXAMPLE`` code, ``NOTE``, ``TIP``, ``WARNING``… a titled quote (as a callout);
    the lines between are read as the block's text."""

    _CODE = frozenset({"src", "example", "export"})
    _ADMONITIONS = frozenset({"note", "tip", "important", "caution", "warning", "pinned"})

    def test(self, parent: etree.Element, block: str) -> bool:
        return bool(_ORG_OPEN.match(block))

    def run(self, parent: etree.Element, blocks: list[str]) -> None:
        opening = _ORG_OPEN.match(blocks[0])
        assert opening is not None
        kind = opening.group(1).lower()
        closer = re.compile(rf"^[ \t]*#\+END_{re.escape(opening.group(1))}[ \t]*$",
                            re.MULTILINE | re.IGNORECASE)
        content = _take_fenced(blocks, opening, closer).strip("\n")
        if kind in self._CODE:
            words = opening.group(2).split()
            _code_block(parent, words[0] if words else "", content + "\n")
            return
        if kind == "comment":
            return
        if kind in self._ADMONITIONS:
            box = etree.SubElement(parent, "blockquote",
                                   {"class": f"rb-callout rb-callout-{kind}"})
            title = etree.SubElement(etree.SubElement(box, "div", {"class": "rb-callout-title"}),
                                     "strong")
            title.text = kind.capitalize()
        elif kind == "quote":
            box = etree.SubElement(parent, "blockquote")
        else:
            box = etree.SubElement(parent, "div", {"class": f"rb-org-{kind}"})
        if content:
            self.parser.parseChunk(box, content)


# Inline patterns --------------------------------------------------------------------------


class AttributePattern(InlineProcessor):
    """``Key:: value`` at the start of a block: the key styled (with one colon, as Roam
    shows it, so plain text and breadcrumbs read "Key: value"), the value rendered."""

    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:
        key = page_title_text(m.group(1)).strip().strip("[]#").strip()
        el = etree.Element("span", {"class": "rb-attr-name"})
        el.text = f"{key}:"  # not atomic: the later patterns render emphasis in the name
        return el, m.start(0), m.end(0)


class FencePattern(InlineProcessor):
    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:
        language = (m.group(1) or "").lower()
        code = m.group(2) if m.group(2) is not None else m.group(3)
        el = etree.Element("code", {"class": f"rb-fence language-{language}" if language
                                    else "rb-fence"})
        el.text = AtomicString(code)
        return el, m.start(0), m.end(0)


class CodePattern(InlineProcessor):
    """Inline code: shown exactly as written, untouched by every other pattern."""

    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:
        el = etree.Element("code")
        el.text = AtomicString(m.group(2))
        return el, m.start(0), m.end(0)


class _RendererPattern(InlineProcessor):
    """An inline pattern that needs the Renderer: to render refs and embeds, resolve images,
    or know the hidden tags and the source's dialect."""

    def __init__(self, pattern: str, renderer: Renderer) -> None:
        super().__init__(pattern)
        self.renderer = renderer


class MathPattern(_RendererPattern):
    """``$$tex$$`` (and in Logseq and Obsidian ``$tex$``) as MathJax: inline in text,
    display when ``$$…$$`` is the whole block. A ``((ref))`` inside is the block's text, as
    Roam shows it."""

    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:
        tex = self.renderer._tex(m.group(1))
        if m.group(0).startswith("$$") and m.start(0) == 0 and m.end(0) == len(data):
            return _span("rb-math rb-display", f"\\[{tex}\\]"), m.start(0), m.end(0)
        return _span("rb-math", f"\\({tex}\\)"), m.start(0), m.end(0)


class ClozePattern(_RendererPattern):
    """``{{cN::text::hint}}``: an Anki cloze marker in a cloze note's own text (see
    ``Renderer.inline``); anywhere else the text, emphasised. The end is found by brace
    balance, so the text may hold ``{{widgets}}`` of its own."""

    def handleMatch(
        self, m: re.Match[str], data: str
    ) -> tuple[etree.Element | None, int | None, int | None]:
        r = self.renderer
        end = r._closing(data, m.start(0), braces=True)
        inner = data[m.end(0) : end - 2] if end > 0 else ""
        if not inner:
            return None, None, None
        # The hint follows the first "::" after which no brace comes (Anki's reading).
        last_brace = max(inner.rfind("{"), inner.rfind("}"))
        split = inner.find("::", max(1, last_brace - 1))
        text, hint = (inner, "") if split < 0 else (inner[:split], inner[split + 2 :])
        if not (r._cloze_mode and not r._ref_stack):
            el = etree.Element("span", {"class": "rb-cloze"})
            el.text = text
            return el, m.start(0), end
        el = etree.Element("rbcloze", {"n": m.group(1)})
        el.text = text
        if hint:
            hint_el = etree.SubElement(el, "rbhint")
            hint_el.text = AtomicString(hint)
        return el, m.start(0), end


class RefPattern(_RendererPattern):
    def handleMatch(self, m: re.Match[str], data: str) -> tuple[str, int, int]:
        stashed = self.md.htmlStash.store(self.renderer.ref(m.group(1)))
        return stashed, m.start(0), m.end(0)


class WidgetPattern(_RendererPattern):
    """``{{…}}`` widgets: checkboxes, embeds, media, click-to-reveal, tables and Logseq's
    ``{{cloze x}}``; any other widget stays as muted literal text."""


    def handleMatch(
        self, m: re.Match[str], data: str
    ) -> tuple[etree.Element | str | None, int | None, int | None]:
        end = self.renderer._closing(data, m.start(0), braces=True)
        if end < 0:
            return None, None, None
        inner = data[m.end(0) : end - 2]
        parts = _WIDGET_NAME.match(inner)
        name = page_title_text(parts.group(1)).strip().lower() if parts else ""
        rest = parts.group(2).strip() if parts else ""
        return self._widget(name, rest, inner), m.start(0), end

    def _widget(self, name: str, rest: str, inner: str) -> etree.Element | str:
        r = self.renderer
        if name == "todo":
            return _span("rb-todo", "☐")
        if name == "done":
            return _span("rb-done", "☑")
        if name in EMBEDS and rest:
            return self.md.htmlStash.store(r.embed(rest, name))
        if name in _MEDIA and rest:
            url = rest.strip("<>")
            if is_safe_url(url) and url.lower().startswith(("http://", "https://")):
                return _media_link(name, url)
        if name == "=" and rest:
            shown, _, hidden = rest.partition("|")
            el = etree.Element("details", {"class": "rb-reveal"})
            summary = etree.SubElement(el, "summary")
            summary.text = shown.strip()
            body = etree.SubElement(el, "span")
            body.text = hidden.strip()
            return el
        if name == "cloze" and rest:
            el = etree.Element("span", {"class": "rb-cloze"})
            el.text = rest
            return el
        if name == "table":
            table = r._table()
            if table is not None:
                return self.md.htmlStash.store(table)
        literal = r._literal(inner)
        if name == "query":  # a query's own braces say nothing to a reader
            literal = " ".join(literal.replace("{", " ").replace("}", " ").split())
        return _span("rb-widget", literal)


def _media_link(name: str, url: str) -> etree.Element:
    el = etree.Element("a", {"class": "rb-media", "href": url})
    video = _youtube_id(url) if name in ("video", "youtube") else None
    if video is not None:
        etree.SubElement(el, "img", {"class": "rb-thumb", "alt": "",
                                     "src": f"https://img.youtube.com/vi/{video}/hqdefault.jpg"})
    label = etree.SubElement(el, "span", {"class": "rb-media-label"})
    host = urlsplit(url).netloc.removeprefix("www.")
    label.text = AtomicString(f"{'YouTube' if video else _MEDIA[name]} · {host}")
    return el


class AliasPattern(_RendererPattern):
    """``[label](target)``: target a URL, a page ``[[P]]`` or a block ``((uid))`` (also
    ``<((uid))>``). The target is read by hand: a page title may hold spaces and brackets."""


    _BLOCK = re.compile(r"<?\(\(([\w-]{5,})\)\)>?\)")
    _URL = re.compile(rf"<?({_URL_BODY})>?(?:[ \t]+(?:\"([^\"\n]*)\"|'([^'\n]*)'))?\)")

    def handleMatch(
        self, m: re.Match[str], data: str
    ) -> tuple[etree.Element | None, int | None, int | None]:
        label, at = m.group(1), m.end(0)
        if data.startswith("[[", at):
            close = self.renderer._closing(data, at)
            if close < 0 or not data.startswith(")", close):
                return None, None, None
            raw = data[at + 2 : close - 2].strip()
            title = page_title_text(raw).strip()
            el = etree.Element("span", {"class": "rb-page rb-alias", "title": title})
            if raw != title:  # the page's name as written (markup.py reads it back)
                el.set("data-page", raw)
            end = close + 1
        elif (block := self._BLOCK.match(data, at)) is not None:
            el = etree.Element("span", {"class": "rb-ref rb-alias"})
            end = block.end(0)
        elif (url := self._URL.match(data, at)) is not None:
            target = url.group(1)
            el = (etree.Element("a", {"href": target}) if is_safe_url(target)
                  else etree.Element("span", {"class": "rb-alias"}))
            title = url.group(2) or url.group(3)
            if title:
                el.set("title", title)
            end = url.end(0)
        else:
            return None, None, None
        el.text = _LABEL_ESCAPE.sub(r"\1", label) if "\\" in label else label
        return el, m.start(0), end


class ImagePattern(_RendererPattern):
    """``![alt](src)``: src an http(s) URL or a path beside the notes, resolved through the
    Renderer's ``images``. Logseq's trailing ``{:height …}`` is dropped."""


    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:
        alt, src = m.group(1), (m.group(2) or m.group(3) or m.group(4)).strip()
        if _SCHEME.match(src) and not _HTTP_URL.match(src):
            return _span("rb-missing rb-image", alt or "image"), m.start(0), m.end(0)
        return self.renderer._image(src, alt), m.start(0), m.end(0)


class UrlPattern(InlineProcessor):
    ANCESTOR_EXCLUDES = ("a",)

    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:
        el = etree.Element("a", {"href": m.group(0)})
        el.text = AtomicString(m.group(0))
        return el, m.start(0), m.end(0)


class PageLinkPattern(_RendererPattern):
    """``[[page]]``, ``#[[tag]]`` and nested ``[[a [[b]]]]``: brackets balanced by hand,
    since a regex cannot count them. Outside Roam, ``[[page|alias]]`` shows the alias."""


    def handleMatch(
        self, m: re.Match[str], data: str
    ) -> tuple[etree.Element | str | None, int | None, int | None]:
        end = self.renderer._closing(data, m.end(0) - 2)
        if end < 0:
            return None, None, None
        raw = data[m.end(0) : end - 2].strip()
        title = page_title_text(raw).strip()
        shown = title
        if self.renderer.pipe_aliases and "|" in title:
            title, _, shown = (part.strip() for part in title.partition("|"))
            raw = raw.partition("|")[0].strip()
        el = _span("rb-tag", f"#{shown}") if m.group(1) else _span("rb-page", shown)
        if shown != title and not m.group(1):
            el.set("title", title)
        if raw != shown:  # the page's name as written (markup.py reads it back)
            el.set("data-page", raw)
        return el, m.start(0), end


class TagPattern(InlineProcessor):
    """``#tag``, also with inner punctuation (``#v1.2``, ``#Q&A``, ``#don't``, ``#c++``)."""


    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element | str, int, int]:
        return _span("rb-tag", m.group(0)), m.start(0), m.end(0)


class EmphasisPattern(InlineProcessor):
    """``**bold**``, ``__italic__`` (bold in Markdown), ``^^highlight^^`` and ``~~strike~~``:
    one pattern for the four, since each costs a pass over every text node."""

    def __init__(self, pattern: str, tags: dict[str, str]) -> None:
        super().__init__(pattern)
        self.tags = tags

    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:
        el = etree.Element(self.tags[m.group(1)])
        el.text = m.group(2)
        return el, m.start(0), m.end(0)


class StrongEmPattern(InlineProcessor):
    """Markdown's ``***both***``: bold and italic."""

    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:
        el = etree.Element("strong")
        etree.SubElement(el, "em").text = m.group(2)
        return el, m.start(0), m.end(0)


class ItalicPattern(InlineProcessor):
    """Markdown's ``*italic*`` and ``_italic_`` (never inside a word: ``snake_case``)."""

    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:
        el = etree.Element("em")
        el.text = m.group(1)
        return el, m.start(0), m.end(0)


class EscapePattern(InlineProcessor):
    """Markdown's backslash escapes: ``\\*`` is a star, never emphasis."""

    def handleMatch(self, m: re.Match[str], data: str) -> tuple[str, int, int]:
        return m.group(1), m.start(0), m.end(0)


class AutolinkPattern(InlineProcessor):
    """``<https://…>``: the link, without its angle brackets."""

    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:
        url = m.group(1)
        el = etree.Element("a", {"href": url}) if is_safe_url(url) else etree.Element("span")
        el.text = AtomicString(url)
        return el, m.start(0), m.end(0)


class MarkerPattern(InlineProcessor):
    """Logseq's task markers at the start of a block: ``TODO``, ``LATER``, ``NOW``… as ☐,
    ``DONE`` as ☑, ``CANCELED`` as ☒."""

    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:
        word = m.group(1)
        if word in _OPEN_MARKERS:
            el = _span("rb-todo", "☐")
        elif word == "DONE":
            el = _span("rb-done", "☑")
        else:
            el = _span("rb-done rb-canceled", "☒")
        el.tail = " " if m.end(0) < len(data) else ""
        return el, m.start(0), m.end(0)


class HiccupPattern(InlineProcessor):
    """A line of Logseq hiccup, as muted text exactly as written (its brackets are its
    syntax, not page links)."""

    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:
        return _span("rb-widget", f"hiccup: {m.group(1)}"), m.start(1), m.end(1)


class PriorityPattern(InlineProcessor):
    """Logseq's task priorities ``[#A]``, ``[#B]``, ``[#C]``."""

    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:
        return _span("rb-priority", m.group(1).upper()), m.start(0), m.end(0)


class HighlightPattern(InlineProcessor):
    """Logseq's and Obsidian's ``==highlight==``; ``a == b`` (spaced) is not one."""

    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:
        el = etree.Element("mark")
        el.text = m.group(1)
        return el, m.start(0), m.end(0)


class NewlinePattern(InlineProcessor):
    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:
        return etree.Element("br"), m.start(0), m.end(0)


# The sanitiser ----------------------------------------------------------------------------


_CLASS = frozenset({"class"})
# Every tag our patterns make, with the attributes each may carry. Anything else is a bug
# or an attack, and is flattened to a bare span before serialising.
ALLOWED: dict[str, frozenset[str]] = {
    "a": frozenset({"href", "class", "title"}),
    "img": frozenset({"src", "alt", "class"}),
    "span": frozenset({"class", "title"}),
    "code": _CLASS, "pre": _CLASS, "div": _CLASS, "ul": _CLASS, "table": _CLASS,
    "details": _CLASS, "blockquote": _CLASS,
    **{tag: frozenset() for tag in ("p", "br", "hr", "strong", "em", "mark", "del",
                                    "h1", "h2", "h3", "li", "tbody", "tr", "td",
                                    "summary", "rbhint")},
    "rbcloze": frozenset({"n"}),
}
_SAFE_CLASS = re.compile(r"[\w -]*\Z")


class SanitizeTreeprocessor(Treeprocessor):
    """The allow-list, applied to the element tree before it is serialised: far cheaper
    than parsing the HTML again. Stashed HTML (refs, embeds) is our own output, already
    sanitised when it was rendered."""

    def run(self, root: etree.Element) -> None:
        for el in root.iter():
            # The serializer leaves "&#60;" and "&lt;" as entities; block text is data, so
            # every "&" is escaped and shows as written.
            if el.text and "&" in el.text:
                el.text = el.text.replace("&", "&amp;")
            if el.tail and "&" in el.tail:
                el.tail = el.tail.replace("&", "&amp;")
            allowed = ALLOWED.get(el.tag)
            if allowed is None:
                el.tag = "span"
                el.attrib.clear()
                continue
            if not el.attrib:
                continue
            for name, value in list(el.attrib.items()):
                if "&" in value:
                    el.attrib[name] = value = value.replace("&", "&amp;")
                if (name not in allowed or (name == "class" and not _SAFE_CLASS.match(value))
                        or (name == "n" and not value.isdigit())):
                    del el.attrib[name]
            if el.tag == "a" and not is_safe_url(el.get("href", "")):
                el.tag = "span"
                el.attrib = {"class": "rb-alias"}
            elif el.tag == "img" and not is_safe_image_src(el.get("src", "")):
                alt = el.get("alt") or "image"
                el.tag = "span"
                el.attrib = {"class": "rb-missing rb-image"}
                el.text = AtomicString(alt)

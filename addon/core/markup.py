"""A card field's HTML back to the markup of the notes it came from (Roam, Logseq, Obsidian).

This module's public interface is ``to_markup(html, dialect)``. It reads the HTML Anki's
editor leaves in a field (our own rendering, plus what the user typed or formatted) and
writes the markup that says the same in the notes' dialect: bold, italic, highlight, strike,
code, links, page links and tags (our spans carry the page's name, and an alias's ``title``
the page it links to), math, line breaks.
Anything it cannot say in markup (a block reference, an embed, a widget, an image, a table,
a list) makes it give up and return None: an edit there is kept in Anki, never guessed into
the notes.

It does not decide whether the result is right: edit_back.py renders it again and compares
with what Anki holds before anything is written.
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, NavigableString, Tag

from .apps import Dialect


class Unmappable(Exception):
    """The HTML holds something that has no markup of its own in the notes."""


_EMPHASIS: dict[str, dict[Dialect, tuple[str, str]]] = {
    "strong": {"roam": ("**", "**"), "logseq": ("**", "**"), "obsidian": ("**", "**")},
    "em": {"roam": ("__", "__"), "logseq": ("*", "*"), "obsidian": ("*", "*")},
    "mark": {"roam": ("^^", "^^"), "logseq": ("==", "=="), "obsidian": ("==", "==")},
    "del": {"roam": ("~~", "~~"), "logseq": ("~~", "~~"), "obsidian": ("~~", "~~")},
}
# What Anki's editor writes for the same emphasis.
_ALIASES = {"b": "strong", "i": "em", "s": "del", "strike": "del"}
# Our spans that are only presentation (their text is the markup's text).
_TRANSPARENT = {"span", "font", "div", "p"}
_INLINE_MATH = {"roam": ("$$", "$$"), "logseq": ("$", "$"), "obsidian": ("$", "$")}
# Anki's cloze markers in text: the caller writes them in the block's own cloze syntax.
_ANKI_CLOZE = re.compile(r"\{\{c\d+::|\}\}")
# Text that the notes would read as markup of its own (or where Roam has no escape), so it
# cannot be written as it is: such a field reads back as nothing (one-way), and an edit to
# it goes back only by transplanting the change into the block's own text (edit_back.py).
_MARKUP_IN_TEXT: dict[Dialect, re.Pattern[str]] = {
    "roam": re.compile(r"\*\*|__|\^\^|~~|`|\[\[|\]\]|\(\(|\)\)|\{|\}|\$\$|#|::|<|\\|\["),
    "logseq": re.compile(r"[*_`~=\[\]{}$#<\\^]|\(\(|::"),
    "obsidian": re.compile(r"[*_`~=\[\]{}$#<\\^%|]|::"),
}


def to_markup(html: str, dialect: Dialect) -> str | None:
    """The markup for a field's HTML, or None when part of it has no markup of its own."""
    soup = BeautifulSoup(html, "html.parser")
    try:
        text = "".join(_node(child, dialect) for child in soup.children)
    except Unmappable:
        return None
    return text.strip("\n")


def _node(node: object, dialect: Dialect) -> str:
    if isinstance(node, NavigableString):
        if type(node) is not NavigableString:  # a comment, a CDATA section…
            return ""
        text = str(node).replace("\xa0", " ")
        if _MARKUP_IN_TEXT[dialect].search(_ANKI_CLOZE.sub("", text)):
            raise Unmappable
        return text
    if not isinstance(node, Tag):
        return ""
    name = _ALIASES.get(node.name, node.name)
    classes = set(node.get("class") or ())
    if name == "br":
        return "\n"
    if name in _EMPHASIS:
        inner = _inner(node, dialect)
        if not inner.strip():
            return inner
        start, end = _EMPHASIS[name][dialect]
        if start == "*" and (inner.startswith("*") or inner.endswith("*")):
            # Italic around bold: "***x***" would read as bold around italic, "_**x**_" not.
            start = end = "_"
        return f"{start}{inner}{end}"
    if name == "code":
        code = node.get_text()
        if node.attrs or "`" in code or "\n" in code:  # a fence, or code a span cannot hold
            raise Unmappable
        return f"`{code}`"
    if name == "a":
        href = str(node.get("href") or "")
        if not href.startswith(("http://", "https://")) or set(node.attrs) - {"href"}:
            raise Unmappable  # our own links to blocks and pages are not in the block's text
        if node.get_text() == href:
            return href
        return f"[{_inner(node, dialect)}]({href})"  # the label keeps its own emphasis, code
    if "rb-page" in classes:
        shown = node.get_text()
        page = str(node.get("data-page") or node.get("title") or shown)
        if node.get("title") is None:
            return f"[[{page}]]"
        # A link shown under another name (an alias) says both.
        return f"[[{page}|{shown}]]" if dialect == "obsidian" else f"[{shown}]([[{page}]])"
    if "rb-tag" in classes:
        tag = str(node.get("data-page") or node.get_text().lstrip("#"))
        return f"#{tag}" if tag and not any(c in tag for c in " []#,") else f"#[[{tag}]]"
    if "rb-math" in classes:
        body = node.get_text()
        if body.startswith("\\(") and body.endswith("\\)"):
            body = body[2:-2]
        elif body.startswith("\\[") and body.endswith("\\]"):
            return f"$${body[2:-2]}$$"
        start, end = _INLINE_MATH[dialect]
        return f"{start}{body}{end}"
    if classes & {"rb-ref", "rb-embed", "rb-widget", "rb-missing", "rb-media", "rb-image",
                  "rb-table", "rb-reveal", "rb-todo", "rb-done", "rb-children"}:
        raise Unmappable
    if "rb-cloze" in classes and not _ANKI_CLOZE.search(node.get_text()):
        raise Unmappable  # a cloze shown as its content: its syntax is not in the HTML
    if name in _TRANSPARENT and not classes - {"rb-cloze"}:
        inner = _inner(node, dialect)
        if name in ("div", "p") and inner:
            return f"\n{inner}\n"
        return inner
    raise Unmappable


def _inner(node: Tag, dialect: Dialect) -> str:
    return "".join(_node(child, dialect) for child in node.children)

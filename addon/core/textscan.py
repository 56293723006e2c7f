"""Linear scans of block text: matching brackets, and blanking out code, math and URLs.

Block text is the user's, or an attacker's: a megabyte of unclosed ``{{`` must cost one pass
over the text, not one pass per opener. Every function here is linear in the length of its
text, and every mask keeps positions (a blanked character becomes ``\\x00``), so a match found
in the mask is a match in the text.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .apps import TEXT_URL_SCHEMES

BLANK = "\x00"

_BRACES = re.compile(r"[{}]")
_LINK_TOKENS = re.compile(r"\[\[|\]\]")
_URL = re.compile(TEXT_URL_SCHEMES + r"://[^\s<>]*", re.IGNORECASE)
# Fences pair up in order (a ``` opens, the next one closes), then inline code.
_CODE = re.compile(r"```.*?```|`[^`]*`", re.S)
_TILDE_LINE = re.compile(r"^[ \t]*(~{3,})([^\n]*)$", re.M)
_DISPLAY_MATH = re.compile(r"\$\$.*?\$\$", re.S)
# Inline math as Logseq and Obsidian (and pandoc) read it: "$x$" with no space just inside
# the dollars and no digit right after the closing one, so "$5 and $10" is not math.
_INLINE_MATH = re.compile(r"(?<![\\$])\$(?=[^\s$])[^$\n]*?(?<=[^\s\\$])\$(?![\d$])")


def brace_ends(text: str) -> dict[int, int]:
    """For every ``{`` in ``text``: the index just past the ``}`` that balances it, or -1.

    Single braces count, as in a Roam query: ``{{query: {and: [[a]] {or: b}}}}`` is one widget.
    """
    ends: dict[int, int] = {}
    stack: list[int] = []
    for m in _BRACES.finditer(text):
        if m.group() == "{":
            stack.append(m.start())
            ends[m.start()] = -1
        elif stack:
            ends[stack.pop()] = m.end()
    return ends


def link_ends(text: str) -> dict[int, int]:
    """For every ``[[`` of ``text`` (read left to right, two characters at a time as a
    link's brackets are): the index just past the ``]]`` that balances it, or -1."""
    ends: dict[int, int] = {}
    stack: list[int] = []
    for m in _LINK_TOKENS.finditer(text):
        if m.group() == "[[":
            stack.append(m.start())
            ends[m.start()] = -1
        elif stack:
            ends[stack.pop()] = m.end()
    return ends


class ClosingIndex:
    """The partner of each opener of one text, found in one pass and kept while
    python-markdown rewrites the text around it.

    An inline pattern replaces its matches left to right, so every position changes, but what
    follows a match keeps its distance from the end of the text: the answers are kept by that
    distance, and checked against the text's tail before they are used.
    """

    def __init__(self, scan: Callable[[str], dict[int, int]]) -> None:
        self._scan = scan
        self._text = ""
        self._ends: dict[int, int] = {}

    def end(self, data: str, opener: int) -> int:
        """Index in ``data`` just past the closer of the opener at ``opener``, or -1."""
        tail = len(data) - opener
        start = len(self._text) - tail
        if start < 0 or start not in self._ends or not self._text.endswith(data[opener:]):
            self._text = data[opener:]
            self._ends = self._scan(self._text)
            start = 0
        close = self._ends.get(start, -1)
        return -1 if close < 0 else opener + close - start


def blank(text: str, pattern: re.Pattern[str]) -> str:
    """``text`` with every match of ``pattern`` blanked out."""
    return pattern.sub(lambda m: BLANK * len(m.group(0)), text)


def mask_code(text: str, urls: bool = True) -> str:
    """``text`` with code (fences and inline) and, unless ``urls`` is False, URLs blanked."""
    if urls and "://" in text:
        text = blank(text, _URL)
    if "`" in text:
        text = blank(text, _CODE)
    return text


def mask_literal(text: str, dollar_math: bool) -> str:
    """``text`` with everything that is never markup of ours blanked: URLs, code (also
    ``~~~`` fences when ``dollar_math``, the Markdown dialects), ``$$math$$`` and, for the
    dialects that have it (``dollar_math``), inline ``$math$``."""
    text = mask_code(text)
    if dollar_math and "~~~" in text:
        text = _blank_tilde_fences(text)
    if "$" in text:
        if "$$" in text:
            text = blank(text, _DISPLAY_MATH)
        if dollar_math:
            text = blank(text, _INLINE_MATH)
    return text


def _blank_tilde_fences(text: str) -> str:
    """``text`` with its ``~~~`` fences blanked, each from its opening line through the
    first later line of at least as many tildes and nothing else (or the end of the text)."""
    spans: list[tuple[int, int]] = []
    opened: tuple[int, int] | None = None  # (start, tildes)
    for m in _TILDE_LINE.finditer(text):
        if opened is None:
            opened = (m.start(), len(m.group(1)))
        elif len(m.group(1)) >= opened[1] and not m.group(2).strip():
            spans.append((opened[0], m.end()))
            opened = None
    if opened is not None:
        spans.append((opened[0], len(text)))
    if not spans:
        return text
    pieces, cursor = [], 0
    for start, end in spans:
        pieces.append(text[cursor:start])
        pieces.append(BLANK * (end - start))
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)

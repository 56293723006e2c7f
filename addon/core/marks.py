"""Where a block's text marks it, in the tag forms each dialect reads as a mark.

A mark is one of a few tag names (the card tags, ``reversed``, ``no-card``) written as a tag:
- ``#card`` and ``#[[card]]`` are tags wherever they stand, outside code and URLs;
- ``[[card]]`` is a tag in Roam and Logseq only among the tags that end a line
  (``What is X? [[card]]``); in the middle of prose it is a link to the page, and a word:
  ``I review my [[Anki]] deck every morning`` is not a card;
- in Obsidian ``[[card]]`` is a link to a note, never a tag.

cards.py decides with these spans which blocks are cards; render.py hides exactly these spans,
so a mark never shows on a card while the same word used as a link still does.

Guarantees: linear in the length of the text; names match regardless of case.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable

from .textscan import mask_code

# A line's trailing run of tags, read backwards from the end of the line: "]]x[[", "]]x[[#"
# and "x#" are "[[x]]", "#[[x]]" and "#x" reversed.
_NONE: frozenset[str] = frozenset()
_TRAILING_TAGS = re.compile(r"(?:[ \t]*(?:\]\][^\[\]\n]*\[\[#?|[^\s#\[\]]+#))*[ \t]*")


class Marks:
    """Finds the marks among ``names`` in text of one dialect (a ``Graph.source``)."""

    def __init__(self, names: Iterable[str], dialect: str) -> None:
        self.names = frozenset(n.lower() for n in names)
        alternatives = "|".join(re.escape(n) for n in sorted(self.names, key=len, reverse=True))
        self._tag = re.compile(
            rf"#\[\[({alternatives})\]\](?!\])|(?<![\w#/&])#({alternatives})(?![\w\-/])",
            re.IGNORECASE,
        ) if alternatives else None
        self._link = re.compile(rf"(?<!#)\[\[({alternatives})\]\](?!\])", re.IGNORECASE) if (
            alternatives and dialect != "obsidian") else None

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """``(start, end, name in lower case)`` of every mark in ``text``, in order."""
        if self._tag is None or ("#" not in text and "[[" not in text):
            return []
        lowered = text.lower()
        if not any(name in lowered for name in self.names):
            return []
        masked = mask_code(text)
        found = [(m.start(), m.end(), (m.group(1) or m.group(2)).lower())
                 for m in self._tag.finditer(masked)]
        if self._link is not None and "[[" in masked:
            links = list(self._link.finditer(masked))
            if links:
                lines, trailing = _trailing_starts(masked)
                found.extend((m.start(), m.end(), m.group(1).lower()) for m in links
                             if m.start() >= trailing[bisect_right(lines, m.start()) - 1])
                found.sort()
        return found

    def names_in(self, text: str) -> frozenset[str]:
        """The mark names ``text`` carries (lower case)."""
        spans = self.spans(text)
        return frozenset(name for _, _, name in spans) if spans else _NONE


def _trailing_starts(text: str) -> tuple[list[int], list[int]]:
    """Where each line of ``text`` starts, and where the run of tags that ends it starts."""
    lines: list[int] = []
    starts: list[int] = []
    line_start = 0
    for line in text.split("\n"):
        run = _TRAILING_TAGS.match(line[::-1])
        lines.append(line_start)
        starts.append(line_start + len(line) - (run.end() if run else 0))
        line_start += len(line) + 1
    return lines, starts

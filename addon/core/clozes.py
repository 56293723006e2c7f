"""The cloze engine: which block texts are cloze notes, and their Anki cloze text, numbered so
that each cloze keeps its number (and its card's review history) from one sync to the next.

This module's public interface is ``ClozeSyntax`` (the cloze syntaxes one source's blocks use),
``has_cloze`` and ``number_clozes`` (with ``cloze_text`` as its shorthand).

The syntaxes, by dialect (README, "Marking cards"):
- ``{{c1::x}}`` (and ``{{c1::x::hint}}``), Anki's own, with an explicit number: every dialect;
- ``{{cloze x}}``, Logseq's own: every dialect (nothing else is written that way);
- ``{c1:x}``, the numbered shorthand of Roam's Anki tools: every dialect;
- ``{x}``, the bare shorthand some Roam tools use: only when the source turns it on
  (``brace_clozes``), since ordinary text holds braces too (``Let S = {1, 2, 3}``);
- ``^^x^^`` and ``==x==``, highlights: only with ``highlight_cloze``.

Never a cloze: anything inside code, math (``$$…$$``, and ``$…$`` in Logseq and Obsidian),
URLs or ``{{widgets}}``; and for ``{x}``, a brace right after a letter, digit or one of
``\\ _ ^ } ]`` (TeX such as ``\\frac{2}{3}`` or ``I_{0}``), or one opening with ``:`` or a
space (EDN maps such as ``{:height 560, :width 960}``).

Guarantees: every function is linear in the length of the text (one pass per syntax, brackets
matched in one pass); explicit numbers are used as written; see ``number_clozes`` for how the
others keep their numbers.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass

from .apps import MARKDOWN_DIALECTS
from .textscan import BLANK, brace_ends, mask_literal

# Which number each auto-numbered cloze got: ``(content digest, number)`` in text order; an
# entry with an empty digest only records the highest number ever given (see number_clozes).
ClozeMemory = tuple[tuple[str, int], ...]

_DOUBLE = re.compile(r"\{\{")
_EXPLICIT = re.compile(r"c(\d+)::")
_LOGSEQ = re.compile(r"cloze[\s:]\s*")
_NUMBERED_SHORT = re.compile(r"(?<!\{)\{c(\d+):(?!:)([^{}]+)\}(?!\})")
_BARE_SHORT = re.compile(r"(?<![{\w\\^_}\]])\{(?![:\s])([^{}]+)\}(?!\})")
_HIGHLIGHT = re.compile(r"\^\^(.+?)\^\^|==(?=\S)(.+?)(?<=\S)==")

# start, end, explicit number (None: numbered here), content
_Span = tuple[int, int, "int | None", str]


@dataclass(frozen=True)
class ClozeSyntax:
    """The cloze syntaxes of one source. ``brace``: ``{x}``; ``highlight``: ``^^x^^`` and
    ``==x==``; ``dollar_math``: ``$x$`` is math, never a cloze (Logseq, Obsidian)."""

    brace: bool = False
    highlight: bool = False
    dollar_math: bool = False

    @classmethod
    def of(cls, source: str, brace: bool = False, highlight: bool = False) -> ClozeSyntax:
        """The syntax of a graph whose ``Graph.source`` is ``source``."""
        return cls(brace=brace, highlight=highlight, dollar_math=source in MARKDOWN_DIALECTS)


PLAIN = ClozeSyntax()


def has_cloze(text: str, syntax: ClozeSyntax = PLAIN) -> bool:
    """Whether the block is a cloze note (cheaper than numbering its clozes)."""
    return _cloze_spans(text, syntax) is not None


def cloze_text(text: str, syntax: ClozeSyntax = PLAIN, memory: ClozeMemory = ()) -> str | None:
    """``text`` with every cloze syntax rewritten as Anki's ``{{cN::…}}``, or None if the
    block has no cloze. See ``number_clozes``."""
    numbered = number_clozes(text, syntax, memory)
    return numbered[0] if numbered is not None else None


def number_clozes(
    text: str, syntax: ClozeSyntax = PLAIN, memory: ClozeMemory = ()
) -> tuple[str, ClozeMemory] | None:
    """``text`` with every cloze rewritten as ``{{cN::…}}``, and the numbers the
    auto-numbered ones got (to remember for next time); None if the block has no cloze.

    Explicit numbers (``{{c2::x}}``, ``{c2:x}``) always win. An auto-numbered cloze keeps the
    number ``memory`` gave the same content, so inserting a cloze before others never moves
    their review history to another card; a cloze whose content was edited keeps the number
    of the one it replaced (in order); a new one takes a number never used before. Without
    memory, auto clozes take the lowest free numbers in order.
    """
    found = _cloze_spans(text, syntax)
    if found is None:
        return None
    spans, used = found
    spans.sort()
    autos = [(i, _cloze_digest(content)) for i, (_, _, n, content) in enumerate(spans)
             if n is None]
    numbers = _auto_numbers([d for _, d in autos], used, memory)
    assigned = dict(zip((i for i, _ in autos), numbers, strict=True))
    pieces: list[str] = []
    cursor = 0
    for i, (start, end, number, content) in enumerate(spans):
        pieces.append(text[cursor:start])
        pieces.append(f"{{{{c{assigned.get(i, number)}::{content}}}}}")
        cursor = end
    pieces.append(text[cursor:])
    remembered = tuple(zip((d for _, d in autos), numbers, strict=True))
    # A removed cloze's card stays (suspended, with its history): its number is retired for
    # good, even when it was the highest, so the highest number ever given is kept too.
    highest = max((n for _, n in memory), default=0)
    if highest > max(numbers, default=0):
        remembered += (("", highest),)
    return "".join(pieces), remembered


def _cloze_spans(text: str, syntax: ClozeSyntax) -> tuple[list[_Span], set[int]] | None:
    """Every cloze to number in ``text``, and the explicit ``{{cN::`` numbers; None when the
    text has no cloze at all."""
    if "{" not in text and not (syntax.highlight and ("^^" in text or "==" in text)):
        return None
    masked = mask_literal(text, syntax.dollar_math)
    used: set[int] = set()
    spans: list[_Span] = []
    taken: list[tuple[int, int]] = []  # widgets and clozes: nothing inside is a shorthand
    if "{{" in masked:
        ends = brace_ends(masked)
        cursor = 0
        for m in _DOUBLE.finditer(masked):
            start = m.start()
            end = ends.get(start, -1)
            if start < cursor or end < 0:
                continue
            inner = masked[start + 2 : end - 2]
            explicit = _EXPLICIT.match(inner)
            logseq = None if explicit else _LOGSEQ.match(inner)
            opener = explicit or logseq
            content = text[start + 2 + opener.end() : end - 2] if opener else ""
            if explicit and int(explicit.group(1)) > 0 and content.strip():
                used.add(int(explicit.group(1)))
            elif logseq and content.strip():
                spans.append((start, end, None, logseq_cue_to_hint(content)))
            taken.append((start, end))
            cursor = end
    shorthand = _blank_spans(masked, taken)
    for m in _NUMBERED_SHORT.finditer(shorthand):
        number = int(m.group(1))
        if number > 0:
            used.add(number)
            spans.append((m.start(), m.end(), number, text[m.start(2) : m.end(2)]))
    if syntax.brace:
        shorthand = _blank_spans(shorthand, [(s, e) for s, e, _, _ in spans])
        for m in _BARE_SHORT.finditer(shorthand):
            spans.append((m.start(), m.end(), None, text[m.start(1) : m.end(1)]))
    if syntax.highlight and ("^^" in text or "==" in text):
        shorthand = _blank_spans(shorthand, [(s, e) for s, e, _, _ in spans])
        for m in _HIGHLIGHT.finditer(shorthand):
            group = 1 if m.group(1) is not None else 2
            spans.append((m.start(), m.end(), None, text[m.start(group) : m.end(group)]))
    if not spans and not used:
        return None
    return spans, used


def logseq_cue_to_hint(content: str) -> str:
    """A Logseq cloze's ``answer \\\\ cue`` as Anki's ``answer::hint``. Logseq cuts at the
    last ``\\\\``; one at the very end says there is no cue (so ``\\\\ \\\\`` is the
    answer ``\\\\``)."""
    answer, cut, cue = content.rpartition("\\\\")
    if not cut:
        return content
    if not cue.strip():
        return answer.strip() or content
    return f"{answer.strip()}::{cue.strip()}"


def hint_to_logseq_cue(content: str) -> str:
    """The way back: Anki's ``answer::hint`` as Logseq writes it; an answer holding
    ``\\\\`` gets the closing ``\\\\`` that says it has no cue."""
    answer, cut, hint = content.partition("::")
    if cut:
        return f"{answer} \\\\ {hint}"
    return f"{content} \\\\" if "\\\\" in content else content


def _auto_numbers(digests: list[str], explicit: set[int], memory: ClozeMemory) -> list[int]:
    """Numbers for auto-numbered clozes (by content digest, in text order); see
    ``number_clozes``."""
    taken = set(explicit)
    result: list[int | None] = [None] * len(digests)
    remembered: dict[str, list[int]] = defaultdict(list)
    for digest, number in memory:
        if digest:
            remembered[digest].append(number)
    # 1. Same content, same number.
    for i, digest in enumerate(digests):
        for number in remembered.get(digest, ()):
            if number not in taken:
                result[i] = number
                taken.add(number)
                remembered[digest].remove(number)
                break
    # 2. Edited content takes the number of the cloze it replaced, in order.
    leftover = [n for d, n in memory if n not in taken and n in remembered.get(d, ())]
    for i in range(len(digests)):
        if result[i] is None and leftover:
            number = leftover.pop(0)
            result[i] = number
            taken.add(number)
    # 3. The rest: numbers never used, so no card's history is handed to new content.
    next_free = max((n for _, n in memory), default=0) + 1 if memory else 1
    for i in range(len(digests)):
        if result[i] is None:
            while next_free in taken:
                next_free += 1
            result[i] = next_free
            taken.add(next_free)
    return [n for n in result if n is not None]


def _cloze_digest(content: str) -> str:
    return hashlib.blake2b(" ".join(content.split()).encode(), digest_size=4).hexdigest()


def _blank_spans(text: str, spans: list[tuple[int, int]]) -> str:
    if not spans:
        return text
    pieces: list[str] = []
    cursor = 0
    for start, end in sorted(spans):
        if start < cursor:
            continue
        pieces.append(text[cursor:start])
        pieces.append(BLANK * (end - start))
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)

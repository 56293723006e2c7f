"""An edit made in Anki, as the block text that says it: found two ways, always checked.

This module's public interface is ``block_text``. Given what a field showed (the bridge's
rendering), what Anki holds now (the user's edit), the block's markup and a way to render a
candidate markup as that field, it returns the new markup, or None:

1. **Converted**: the edited HTML back to markup (markup.py), with the block's card tag and
   other hidden tags put back, and its clozes written in the syntax the block used.
2. **Transplanted**: the change between the two plain texts (a fixed typo, a reworded
   sentence), applied to the block's markup where the text lines up with it, leaving every
   bit of markup around it as it was.

A candidate counts only if rendering it gives what Anki holds (up to spellings the editor
makes, such as ``<b>`` for ``<strong>``). So the notes never get a guess: an edit that cannot
be said exactly stays in Anki, and is reported.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from difflib import SequenceMatcher

from bs4 import BeautifulSoup

from .clozes import hint_to_logseq_cue
from .markup import Dialect, to_markup
from .two_way import same

__all__ = ["block_text", "plain", "same", "transplant", "with_tags"]

_ANKI_CLOZE = re.compile(r"\{\{c(\d+)::(.*?)\}\}", re.S)
# Work per candidate is quadratic in the text: long texts are not transplanted.
_TRANSPLANT_LIMIT = 5_000


def block_text(
    edited: str, shown: str, original: str, dialect: Dialect,
    render: Callable[[str], str], hidden_tags: Iterable[str] = (),
) -> str | None:
    """The block markup that renders to ``edited`` (as ``render`` renders a candidate), or
    None when no markup found here does."""
    for candidate in _candidates(edited, shown, original, dialect, tuple(hidden_tags)):
        if candidate != original and same(render(candidate), edited):
            return candidate
    return None


def _candidates(edited: str, shown: str, original: str, dialect: Dialect,
                hidden_tags: tuple[str, ...]) -> list[str]:
    found: list[str] = []
    converted = to_markup(edited, dialect)
    if converted is not None:
        body = with_tags(converted, original, hidden_tags)
        found.extend(_cloze_spellings(body, original))
    transplanted = transplant(original, plain(shown), plain(edited))
    if transplanted is not None:
        found.append(transplanted)
    return list(dict.fromkeys(found))


def plain(html: str) -> str:
    """A field's text as a reader sees it (line breaks kept)."""
    soup = BeautifulSoup(html.replace("<br>", "\n"), "html.parser")
    return soup.get_text().replace("\xa0", " ")


def transplant(original: str, shown: str, edited: str) -> str | None:
    """``original`` with the change from ``shown`` to ``edited`` made where the changed text
    lines up with it; None when a change falls on text the markup does not hold as such."""
    if max(len(original), len(shown), len(edited)) > _TRANSPLANT_LIMIT or shown == edited:
        return None
    lined_up: dict[int, int] = {}
    for a, b, size in SequenceMatcher(None, shown, original, autojunk=False).get_matching_blocks():
        for k in range(size):
            lined_up[a + k] = b + k
    result = original
    changes = SequenceMatcher(None, shown, edited, autojunk=False).get_opcodes()
    for tag, i1, i2, j1, j2 in reversed(changes):
        if tag == "equal":
            continue
        where = _span_in_original(lined_up, i1, i2, len(shown))
        if where is None:
            return None
        start, end = where
        result = result[:start] + edited[j1:j2] + result[end:]
    return result


def _span_in_original(lined_up: dict[int, int], i1: int, i2: int, size: int
                      ) -> tuple[int, int] | None:
    if i1 == i2:  # an insertion: after the character before it, or before the one after
        if i1 > 0 and i1 - 1 in lined_up:
            point = lined_up[i1 - 1] + 1
        elif i1 < size and i1 in lined_up:
            point = lined_up[i1]
        else:
            return None
        return point, point
    if any(k not in lined_up for k in range(i1, i2)):
        return None
    start, end = lined_up[i1], lined_up[i2 - 1] + 1
    return (start, end) if end - start == i2 - i1 else None


def with_tags(body: str, original: str, hidden_tags: tuple[str, ...]) -> str:
    """``body`` with the hidden tags of ``original`` (its card tag, ``#reversed``…) put back
    at the end, as they are written there."""
    tokens = _tag_tokens(original, hidden_tags)
    return " ".join([body.rstrip(), *tokens]) if tokens else body


def _tag_tokens(text: str, names: tuple[str, ...]) -> list[str]:
    if not names:
        return []
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    pattern = re.compile(
        rf"#\[\[(?:{alternatives})\]\]|\[\[(?:{alternatives})\]\]|#(?:{alternatives})(?![\w\-/])",
        re.IGNORECASE,
    )
    return pattern.findall(text)


def _cloze_spellings(body: str, original: str) -> list[str]:
    """``body`` with Anki's ``{{cN::x}}`` written as the block wrote its clozes (first), and
    with explicit numbers (when the block's own style would number them otherwise)."""
    if "{{c" not in body:
        return [body]
    styles: list[Callable[[re.Match[str]], str]] = []
    if re.search(r"(?<!\{)\{c\d+:(?!:)", original):
        styles.append(lambda m: f"{{c{m.group(1)}:{m.group(2)}}}")
    if re.search(r"\{\{cloze[\s:]", original):
        styles.append(lambda m: f"{{{{cloze {hint_to_logseq_cue(m.group(2))}}}}}")
    if re.search(r"(?<!\{)\{(?!c\d+:)[^{}]+\}(?!\})", original):
        styles.append(lambda m: f"{{{m.group(2)}}}")
    spelled = [_ANKI_CLOZE.sub(style, body) for style in styles]
    return [*spelled, body]

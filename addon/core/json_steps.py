"""A JSON export parsed one page at a time, so that parsing never holds the GIL for long.

``orjson.loads`` parses a whole document in one C call, holding the GIL throughout: inside
Anki, a background sync of a 30 MB export froze the main thread for a few hundred
milliseconds. A Roam JSON export is one array of pages, so ``loads`` parses that array element
by element with the standard library's C scanner (as fast as orjson on such documents); the
interpreter can hand the GIL to the main thread between two pages.

Guarantee: ``loads(data)`` returns what ``orjson.loads(data)`` returns, and raises what it
raises, for every input. Whatever the page-by-page parse does not read exactly as orjson does
(a top level that is not an array, NaN or Infinity, ``\\u`` escapes of surrogates, invalid
UTF-8, nesting deeper than the interpreter's recursion allows, any syntax error) is handed to
orjson whole. The one difference: integers past 64 bits, which orjson refuses, are read.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable
from typing import Any

import orjson

_SPACE = re.compile(r"[ \t\n\r]*")
_SLICE = 1 << 20


class _Unsure(Exception):
    """Something orjson may read otherwise: it decides."""


def _refuse(_constant: str) -> None:
    raise _Unsure


# The decoder's one-value scanner (json's own, in C): typeshed leaves it out of JSONDecoder.
_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder(  # type: ignore[attr-defined]
    parse_constant=_refuse).scan_once


def _space(text: str, at: int) -> int:
    """Where the whitespace from ``at`` ends (the pattern matches the empty string too)."""
    found = _SPACE.match(text, at)
    assert found is not None
    return found.end()


def loads(data: bytes) -> Any:
    try:
        return _pages(data)
    except (_Unsure, ValueError, RecursionError, IndexError, StopIteration):
        return orjson.loads(data)


def _text(data: bytes) -> str:
    """``data`` decoded, a slice at a time (one call over 30 MB holds the GIL for tens of
    milliseconds); surrogate escapes are orjson's to judge (it checks their pairing)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    parts = []
    for start in range(0, len(data), _SLICE):
        piece = data[max(0, start - 2) : start + _SLICE]  # an escape may straddle a cut
        if b"\\ud" in piece or b"\\uD" in piece:
            raise _Unsure
        parts.append(decoder.decode(piece[2:] if start else piece))
    parts.append(decoder.decode(b"", final=True))
    return "".join(parts)


def _pages(data: bytes) -> list[Any]:
    text = _text(data)
    space, scan = _space, _SCAN
    at = space(text, 0)
    if text[at] != "[":
        raise _Unsure
    at = space(text, at + 1)
    pages: list[Any] = []
    if text[at] == "]":
        at += 1
    else:
        while True:
            page, at = scan(text, at)  # one page: the GIL can change hands after it
            pages.append(page)
            at = space(text, at)
            if text[at] == "]":
                at += 1
                break
            if text[at] != ",":
                raise _Unsure
            at = space(text, at + 1)
    if space(text, at) != len(text):
        raise _Unsure
    return pages

"""Who a note is, on every device: its key, its GUID, and the ids of what the bridge creates.

Anki's sync merges notes, cards, note types and decks by id, never by GUID. So when two
devices each run the bridge on the same notes before they sync, the only way they end up with
one note per block is that they create it with the same ids. This module derives every id the
bridge creates from the key alone:

- a note's key is ``<source>:<graph>:<uid>`` in the form Anki stores field text (see
  ``stored_text``), so what is read back compares equal to what was written;
- its GUID is derived from the key (what ``.apkg`` import matches on);
- a new note's id, its cards' ids (by template ordinal), our note types' ids and the ids of
  decks the bridge creates are derived from the key, the kind or the deck's name.

Derived ids lie in a fixed window of the past (1973-1998 as millisecond timestamps): Anki
requires ids not to lie in the future, and no note or card Anki ever made has such an id, so a
derived id never collides with one the user's own collection handed out. The price is that
Anki's "Created" column shows a date in that window for notes the bridge created.

An id that is taken anyway (two keys hashing alike, or a note created once and kept under
another key) moves to the next free one by a rule every device applies alike.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Container, Iterable
from functools import lru_cache

from anki.utils import base91

# 1973-03-03 .. 1998-07-09 in milliseconds since the epoch.
ID_FLOOR = 100_000_000_000
ID_SPAN = 800_000_000_000
# Anki strips these from field text when it stores a note (it keeps tab and newline).
_DROPPED = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def stored_text(text: str) -> str:
    """``text`` as Anki stores it in a field: NFC, without the control characters it drops.

    Keys are compared in this form, so a block id holding a control character, a decomposed
    accent or surrounding spaces is recognised when it is read back (surrounding whitespace
    is trimmed too: it cannot be seen in the Browser and is easy to add by accident).
    """
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    if not text.isprintable():
        text = _DROPPED.sub("", text)
    return text.strip()


@lru_cache(maxsize=1 << 16)  # asked for several times per new note in one run
def guid_for(key: str) -> str:
    """A GUID derived from the key alone, so every collection gives a block the same GUID."""
    return base91(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))


def stable_id(*parts: str) -> int:
    """An id in the derived window, the same for the same parts on every device."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return ID_FLOOR + int.from_bytes(digest, "big") % ID_SPAN


def note_id(key: str) -> int:
    return stable_id("note", key)


def card_id(key: str, ordinal: int) -> int:
    return stable_id("card", key, str(ordinal))


def notetype_id(kind: str) -> int:
    return stable_id("notetype", kind)


def deck_id(name: str) -> int:
    """Anki's deck names are case-insensitive: "Roam" and "roam" are one deck."""
    return stable_id("deck", unicodedata.normalize("NFC", name).casefold())


def free_ids(wanted: Iterable[int], taken: Container[int] | Callable[[int], bool]
             ) -> list[int]:
    """``wanted`` ids in order, each moved past ids that are taken or already handed out in
    this call (+1 at a time, staying in the window), so every device resolves a collision the
    same way given the same collection."""
    is_taken = taken if callable(taken) else taken.__contains__
    given: set[int] = set()
    result = []
    for identifier in wanted:
        while identifier in given or is_taken(identifier):
            identifier = ID_FLOOR + (identifier - ID_FLOOR + 1) % ID_SPAN
        given.add(identifier)
        result.append(identifier)
    return result

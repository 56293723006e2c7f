"""Tags that mark the bridge's own state on a note, under a prefix the notes cannot produce.

A page's ``Tags::`` become ``roam::<tag>`` and an ``Anki Tag::`` value is added as written,
so the bridge's own markers live under ``roam-bridge::``, and cards.py drops any tag under
that prefix that a page names. Only the user (in Anki) or the bridge sets these tags.

- ``roam-bridge::pinned``: the user pinned the note; a sync leaves it exactly as it is (no
  update, no move, no kind change, no removal), whatever its block says.
"""

from __future__ import annotations

from collections.abc import Iterable

PREFIX = "roam-bridge::"
PINNED = PREFIX + "pinned"


def is_state_tag(tag: str) -> bool:
    return tag.lower().startswith(PREFIX)


def is_pinned(tags: Iterable[str]) -> bool:
    """The one check for a pin: the tag, in any case (Anki's tags are case-insensitive)."""
    return any(t.lower() == PINNED for t in tags)

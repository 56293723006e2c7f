"""Everything that imports aqt. ``setup`` registers hooks; it never touches ``mw.col``
directly: work on the collection waits for a profile to open."""

from __future__ import annotations


def setup() -> None:
    """Register the add-on's hooks with Anki. The menu and background sync land here."""

"""Roam Bridge: keep Anki cards in step with Roam Research, Logseq and Obsidian notes.

Imported inside Anki, this registers the add-on's GUI hooks. Imported anywhere else (the
bridge CLI, the tests), it does nothing: ``core`` is a plain library and never needs Qt.
Nothing here touches the collection at import time.
"""

from __future__ import annotations

import sys


def _inside_anki() -> bool:
    aqt = sys.modules.get("aqt")
    return aqt is not None and getattr(aqt, "mw", None) is not None


if _inside_anki():
    from .gui import setup

    setup()

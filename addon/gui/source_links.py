"""From a note of ours to its block, and back: the one place every screen asks.

- ``is_ours`` / ``key_of``: a note is ours when its note type carries the bridge's marker;
  its key (``roam:<graph>:<uid>``) is its ``SourceID``.
- ``block_link``: the "Open in …" link the note's ``Source`` field holds. Only links to the
  source apps (https, logseq://, obsidian://) are ever returned, so a hostile note cannot make
  a screen open anything else.
- The reviewer: a shortcut (OPEN_KEY, which Anki's reviewer leaves free) and a context-menu
  entry open the card's block.
- ``find_block_cards``: Tools > Roam Bridge > Find a block's cards…: paste a block's link or
  reference (the clipboard's, if it holds one) and the Browser shows that block's cards.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import aqt
from anki.notes import Note
from aqt import gui_hooks, mw
from aqt.qt import QApplication, QMenu, qconnect
from aqt.utils import getText, openLink, tooltip

from ..core.apps import LINK_SCHEMES
from ..core.apps import app_name as source_app_name
from ..core.block_links import uid_in
from ..core.fields import SOURCE_ID
from ..core.notetypes import MARKER
from .widgets import add_action

OPEN_KEY = "g"
_OPEN_LINK = re.compile(r'<a class="rb-open" href="([^"]*)"')


def is_ours(note: Note | None) -> bool:
    if note is None:
        return False
    notetype = note.note_type()
    return bool(notetype and notetype.get(MARKER)) and SOURCE_ID in note


def key_of(note: Note | None) -> str | None:
    if not is_ours(note):
        return None
    assert note is not None
    key = note[SOURCE_ID].strip()
    return key if key.count(":") >= 2 else None


def graph_of(key: str) -> tuple[str, str]:
    """``(source, graph)`` of a key ``source:graph:uid`` (graph names hold no ':')."""
    source, graph, _ = key.split(":", 2)
    return source, graph


def app_name(note: Note | None) -> str:
    key = key_of(note)
    return source_app_name(graph_of(key)[0] if key else "")


def block_link(note: Note | None) -> str | None:
    if not is_ours(note):
        return None
    assert note is not None
    found = _OPEN_LINK.search(note["Source"]) if "Source" in note else None
    link = html.unescape(found.group(1)) if found else ""
    return link if link.startswith(LINK_SCHEMES) else None


def open_block(note: Note | None) -> bool:
    """Open the note's block in its app; a tooltip says why not when it cannot."""
    link = block_link(note)
    if link is None:
        tooltip("Roam Bridge: this note has no link to a block" if is_ours(note)
                else "Roam Bridge: not a note from your notes")
        return False
    openLink(link)
    return True


# The reviewer -----------------------------------------------------------------------------


def register_reviewer() -> None:
    gui_hooks.state_shortcuts_will_change.append(_reviewer_shortcut)
    gui_hooks.reviewer_will_show_context_menu.append(_reviewer_menu)


def _reviewer_card_note() -> Note | None:
    card = mw.reviewer.card if mw and mw.reviewer else None
    return card.note() if card is not None else None


def _reviewer_shortcut(state: str, shortcuts: list[tuple[str, Callable[[], Any]]]) -> None:
    if state == "review":
        shortcuts.append((OPEN_KEY, lambda: open_block(_reviewer_card_note())))


def _reviewer_menu(reviewer: Any, menu: QMenu) -> None:
    note = reviewer.card.note() if reviewer.card is not None else None
    if block_link(note) is None:
        return
    menu.addSeparator()
    action = add_action(menu, f"Open in {app_name(note)}")
    action.setShortcut(OPEN_KEY.upper())
    qconnect(action.triggered, lambda: open_block(note))


# From the notes to Anki -------------------------------------------------------------------


def block_search(uid: str) -> str:
    """A Browser search for the notes of the block ``uid``, in any graph."""
    escaped = re.sub(r'([\\"*_:()-])', r"\\\1", uid)
    return f'"{SOURCE_ID}:*:{escaped}"'


def find_block_cards() -> None:
    clipboard = QApplication.clipboard()
    copied = clipboard.text() if clipboard is not None else ""
    text, ok = getText(
        "A block's link or reference (Roam: Copy block ref, or the block's URL; Logseq: "
        "Copy block ref; Obsidian: Copy link to block):",
        parent=mw, title="Roam Bridge: find a block's cards",
        default=copied if uid_in(copied) else "",
    )
    if not ok:
        return
    uid = uid_in(text)
    if uid is None:
        tooltip("Roam Bridge: that is not a block's link or reference")
        return
    aqt.dialogs.open("Browser", mw, search=(block_search(uid),))

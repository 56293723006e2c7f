"""Tools > Roam Bridge > Conflicts and Anki edits…: each note whose Anki text the notes do not
say, with both sides, and the user's choice.

The list is the last sync's (its report keeps them). For each note: what Anki says and what
the notes say, field by field, side by side, and why it was not written back. The buttons:

- **Keep notes**: the notes' text replaces Anki's (the conflict tag goes);
- **Keep Anki**: Anki's text stays, and is written into the notes where the source's
  write-back is on (else it is kept, and no longer listed);
- **Open both**: the block in its app and the note in the Browser.

A choice starts a sync of that note's source with it (nothing is changed before that sync,
which Edit > Undo reverts like any other).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

import aqt
from anki.notes import NoteId
from aqt.main import AnkiQt
from aqt.qt import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QTextBrowser,
    QVBoxLayout,
    qconnect,
)

from ..core.config import OnConflict
from . import source_links
from .widgets import add_button

Resolve = Callable[[Sequence[str], Sequence[tuple[str, OnConflict]]], None]


class ConflictsDialog(QDialog):
    def __init__(self, mw: AnkiQt, report: dict[str, Any] | None, resolve: Resolve) -> None:
        super().__init__(mw)
        self.mw = mw
        self.resolve = resolve
        self.edits: list[dict[str, Any]] = list((report or {}).get("anki_edits") or [])
        self.setWindowTitle("Roam Bridge: conflicts and Anki edits")
        self.resize(820, 480)
        layout = QVBoxLayout(self)
        if not self.edits:
            layout.addWidget(QLabel("Every note says what its block says: nothing to settle.",
                                    self))
        self.rows = QListWidget(self)
        for edit in self.edits:
            label = "Conflict" if edit.get("conflict") else "Edited in Anki"
            self.rows.addItem(f"{label}: {edit.get('key', '')}")
        sides = QHBoxLayout()
        self.anki = QTextBrowser(self)
        self.notes = QTextBrowser(self)
        for title, view in (("Anki says", self.anki), ("Your notes say", self.notes)):
            column = QVBoxLayout()
            column.addWidget(QLabel(f"<b>{title}</b>", self))
            column.addWidget(view)
            sides.addLayout(column)
        self.problem = QLabel("", self)
        self.problem.setWordWrap(True)
        layout.addWidget(self.rows, 1)
        layout.addLayout(sides, 3)
        layout.addWidget(self.problem)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.keep_notes = add_button(buttons, "Keep notes", QDialogButtonBox.ButtonRole.ActionRole)
        self.keep_anki = add_button(buttons, "Keep Anki", QDialogButtonBox.ButtonRole.ActionRole)
        self.open_both = add_button(buttons, "Open both", QDialogButtonBox.ButtonRole.ActionRole)
        qconnect(self.keep_notes.clicked, lambda: self._settle("notes"))
        qconnect(self.keep_anki.clicked, lambda: self._settle("anki"))
        qconnect(self.open_both.clicked, self._open_both)
        qconnect(buttons.rejected, self.close)
        qconnect(self.rows.currentRowChanged, self._show)
        layout.addWidget(buttons)
        self.rows.setCurrentRow(0)
        self._show(self.rows.currentRow())

    def _current(self) -> dict[str, Any] | None:
        row = self.rows.currentRow()
        return self.edits[row] if 0 <= row < len(self.edits) else None

    def _show(self, _row: int) -> None:
        edit = self._current()
        for button in (self.keep_notes, self.keep_anki, self.open_both):
            button.setEnabled(edit is not None)
        if edit is None:
            return
        fields = edit.get("fields") or {}
        self.anki.setHtml(_side(fields, 1))
        self.notes.setHtml(_side(fields, 0))
        problem = edit.get("problem") or ""
        self.problem.setText(f"Not written back: {problem}" if problem else "")

    def _settle(self, choice: OnConflict) -> None:
        edit = self._current()
        if edit is None:
            return
        key = str(edit.get("key", ""))
        self.resolve([key], [(key, choice)])
        row = self.rows.currentRow()
        self.rows.takeItem(row)
        del self.edits[row]
        self._show(self.rows.currentRow())

    def _open_both(self) -> None:
        edit = self._current()
        if edit is None or self.mw.col is None:
            return
        nid = NoteId(int(edit.get("note_id", 0)))
        try:
            note = self.mw.col.get_note(nid)
        except Exception:  # the note was deleted since the sync
            note = None
        source_links.open_block(note)
        aqt.dialogs.open("Browser", self.mw, search=(f"nid:{nid}",))


def _side(fields: dict[str, Any], which: int) -> str:
    """One side of every field: 0 the notes', 1 Anki's (the field's own HTML)."""
    return "".join(f"<h4>{html.escape(name)}</h4><div>{texts[which]}</div>"
                   for name, texts in fields.items() if isinstance(texts, list | tuple))

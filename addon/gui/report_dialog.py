"""Tools > Roam Bridge > Last sync report: counts, problems, and the notes it touched."""

from __future__ import annotations

import html
from typing import Any

import aqt
from aqt.main import AnkiQt
from aqt.qt import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, qconnect

from .widgets import add_button

COUNTS = ("created", "updated", "unchanged", "orphaned", "moved", "deleted", "written_back",
          "kept_anki_edits", "conflicts")
# A sync held back wrote nothing: its counts are what it would have done.
WOULD = {"created": "would create", "updated": "would update", "orphaned": "would orphan",
         "moved": "would move", "deleted": "would delete"}


class ReportDialog(QDialog):
    """Non-modal: it may stay open while the user browses the notes it lists."""

    def __init__(self, mw: AnkiQt, report: dict[str, Any] | None) -> None:
        super().__init__(mw)
        self.mw = mw
        self.report = report or {}
        self.setWindowTitle("Roam Bridge: last sync")
        self.resize(560, 420)
        layout = QVBoxLayout(self)
        text = QTextBrowser(self)
        text.setHtml(report_html(report))
        layout.addWidget(text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        browse = add_button(buttons, "Browse changed notes",
                                   QDialogButtonBox.ButtonRole.ActionRole)
        browse.setEnabled(bool(self._changed_ids()))
        qconnect(browse.clicked, self._browse)
        qconnect(buttons.rejected, self.close)
        layout.addWidget(buttons)

    def _changed_ids(self) -> list[int]:
        r = self.report
        return [*r.get("created_ids", []), *r.get("updated_ids", []),
                *r.get("orphaned_ids", [])]

    def _browse(self) -> None:
        ids = ",".join(str(i) for i in self._changed_ids())
        aqt.dialogs.open("Browser", self.mw, search=(f"nid:{ids}",))


def report_html(report: dict[str, Any] | None) -> str:
    if not report:
        return "<p>No sync has run yet.</p>"
    kind = "manual" if report.get("manual") else "background"
    held = bool(report.get("refused"))
    rows = "".join(
        f"<tr><td>{WOULD.get(name, name) if held else name}</td>"
        f"<td align=right>{report.get(name, 0)}</td></tr>" for name in COUNTS
    )
    parts = [f"<p>Last {kind} sync: {html.escape(str(report.get('finished_at', '')))}"
             + (" · held back: nothing was written" if held else "") + "</p>",
             f"<table cellpadding=3>{rows}</table>"]
    for title, key in (("Errors", "errors"), ("Warnings", "warnings")):
        items = report.get(key) or []
        if items:
            listed = "".join(f"<li>{html.escape(str(i))}</li>" for i in items)
            parts.append(f"<h4>{title}</h4><ul>{listed}</ul>")
    written = report.get("written") or []
    if written:
        listed = "".join(f"<li>{html.escape(str(e.get('key')))}: "
                         f"{html.escape(str(e.get('after')))}</li>" for e in written)
        parts.append(f"<h4>Written back into your notes</h4><ul>{listed}</ul>")
    edits = report.get("anki_edits") or []
    if edits:
        listed = "".join(
            f"<li>{'conflict' if e.get('conflict') else 'kept'}: "
            f"{html.escape(str(e.get('key')))}"
            + (f" ({html.escape(str(e['problem']))})" if e.get("problem") else "") + "</li>"
            for e in edits)
        parts.append("<h4>Edited in Anki, not in your notes</h4>"
                     "<p>Tools > Roam Bridge > Conflicts and Anki edits… shows both sides."
                     f"</p><ul>{listed}</ul>")
    return "".join(parts)

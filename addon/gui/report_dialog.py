"""Tools > Roam Bridge > Last sync report: counts, problems, and the notes it touched."""

from __future__ import annotations

import html
from typing import Any

import aqt
from aqt.main import AnkiQt
from aqt.qt import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, qconnect

COUNTS = ("created", "updated", "unchanged", "orphaned", "moved", "deleted")


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
        browse = buttons.addButton("Browse changed notes",
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
    rows = "".join(
        f"<tr><td>{name}</td><td align=right>{report.get(name, 0)}</td></tr>" for name in COUNTS
    )
    parts = [f"<p>Last {kind} sync: {html.escape(str(report.get('finished_at', '')))}</p>",
             f"<table cellpadding=3>{rows}</table>"]
    for title, key in (("Errors", "errors"), ("Warnings", "warnings")):
        items = report.get(key) or []
        if items:
            listed = "".join(f"<li>{html.escape(str(i))}</li>" for i in items)
            parts.append(f"<h4>{title}</h4><ul>{listed}</ul>")
    return "".join(parts)

"""Tools > Roam Bridge > Preview sync…: what the sync would do, before it does it.

Per source, the notes it would create, update, move, change between basic and cloze, orphan
or delete (core/preview.py), each with its text; the selected note's details show the text
it changes, word by word. Every note is ticked; an unticked note is left out of this sync
(``left_out``), and planned again next time. "Pin" tags the selected existing notes
``roam-bridge::pinned`` at once, so the notes never overwrite them, and leaves them out.

The dialog writes nothing itself but the pins; Sync hands the choice back, Cancel drops
the sync.
"""

from __future__ import annotations

import difflib
import html
from collections.abc import Callable, Sequence

from aqt.qt import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QSplitter,
    Qt,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
    qconnect,
)

from ..core import preview
from ..core.sync import SyncPlan
from .widgets import add_button

GROUPS = (("new", "New notes"), ("updated", "Updated"), ("moved", "Moved"),
          ("kind", "Changed between basic and cloze"), ("orphaned", "Orphaned"),
          ("deleted", "Deleted"))
CHANGE_ROLE = Qt.ItemDataRole.UserRole


def group_of(change: preview.Change) -> str:
    return "kind" if change.kind else change.label


class PreviewDialog(QDialog):
    def __init__(self, parent: QWidget, plans: Sequence[SyncPlan],
                 pin: Callable[[list[int]], None]) -> None:
        super().__init__(parent)
        self.setWindowTitle("Roam Bridge: preview of the sync")
        self.resize(900, 640)
        self.pin = pin
        self.pinned: set[str] = set()
        layout = QVBoxLayout(self)
        changes = {plan.prefix: preview.changes(plan) for plan in plans}
        self.summary = QLabel(summary(plans, changes), self)
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)

        splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.tree = QTreeWidget(splitter)
        self.tree.setHeaderLabels(["Change", "Note", "Block"])
        self.tree.setColumnWidth(0, 260)
        self.tree.setColumnWidth(1, 420)
        self.tree.setSelectionMode(QTreeWidget.SelectionMode.ExtendedSelection)
        qconnect(self.tree.currentItemChanged, self._show_details)
        self.details = QTextBrowser(splitter)
        splitter.setSizes([440, 160])
        layout.addWidget(splitter)
        for plan in plans:
            self._add_source(plan.prefix, changes[plan.prefix])

        buttons = QDialogButtonBox(self)
        self.pin_button = add_button(buttons, "Pin selected",
                                            QDialogButtonBox.ButtonRole.ActionRole)
        self.pin_button.setToolTip("Your notes never overwrite a pinned note (Browser: "
                                   "right-click > Unpin to follow them again)")
        qconnect(self.pin_button.clicked, self._pin_selected)
        self.sync_button = add_button(buttons, "Sync", QDialogButtonBox.ButtonRole.AcceptRole)
        self.sync_button.setDefault(True)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        qconnect(buttons.accepted, self.accept)
        qconnect(buttons.rejected, self.reject)
        layout.addWidget(buttons)

    def _add_source(self, prefix: str, found: list[preview.Change]) -> None:
        top = QTreeWidgetItem([prefix.rstrip(":"), f"{len(found):,} change(s)", ""])
        self.tree.addTopLevelItem(top)
        by_group: dict[str, list[preview.Change]] = {}
        for change in found:
            by_group.setdefault(group_of(change), []).append(change)
        for name, title in GROUPS:
            members = by_group.get(name)
            if not members:
                continue
            group = QTreeWidgetItem([f"{title} ({len(members):,})", "", ""])
            group.setFlags(group.flags() | Qt.ItemFlag.ItemIsUserCheckable
                           | Qt.ItemFlag.ItemIsAutoTristate)
            top.addChild(group)
            leaves = []
            for change in members:
                leaf = QTreeWidgetItem([change.label, _one_line(change), change.key])
                leaf.setFlags(leaf.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                leaf.setCheckState(0, Qt.CheckState.Checked)
                leaf.setData(0, CHANGE_ROLE, change)
                leaf.setToolTip(1, _one_line(change, 600))
                leaves.append(leaf)
            group.addChildren(leaves)
            group.setCheckState(0, Qt.CheckState.Checked)
        top.setExpanded(True)

    # What the user chose ----------------------------------------------------------------

    def leaves(self) -> list[QTreeWidgetItem]:
        found: list[QTreeWidgetItem] = []
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            for j in range(top.childCount() if top else 0):
                group = top.child(j) if top else None
                for k in range(group.childCount() if group else 0):
                    leaf = group.child(k) if group else None
                    if leaf is not None:
                        found.append(leaf)
        return found

    def left_out(self) -> set[str]:
        """Keys of the notes to leave out of this sync: unticked or pinned."""
        return {
            leaf.data(0, CHANGE_ROLE).key for leaf in self.leaves()
            if leaf.checkState(0) != Qt.CheckState.Checked
        } | self.pinned

    def _pin_selected(self) -> None:
        chosen = [leaf for leaf in self.tree.selectedItems()
                  if isinstance(leaf.data(0, CHANGE_ROLE), preview.Change)
                  and leaf.data(0, CHANGE_ROLE).note_id is not None]
        if not chosen:
            self.details.setHtml("<p>Select notes that are already in Anki to pin them (a "
                                 "new note has nothing to pin yet).</p>")
            return
        self.pin([leaf.data(0, CHANGE_ROLE).note_id for leaf in chosen])
        for leaf in chosen:
            change = leaf.data(0, CHANGE_ROLE)
            self.pinned.add(change.key)
            leaf.setCheckState(0, Qt.CheckState.Unchecked)
            leaf.setText(0, f"pinned (was: {change.label})")
            leaf.setFlags(leaf.flags() & ~Qt.ItemFlag.ItemIsUserCheckable)

    def _show_details(self, item: QTreeWidgetItem | None, _previous: object) -> None:
        change = item.data(0, CHANGE_ROLE) if item is not None else None
        self.details.setHtml(details_html(change) if isinstance(change, preview.Change)
                             else "")


def summary(plans: Sequence[SyncPlan], changes: dict[str, list[preview.Change]]) -> str:
    counts: dict[str, int] = {}
    for found in changes.values():
        for change in found:
            counts[group_of(change)] = counts.get(group_of(change), 0) + 1
    parts = [f"{counts[name]:,} {title.lower()}" for name, title in GROUPS if counts.get(name)]
    unchanged = sum(p.unchanged for p in plans)
    pinned = sum(p.pinned for p in plans)
    parts.append(f"{unchanged:,} unchanged" + (f" ({pinned:,} pinned)" if pinned else ""))
    return ("This sync would write: " + "; ".join(parts) + ". Untick a note to leave it out "
            "this time; nothing is written until you press Sync.")


def details_html(change: preview.Change) -> str:
    rows = [f"<p><b>{html.escape(change.label)}</b> · {html.escape(change.key)}"
            + (f" · note {change.note_id}" if change.note_id else "") + "</p>"]
    if change.text_changed:
        rows.append(f"<p>{word_diff(change.before, change.text)}</p>")
    else:
        rows.append(f"<p>{html.escape(change.text)}</p>")
    if change.details:
        rows.append("<ul>" + "".join(f"<li>{html.escape(d)}</li>" for d in change.details)
                    + "</ul>")
    return "".join(rows)


def word_diff(before: str, after: str) -> str:
    """``before`` → ``after`` as HTML, removed words struck through, added ones marked."""
    old, new = before.split(), after.split()
    pieces: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new).get_opcodes():
        if tag in ("delete", "replace"):
            pieces.append('<s style="color:#cf222e">' + html.escape(" ".join(old[i1:i2]))
                          + "</s>")
        if tag in ("insert", "replace"):
            pieces.append('<b style="color:#1a7f37">' + html.escape(" ".join(new[j1:j2]))
                          + "</b>")
        if tag == "equal":
            pieces.append(html.escape(" ".join(old[i1:i2])))
    return " ".join(pieces)


def _one_line(change: preview.Change, width: int = 160) -> str:
    text = f"{change.before} → {change.text}" if change.text_changed else change.text
    if change.details:
        text += " (" + "; ".join(change.details) + ")"
    return text if len(text) <= width else text[: width - 1] + "…"

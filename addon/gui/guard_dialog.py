"""The question a manual sync asks when the mass-removal guard trips.

The sync would remove more than half of a graph's cards, which usually means the export is
incomplete. Nothing has been written yet, and the answer decides what is: Cancel (the
default, and Escape) writes nothing at all; "Sync without removing" writes the rest and
leaves every card whose block is gone as it is; "Remove" writes everything.
"""

from __future__ import annotations

from typing import Literal

from aqt.qt import QMessageBox, QWidget

from ..core.sync import SyncPlan

Answer = Literal["cancel", "keep", "remove"]


def ask_about_removal(parent: QWidget, plan: SyncPlan) -> Answer:
    removed = len(plan.orphans) + len(plan.deletes)
    graph = plan.prefix.rstrip(":")
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Roam Bridge: remove cards?")
    box.setText(f"This sync would remove {removed:,} of the {plan.managed_before:,} cards "
                f"that came from {graph}.")
    box.setInformativeText(
        "That usually means the export is incomplete. Nothing has been written yet.\n\n"
        "Sync without removing: add and update cards, and leave the cards whose blocks are "
        "missing as they are.\nRemove: also " + (
            "delete them." if plan.deletes else "suspend them and tag them orphaned.")
    )
    cancel = box.addButton("Cancel", QMessageBox.ButtonRole.RejectRole)
    keep = box.addButton("Sync without removing", QMessageBox.ButtonRole.AcceptRole)
    remove = box.addButton("Remove", QMessageBox.ButtonRole.DestructiveRole)
    box.setDefaultButton(cancel)
    box.setEscapeButton(cancel)
    box.exec()
    clicked = box.clickedButton()
    if clicked is keep:
        return "keep"
    if clicked is remove:
        return "remove"
    return "cancel"

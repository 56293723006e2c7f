"""Qt calls that Anki's type stubs say may return None, where they never do for our own
widgets: typed once here instead of asserted at every call."""

from __future__ import annotations

from aqt.qt import QAction, QDialogButtonBox, QMenu, QPushButton


def add_button(box: QDialogButtonBox, text: str, role: QDialogButtonBox.ButtonRole
               ) -> QPushButton:
    button = box.addButton(text, role)
    assert button is not None
    return button


def add_action(menu: QMenu, text: str) -> QAction:
    action = menu.addAction(text)
    assert action is not None
    return action

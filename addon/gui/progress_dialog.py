"""The progress window of a sync the user started: what it is doing, with counts, and Cancel.

The worker thread calls a SyncProgress (a core Progress, see core/progress.py); the window,
on the main thread, reads its latest state every POLL_MS, so no Qt call crosses threads.
Cancel, Escape or closing the window closes it at once and asks the worker to stop at its
next step: until writing begins, nothing has been written. Once writing has begun the
window says so and can no longer cancel; the sync then ends whole.

A SyncProgress also stops the worker when ``should_stop`` says so (the profile is closing),
for background syncs that have no window.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from aqt.qt import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QProgressBar,
    Qt,
    QTimer,
    QVBoxLayout,
    QWidget,
    qconnect,
)

from ..core.progress import IMAGES, PLANNING, READING, RENDERING, WRITING, Cancelled

POLL_MS = 100
SHOW_AFTER_MS = 300  # a sync that finishes sooner shows no window at all
PANELS = "preparing the reviewer panel"


class SyncProgress:
    """Thread-safe: the worker reports, the window reads, either side may cancel."""

    def __init__(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._should_stop = should_stop
        self.source = ""
        self.phase = READING
        self.done = 0
        self.total = 0

    def __call__(self, phase: str, done: int = 0, total: int = 0) -> None:
        if phase != WRITING and (self._cancelled.is_set() or self._should_stop()):
            raise Cancelled
        with self._lock:
            self.phase, self.done, self.total = phase, done, total

    def start_source(self, label: str) -> None:
        with self._lock:
            self.source, self.phase, self.done, self.total = label, READING, 0, 0
        self(READING)

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def text(self) -> str:
        with self._lock:
            source, phase, done, total = self.source, self.phase, self.done, self.total
        return describe(source, phase, done, total)

    def fraction(self) -> tuple[int, int]:
        with self._lock:
            return self.done, self.total


def describe(source: str, phase: str, done: int, total: int) -> str:
    """One line for the window: the phase in words, with its counts."""
    if phase == READING:
        text = f"Reading {source}" + (f": page {done:,} of {total:,}" if total else "…")
    elif phase == PLANNING:
        text = f"Comparing {total:,} cards with the collection…" if total else "Finding cards…"
    elif phase == IMAGES:
        text = f"Downloading images: {done:,} of {total:,}"
    elif phase == RENDERING:
        text = f"Preparing new notes: {done:,} of {total:,}"
    elif phase == PANELS:
        text = f"Preparing the reviewer's panel: {done:,} of {total:,}"
    elif phase == WRITING:
        text = (f"Writing {total:,} notes: {done:,} done" if total else "Writing…")
        return text + " (this can no longer be cancelled)"
    else:
        text = phase
    return text


class ProgressWindow(QDialog):
    """Shown a moment after the sync starts, closed by the controller when it ends."""

    def __init__(self, parent: QWidget, progress: SyncProgress,
                 on_cancel: Callable[[], None]) -> None:
        super().__init__(parent)
        self.progress = progress
        self.on_cancel = on_cancel
        self.setWindowTitle("Roam Bridge: syncing")
        self.setWindowModality(Qt.WindowModality.ApplicationModal)
        self.setMinimumWidth(420)
        layout = QVBoxLayout(self)
        self.label = QLabel("Starting…", self)
        self.label.setWordWrap(True)
        self.bar = QProgressBar(self)
        self.bar.setTextVisible(False)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        qconnect(self.buttons.rejected, self.reject)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.buttons)
        self._finished = False
        self._timer = QTimer(self)
        qconnect(self._timer.timeout, self.refresh)
        self._timer.start(POLL_MS)
        QTimer.singleShot(SHOW_AFTER_MS, self._show_if_running)

    def _show_if_running(self) -> None:
        if not self._finished:
            self.refresh()
            self.show()

    def refresh(self) -> None:
        self.label.setText(self.progress.text())
        done, total = self.progress.fraction()
        self.bar.setRange(0, total)  # 0..0: a busy bar while the count is unknown
        if total:
            self.bar.setValue(min(done, total))
        writing = self.progress.phase == WRITING
        cancel = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        if cancel is not None:
            cancel.setEnabled(not writing)

    def reject(self) -> None:
        """Cancel, Escape and the window's close button: stop now, unless writing."""
        if self.progress.phase == WRITING:
            return
        self.progress.cancel()
        self.finish()
        self.on_cancel()

    def finish(self) -> None:
        self._finished = True
        self._timer.stop()
        self.hide()
        self.deleteLater()

"""Watch the sources and ask for a sync when one really changed.

Editors and browsers save atomically (write a temporary file, rename it over the old one),
which makes QFileSystemWatcher forget the path: we watch each file's folder too and re-add
the file when it reappears. Bursts of events are debounced; the check itself (which hashes
the export) runs off the main thread, and a save that changed nothing triggers nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from aqt.main import AnkiQt
from aqt.operations import QueryOp
from aqt.qt import QFileSystemWatcher, QObject, QTimer, qconnect

from ..core.sources.detect import fingerprint

DEBOUNCE_MS = 1500


class SourceWatcher(QObject):
    def __init__(self, mw: AnkiQt, on_change: Callable[[], None]) -> None:
        super().__init__(mw)
        self.mw = mw
        self.on_change = on_change
        self.sources: list[str] = []
        self.seen: dict[str, str] = {}
        self._watcher: QFileSystemWatcher | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        qconnect(self._timer.timeout, self._check)

    def watch(self, sources: list[str]) -> None:
        """Watch these source paths (replacing any earlier set); their current state counts
        as already synced."""
        self.stop()
        self.sources = [str(Path(p).expanduser()) for p in sources]
        self._watcher = QFileSystemWatcher(self)
        qconnect(self._watcher.fileChanged, self._changed)
        qconnect(self._watcher.directoryChanged, self._changed)
        self._rewatch()
        self._fingerprint_in_background(lambda found: self.seen.update(found))

    def stop(self) -> None:
        self._timer.stop()
        if self._watcher is not None:
            self._watcher.deleteLater()
            self._watcher = None
        self.sources, self.seen = [], {}

    def _rewatch(self) -> None:
        if self._watcher is None:
            return
        wanted = set()
        for source in self.sources:
            wanted.add(source)
            wanted.add(os.path.dirname(source) or ".")
            if os.path.isdir(source):
                # A folder reports files added or renamed, not files rewritten in place.
                wanted.update(str(p) for p in Path(source).iterdir() if p.is_file())
        watched = set(self._watcher.files()) | set(self._watcher.directories())
        missing = [p for p in wanted - watched if os.path.exists(p)]
        if missing:
            self._watcher.addPaths(missing)

    def _changed(self, _path: str) -> None:
        self._rewatch()  # a renamed-over file dropped out of the watch list
        self._timer.start()

    def _check(self) -> None:
        def compare(found: dict[str, str]) -> None:
            changed = [s for s in self.sources if found.get(s) != self.seen.get(s)]
            self.seen.update(found)
            if changed:
                self.on_change()

        self._fingerprint_in_background(compare)

    def _fingerprint_in_background(self, then: Callable[[dict[str, str]], None]) -> None:
        sources = list(self.sources)
        QueryOp(
            parent=self.mw,
            op=lambda _col: {s: fingerprint(s) for s in sources},
            success=then,
        ).without_collection().run_in_background()

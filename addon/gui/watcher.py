"""Watch the sources and ask for a sync when one really changed.

Editors and browsers save atomically (write a temporary file, rename it over the old one),
which makes QFileSystemWatcher forget the path: each check re-adds what should be watched.
For a folder source we watch the folder (it reports new and renamed files) and its newest
export (which reports being rewritten in place), never every file in it: a Downloads
folder holds thousands. Bursts of events are debounced, the checks (which hash the export)
run off the main thread, and a save that changed nothing triggers nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from aqt.main import AnkiQt
from aqt.operations import QueryOp
from aqt.qt import QFileSystemWatcher, QObject, QTimer, qconnect

from ..core.model import SourceError
from ..core.sources import roam_json
from ..core.sources.detect import fingerprint
from ..core.sources.exports import newest_export

DEBOUNCE_MS = 1500

Survey = tuple[dict[str, str], set[str]]


def survey(sources: list[str]) -> Survey:
    """Each source's fingerprint, and the paths to watch for it (worker thread)."""
    prints: dict[str, str] = {}
    paths: set[str] = set()
    for source in sources:
        prints[source] = fingerprint(source)
        paths.add(source)
        if os.path.isdir(source):
            with contextlib.suppress(OSError, SourceError):
                paths.add(str(newest_export(Path(source), roam_json.SUFFIXES)))
        else:  # an atomic save replaces the file: its folder sees the rename
            paths.add(os.path.dirname(source) or ".")
    return prints, {p for p in paths if os.path.exists(p)}


class SourceWatcher(QObject):
    def __init__(self, mw: AnkiQt, on_change: Callable[[], None]) -> None:
        super().__init__(mw)
        self.mw = mw
        self.on_change = on_change
        self.sources: list[str] = []
        self.seen: dict[str, str] = {}
        self.generation = 0
        self._watcher: QFileSystemWatcher | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        qconnect(self._timer.timeout, lambda: self._survey(initial=False))

    def watch(self, sources: list[str]) -> None:
        """Watch these source paths (replacing any earlier set); their current state counts
        as already synced."""
        self.stop()
        self.sources = [str(Path(p).expanduser()) for p in sources]
        if not self.sources:
            return
        self._watcher = QFileSystemWatcher(self)
        qconnect(self._watcher.fileChanged, self._changed)
        qconnect(self._watcher.directoryChanged, self._changed)
        self._survey(initial=True)

    def stop(self) -> None:
        self.generation += 1  # results of surveys already under way are dropped
        self._timer.stop()
        if self._watcher is not None:
            self._watcher.deleteLater()
            self._watcher = None
        self.sources, self.seen = [], {}

    def _changed(self, _path: str) -> None:
        self._timer.start()

    def _survey(self, initial: bool) -> None:
        sources, generation = list(self.sources), self.generation
        QueryOp(
            parent=self.mw,
            op=lambda _col: survey(sources),
            success=lambda found: self._surveyed(found, generation, initial),
        ).failure(lambda _err: None).without_collection().run_in_background()

    def _surveyed(self, found: Survey, generation: int, initial: bool) -> None:
        if generation != self.generation or self._watcher is None:
            return
        prints, paths = found
        watched = set(self._watcher.files()) | set(self._watcher.directories())
        if watched - paths:
            self._watcher.removePaths(list(watched - paths))
        if paths - watched:
            self._watcher.addPaths(list(paths - watched))
        changed = [s for s in self.sources if prints.get(s) != self.seen.get(s)]
        self.seen.update(prints)
        if changed and not initial:
            self.on_change()

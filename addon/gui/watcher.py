"""Watch the sources and ask for a sync when one really changed.

Editors and browsers save atomically (write a temporary file, rename it over the old one),
which makes QFileSystemWatcher forget the path: each check re-adds what should be watched.
For a folder of exports we watch the folder (it reports new and renamed files) and its
newest export (which reports being rewritten in place), never every file in it: a Downloads
folder holds thousands. A notes folder (Logseq, Obsidian, Markdown) has its folders watched
and is also polled, since a note rewritten in place is reported by no folder's events. Bursts
of events are debounced, the checks run off the main thread, and a save that changed nothing
triggers nothing (core/watching.py: the fingerprints and paths). An API source is not
watched.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from aqt.main import AnkiQt
from aqt.operations import QueryOp
from aqt.qt import QFileSystemWatcher, QObject, QTimer, qconnect

from ..core.sources.detect import is_api, is_notes_folder
from ..core.watching import Fingerprints, watch_paths

DEBOUNCE_MS = 1500
POLL_MS = 30_000
# Folders of one notes folder watched at most (inotify watches are a per-user budget).
MAX_WATCHED_FOLDERS = 200

Survey = tuple[dict[str, str], set[str], bool]


def survey(sources: list[str], fingerprints: Fingerprints) -> Survey:
    """Each source's fingerprint, the paths to watch for it, and whether any source needs
    polling (worker thread)."""
    prints: dict[str, str] = {}
    paths: set[str] = set()
    poll = False
    for source in sources:
        prints[source] = fingerprints.of(source)
        with contextlib.suppress(OSError):
            paths.update(sorted(watch_paths(source))[:MAX_WATCHED_FOLDERS])
            poll = poll or is_notes_folder(source)
    return prints, paths, poll


class SourceWatcher(QObject):
    def __init__(self, mw: AnkiQt, on_change: Callable[[], None]) -> None:
        super().__init__(mw)
        self.mw = mw
        self.on_change = on_change
        self.sources: list[str] = []
        self.seen: dict[str, str] = {}
        self.generation = 0
        self.fingerprints = Fingerprints()
        self._watcher: QFileSystemWatcher | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        qconnect(self._timer.timeout, lambda: self._survey(initial=False))
        self._poll = QTimer(self)
        self._poll.setInterval(POLL_MS)
        qconnect(self._poll.timeout, lambda: self._survey(initial=False))

    def watch(self, sources: list[str]) -> None:
        """Watch these source paths (replacing any earlier set); their current state counts
        as already synced."""
        self.stop()
        self.sources = [p if is_api(p) else str(Path(p).expanduser()) for p in sources]
        if not self.sources:
            return
        self._watcher = QFileSystemWatcher(self)
        qconnect(self._watcher.fileChanged, self._changed)
        qconnect(self._watcher.directoryChanged, self._changed)
        self._survey(initial=True)

    def stop(self) -> None:
        self.generation += 1  # results of surveys already under way are dropped
        self._timer.stop()
        self._poll.stop()
        if self._watcher is not None:
            self._watcher.deleteLater()
            self._watcher = None
        self.sources, self.seen = [], {}

    def _changed(self, _path: str) -> None:
        self._timer.start()

    def _survey(self, initial: bool) -> None:
        sources, generation, prints = list(self.sources), self.generation, self.fingerprints
        QueryOp(
            parent=self.mw,
            op=lambda _col: survey(sources, prints),
            success=lambda found: self._surveyed(found, generation, initial),
        ).failure(lambda _err: None).without_collection().run_in_background()

    def _surveyed(self, found: Survey, generation: int, initial: bool) -> None:
        if generation != self.generation or self._watcher is None:
            return
        prints, paths, poll = found
        if poll and not self._poll.isActive():
            self._poll.start()
        watched = set(self._watcher.files()) | set(self._watcher.directories())
        if watched - paths:
            self._watcher.removePaths(list(watched - paths))
        if paths - watched:
            self._watcher.addPaths(list(paths - watched))
        changed = [s for s in self.sources if prints.get(s) != self.seen.get(s)]
        self.seen.update(prints)
        if changed and not initial:
            self.on_change()

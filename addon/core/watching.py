"""What the add-on's file watcher (gui/watcher.py) looks at: a source's fingerprint, and the
paths whose change events may mean the source changed. Qt-free, so it runs on a worker thread
and in tests.

Guarantees: a fingerprint changes whenever what a sync would read may have changed, and not
when a file is only touched or saved unchanged (an export's bytes are hashed; a
``Fingerprints`` remembers each export's digest by size and modification time, so a file is
hashed once per version however often it is looked at). An API source has no fingerprint and
no paths: it is polled (live.py), not watched.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .model import SourceError
from .sources.detect import folder_export, is_api
from .sources.files import note_folders, open_regular


class Fingerprints:
    """Fingerprints of sources, with the digests of the exports already hashed."""

    def __init__(self) -> None:
        # Path -> ((size, modification time) when hashed, digest).
        self._digests: dict[str, tuple[tuple[int, int], str]] = {}

    def of(self, source: str | Path) -> str:
        """A short string that changes when the source's content may have changed.

        For an export: the file a sync would read (for a folder of exports, its newest), its
        size and a hash of its bytes. For a notes folder: every note's path, size and
        modification time. An API source: "". One that cannot be looked at: "missing".
        """
        if is_api(source):
            return ""
        path = Path(source).expanduser()
        try:
            target = folder_export(path) if path.is_dir() else path
            if target is None:
                return _folder_print(path)
            stat = target.stat()
            version = (stat.st_size, stat.st_mtime_ns)
            known = self._digests.get(str(target))
            if known is not None and known[0] == version:
                digest = known[1]
            else:
                digest = _hash_file(target)
                self._digests[str(target)] = (version, digest)
        except (OSError, SourceError):
            return "missing"
        return f"{target}|{stat.st_size}|{digest}"


def watch_paths(source: str | Path) -> set[str]:
    """Paths whose change events may mean the source changed (the watcher also polls notes
    folders, since a folder's events do not report a note rewritten in place)."""
    if is_api(source):
        return set()
    path = Path(source).expanduser()
    paths = {str(path)}
    if path.is_dir():
        export = folder_export(path)
        if export is not None:
            paths.add(str(export))
        else:
            paths.update(str(d) for d in note_folders(path))
    else:  # an atomic save replaces the file: its folder sees the rename
        paths.add(str(path.parent))
    return {p for p in paths if os.path.exists(p)}


def _hash_file(path: Path) -> str:
    """A digest of the file's bytes, read in chunks (an export may be large)."""
    digest = hashlib.blake2b(digest_size=12)
    with open_regular(path) as handle:
        while chunk := handle.read(1024**2):
            digest.update(chunk)
    return digest.hexdigest()


def _folder_print(root: Path) -> str:
    digest = hashlib.blake2b(digest_size=12)
    for folder in note_folders(root):
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.name.lower().endswith(".md") and entry.is_file():
                stat = entry.stat()
                # fsencode: a name need not be valid UTF-8 (see files.display_name).
                digest.update(os.fsencode(entry.path))
                digest.update(f"|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return f"{root}|{digest.hexdigest()}"

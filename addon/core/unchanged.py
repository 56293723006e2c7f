"""Skip a run when neither the source nor the collection changed since the last one.

A sync of a source that did not change, into a collection that did not change, would plan
nothing and write nothing; reading and planning the whole graph to find that out is the
cost of a no-op. So a ``Ledger`` (one small JSON file per collection: beside it for the CLI,
in the profile's ``roam_bridge/`` folder for the add-on) remembers, per source:

- a fingerprint of what the last settled run read: for an export file its size, modification
  time, change time and a hash of its bytes; for a notes folder the same for every file in it
  (dot-folders aside, as the readers skip them); for a folder of exports, each export in it;
- a digest of the run's options, with the rendering version and the engine's own code (so a
  new version of the add-on plans again once);
- the collection's state after that run: its creation time, its modification time, its
  schema time and version, which Anki moves with every change it makes (an edit, a tag, a
  review, a deletion, an undo, an AnkiWeb sync, a write through ``col.db`` that is
  committed; not a raw SQLite write that Anki's own sync would not see either);
- what a plan would then report: the graph's notes (all unchanged) and its warnings.

``Ledger.look`` fingerprints the source before it is read, and ``Look.compare`` takes the
collection's state before planning. A file whose size and times are as recorded is taken as
unchanged without being read (its change time cannot be set back); one whose times moved is
hashed, and is unchanged when its bytes are. Only when everything matches
(``Look.unchanged``) is the run skipped; ``Look.report`` then says what a plan would say.
Sources read through an API have no fingerprint (live.py keeps them incremental): they are
never skipped.

Guarantees:
- never a false "unchanged": a record is written only after a run that left nothing for
  later (not refused, not deferred, no change left out, no image to retry, no Anki edit to
  report again), and only for a collection that nothing but that run changed since it was
  looked at; the source is fingerprinted before it is read, so an edit made while a run
  reads it is seen by the next one;
- a crash between writing the collection and writing the record leaves the old record,
  which no longer matches the collection: the next run simply plans;
- a record that is missing, unreadable or of another version means "plan": deleting the file
  costs one full run, nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from anki.collection import Collection

from .anki_compat import db
from .cards import RENDER_VERSION
from .config import SourceConfig, SyncOptions
from .model import SourceError
from .sources import detect
from .sources.files import Budget, open_regular, walk
from .sync import Report, SyncPlan

RECORD_VERSION = 1
# Beside the CLI's collection: <collection>.roam-bridge-runs.json.
CLI_SUFFIX = ".roam-bridge-runs.json"
# A file whose times are this close to the moment it was fingerprinted may still be changing
# within the file system's clock tick: it is hashed again next time rather than trusted.
_RACY_NS = 2_000_000_000
_CHUNK = 1024**2

# path below the source -> (size, mtime_ns, ctime_ns, digest of its bytes).
FileStates = dict[str, tuple[int, int, int, str]]
CollectionState = tuple[int, int, int, int]
_STATE = "select crt, mod, scm, ver from col"


def beside(collection: Path) -> Path:
    """Where the CLI keeps the ledger of ``collection``."""
    return collection.with_name(collection.name + CLI_SUFFIX)


def collection_state(col: Collection) -> CollectionState:
    """What changes whenever anything in the collection changes: one row of ``col`` (its
    creation, modification and schema times, and its schema version)."""
    row = db(col).first(_STATE) or (0, 0, 0, 0)
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def file_state(path: Path) -> CollectionState | None:
    """``collection_state`` of a collection file that no one has open, read with SQLite
    alone (without opening it as a collection, which costs more than the rest of a
    skipped run); None when it cannot be read so (open in Anki, or no collection)."""
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=0)
    except (sqlite3.Error, OSError, ValueError):
        return None
    try:
        row = con.execute(_STATE).fetchone()
    except sqlite3.Error:
        return None
    finally:
        con.close()
    return (int(row[0]), int(row[1]), int(row[2]), int(row[3])) if row else None


@dataclass
class Look:
    """One source, looked at before a run: what it is now, and whether that is what the last
    settled run left."""

    source: str
    digest: str
    # None: no fingerprint (an API source, or one that cannot be looked at).
    files: FileStates | None
    # The last settled run's record, when the source is as it read it.
    known: dict[str, Any] | None = field(default=None, repr=False)
    # The collection's state when compared (``compare``), before the run planned.
    collection: CollectionState | None = None

    @property
    def source_as_recorded(self) -> bool:
        return self.known is not None

    def compare(self, col: Collection) -> bool:
        """Take the collection's state (call it before planning); True when the source and
        the collection are both as the last settled run left them: nothing to do."""
        self.collection = collection_state(col)
        return self.unchanged

    def compare_file(self, path: Path) -> bool:
        """``compare`` for a collection file no one has open (see ``file_state``); False
        when it cannot be read so. The run that follows, if any, compares again once it
        has opened the collection."""
        self.collection = file_state(path)
        return self.unchanged

    @property
    def unchanged(self) -> bool:
        return (self.known is not None and self.collection is not None
                and tuple(self.known.get("collection", ())) == self.collection)

    @property
    def graph(self) -> str:
        """``source:name`` of the graph, as the last run synced it ("" when unknown)."""
        return str(self.known.get("graph", "")) if self.known else ""

    def report(self) -> Report:
        """What a plan would report: every note of the graph unchanged, the same warnings."""
        known = self.known or {}
        return Report(unchanged=int(known.get("notes", 0)),
                      warnings=[str(w) for w in known.get("warnings", [])])


class Ledger:
    """The last settled run of each source synced into one collection."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def look(self, source: str, options: SyncOptions, extra: str = "",
             hint: FileStates | None = None) -> Look:
        """Fingerprint ``source`` (reading only its files whose times moved), before it is
        read. ``extra``: anything else the run's outcome depends on (see ``run_extra``).
        ``hint``: the files as a caller last saw them, for the digests of files whose times
        did not move when no run was recorded (a watch's last turn)."""
        digest = _digest(options, extra)
        entry = self._entries().get(source)
        entry = entry if isinstance(entry, dict) else {}
        known = entry if entry.get("digest") == digest else None
        # Recorded digests hold whatever the options were; a caller's hint fills in.
        files, touched = _fingerprint(source, {**(hint or {}), **(entry.get("files") or {})})
        look = Look(source, digest, files)
        if known is not None and files is not None and _same(files, _files(known)):
            look.known = known
            if touched:  # the same bytes under new times: trust the stat next time
                look.known = {**known, "files": files}
                self._write({source: look.known})
        return look

    def record(self, col: Collection, done: Sequence[tuple[Look, SyncPlan | None]],
               before: CollectionState | None = None) -> None:
        """Remember each source's run, once the run is over (``before``: the collection's
        state right before the run wrote, or None when it wrote nothing). A look whose
        collection state is not ``before`` saw a collection someone else changed since:
        it is not recorded. ``done`` pairs each look with its applied SyncPlan, or with None
        for a source the run skipped as unchanged."""
        start = collection_state(col) if before is None else before
        after = collection_state(col)
        entries: dict[str, Any] = {}
        for look, plan in done:
            if look.files is None or look.collection != start:
                continue
            if plan is None:  # skipped as unchanged: still so after this run's writes
                if look.known is not None and list(after) != look.known.get("collection"):
                    entries[look.source] = {**look.known, "collection": list(after)}
                continue
            if not settled(plan):
                entries[look.source] = None  # whatever was recorded no longer holds
                continue
            report = plan.report()
            entries[look.source] = {
                "digest": look.digest, "files": look.files, "collection": list(after),
                "graph": plan.prefix.rstrip(":"),
                "notes": report.created + report.updated + report.unchanged + report.orphaned,
                "warnings": report.warnings,
            }
        if entries:
            self._write(entries)

    @contextmanager
    def recording(self, col: Collection, done: Sequence[tuple[Look, SyncPlan | None]]
                  ) -> Iterator[None]:
        """Record ``done`` once the block (the run's write) has ended without an error."""
        before = collection_state(col)
        yield
        self.record(col, done, before)

    # The file -----------------------------------------------------------------------------

    def _entries(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("version") != RECORD_VERSION:
            return {}
        sources = data.get("sources")
        return sources if isinstance(sources, dict) else {}

    def _write(self, changes: dict[str, Any]) -> None:
        """Merge ``changes`` (None removes a source) and replace the file atomically; a
        ledger that cannot be written only means the next run plans."""
        entries = self._entries()
        for source, entry in changes.items():
            if entry is None:
                entries.pop(source, None)
            else:
                entries[source] = entry
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=".roam-bridge-runs-", dir=self.path.parent)
        except OSError:
            return
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({"version": RECORD_VERSION, "sources": entries}, out)
            os.replace(temp, self.path)
        except OSError:
            with suppress(OSError):
                os.unlink(temp)


def run_extra(source: SourceConfig) -> str:
    """What a CLI run's outcome depends on besides its SyncOptions, as ``extra`` text (the
    same for ``sync`` and ``watch``, so either skips after the other)."""
    return repr((source.graph, source.kind, tuple(source.include), tuple(source.exclude),
                 source.write_ids))


def settled(plan: SyncPlan, scoped: bool = False) -> bool:
    """Whether an applied plan left nothing for a later run, so that planning again on the
    same source and collection would find nothing to do. ``scoped``: a plan of some blocks
    only counts too (its caller knows the other notes were as the source says)."""
    return not (
        plan.refused or (plan.scoped and not scoped) or plan.held_back or plan.anki_edits
        # Written back: the notes changed under the run, and other notes may show them.
        or plan.written_back
        or (plan.media is not None and bool(plan.media.warnings))
    )


# Fingerprints -----------------------------------------------------------------------------


def _fingerprint(source: str, known: Any) -> tuple[FileStates | None, bool]:
    """The source's files now, and whether any was hashed and found as recorded. Files whose
    size and times match ``known`` keep their recorded digest without being read."""
    if detect.is_api(source):
        return None, False
    recorded: dict[str, Any] = known if isinstance(known, dict) else {}
    try:
        listed = _files_of(Path(source).expanduser())
        now = time.time_ns()
        states: FileStates = {}
        touched = False
        for rel, path in listed.items():
            stat = os.stat(path)
            size, mtime, ctime = stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns
            old = recorded.get(rel)
            if (isinstance(old, list | tuple) and len(old) == 4 and old[0] == size
                    and old[1] == mtime and old[2] == ctime and old[3]):
                states[rel] = (size, mtime, ctime, old[3])
                continue
            digest = _hash(path)
            touched = touched or (isinstance(old, list | tuple) and len(old) == 4
                                  and old[3] == digest)
            if now - max(mtime, ctime) < _RACY_NS:
                mtime = -1  # may still change within the clock's tick: hash it next time
            states[rel] = (size, mtime, ctime, digest)
    except (OSError, SourceError):
        return None, False  # the read says what is wrong
    return states, touched


def _files(entry: dict[str, Any]) -> FileStates | None:
    files = entry.get("files")
    if not isinstance(files, dict):
        return None
    return {rel: tuple(state) for rel, state in files.items()}


def _same(now: FileStates, then: FileStates | None) -> bool:
    """The same files with the same bytes (times may differ)."""
    return then is not None and now.keys() == then.keys() and all(
        state[3] == then[rel][3] for rel, state in now.items())


def _files_of(path: Path) -> dict[str, str]:
    """The files a read of the source depends on, by their path below it."""
    if not path.is_dir():
        return {"": str(path)}
    if detect.is_notes_folder(path):
        # Every file: the notes, the graph's config (logseq/config.edn), attachments.
        return {found.rel: found.path for found in walk(path, lambda name: True, Budget(path))}
    # A folder of exports: the one read is the newest, so any of them may become it.
    with os.scandir(path) as entries:
        return {entry.name: entry.path for entry in entries
                if entry.name.lower().endswith(detect.EXPORT_SUFFIXES)
                and entry.is_file()}


def _hash(path: str) -> str:
    digest = hashlib.sha256()
    with open_regular(path) as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()[:32]


def _digest(options: SyncOptions, extra: str) -> str:
    # ``force`` and per-run resolutions change what one run may do, not what a settled
    # collection holds.
    settled_options = replace(options, force=False, resolutions=())
    text = f"{RECORD_VERSION}|{RENDER_VERSION}|{_code_version()}|{settled_options!r}|{extra}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@cache
def _code_version() -> str:
    """A digest of the engine's code: a new version of the add-on plans every source once."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]

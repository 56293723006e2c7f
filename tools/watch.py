"""``python -m tools.bridge watch SOURCE --collection PATH``: keep a collection in step with a
source until stopped, and optionally with AnkiWeb, for notes on the phone without desktop Anki.

Every ``--interval`` seconds: a file source is looked at (its fingerprint: a changed export or
note), an API source is polled (live.py: only what changed since the last poll, and every few
minutes a sweep for deleted blocks). A notes folder's parsed pages are kept between turns
(folder_cache.py): a turn parses only the files that changed. A change goes the way ``sync``
takes (core/pipeline.py: ``--write-ids`` first, then the plan: for an API poll only of the
notes it touched, for a notes folder only of the notes of the pages that changed and of the
pages showing them, when the last turn settled and nothing else changed the collection
since; with ``--write-back`` the edits made in Anki into the notes, then the collection) and
is applied as one transaction (a removal the mass-removal guard refuses is left alone, with a
warning); one line is printed per sync that changed something, nothing for a quiet turn. A
source that cannot be read (Roam desktop closed, the network down)
prints one line and is tried again on the next turn.

With ``--ankiweb`` the collection syncs with AnkiWeb (or the server ``--sync-url`` names) around
every change: first a sync that pulls what other devices did (reviews made on the phone, notes
they made), then the change, then a sync that pushes it. A full sync would overwrite one side
whole, so the watch never asks for one: changes between basic and cloze (a schema change) are
left for desktop Anki, and a server that asks for a full sync of a collection that has notes
stops the watch with a message. The one exception: a change that creates Roam Bridge's note
types or a deck (the first sync, a new ``deck::``) is a schema change in Anki, after which the
server takes only a full upload; the watch makes it right after the sync that pulled
everything the server had, so what other devices did is in what it uploads. Credentials
come from ``ANKIWEB_USERNAME`` and ``ANKIWEB_PASSWORD`` or from ``login`` (which keeps only
the session key, beside the collection, readable by its owner alone), never from a flag.

Stopping (Ctrl+C, SIGTERM) closes the collection cleanly; a kill mid-sync writes nothing of
that sync (it is one transaction), and the next run does it.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anki.collection  # noqa: F401  (import first: anki 26.9 has an import cycle otherwise)
from anki.collection import Collection
from anki.errors import DBError
from anki.sync import SyncAuth
from anki.sync_pb2 import SyncCollectionResponse

from addon.core import pipeline, sync, unchanged
from addon.core.block_writes import Journal
from addon.core.config import SourceConfig, SyncOptions
from addon.core.live import LiveSource
from addon.core.model import Graph, SourceError
from addon.core.sources.detect import ReadOptions, is_api
from addon.core.sources.folder_cache import FolderCache

USER_ENV, PASSWORD_ENV = "ANKIWEB_USERNAME", "ANKIWEB_PASSWORD"
_Required = SyncCollectionResponse.ChangesRequired
_FULL = (_Required.FULL_SYNC, _Required.FULL_UPLOAD, _Required.FULL_DOWNLOAD)
MEDIA_WAIT = 120.0


class WatchError(Exception):
    """Stops the watch with one line (exit 1)."""


class _Stop(BaseException):
    pass


def login_file(collection: Path) -> Path:
    return collection.with_name(collection.name + ".ankiweb.json")


@dataclass
class AnkiWeb:
    """The collection's link with AnkiWeb or a self-hosted sync server."""

    col: Collection
    auth: SyncAuth

    @staticmethod
    def connect(col: Collection, collection: Path, sync_url: str) -> AnkiWeb:
        """Log in with the environment's credentials, else use the key ``login`` kept."""
        user, password = os.environ.get(USER_ENV, ""), os.environ.get(PASSWORD_ENV, "")
        endpoint = sync_url or None
        if user and password:
            return AnkiWeb(col, col.sync_login(user, password, endpoint))
        try:
            kept = json.loads(login_file(collection).read_text(encoding="utf-8"))
            auth = SyncAuth(hkey=kept["hkey"], endpoint=sync_url or kept.get("endpoint") or None)
        except (OSError, ValueError, KeyError, TypeError):
            raise WatchError(f"no AnkiWeb login: set {USER_ENV} and {PASSWORD_ENV}, or run "
                             "python -m tools.bridge login --collection "
                             f"{collection}") from None
        return AnkiWeb(col, auth)

    def sync(self, after_change: bool = False) -> str:
        """One sync both ways. A full sync happens only where it loses nothing: a download
        into a collection without notes, or, ``after_change``, the upload Anki asks for after
        the change that follows a normal sync (a change that creates note types or decks is
        a schema change): every review the server had was pulled moments before."""
        out = self.col.sync_collection(self.auth, True)
        if out.new_endpoint:
            self.auth = SyncAuth(hkey=self.auth.hkey, endpoint=out.new_endpoint)
        self.col.models._clear_cache()  # as Anki desktop does after every sync
        if out.required in _FULL:
            empty = not self.col.note_count()
            upload = out.required == _Required.FULL_UPLOAD and after_change
            if not (upload or (empty and out.required != _Required.FULL_UPLOAD)):
                raise WatchError(
                    "AnkiWeb asks for a full sync, which would overwrite one side whole; open "
                    "this collection in Anki desktop once to choose, then start the watch again"
                )
            self.col.close_for_full_sync()
            self.col.full_upload_or_download(auth=self.auth, server_usn=out.server_media_usn,
                                             upload=upload)
            self.col.reopen(after_full_sync=True)
            self._wait_for_media()
            return "full upload" if upload else "full download"
        self._wait_for_media()
        return "normal"

    def _wait_for_media(self) -> None:
        deadline = time.monotonic() + MEDIA_WAIT
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if not self.col.media_sync_status().active:
                    return
            time.sleep(0.2)


def login(collection: Path, sync_url: str) -> int:
    """Ask for the AnkiWeb user and password once; keep only the session key."""
    user = os.environ.get(USER_ENV) or input("AnkiWeb user (email): ").strip()
    password = os.environ.get(PASSWORD_ENV) or getpass.getpass("AnkiWeb password: ")
    with _opened(collection) as col:
        try:
            auth = col.sync_login(user, password, sync_url or None)
        except Exception as err:  # the backend's error says what was wrong, never the password
            print(f"roam-bridge: AnkiWeb login failed ({err})", file=sys.stderr)
            return 1
    path = login_file(collection)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"hkey": auth.hkey, "endpoint": sync_url}, out)
    print(f"Logged in; the session key is kept in {path} (readable by you alone)")
    return 0


@contextlib.contextmanager
def _opened(collection: Path) -> Iterator[Collection]:
    collection.parent.mkdir(parents=True, exist_ok=True)
    try:
        col = Collection(str(collection))
    except DBError as err:
        if "already open" in str(err).lower():
            raise WatchError(f"{collection}: the collection is open in Anki (or another "
                             "program); close it and try again") from None
        raise WatchError(f"{collection}: cannot open the collection ({err})") from None
    try:
        yield col
    finally:
        col.close()


@dataclass(frozen=True)
class Every:
    """How the watch runs: seconds between turns, AnkiWeb around changes, JSON lines."""

    interval: float
    ankiweb: bool = False
    sync_url: str = ""
    as_json: bool = False


class Watch:
    """The same pipeline as ``sync`` (read, ids, plan, write-back, apply), turn after turn."""

    def __init__(self, source: SourceConfig, options: SyncOptions, read_options: ReadOptions,
                 collection: Path, journal: Journal, every: Every) -> None:
        self.source, self.options, self.read_options = source, options, read_options
        self.collection, self.journal, self.every = collection, journal, every
        self.live: LiveSource | None = None
        # A notes folder's pages between turns: a turn parses only the files that changed.
        self.folder_cache = FolderCache()
        self.ledger = unchanged.Ledger(unchanged.beside(collection))
        self._seen_print: unchanged.FileStates | None = None
        self._last_error = ""

    def run(self) -> int:
        signal.signal(signal.SIGTERM, _raise_stop)
        try:
            with _opened(self.collection) as col:
                link = AnkiWeb.connect(col, self.collection, self.every.sync_url) \
                    if self.every.ankiweb else None
                if link is not None:
                    self._say(f"AnkiWeb: {link.sync()} sync")
                while True:
                    self._turn(col, link)
                    time.sleep(self.every.interval)
        except (_Stop, KeyboardInterrupt):
            return 0
        finally:
            if self.live is not None:
                self.live.close()

    def _turn(self, col: Collection, link: AnkiWeb | None) -> None:
        try:
            found = self._read(col)
            if found is None:
                return
            graph, scope, requests, look = found
            if link is not None:
                link.sync()  # reviews and notes from other devices first
                if look is not None:
                    look.compare(col)  # the collection as the pull left it
            if look is not None:
                # A collection changed since the last turn settled is planned whole.
                scope = pipeline.scope_for(self.folder_cache, look, col)
            planned = pipeline.plan(self.source, graph, col, self.options, self.read_options,
                                    scope=scope)
        except SourceError as err:
            if str(err) != self._last_error:  # one line per new problem, not one per turn
                print(f"roam-bridge: {err}", file=sys.stderr, flush=True)
            self._last_error = str(err)
            return
        self._last_error = ""
        plan = planned.plan
        if link is not None:
            plan.defer_kind_changes()  # a schema change would force a full sync
        if plan.refused:
            # As a background sync in Anki does: the rest happens, the removal waits for a
            # manual `sync --force` (or Sync now) after a look at the source.
            plan.skip_removals()
            print(f"roam-bridge: warning: {plan.refusal}; left alone (sync with --force "
                  "once you have checked the source)", file=sys.stderr, flush=True)
        pipeline.write_back([planned], self.journal)  # the notes before the collection
        if look is None:
            report = sync.apply(plan, col)
        else:
            read = self.folder_cache.reads
            with self.ledger.recording(col, [(look, plan)]):
                report = sync.apply(plan, col)
            pipeline.settle(self.folder_cache, read, look, plan, col)
        if not (report.created or report.updated or report.orphaned or report.deleted
                or report.written_back):
            return
        pushed = link.sync(after_change=True) if link is not None else ""
        self._print(graph, report, requests, pushed)

    def _read(self, col: Collection
              ) -> tuple[Graph, set[str] | None, int, unchanged.Look | None] | None:
        """The graph, the blocks to plan (None: all; for a file source ``_turn`` decides)
        and the source's look, or None when nothing changed: the source is as the last turn
        read it, or as the last settled run (this watch's or a sync's) left it, with the
        collection as that run left it."""
        if is_api(self.source.path):
            if self.live is None:
                self.live = LiveSource(self.source.path, self.source.graph, self.read_options)
            pulled = self.live.pull()
            if not pulled.changed:
                return None
            return pulled.graph, pulled.scope, pulled.refresh.requests, None
        look = self.ledger.look(self.source.path, self.options,
                                unchanged.run_extra(self.source), hint=self._seen_print)
        if look.files is not None and look.files == self._seen_print:
            return None
        if look.compare(col):
            self._seen_print = look.files
            return None
        graph = pipeline.read(self.source, self.read_options, self.folder_cache)
        self._seen_print = look.files
        return graph, None, 0, look

    def _print(self, graph: Graph, report: sync.Report, requests: int, pushed: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        if self.every.as_json:
            line: dict[str, Any] = {**report.counts(), "graph": f"{graph.source}:{graph.name}",
                                    "at": time.time(), "requests": requests,
                                    "ankiweb": pushed}
            self._say(json.dumps(line, ensure_ascii=False))
            return
        text = (f"{stamp} {graph.source}:{graph.name}: {report.created} created, "
                f"{report.updated} updated, {report.orphaned} orphaned")
        if report.written_back:
            text += f", {report.written_back} Anki edits written back"
        for warning in report.warnings:
            text += f"; warning: {warning}"
        self._say(text + (f"; AnkiWeb: {pushed} sync" if pushed else ""))

    def _say(self, text: str) -> None:
        if not self.every.as_json or text.startswith("{"):
            print(text, flush=True)


def _raise_stop(_signum: int, _frame: Any) -> None:
    raise _Stop

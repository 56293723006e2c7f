"""How a sync runs inside Anki: one at a time, off the main thread, one undo step.

1. Read and plan the configured sources in a QueryOp (background thread). A sync the user
   started shows its progress with counts and can be cancelled until writing begins
   (progress_dialog.py); a background sync shows nothing.
2. Back on the main thread, settle what needs the user. A preview (Preview sync…) lists the
   changes and lets the user leave notes out or pin them. When the mass-removal guard trips,
   a manual sync asks (guard_dialog.py: Cancel, the default, writes nothing); a background
   sync writes nothing at all and leaves a notice. A basic <-> cloze change (a schema
   change) is made only after Anki's own question, and a background sync defers it.
3. Write the Anki edits of sources with write-back into their notes, then apply all plans in
   one CollectionOp: Edit > Undo reverts the whole sync in the collection (Revert last
   write-back, the notes: the journal is in the profile's folder). Each source takes the
   same steps as in the CLI (core/pipeline.py).

Undo stays the user's: a background sync never lands while the reviewer has an answer the
user could undo (Ctrl+Z would undo the sync instead); it waits until they leave the reviewer.

A trigger that arrives while a sync runs queues a single rerun. A profile switch or close
bumps a generation counter: a sync started under the old profile stops at its next step,
and its results are dropped. With ``push_to_ankiweb``, a sync that wrote something is sent
to AnkiWeb.

Sources read through an API (roam-api://, roam-local://) are kept in memory between syncs and
refreshed by incremental pulls (core/live.py): a poll (``request(poll=True)``, from the poller)
syncs only those sources, plans only the notes their changes touch, never queues behind a
running sync, and says nothing when nothing changed (a failure is reported once, not at every
poll). Sync now reads them whole again and plans every note.

A file source that did not change since its last settled run, into a collection that did
not change either, is not even read by a background sync (core/unchanged.py; the record is
in the profile's folder): startup, after-AnkiWeb and watcher syncs of unchanged notes cost
a look at the files. A notes folder's parsed pages are kept between syncs
(core/sources/folder_cache.py): a read parses only the files that changed, and a background
sync plans only the notes of the pages that changed (and of the pages showing them) when the
last sync of that folder settled and nothing else changed the collection since
(``pipeline.scope_for``). Sync now always reads and plans every source, as a user pressing it
expects (it is also how a deferred change is made), and records what it settled.

Sources and the API tokens belong to the open profile (profile_settings.py); the rest of the
settings is the add-on's config. A source synced without a graph name keeps the name it was
first synced under, so a later export with another file name stays the same graph.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from anki.collection import Collection
from anki.notes import NoteId
from aqt.main import AnkiQt
from aqt.operations import QueryOp
from aqt.operations.tag import add_tags_to_notes
from aqt.utils import showWarning, tooltip

from ..core import pipeline, sync, unchanged
from ..core.block_writes import BlockEdit, Journal
from ..core.cards import key_for
from ..core.config import Config, ConfigError, OnConflict, SourceConfig, SyncOptions, load_config
from ..core.live import LivePull, LiveSource
from ..core.model import Graph, SourceError, drop_gradually, gc_paused
from ..core.panel import panel_index
from ..core.progress import READING, WRITING, Cancelled, ticking
from ..core.sources.detect import ReadOptions, default_graph_name, is_api
from ..core.sources.folder_cache import FolderCache
from ..core.state_tags import PINNED
from .aqt_compat import TrackedCollectionOp, TrackedQueryOp, run_pending_callbacks
from .context_panel import PanelIndex, with_history
from .guard_dialog import ask_about_removal
from .preview_dialog import PreviewDialog
from .profile_settings import PROFILE_KEYS, ProfileSettings
from .progress_dialog import PANELS, ProgressWindow, SyncProgress
from .source_links import graph_of

# The profile's record of each source's last settled run (core/unchanged.py).
LEDGER_NAME = "last_runs.json"
# Seconds a background request to Roam desktop may wait (an encrypted graph waits for its
# password); the next poll asks again.
LOCAL_TIMEOUT = 120.0


@dataclass(frozen=True)
class SyncRequest:
    """What was asked for. ``sources`` limits the sync to these source paths (None: all); a
    ``poll`` syncs only the API sources, incrementally, and is dropped while a sync runs."""

    manual: bool = False
    preview: bool = False
    sources: frozenset[str] | None = None
    poll: bool = False
    # How the user settled conflicts (Conflicts…): note key -> "notes" or "anki".
    resolutions: tuple[tuple[str, OnConflict], ...] = ()

    def merged(self, other: SyncRequest) -> SyncRequest:
        """One rerun that does what both asked: the more attentive, over every source."""
        wanted = None if self.sources is None or other.sources is None else (
            self.sources | other.sources)
        settled = tuple({**dict(self.resolutions), **dict(other.resolutions)}.items())
        return SyncRequest(self.manual or other.manual, self.preview or other.preview, wanted,
                           self.poll and other.poll, settled)


@dataclass
class _Batch:
    """What the background step hands the main thread."""

    plans: list[sync.SyncPlan] = field(default_factory=list)
    # The same plans, with the writer each source's Anki edits go back through.
    planned: list[pipeline.Planned] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # Reviewer panel indexes to write once the sync is applied, by key prefix.
    panels: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Set when planning found nothing to write: the main thread only reports it.
    report: sync.Report | None = None
    cancelled: bool = False
    # The graph name each source synced without one (by path) synced under.
    graph_names: dict[str, str] = field(default_factory=dict)
    # Each file source looked at before it was read, with its plan (None: skipped, nothing
    # changed since the last settled run; see core/unchanged.py), recorded once written.
    looked: list[tuple[unchanged.Look, sync.SyncPlan | None]] = field(default_factory=list)
    # Each notes folder read through its cache: (cache, read number, look, plan), settled
    # once written (pipeline.settle).
    cached: list[tuple[FolderCache, int, unchanged.Look, sync.SyncPlan]] = field(
        default_factory=list)

    def settle(self, col: Collection) -> None:
        for cache, read, look, plan in self.cached:
            pipeline.settle(cache, read, look, plan, col)
        self.cached.clear()

    def skipped_reports(self) -> list[sync.Report]:
        return [look.report() for look, plan in self.looked if plan is None]


class SyncController:
    def __init__(self, mw: AnkiQt, addon: str) -> None:
        self.mw = mw
        self.addon = addon
        self.running = False
        self.closing = False
        self.queued: SyncRequest | None = None
        # A background sync waits for the user to leave the reviewer (see _holds_undo).
        self.deferred = False
        self.generation = 0
        # The step of ours queued or running on the collection thread, if any.
        self._future: Future | None = None
        self._window: ProgressWindow | None = None
        self.profile = ProfileSettings(mw, addon)
        self.last_report: dict[str, Any] | None = None
        self.on_report: list[Callable[[dict[str, Any]], None]] = []
        self.panels: PanelIndex | None = None
        self.ledger: unchanged.Ledger | None = None
        # API sources kept in memory between syncs, by path.
        self.live: dict[str, LiveSource] = {}
        # Notes folders' parsed pages between syncs, by path (folder_cache.py).
        self.folders: dict[str, FolderCache] = {}
        self._last_poll_problem = ""

    # Config ---------------------------------------------------------------------------

    def config(self) -> Config:
        return load_config(self.raw_config())

    def raw_config(self) -> dict[str, Any]:
        """The settings as one dict: the add-on's config and this profile's sources."""
        shared = dict(self.mw.addonManager.getConfig(self.addon) or {})
        return {**{k: v for k, v in shared.items() if k not in PROFILE_KEYS},
                **self.profile.read()}

    def write_config(self, raw: dict[str, Any]) -> None:
        load_config(raw)  # raises ConfigError before anything is written
        empty: dict[str, Any] = {"sources": [], "roam_local_tokens": {}}
        self.profile.write({key: raw.get(key) or empty.get(key, "") for key in PROFILE_KEYS})
        self.mw.addonManager.writeConfig(
            self.addon, {k: v for k, v in raw.items() if k not in PROFILE_KEYS}
        )

    # Profile lifecycle ------------------------------------------------------------------

    def profile_opened(self) -> None:
        self.closing = False
        self.deferred = False
        self.generation += 1
        self.profile.adopt_global_config()
        self.panels = PanelIndex(self.profile.folder() / "context")
        self.ledger = unchanged.Ledger(self.profile.folder() / LEDGER_NAME)
        self.last_report = self._load_report()

    def profile_closing(self, timeout: float = 120.0) -> None:
        """Start nothing new, stop planning at its next step, and let a write that has begun
        finish (callbacks included) before Anki closes the collection: a sync is never cut
        in half, and nothing of ours touches the collection after it closed."""
        self.closing = True
        self.generation += 1
        self.queued = None
        self.deferred = False
        self._close_window()
        future, self._future = self._future, None
        if future is not None:
            wait([future], timeout)
            # Its completion callbacks are queued for the main thread: run them now, while
            # the collection is still open (the same call taskman makes before each op).
            run_pending_callbacks(self.mw)
        for live in self.live.values():
            live.close()
        self.live.clear()
        self.folders.clear()

    def state_changed(self, new_state: str, old_state: str) -> None:
        """Leaving the reviewer releases a background sync that waited for it."""
        if self.deferred and old_state == "review" and new_state != "review":
            self.deferred = False
            self.request(manual=False)

    # Triggers ---------------------------------------------------------------------------

    def request(self, manual: bool, preview: bool = False,
                sources: Sequence[str] | None = None, poll: bool = False) -> None:
        """Start a sync, or queue one rerun if a sync is running (a manual one wins)."""
        self.start(SyncRequest(manual, preview, frozenset(sources) if sources else None, poll))

    def request_for_keys(self, keys: Sequence[str],
                         resolutions: Sequence[tuple[str, OnConflict]] = ()) -> None:
        """Sync now the sources of these notes' graphs (Browser: Sync this note's source;
        Conflicts…: with how the user settled them)."""
        try:
            config = self.config()
        except ConfigError as err:
            self._fail(f"settings: {err}", manual=True)
            return
        graphs = {graph_of(key)[1] for key in keys}
        paths = [s.path for s in config.sources if _graph_name(s) in graphs]
        if not paths:
            showWarning("Roam Bridge: no source in Settings gives this note's graph "
                        f"({', '.join(sorted(graphs))}).", parent=self.mw)
            return
        self.start(SyncRequest(manual=True, sources=frozenset(paths),
                               resolutions=tuple(resolutions)))

    def journal(self) -> Journal:
        """The write-backs made in this profile, newest last (see core/block_writes.py)."""
        return Journal(self.profile.folder() / pipeline.JOURNAL_NAME)

    def revert_last_write_back(self) -> None:
        """Put back what the last write-back replaced in the notes, then sync, so Anki
        follows the notes again."""
        journal = self.journal()
        last = journal.last()
        if last is None:
            tooltip("Roam Bridge: no write-back to revert", parent=self.mw)
            return
        try:
            options = self._read_options(self.config())
        except ConfigError as err:
            self._fail(f"settings: {err}", manual=True)
            return

        def reverted(result: tuple[list[BlockEdit], dict[str, str]]) -> None:
            undone, failed = result
            if failed:
                showWarning("Roam Bridge could not revert every write-back (kept, to try "
                            "again):\n\n" + "\n".join(f"{k}: {why}" for k, why in failed.items()),
                            parent=self.mw)
            if undone:
                tooltip(f"Roam Bridge: {len(undone)} block(s) put back; syncing",
                        parent=self.mw)
                self.request(manual=True)

        QueryOp(parent=self.mw, op=lambda _col: pipeline.revert_last(journal, options),
                success=reverted).failure(
            lambda err: self._fail(f"revert: {err}", manual=True)
        ).without_collection().run_in_background()

    def start(self, req: SyncRequest) -> None:
        if self.mw.col is None or self.closing:
            return
        if self.running:
            if not req.poll:  # a poll is not worth a rerun: the next poll comes soon
                self.queued = req if self.queued is None else self.queued.merged(req)
            return
        if not req.manual and self._holds_undo():
            self.deferred = True
            return
        try:
            config = self.config()
        except ConfigError as err:
            self._fail(f"settings: {err}", req.manual)
            return
        sources = [s for s in config.sources if (req.sources is None or s.path in req.sources)
                   and (not req.poll or is_api(s.path))]
        if req.poll and not sources:
            return
        if not sources:
            if req.manual:
                showWarning("Roam Bridge has no sources yet: add one in Tools > Roam Bridge > "
                            "Settings…", parent=self.mw)
            return
        self.running = True
        generation = self.generation
        progress = SyncProgress(should_stop=lambda: generation != self.generation)
        if req.manual:
            self._window = ProgressWindow(self.mw, progress, on_cancel=self._cancelled)
        op = TrackedQueryOp(
            parent=self.mw,
            op=lambda col: self._plan_all(col, config, sources, progress, req),
            success=lambda batch: self._planned(batch, req, config, generation, progress),
        )
        op.failure(lambda err: self._after_failure(err, req.manual, generation))
        op.run_in_background()
        self._future = op.future

    def _holds_undo(self) -> bool:
        """True while the reviewer shows and Edit > Undo would undo something of the user's
        (an answer): a sync landing now would come between them and that undo."""
        if self.mw.state != "review" or self.mw.col is None:
            return False
        last = self.mw.col.undo_status().undo
        return bool(last) and last != sync.UNDO_NAME

    # Step 1: background -----------------------------------------------------------------

    def _plan_all(self, col: Collection, config: Config, sources: list[SourceConfig],
                  progress: SyncProgress, req: SyncRequest) -> _Batch:
        batch = _Batch()
        graphs: list[Graph] = []
        try:
            with gc_paused():
                self._forget_live(config)
                self._plan_sources(col, config, sources, progress, batch, graphs, req)
        except Cancelled:
            batch.cancelled = True
            batch.plans.clear()
            return batch
        finally:
            # Free the graphs here, on the worker thread, not later on the UI's.
            for graph in graphs:
                graph.release()
        if not any(p.has_changes or p.refused or p.schema_changes for p in batch.plans):
            batch.report = sync.Report.merge(
                [*(p.report() for p in batch.plans), *batch.skipped_reports()])
            self._write_panels(batch)
            if self.ledger is not None:
                self.ledger.record(col, batch.looked)
            batch.settle(col)
            _free(batch.plans)
        return batch

    def _plan_sources(
        self, col: Collection, config: Config, sources: list[SourceConfig],
        progress: SyncProgress, batch: _Batch, graphs: list[Graph], req: SyncRequest,
    ) -> None:
        for source in sources:
            progress.start_source(source.path)
            scope: set[str] | None = None
            read_options = self._read_options(config, progress)
            cards = replace(config.cards, brace_clozes=source.brace_clozes)
            options = pipeline.options_for(config, source, resolutions=req.resolutions)
            look = self._look(source, options, config, col)
            if look is not None and look.unchanged and not req.manual:
                # Nothing changed since the last settled run: not even read. Sync now
                # always reads and plans, as a user pressing it expects.
                batch.looked.append((look, None))
                continue
            try:
                if is_api(source.path):
                    pulled = self._pull(source, config, whole=req.manual)
                    if not pulled.changed:
                        continue  # nothing changed since the last poll: nothing to plan
                    graph, scope = pulled.graph, pulled.scope
                else:
                    cache = self.folders.setdefault(source.path, FolderCache())
                    graph = pipeline.read(source, read_options, cache)
                    if cache.reads:  # its pages stay in the cache: not released
                        # Sync now plans every note, as a user pressing it expects.
                        scope = None if req.manual else pipeline.scope_for(cache, look, col)
                    else:
                        graphs.append(graph)
            except SourceError as err:
                batch.errors.append(str(err))
                continue
            prefix = f"{graph.source}:{graph.name}:"
            problem = pipeline.check_unique(batch.planned, graph, source)
            if problem:
                batch.errors.append(problem)
                continue
            try:
                planned = pipeline.plan(source, graph, col, options, read_options, progress,
                                        scope=scope)
            except SourceError as err:  # the blocks belong to another graph name
                batch.errors.append(str(err))
                continue
            batch.planned.append(planned)
            plan = planned.plan
            batch.plans.append(plan)
            if look is not None:
                batch.looked.append((look, plan))
                kept = self.folders.get(source.path)
                if kept is not None and kept.reads:
                    batch.cached.append((kept, kept.reads, look, plan))
            if not source.graph:
                batch.graph_names[source.path] = graph.name
            if self.panels is not None:
                previous = self.panels.read(prefix)
                specs = ticking(plan.specs, progress, PANELS, len(plan.specs))
                index = with_history(
                    panel_index(graph, specs, previous, cards, config.show_nearby),
                    previous, {s.key: s.source_hash for s in plan.specs})
                if scope is not None:  # a scoped plan: the other cards' panels stay
                    touched = {key_for(graph, uid) for uid in scope}
                    index = {**{k: v for k, v in previous.items() if k not in touched},
                             **index}
                if index != previous:
                    batch.panels[prefix] = index
                drop_gradually(previous)

    def _look(self, source: SourceConfig, options: SyncOptions, config: Config,
              col: Collection) -> unchanged.Look | None:
        """A file source, looked at before it is read (worker thread); None for an API
        source, which live pulls keep incremental."""
        if self.ledger is None or is_api(source.path):
            return None
        extra = repr((source.kind, source.graph, source.include, source.exclude,
                      source.write_ids, config.show_nearby, self.panels is not None))
        look = self.ledger.look(source.path, options, extra)
        look.compare(col)
        return look

    @staticmethod
    def _read_options(config: Config, progress: SyncProgress | None = None) -> ReadOptions:
        return ReadOptions(
            api_token=config.roam_api_token, api_base_url=config.roam_api_base_url,
            local_tokens=config.roam_local_tokens, local_timeout=LOCAL_TIMEOUT,
            progress=(lambda done, total: progress(READING, done, total)) if progress else None,
        )

    def _pull(self, source: SourceConfig, config: Config, whole: bool) -> LivePull:
        """The API source's graph, brought up to date by an incremental pull (worker
        thread). Sync now (``whole``) reads the whole graph again and plans every note."""
        options = ReadOptions(api_token=config.roam_api_token,
                              api_base_url=config.roam_api_base_url,
                              local_tokens=config.roam_local_tokens,
                              local_timeout=LOCAL_TIMEOUT)
        live = self.live.get(source.path)
        if live is None or not live.fits(source.path, source.graph, options):
            if live is not None:
                live.close()
            live = self.live[source.path] = LiveSource(source.path, source.graph, options)
        return live.pull(whole=whole)

    def _forget_live(self, config: Config) -> None:
        """Drop the graphs of API sources no longer in the settings."""
        wanted = {s.path for s in config.sources}
        for path in [p for p in self.live if p not in wanted]:
            self.live.pop(path).close()
        for path in [p for p in self.folders if p not in wanted]:
            del self.folders[path]

    def _write_panels(self, batch: _Batch) -> None:
        if self.panels is not None:
            for prefix, index in batch.panels.items():
                self.panels.write(prefix, index)
        batch.panels.clear()

    # Step 2: main thread ----------------------------------------------------------------

    def _planned(self, batch: _Batch, req: SyncRequest, config: Config, generation: int,
                 progress: SyncProgress) -> None:
        if generation != self.generation or self.mw.col is None:
            self._finish()
            return
        if batch.cancelled or progress.cancelled:
            self._finish()  # the window said so when it closed
            return
        if batch.report is not None:
            self._close_window()
            self._remember_graph_names(batch)
            if not (req.poll and self._quiet_poll(batch)):
                self._report(batch.report, batch.errors, req.manual)
            self._finish()
            return
        if not req.manual and self._holds_undo():
            self.deferred = True  # planned again, afresh, when the user leaves the reviewer
            self._finish()
            return
        if not req.manual and any(p.refused for p in batch.plans):
            self._hold_back(batch)
            return
        self._close_window()
        if not self._settle(batch, req):
            tooltip("Roam Bridge: sync cancelled; nothing was changed", parent=self.mw)
            self._finish()
            return
        if not any(p.has_changes for p in batch.plans):
            report = sync.Report.merge([*(p.report() for p in batch.plans),
                                        *batch.skipped_reports()])
            self._write_panels(batch)
            self._report(report, batch.errors, req.manual)
            self._finish()
            return
        if req.manual:
            progress(WRITING)
            self._window = ProgressWindow(self.mw, progress, on_cancel=lambda: None)
        op = TrackedCollectionOp(self.mw, lambda col: self._apply(col, batch, progress))
        op.success(lambda report: self._applied(report, batch, req, config)).failure(
            lambda err: self._after_failure(err, req.manual, generation)
        ).run_in_background(initiator=self)
        self._future = op.future

    def _settle(self, batch: _Batch, req: SyncRequest) -> bool:
        """The user's say, for a manual sync: the preview, the guard, kind changes.
        False means cancel: nothing is written."""
        if req.preview:
            dialog = PreviewDialog(self.mw, batch.plans, pin=self._pin)
            if not dialog.exec():
                return False
            left_out = dialog.left_out()
            for plan in batch.plans:
                plan.leave_out(left_out)
        for plan in batch.plans:
            if not plan.refused:
                continue
            if not (plan.orphans or plan.deletes):
                plan.skip_removals()  # the preview left every removal out
                continue
            answer = ask_about_removal(self.mw, plan)
            if answer == "cancel":
                return False
            if answer == "keep":
                plan.skip_removals()
            else:
                plan.refused = False
        if any(p.schema_changes for p in batch.plans) and not (
            req.manual and self.mw.confirm_schema_modification()
        ):
            for plan in batch.plans:
                plan.defer_kind_changes()
        return True

    def _hold_back(self, batch: _Batch) -> None:
        """A background sync the guard refused writes nothing at all, and says why."""
        report = sync.Report.merge(p.report() for p in batch.plans)
        report.warnings.append(
            "nothing was written: the removal guard held this background sync back; "
            "Tools > Roam Bridge > Sync now shows what it would remove and asks"
        )
        self._report(report, batch.errors, manual=False)
        tooltip("Roam Bridge: a sync was held back (your notes look incomplete); nothing was "
                "changed.<br>Tools > Roam Bridge > Sync now to review it", period=8000,
                parent=self.mw)
        self._finish()

    def _pin(self, note_ids: Sequence[int]) -> None:
        add_tags_to_notes(parent=self.mw, note_ids=[NoteId(n) for n in note_ids],
                          space_separated_tags=PINNED).run_in_background()

    def _cancelled(self) -> None:
        """The progress window was cancelled: the worker stops at its next step."""
        self._window = None
        tooltip("Roam Bridge: sync cancelled; nothing was changed", parent=self.mw)

    # Step 3: background, then main thread -----------------------------------------------

    def _apply(self, col: Collection, batch: _Batch, progress: SyncProgress) -> sync.Report:
        try:
            # The notes first, then the collection (see core/pipeline.py).
            pipeline.write_back(batch.planned, self.journal())
            if self.ledger is None:
                report = sync.apply_all(batch.plans, col, progress)
            else:
                with self.ledger.recording(col, batch.looked):
                    report = sync.apply_all(batch.plans, col, progress)
            batch.settle(col)
            self._write_panels(batch)
            skipped = batch.skipped_reports()
            if skipped:  # the sources skipped as unchanged count their notes too
                merged = sync.Report.merge([report, *skipped])
                merged.changes = report.changes
                report = merged
            return report
        finally:
            _free(batch.plans)  # freed on the worker thread
            batch.planned.clear()
            batch.looked.clear()
            batch.cached.clear()

    def _applied(self, report: sync.Report, batch: _Batch, req: SyncRequest,
                 config: Config) -> None:
        self._close_window()
        self._remember_graph_names(batch)
        if req.poll:
            self._quiet_poll(batch)  # remember its problems, so the next poll says no more
        self._report(report, batch.errors, req.manual, quiet=req.poll)
        self._finish()
        if config.push_to_ankiweb and _wrote(report):
            self._push_to_ankiweb()

    def _remember_graph_names(self, batch: _Batch) -> None:
        """Sources synced without a graph name keep the one they were first synced under."""
        if not batch.graph_names:
            return
        raw = self.raw_config()
        for source in raw.get("sources", []):
            name = batch.graph_names.get(source.get("path", ""))
            if name and not source.get("graph"):
                source["graph"] = name
        with contextlib.suppress(ConfigError):
            self.write_config(raw)

    def _push_to_ankiweb(self) -> None:
        """Send the new cards on to AnkiWeb, as the Sync button does (after our op ends)."""
        if not self.mw.pm.sync_auth():
            self._note_in_report("push to AnkiWeb skipped: log in to AnkiWeb first "
                                 "(the Sync button)")
            return
        if self.mw.media_syncer.is_syncing():
            return  # Anki is syncing already; its next sync takes our changes along
        self.mw.progress.single_shot(100, self.mw.on_sync_button_clicked)

    # Reporting --------------------------------------------------------------------------

    def _quiet_poll(self, batch: _Batch) -> bool:
        """Whether a poll that wrote nothing goes unreported: nothing to say, or the same
        problem as the last poll's (Roam desktop closed, the network down)."""
        problem = "; ".join(batch.errors)
        repeated = problem == self._last_poll_problem
        self._last_poll_problem = problem
        report = batch.report
        quiet = report is None or not (report.warnings or report.created or report.updated
                                       or report.orphaned)
        return quiet and (not problem or repeated)

    def _report(self, report: sync.Report, errors: list[str], manual: bool,
                quiet: bool = False) -> None:
        report.errors.extend(errors)
        summary = report_dict(report, manual)
        self.last_report = summary
        self._save_report(summary)
        for listener in self.on_report:
            listener(summary)
        problems = len(report.warnings) + len(report.errors)
        if not (manual or _wrote(report) or problems) or (quiet and not problems):
            return  # a background sync that found nothing to do says nothing; nor a poll
        if report.refused:
            return  # _hold_back says it
        text = (f"Roam Bridge: {report.created} new, {report.updated} updated, "
                f"{report.orphaned} orphaned")
        if problems:
            text += f"<br>{problems} problem(s): see Tools > Roam Bridge > Last sync report"
        tooltip(text, period=6000 if problems else 3000, parent=self.mw)

    def _note_in_report(self, warning: str) -> None:
        if self.last_report is not None:
            self.last_report.setdefault("warnings", []).append(warning)
            self._save_report(self.last_report)

    def _fail(self, message: str, manual: bool) -> None:
        report = sync.Report(errors=[message])
        self._report(report, [], manual)
        if manual:
            showWarning(f"Roam Bridge could not sync:\n\n{message}", parent=self.mw)

    def _after_failure(self, err: Exception, manual: bool, generation: int) -> None:
        self._close_window()
        if generation == self.generation:
            self._fail(f"{type(err).__name__}: {err}", manual)
        self._finish()

    def _close_window(self) -> None:
        if self._window is not None:
            self._window.finish()
            self._window = None

    def _finish(self) -> None:
        self._close_window()
        self.running = False
        self._future = None
        if self.queued is not None and self.mw.col is not None and not self.closing:
            queued, self.queued = self.queued, None
            self.start(queued)

    # Persistence ------------------------------------------------------------------------

    def _report_path(self) -> Path:
        return self.profile.folder() / "last_report.json"

    def _save_report(self, summary: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # the report still shows for this session
            self._report_path().write_text(json.dumps(summary, indent=1), encoding="utf-8")

    def _load_report(self) -> dict[str, Any] | None:
        try:
            return json.loads(self._report_path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None


def _free(plans: list[sync.SyncPlan]) -> None:
    """Let go of the plans a little at a time (a 10k-note plan is a few hundred thousand
    objects: freed in one go, they would hold the GIL, and so Anki's UI, for ~100 ms)."""
    for plan in plans:
        for held in (plan.rendered, plan.guids, plan.new_media, plan.creates, plan.updates,
                     plan.orphans, plan.specs):
            drop_gradually(held)
    plans.clear()


def _graph_name(source: SourceConfig) -> str:
    try:
        return source.graph or default_graph_name(source.path, source.kind)
    except (OSError, ValueError, SourceError):
        return ""


def _wrote(report: sync.Report) -> bool:
    return bool(report.created or report.updated or report.orphaned or report.deleted)


def report_dict(report: sync.Report, manual: bool) -> dict[str, Any]:
    """The report as plain data, as the report dialog shows it and the profile's folder keeps it."""
    return {
        **report.counts(),
        "anki_edits": [{"key": e.key, "note_id": e.note_id, "conflict": e.conflict,
                        "fields": {n: list(e.fields[n]) for n in e.outstanding},
                        "problem": report.write_back_problems.get(e.key, "")}
                       for e in report.anki_edits],
        "written": [asdict(e) for e in report.written],
        "created_ids": report.created_ids,
        "updated_ids": report.updated_ids,
        "orphaned_ids": report.orphaned_ids,
        "manual": manual,
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }

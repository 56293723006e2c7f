"""How a sync runs inside Anki: one at a time, off the main thread, one undo step.

1. Read and plan every configured source in a QueryOp (background thread).
2. Back on the main thread, settle what needs the user: the mass-orphan guard and basic <->
   cloze changes (a schema change). A manual sync asks; a background sync never does: it
   skips the removals and defers the kind changes, and says so in the report.
3. Apply all plans in one CollectionOp: Edit > Undo reverts the whole sync.

A trigger that arrives while a sync runs queues a single rerun. A profile switch or close
bumps a generation counter, so results of a sync started under the old profile are dropped.
Background syncs are quiet: a tooltip and the report, never a modal dialog.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anki.collection import Collection
from aqt.main import AnkiQt
from aqt.operations import CollectionOp, QueryOp
from aqt.utils import askUser, showWarning, tooltip

from ..core import sync
from ..core.config import Config, ConfigError, SyncOptions, load_config
from ..core.context import panel_index
from ..core.model import Graph, SourceError, gc_paused
from ..core.sources.detect import ReadOptions, read_source
from ..core.writeback import write_ids
from .context_panel import PanelIndex


@dataclass
class _Batch:
    """What the background step hands the main thread."""

    plans: list[sync.SyncPlan] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # Reviewer panel indexes to write once the sync is applied, by key prefix.
    panels: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Set when planning found nothing to write: the main thread only reports it.
    report: sync.Report | None = None
    cancelled: bool = False


def _run_tracked(
    op: QueryOp | CollectionOp, mw: AnkiQt, task: Callable[[], Any],
    on_done: Callable[[Future], None], label: str | None,
) -> None:
    """Run ``task`` on the collection thread as the op would, keeping its Future (so that a
    profile close can wait for it); with a progress window unless ``label`` is None."""
    if label is not None:
        mw.progress.start(label=label or None, parent=op._parent)
        done = on_done

        def on_done(future: Future) -> None:
            mw.progress.finish()
            done(future)

    op.future = mw.taskman.run_in_background(task, on_done, uses_collection=True)


class TrackedQueryOp(QueryOp):
    future: Future | None = None

    def _run(self, mw: AnkiQt, op: Callable[[], Any], on_done: Callable[[Future], None]) -> None:
        label = self._progress if isinstance(self._progress, str) else ""
        _run_tracked(self, mw, op, on_done, label if self._progress else None)


class TrackedCollectionOp(CollectionOp):
    """A CollectionOp (one undo entry, commit, UI refresh) that keeps its Future; a quiet
    one, for background syncs, shows no progress window."""

    future: Future | None = None
    quiet = False

    def _run(self, mw: AnkiQt, op: Callable[[], Any], on_done: Callable[[Future], None]) -> None:
        _run_tracked(self, mw, op, on_done, None if self.quiet else "")


class SyncController:
    def __init__(self, mw: AnkiQt, addon: str) -> None:
        self.mw = mw
        self.addon = addon
        self.running = False
        self.closing = False
        self.queued: bool | None = None  # the queued rerun's "manual", if any
        self.generation = 0
        # The step of ours queued or running on the collection thread, if any.
        self._future: Future | None = None
        self.last_report: dict[str, Any] | None = self._load_report()
        self.on_report: list[Callable[[dict[str, Any]], None]] = []
        self.panels: PanelIndex | None = None

    # Config ---------------------------------------------------------------------------

    def config(self) -> Config:
        return load_config(self.mw.addonManager.getConfig(self.addon) or {})

    def raw_config(self) -> dict[str, Any]:
        return dict(self.mw.addonManager.getConfig(self.addon) or {})

    def write_config(self, raw: dict[str, Any]) -> None:
        load_config(raw)  # raises ConfigError before anything is written
        self.mw.addonManager.writeConfig(self.addon, raw)

    # Profile lifecycle ------------------------------------------------------------------

    def profile_opened(self) -> None:
        self.closing = False
        self.generation += 1

    def profile_closing(self, timeout: float = 120.0) -> None:
        """Start nothing new, drop what has not started, and let a running step finish
        (callbacks included) before Anki closes the collection: a sync is never cut in half,
        and nothing of ours touches the collection after it closed."""
        self.closing = True
        self.generation += 1
        self.queued = None
        future, self._future = self._future, None
        if future is not None:
            wait([future], timeout)
            # Its completion callbacks are queued for the main thread: run them now, while
            # the collection is still open (the same call taskman makes before each op).
            self.mw.taskman._on_closures_pending()

    # Triggers ---------------------------------------------------------------------------

    def request(self, manual: bool) -> None:
        """Start a sync, or queue one rerun if a sync is running (a manual one wins)."""
        if self.mw.col is None or self.closing:
            return
        if self.running:
            self.queued = bool(self.queued) or manual
            return
        try:
            config = self.config()
        except ConfigError as err:
            self._fail(f"settings: {err}", manual)
            return
        if not config.sources:
            if manual:
                showWarning("Roam Bridge has no sources yet: add one in Tools > Roam Bridge > "
                            "Settings…", parent=self.mw)
            return
        self.running = True
        generation = self.generation
        op = TrackedQueryOp(
            parent=self.mw,
            op=lambda col: self._plan_all(col, config, manual, generation),
            success=lambda batch: self._planned(batch, manual, generation),
        ).failure(lambda err: self._after_failure(err, manual, generation))
        if manual:
            op.with_progress("Roam Bridge: reading your notes…")
        op.run_in_background()
        self._future = op.future

    # Step 1: background -----------------------------------------------------------------

    def _plan_all(self, col: Collection, config: Config, manual: bool, generation: int
                  ) -> _Batch:
        batch = _Batch()
        if generation != self.generation or col is None:
            batch.cancelled = True
            return batch
        graphs: list[Graph] = []
        try:
            with gc_paused():
                self._plan_sources(col, config, manual, batch, graphs)
        finally:
            # Free the graphs here, on the worker thread, not later on the UI's.
            for graph in graphs:
                graph.release()
        batch.cancelled = batch.cancelled or (manual and self.mw.progress.want_cancel())
        if not batch.cancelled and not any(
            p.has_changes or p.refused or p.kind_changes for p in batch.plans
        ):
            batch.report = sync.Report.merge(p.report() for p in batch.plans)
            self._write_panels(batch)
            batch.plans.clear()
        return batch

    def _plan_sources(
        self, col: Collection, config: Config, manual: bool, batch: _Batch, graphs: list[Graph]
    ) -> None:
        for source in config.sources:
            if manual and self.mw.progress.want_cancel():
                batch.cancelled = True
                return
            try:
                graph = read_source(source.path, source.graph, source.kind, ReadOptions(
                    include=source.include, exclude=source.exclude,
                    api_token=config.roam_api_token, api_base_url=config.roam_api_base_url,
                ))
                notices = write_ids(graph, config.cards.card_tags) if source.write_ids else []
            except SourceError as err:
                batch.errors.append(str(err))
                continue
            graphs.append(graph)
            prefix = f"{graph.source}:{graph.name}:"
            if any(p.prefix == prefix for p in batch.plans):
                batch.errors.append(f"{source.path}: graph {graph.name!r} is already synced "
                                    "from another source; give each source its own graph")
                continue
            options = SyncOptions(cards=config.cards, deck=source.deck,
                                  on_removed=config.on_removed,
                                  download_images=config.download_images)
            plan = sync.plan(graph, col, options)
            plan.warnings.extend(notices)
            batch.plans.append(plan)
            if self.panels is not None:
                previous = self.panels.read(prefix)
                index = panel_index(plan.specs, previous, config.show_nearby)
                if index != previous:
                    batch.panels[prefix] = index

    def _write_panels(self, batch: _Batch) -> None:
        if self.panels is not None:
            for prefix, index in batch.panels.items():
                self.panels.write(prefix, index)
        batch.panels.clear()

    # Step 2: main thread ----------------------------------------------------------------

    def _planned(self, batch: _Batch, manual: bool, generation: int) -> None:
        if generation != self.generation or self.mw.col is None or batch.cancelled:
            if batch.cancelled and generation == self.generation:
                tooltip("Roam Bridge: sync cancelled; nothing was changed", parent=self.mw)
            self._finish()
            return
        if batch.report is not None:
            self._report(batch.report, batch.errors, manual)
            self._finish()
            return
        for plan in batch.plans:
            if plan.refused and not (manual and self._confirm_removal(plan)):
                plan.skip_removals()
            elif plan.refused:
                plan.refused = False
        if any(p.kind_changes for p in batch.plans) and not (
            manual and self.mw.confirm_schema_modification()
        ):
            for plan in batch.plans:
                plan.defer_kind_changes()
        op = TrackedCollectionOp(self.mw, lambda col: self._apply(col, batch))
        op.quiet = not manual
        op.success(lambda report: self._applied(report, batch.errors, manual)).failure(
            lambda err: self._after_failure(err, manual, generation)
        ).run_in_background(initiator=self)
        self._future = op.future

    def _confirm_removal(self, plan: sync.SyncPlan) -> bool:
        removed = len(plan.orphans) + len(plan.deletes)
        return askUser(
            f"This sync would remove {removed} of the {plan.managed_before} cards that came "
            f"from {plan.prefix.rstrip(':')}. That usually means the export is incomplete.\n\n"
            "Remove them anyway? (No syncs everything else and leaves them alone.)",
            parent=self.mw, defaultno=True,
        )

    # Step 3: background, then main thread -----------------------------------------------

    def _apply(self, col: Collection, batch: _Batch) -> sync.Report:
        try:
            report = sync.apply_all(batch.plans, col)
            self._write_panels(batch)
            return report
        finally:
            batch.plans.clear()  # freed on the worker thread

    def _applied(self, report: sync.Report, errors: list[str], manual: bool) -> None:
        self._report(report, errors, manual)
        self._finish()

    # Reporting --------------------------------------------------------------------------

    def _report(self, report: sync.Report, errors: list[str], manual: bool) -> None:
        report.errors.extend(errors)
        summary = report_dict(report, manual)
        self.last_report = summary
        self._save_report(summary)
        for listener in self.on_report:
            listener(summary)
        problems = len(report.warnings) + len(report.errors)
        changed = report.created + report.updated + report.orphaned + report.deleted
        if not (manual or changed or problems):
            return  # a background sync that found nothing to do says nothing
        text = (f"Roam Bridge: {report.created} new, {report.updated} updated, "
                f"{report.orphaned} orphaned")
        if problems:
            text += f"<br>{problems} problem(s): see Tools > Roam Bridge > Last sync report"
        tooltip(text, period=6000 if problems else 3000, parent=self.mw)

    def _fail(self, message: str, manual: bool) -> None:
        report = sync.Report(errors=[message])
        self._report(report, [], manual)
        if manual:
            showWarning(f"Roam Bridge could not sync:\n\n{message}", parent=self.mw)

    def _after_failure(self, err: Exception, manual: bool, generation: int) -> None:
        if generation == self.generation:
            self._fail(f"{type(err).__name__}: {err}", manual)
        self._finish()

    def _finish(self) -> None:
        self.running = False
        self._future = None
        if self.queued is not None and self.mw.col is not None and not self.closing:
            manual, self.queued = self.queued, None
            self.request(manual)

    # Persistence ------------------------------------------------------------------------

    def _report_path(self) -> Path:
        folder = Path(self.mw.addonManager.addonsFolder(self.addon)) / "user_files"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / "last_report.json"

    def _save_report(self, summary: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # the report still shows for this session
            self._report_path().write_text(json.dumps(summary, indent=1), encoding="utf-8")

    def _load_report(self) -> dict[str, Any] | None:
        try:
            return json.loads(self._report_path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None


def report_dict(report: sync.Report, manual: bool) -> dict[str, Any]:
    """The report as plain data, as the report dialog shows it and user_files keeps it."""
    return {
        **report.counts(),
        "created_ids": report.created_ids,
        "updated_ids": report.updated_ids,
        "orphaned_ids": report.orphaned_ids,
        "manual": manual,
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }

"""The few places where the add-on needs more of Anki desktop than its public API offers.

Each piece here wraps one private part of aqt, says why no public one serves, and is pinned by
tests/test_anki_compat.py, so an Anki release that changes it fails a test instead of a
user's sync. (The engine's own list is core/anki_compat.py.)
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from aqt.main import AnkiQt
from aqt.operations import CollectionOp, QueryOp


def _run_tracked(op: TrackedQueryOp | TrackedCollectionOp, mw: AnkiQt,
                 task: Callable[[], Any], on_done: Callable[[Future], None]) -> None:
    """Run ``task`` on the collection thread as the op would, keeping its Future (so that a
    profile close can wait for it). Our own window shows the progress, never Anki's."""
    op.future = mw.taskman.run_in_background(task, on_done, uses_collection=True)


class TrackedQueryOp(QueryOp):
    """A QueryOp that keeps its Future. The ops hand their task to ``taskman`` inside the
    private ``_run`` and keep no handle on it; a profile close must wait for a sync's step."""

    future: Future | None = None

    def _run(self, mw: AnkiQt, op: Callable[[], Any], on_done: Callable[[Future], None]) -> None:
        _run_tracked(self, mw, op, on_done)


class TrackedCollectionOp(CollectionOp):
    """A CollectionOp (one undo entry, commit, UI refresh) that keeps its Future."""

    future: Future | None = None

    def _run(self, mw: AnkiQt, op: Callable[[], Any], on_done: Callable[[Future], None]) -> None:
        _run_tracked(self, mw, op, on_done)


def run_pending_callbacks(mw: AnkiQt) -> None:
    """Run the completion callbacks queued for the main thread now (taskman runs them before
    its next op, and a closing profile has none to come): the call taskman itself makes."""
    mw.taskman._on_closures_pending()

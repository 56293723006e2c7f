"""How far a sync has got, and a way to stop it while stopping is safe (no Qt).

A front door passes ``plan`` and ``apply_all`` a Progress: a callable
``progress(phase, done, total)`` that the engine calls at each phase and every few items of a
long one (``total`` 0: the count is not known). To cancel, the callable raises Cancelled.
Reading and planning only read, so they may stop at any call. Writing never stops half-way:
``apply_all`` reports through ``report_only``, which swallows Cancelled, so a sync that has
begun to write ends whole.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

READING = "reading"
PLANNING = "planning"
IMAGES = "downloading images"
RENDERING = "rendering"
WRITING = "writing"

Progress = Callable[[str, int, int], None]
T = TypeVar("T")
# Items between two calls in a long loop: often enough for a prompt cancel, rarely enough
# to cost nothing.
EVERY = 200


class Cancelled(Exception):
    """The user cancelled the sync before anything was written."""


def silent(phase: str, done: int = 0, total: int = 0) -> None:
    """A Progress that shows nothing and never cancels (the CLI, background syncs)."""


def ticking(items: Iterable[T], progress: Progress, phase: str, total: int) -> Iterator[T]:
    """Yield ``items``, calling ``progress(phase, done, total)`` every EVERY items."""
    progress(phase, 0, total)
    for done, item in enumerate(items):
        if done and done % EVERY == 0:
            progress(phase, done, total)
        yield item


def report_only(progress: Progress) -> Progress:
    """``progress`` that can no longer cancel: for the steps that write."""

    def call(phase: str, done: int = 0, total: int = 0) -> None:
        with contextlib.suppress(Cancelled):
            progress(phase, done, total)

    return call

"""When the bridge last wrote notes, so that an edit made in Anki right after is not missed.

A note remembers when the bridge wrote it (``written`` in its state, the second its run began).
Anki stamps its own modification time at the moment of the write, which in a long run comes
seconds later. So the collection's config (``roamBridgeRuns``) keeps the start and end of the
bridge's recent runs: a note written by one of them was edited since exactly when Anki's time
is past that run's end. For a note written by a run no longer kept (or on a device whose runs
this one has not seen) a slack of a few seconds stands in for the end.

The record is an undoable config change, part of the run's own undo step, and it syncs
between devices with the rest of the config.
"""

from __future__ import annotations

from anki.collection import Collection

CONFIG_KEY = "roamBridgeRuns"
KEPT = 64  # the newest runs remembered
# Seconds between the time a run stamps on its notes and Anki's own modification time for
# them, when the run's end is not known.
SLACK = 2


def ends(col: Collection) -> dict[int, int]:
    """Start -> end of the runs remembered."""
    raw = col.get_config(CONFIG_KEY, []) or []
    found: dict[int, int] = {}
    if isinstance(raw, list):
        for pair in raw:
            if (isinstance(pair, list) and len(pair) == 2
                    and all(isinstance(t, int) and not isinstance(t, bool) for t in pair)):
                found[pair[0]] = pair[1]
    return found


def record(col: Collection, started: int, ended: int) -> None:
    """Remember one run (an undoable config change: it joins the run's undo step)."""
    runs = sorted({**ends(col), started: ended}.items())[-KEPT:]
    col.set_config(CONFIG_KEY, [list(pair) for pair in runs], undoable=True)


def edited_since(mod: int, written: int, known: dict[int, int]) -> bool:
    """Whether a note whose Anki time is ``mod`` changed after the bridge wrote it at
    ``written`` (0: written before the bridge kept the time; unknown, so no)."""
    if not written:
        return False
    end = known.get(written)
    return mod > end if end is not None else mod > written + SLACK

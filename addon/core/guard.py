"""The mass-removal guard: a run that would take away most of a graph's cards is refused.

An incomplete export (a failed download, the wrong file, an empty folder) looks exactly like
a graph whose blocks were deleted. So a run may not remove more than half of a graph's live
notes, nor leave it with fewer than half of the live notes it had at its *mark*, nor with
none, unless it is forced (CLI ``--force``, or the user confirmed in Anki).

The mark is the number of live notes after the last confirmed run, raised by every later run
that ends with more; runs that remove notes never lower it. Removals in slices therefore add
up: two exports in a row that each drop 49% are caught on the second. The marks live in the
collection's config (a few bytes per graph), so they sync to every device and undo with the
sync; a collection without a mark starts from the live notes it has.
"""

from __future__ import annotations

from anki.collection import Collection

CONFIG_KEY = "roamBridgeGuard"


def mark(col: Collection, prefix: str, live_now: int) -> int:
    marks = col.get_config(CONFIG_KEY, {}) or {}
    value = marks.get(prefix) if isinstance(marks, dict) else None
    return max(value, live_now) if isinstance(value, int) else live_now


def refusal(prefix: str, removed: int, live_before: int, live_after: int, marked: int
            ) -> str | None:
    """Why this run is refused, or None. ``removed`` counts notes newly orphaned or deleted."""
    if not removed:
        return None
    graph = prefix.rstrip(":")
    if live_after == 0:
        return (f"refused: this run would remove all {removed} remaining notes of {graph}; "
                "check the source, or force the run")
    if removed * 2 > live_before:
        return (f"refused: this run would remove {removed} of the {live_before} notes of "
                f"{graph}; check the source, or force the run")
    if live_after * 2 < marked:
        return (f"refused: this run would remove {removed} of {live_before} notes of {graph}, "
                f"leaving {live_after} of the {marked} it had when last confirmed; check the "
                "source, or force the run")
    return None


def new_mark(marked: int, live_after: int, confirmed: bool) -> int:
    return live_after if confirmed else max(marked, live_after)


def store(col: Collection, prefix: str, value: int) -> None:
    """Write the graph's mark (an undoable config change, so it joins the sync's step);
    nothing is written when it is unchanged."""
    marks = col.get_config(CONFIG_KEY, {}) or {}
    if not isinstance(marks, dict):
        marks = {}
    if marks.get(prefix) == value:
        return
    col.set_config(CONFIG_KEY, {**marks, prefix: value}, undoable=True)


def rename(col: Collection, old_prefix: str, new_prefix: str) -> None:
    marks = col.get_config(CONFIG_KEY, {}) or {}
    if isinstance(marks, dict) and old_prefix in marks:
        marks = dict(marks)
        marks[new_prefix] = marks.pop(old_prefix)
        col.set_config(CONFIG_KEY, marks, undoable=True)

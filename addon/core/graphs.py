"""A graph keeps its identity: its name is part of every key, so it changes only by re-keying.

- ``wrong_name`` spots a run whose blocks already have notes under another graph name (a
  renamed graph in Settings, a typo in ``--graph``, an export saved as ``my-graph (1).json``):
  block uids are unique in Roam, and so are the text keys of blocks without ids, so the run
  is refused with a line naming the graph the notes belong to, before anything is written.
- ``rename`` re-keys a graph's notes from one name to another in one undoable step, keeping
  their ids, GUIDs, cards and history.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from anki.collection import Collection, OpChanges
from anki.models import NotetypeDict

from . import guard, notetypes, writing
from .anki_compat import current_notetype, db
from .cards import Kind
from .fields import SOURCE_ID
from .model import SourceError, graph_name, is_synthetic
from .owned import keys_of_source, load_fields, read

RENAME_UNDO = "Roam Bridge: rename graph"


class GraphMismatch(SourceError):
    """The blocks of this run already have notes under another graph name."""

    def __init__(self, source: str, found: str, given: str) -> None:
        super().__init__(
            source,
            f"these blocks are already synced as graph {found!r}, not {given!r}; sync with "
            f"--graph {found!r} (in Anki: set the source's graph name to {found!r}), or "
            f"rename the graph first (rename-graph {found!r} {given!r})",
        )
        self.found = found
        self.given = given


def wrong_name(
    col: Collection, types: Mapping[Kind, Iterable[NotetypeDict]], source: str, name: str,
    new_uids: Iterable[str],
) -> str | None:
    """The other graph name under which blocks this run would create already have notes, if
    that is what they show: any block with a real uid, or most blocks without one."""
    uids = list(new_uids)
    if not uids:
        return None
    wanted = set(uids)
    hits: Counter[str] = Counter()
    real: Counter[str] = Counter()
    for key in keys_of_source(col, types, source):
        _, graph, uid = key.split(":", 2)
        if graph != name and uid in wanted:
            hits[graph] += 1
            if not is_synthetic(uid):
                real[graph] += 1
    if real:
        return real.most_common(1)[0][0]
    if hits:
        graph, count = hits.most_common(1)[0]
        if count * 2 > len(uids):
            return graph
    return None


@dataclass
class Renamed:
    count: int = 0
    # What the collection saw, for Anki's UI to refresh from.
    changes: OpChanges = field(default_factory=OpChanges, repr=False)


def rename(col: Collection, source: str, old: str, new: str) -> Renamed:
    """Re-key every note of graph ``old`` (of this source kind) to ``new``.

    Raises ValueError, writing nothing, when ``new`` is not a valid name or already has notes
    (that would merge two graphs). The next sync refreshes the notes' links.
    """
    old, new = graph_name(old), graph_name(new)
    old_prefix, new_prefix = f"{source}:{old}:", f"{source}:{new}:"
    types = {kind: [nt] for kind, nt in notetypes.find(col).items()}
    for kind, extra in notetypes.copies(col).items():
        types.setdefault(kind, []).extend(extra)
    if old == new:
        return Renamed()
    if read(col, types, new_prefix).by_key:
        raise ValueError(f"graph {new!r} already has notes in this collection")
    notes = list(read(col, types, old_prefix).all())
    if not notes:
        return Renamed()
    load_fields(col, notes)
    blanks = writing.blank_notes(col, {n.notetype_id: current_notetype(col, n.notetype_id)
                                       for n in notes})
    changed = [
        writing.note_like(blanks[n.notetype_id],
                          {**n.fields, SOURCE_ID: new_prefix + n.key[len(old_prefix):]},
                          n.tags, n.guid, n.id)
        for n in notes
    ]
    result = Renamed(count=len(changed))

    def write() -> None:
        steps = writing.Steps(col, RENAME_UNDO)
        writing.update_notes(col, changed, steps)
        guard.rename(col, old_prefix, new_prefix)
        result.changes = steps.fold()

    db(col).transact(write)
    return result


def names_in(col: Collection, source: str) -> Counter[str]:
    """How many notes each graph of this source kind has."""
    types = {kind: [nt] for kind, nt in notetypes.find(col).items()}
    return Counter(key.split(":", 2)[1] for key in keys_of_source(col, types, source))

"""The batched writes of a sync, each followed by a fold into the sync's one undo step.

Anki keeps 30 undo steps; a sync of many notes makes more calls than that. Folding each call
into the sync's own step (``Steps.fold``) as soon as it returns keeps the history at one step
however large the sync, so the step is never pushed out and Edit > Undo reverts it whole.

Nothing here decides what to write: sync.py's plan does. Every write is a batched collection
call (never one per note), and notes are built from what planning already read.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from anki.cards import CardId
from anki.collection import Collection
from anki.decks import DeckId
from anki.models import NotetypeDict, NotetypeId
from anki.notes import Note, NoteId
from anki.utils import ids2str

from . import identity
from .anki_compat import add_deck_with_id, db
from .cards import Kind

# Notes per add_notes / update_notes call. One call for 10k notes serialises ~11 MB of
# protobuf while holding the GIL (~60 ms), long enough to stutter Anki's UI during a
# background sync; a few calls of this size cost nothing measurable.
WRITE_BATCH = 2000


class Steps:
    """Folds every write into one custom undo step."""

    def __init__(self, col: Collection, name: str) -> None:
        self.col = col
        self.entry = col.add_custom_undo_entry(name)

    def fold(self) -> Any:
        return self.col.merge_undo_entries(self.entry)


class Decks:
    """Deck name -> id. A deck the bridge creates gets the id identity.py derives from its
    name, so devices that create it before they sync get one deck, not "Roam" and "Roam+".
    Creating one has no undo step of its own, so all are created before the sync's step."""

    def __init__(self, col: Collection) -> None:
        self.col = col
        self._ids: dict[str, DeckId] = {}

    def ensure(self, names: Iterator[str] | Sequence[str]) -> None:
        for name in names:
            self.id(name)

    def id(self, name: str) -> DeckId:
        found = self._ids.get(name)
        if found is None:
            found = self._ids[name] = self._existing(name) or self._create(name)
        return found

    def _existing(self, name: str) -> DeckId | None:
        return self.col.decks.id(name, create=False) or None

    def _create(self, name: str) -> DeckId:
        parts = name.split("::")
        for depth in range(1, len(parts)):
            self.id("::".join(parts[:depth]))
        wanted = identity.free_ids([identity.deck_id(name)],
                                   lambda i: self.col.decks.get(DeckId(i), default=False)
                                   is not None)
        add_deck_with_id(self.col, wanted[0], name)
        # Anki may have normalised the name; the deck is whatever the name now finds.
        return self._existing(name) or DeckId(wanted[0])


def blank_notes(col: Collection, types: Mapping[int, NotetypeDict]) -> dict[int, Note]:
    """One empty note per note type id, copied for each note written: col.new_note() is a
    backend round trip per note and gives nothing a copy does not."""
    return {ntid: col.new_note(nt) for ntid, nt in types.items()}


def note_like(blank: Note, fields: Mapping[str, str], tags: Sequence[str], guid: str,
              nid: NoteId | None = None) -> Note:
    note = copy.copy(blank)
    note.fields = list(blank.fields)
    for name, value in fields.items():
        if name in note:
            note[name] = value
    note.tags = list(tags)
    note.guid = guid
    if nid:
        note.id = nid
    return note


def update_notes(col: Collection, notes: Sequence[Note], steps: Steps) -> None:
    for batch in batches(notes):
        col.update_notes(batch)
        steps.fold()


def change_kinds(
    col: Collection, moves: Mapping[tuple[NotetypeId, Kind], list[NoteId]],
    types: Mapping[Kind, NotetypeDict],
    field_maps: Mapping[tuple[Kind, Kind], Mapping[str, str]],
    kinds_of: Mapping[NotetypeId, Kind],
    steps: Steps,
) -> None:
    """Change notes between our note types in place: ``moves`` maps (current note type id,
    new kind) to note ids. Note, card ids and scheduling stay."""
    for (old_ntid, new_kind), nids in moves.items():
        old_nt = col.models.get(old_ntid)
        assert old_nt is not None
        new_nt = types[new_kind]
        mapping = field_maps[(kinds_of[old_ntid], new_kind)]
        _change_notetype(col, old_nt, new_nt, nids, mapping)
        steps.fold()


def merge_note_types(col: Collection, copy_nt: NotetypeDict, into: NotetypeDict,
                     steps: Steps) -> None:
    """Move every note of a copy of our note type into ours (fields by name), then remove the
    copy. Both are schema changes: the next AnkiWeb sync is a full one."""
    nids = col.models.nids(copy_nt["id"])
    if nids:
        names = {f["name"]: f["name"] for f in copy_nt["flds"]}
        _change_notetype(col, copy_nt, into, nids, names)
        steps.fold()
    col.models.remove(copy_nt["id"])
    steps.fold()


def _change_notetype(col: Collection, old_nt: NotetypeDict, new_nt: NotetypeDict,
                     nids: Sequence[NoteId], mapping: Mapping[str, str]) -> None:
    request = col.models.change_notetype_info(
        old_notetype_id=old_nt["id"], new_notetype_id=new_nt["id"]
    ).input
    request.note_ids.extend(nids)
    old_names = [f["name"] for f in old_nt["flds"]]
    del request.new_fields[:]
    request.new_fields.extend(
        old_names.index(mapping[f["name"]])
        if f["name"] in mapping and mapping[f["name"]] in old_names else -1
        for f in new_nt["flds"]
    )
    col.models.change_notetype_of_notes(request)


def move_cards(col: Collection, by_deck: Mapping[DeckId, list[NoteId]], steps: Steps
               ) -> None:
    for did, nids in by_deck.items():
        cids = db(col).list(f"select id from cards where nid in {ids2str(nids)}")
        col.set_deck(cids, did)
        steps.fold()


def set_suspended(col: Collection, suspend: Sequence[CardId], unsuspend: Sequence[CardId],
                  steps: Steps) -> None:
    if suspend:
        col.sched.suspend_cards(suspend)
        steps.fold()
    if unsuspend:
        col.sched.unsuspend_cards(unsuspend)
        steps.fold()


def remove(col: Collection, note_ids: Sequence[NoteId], card_ids: Sequence[CardId],
           steps: Steps) -> None:
    if card_ids:
        col.remove_cards_and_orphaned_notes(card_ids)
        steps.fold()
    if note_ids:
        col.remove_notes(note_ids)
        steps.fold()


def batches(items: Sequence[Any], size: int = WRITE_BATCH) -> Iterator[Sequence[Any]]:
    """Consecutive slices of ``items``, at most ``size`` long."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def group(pairs: Iterator[tuple[Any, Any]]) -> dict[Any, list[Any]]:
    grouped: dict[Any, list[Any]] = defaultdict(list)
    for key, value in pairs:
        grouped[key].append(value)
    return grouped

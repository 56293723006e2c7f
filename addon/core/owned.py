"""What the bridge owns in a collection: its notes, read by key in a few queries.

The collection is the ledger: every note of ours carries its key in ``SourceID`` and what the
bridge remembers about it in its ``Source`` field (note_state.py). Reading never writes, and a
no-op sync reads only the key and the remembered source hash of each note, in SQL; the fields
are loaded (in one query) only for notes that may change.

More than one note can carry a key: AnkiWeb's sync merges by id, so copies made on two
devices by earlier versions, or a package imported twice, stay side by side. ``read`` keeps
them all, grouped by key, for healing.py to settle.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from anki.cards import CardId
from anki.collection import Collection
from anki.decks import DeckId
from anki.models import NotetypeDict, NotetypeId
from anki.notes import NoteId
from anki.utils import ids2str

from . import write_times
from .anki_compat import db
from .cards import HASH_LENGTH, Kind
from .fields import SOURCE, SOURCE_ID
from .identity import stored_text
from .note_state import STATE_HASH_MARK, WRITTEN_LENGTH, NoteState, split_stamp

ORPHAN_TAG = "roam::orphaned"


class ExistingNote:
    """A managed note as read from the collection. ``fields`` is empty until loaded."""

    def __init__(
        self, nid: NoteId, guid: str, kind: Kind, notetype_id: NotetypeId, key: str, tags: str,
        stamp: str, names: list[str], mod: int = 0, runs: dict[int, int] | None = None,
    ) -> None:
        self.id, self.guid, self.kind, self.notetype_id, self.key = (
            nid, guid, kind, notetype_id, key
        )
        self.tags = tags.split()
        self.source_hash, self.written = split_stamp(stamp)
        self.names = names
        self.mod = mod
        self._runs = runs or {}
        self.fields: dict[str, str] = {}

    @property
    def touched(self) -> bool:
        """Modified after the bridge last wrote it (fields, tags, note type; a review is
        not a modification of the note), here or on a device it synced from. Unknown for a
        note written before the bridge kept the time: False (see write_times.py)."""
        return write_times.edited_since(self.mod, self.written, self._runs)

    @cached_property
    def state(self) -> NoteState | None:
        return NoteState.from_field(self.fields.get(SOURCE, ""))

    @property
    def orphaned(self) -> bool:
        return has_tag(self.tags, ORPHAN_TAG)


@dataclass
class OwnedNotes:
    """Our notes under one key prefix: one per key, and the extra copies of any key."""

    by_key: dict[str, ExistingNote] = field(default_factory=dict)
    copies: dict[str, list[ExistingNote]] = field(default_factory=dict)

    def all(self) -> Iterator[ExistingNote]:
        """Every note, copies included."""
        for key, note in self.by_key.items():
            yield from self.copies.get(key, (note,))


def read(col: Collection, types: Mapping[Kind, Iterable[NotetypeDict]], prefix: str
         ) -> OwnedNotes:
    """Our notes whose key starts with ``prefix``: one query per note type, reading the key
    and the remembered hash in SQL rather than every field of every note. Of several notes
    with one key, the first (lowest id) is in ``by_key`` and all are in ``copies``."""
    found: dict[str, list[ExistingNote]] = defaultdict(list)
    runs = write_times.ends(col)
    for kind, nts in types.items():
        for nt in nts:
            for note in _read_type(col, kind, nt, prefix, runs):
                found[note.key].append(note)
    owned = OwnedNotes()
    for key, notes in found.items():
        notes.sort(key=lambda n: n.id)
        owned.by_key[key] = notes[0]
        if len(notes) > 1:
            owned.copies[key] = notes
    return owned


def _read_type(col: Collection, kind: Kind, nt: NotetypeDict, prefix: str,
               runs: dict[int, int]) -> list[ExistingNote]:
    names = [f["name"] for f in nt["flds"]]
    key_at, source_at = names.index(SOURCE_ID), names.index(SOURCE)
    rows = db(col).all(
        "select id, guid, tags, key, mod, substr(src, instr(src, ?) + ?, ?) from"
        f" (select id, guid, tags, mod, field_at_index(flds, {key_at}) as key,"
        f" field_at_index(flds, {source_at}) as src from notes where mid = ?)"
        " where substr(key, 1, ?) = ?",
        STATE_HASH_MARK, len(STATE_HASH_MARK), HASH_LENGTH + WRITTEN_LENGTH, nt["id"],
        len(prefix), prefix,
    )
    return [ExistingNote(nid, guid, kind, nt["id"], stored_text(key), tags, stamp, names, mod,
                         runs) for nid, guid, tags, key, mod, stamp in rows]


def keys_of_source(col: Collection, types: Mapping[Kind, Iterable[NotetypeDict]],
                   source: str) -> list[str]:
    """Every key of ours that starts ``<source>:`` (any graph)."""
    keys: list[str] = []
    start = f"{source}:"
    for nts in types.values():
        for nt in nts:
            names = [f["name"] for f in nt["flds"]]
            key_at = names.index(SOURCE_ID)
            keys.extend(stored_text(k) for k in db(col).list(
                f"select k from (select field_at_index(flds, {key_at}) as k from notes"
                " where mid = ?) where substr(k, 1, ?) = ?", nt["id"], len(start), start,
            ))
    return keys


def load_fields(col: Collection, notes: Iterable[ExistingNote]) -> None:
    by_id = {note.id: note for note in notes if not note.fields}
    if not by_id:
        return
    for nid, flds in db(col).all(f"select id, flds from notes where id in {ids2str(by_id)}"):
        note = by_id[nid]
        note.fields = dict(zip(note.names, flds.split("\x1f"), strict=False))


@dataclass(frozen=True)
class CardRow:
    id: CardId
    deck_id: DeckId
    queue: int
    ord: int
    type: int


def cards_of(col: Collection, nids: Iterable[int]) -> dict[int, list[CardRow]]:
    """The cards of these notes, by note id, in one query."""
    cards: dict[int, list[CardRow]] = defaultdict(list)
    ids = list(nids)
    if not ids:
        return cards
    for cid, nid, did, queue, ord_, type_ in db(col).all(
        f"select id, nid, did, queue, ord, type from cards where nid in {ids2str(ids)}"
    ):
        cards[nid].append(CardRow(cid, did, queue, ord_, type_))
    return cards


def has_tag(tags: Iterable[str], tag: str) -> bool:
    return any(t.lower() == tag for t in tags)

"""New notes and cards under ids every device agrees on, through Anki's package importer.

``col.add_notes`` always hands out fresh, time-based ids, so two devices that create the same
block's note get two notes, which AnkiWeb's sync (matching by id) keeps as duplicates. Anki's
package importer is the one public path that keeps the ids it is given. So the bridge builds a
small package of the notes to add, with the ids identity.py derives from their keys, and
imports it:

1. a scratch collection (a temporary file, never the user's) gets our note types under their
   real ids, and the notes with their tags, decks and the fields that decide which cards a
   note has; Anki generates their cards there, exactly as it would in the user's collection;
2. in the scratch file (plain SQLite on our own temporary file), notes and cards get the
   derived ids and the notes all their fields; it is zipped as a package;
3. the user's collection imports it with fixed options (no note or note type updates, no deck
   options); the import preferences Anki stores for its own Import dialog are put back.

Notes that already exist can go through the same route to gain cards (a new cloze number, a
reverse card): the importer matches them by GUID, leaves them as they are and adds only the
cards they lack, under derived ids. The import is one undoable step, so it joins the sync's
undo entry like every other write.
"""

from __future__ import annotations

import copy
import os
import sqlite3
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from anki.collection import (
    AddNoteRequest,
    Collection,
    ImportAnkiPackageOptions,
    ImportAnkiPackageRequest,
)
from anki.decks import DeckId
from anki.import_export_pb2 import ImportAnkiPackageUpdateCondition
from anki.models import NotetypeDict
from anki.utils import ids2str

from . import identity
from .anki_compat import IMPORT_PREFERENCE_KEYS, add_notetype_with_id, current_notetype, db
from .fields import CARD_ROLES, names_with

_NEVER = ImportAnkiPackageUpdateCondition.IMPORT_ANKI_PACKAGE_UPDATE_CONDITION_NEVER
_OPTIONS = ImportAnkiPackageOptions(
    merge_notetypes=False, update_notes=_NEVER, update_notetypes=_NEVER,
    # The cards are new either way; keeping the package's scheduling keeps the positions
    # the scratch collection gave them, which continue the user's own.
    with_scheduling=True, with_deck_configs=False,
)
# Notes per package (see add_with_stable_ids), and per add_notes call in a scratch
# collection (the GIL is held while a batch is serialised). Each import reads every note
# and card id of the user's collection, so a large addition goes in at most PACKAGES
# packages rather than in ever more of CHUNK notes.
CHUNK = 4000
PACKAGES = 4
_BATCH = 2000
# The fields our templates' card generation depends on (see notetypes.TEMPLATES).
_CARD_FIELDS = names_with(CARD_ROLES)
_MISSING = object()


@dataclass(frozen=True)
class NoteToAdd:
    """A note as it should be in the user's collection. ``existing_id`` is set for a note
    that exists already and only gains cards."""

    key: str
    guid: str
    notetype: NotetypeDict
    fields: Sequence[str]
    tags: Sequence[str]
    deck_id: DeckId
    existing_id: int | None = None


def add_with_stable_ids(col: Collection, notes: Sequence[NoteToAdd],
                        after_each: Callable[[], object] = lambda: None) -> dict[str, int]:
    """Add ``notes`` (and every card Anki generates for them) under derived ids; for notes
    with an ``existing_id``, only the cards they lack. Returns each added note's id by key.
    ``after_each`` runs after every undoable step (sync folds them into its own undo step).

    Large additions go in packages of ``CHUNK`` notes or more (at most ``PACKAGES``): a
    worker thread builds the next package while the user's collection imports the last (both
    run in Anki's backend or SQLite, which release the GIL)."""
    if not notes:
        return {}
    size = max(CHUNK, -(-len(notes) // PACKAGES))
    builder = _Builder(col, notes, size)
    chunks = [notes[start : start + size] for start in range(0, len(notes), size)]
    types_before = len(col.models.all_names_and_ids())
    with (tempfile.TemporaryDirectory(prefix="roam-bridge-") as folder,
          ThreadPoolExecutor(max_workers=1, thread_name_prefix="roam-bridge-package") as pool,
          _import_preferences_kept(col)):
        packages = [pool.submit(builder.build, index, chunk, folder)
                    for index, chunk in enumerate(chunks)]
        for package in packages:
            path = package.result()
            col.import_anki_package(ImportAnkiPackageRequest(package_path=path,
                                                             options=_OPTIONS))
            after_each()
            os.unlink(path)
    if len(col.models.all_names_and_ids()) != types_before:
        # The importer found our note type changed under it; the sync's transaction is
        # rolled back rather than leave a "Roam Bridge Basic+" behind.
        raise RuntimeError("Anki's importer would copy a Roam Bridge note type")
    if builder.next_position > (col.get_config("nextPos", 1) or 1):
        col.set_config("nextPos", builder.next_position, undoable=True)
        after_each()
    return _added(col, notes, builder.note_ids)


class _Builder:
    """Builds the packages. Everything it needs from the user's collection is read when it is
    made, on the calling thread; ``build`` touches only its own scratch files."""

    def __init__(self, col: Collection, notes: Sequence[NoteToAdd], size: int) -> None:
        # Once per note type and deck, not per note: a note type is a deep structure, and
        # each name is a backend call.
        self.notetypes = {ntid: copy.deepcopy(current_notetype(col, ntid))
                          for ntid in {n.notetype["id"] for n in notes}}
        self.deck_names = {did: col.decks.name(did) for did in {n.deck_id for n in notes}}
        self.first_position = int(col.get_config("nextPos", 1) or 1)
        taken_notes = _derived_ids_in_use(col, "notes")
        self.note_ids = identity.free_ids(
            (n.existing_id or identity.note_id(n.key) for n in notes),
            lambda i: i in taken_notes,
        )
        self._taken_cards = _derived_ids_in_use(col, "cards")
        self._offsets = list(range(0, len(notes), size))
        self.next_position = self.first_position + len(notes)

    def build(self, index: int, notes: Sequence[NoteToAdd], folder: str) -> str:
        """Write package number ``index`` (chunks are built in order); returns its path."""
        offset = self._offsets[index]
        path = os.path.join(folder, f"scratch-{index}.anki2")
        scratch = Collection(path)
        try:
            scratch.set_config("nextPos", self.first_position + offset)
            scratch_ids = self._add_to_scratch(scratch, notes)
        finally:
            # Schema 11 is what Anki's importer reads from a package without a "meta" member.
            scratch.close(downgrade=True)
        self._rewrite_ids(path, notes, scratch_ids,
                          self.note_ids[offset : offset + len(notes)])
        package = os.path.join(folder, f"notes-{index}.apkg")
        with zipfile.ZipFile(package, "w", zipfile.ZIP_STORED) as archive:
            archive.write(path, "collection.anki21")
            archive.writestr("media", "{}")
        os.unlink(path)
        return package

    def _add_to_scratch(self, scratch: Collection, notes: Sequence[NoteToAdd]) -> list[int]:
        """Add the notes to the scratch collection; returns their scratch ids, in order."""
        blanks: dict[int, Any] = {}
        names: dict[int, list[str]] = {}
        decks: dict[DeckId, DeckId] = {}
        requests = []
        for note in notes:
            ntid = note.notetype["id"]
            if ntid not in blanks:
                # Exactly as the user's collection has it, or the importer would make a copy.
                add_notetype_with_id(scratch, copy.deepcopy(self.notetypes[ntid]))
                blanks[ntid] = scratch.new_note(current_notetype(scratch, ntid))
                names[ntid] = [f["name"] for f in self.notetypes[ntid]["flds"]]
            if note.deck_id not in decks:
                # The importer maps decks by name, to the user's decks of that name.
                decks[note.deck_id] = DeckId(
                    scratch.decks.id(self.deck_names[note.deck_id]) or 0)
            added = copy.copy(blanks[ntid])
            # Only what card generation reads (the rest is written in _rewrite_ids): the
            # context and source fields are the largest, and Anki would serialise them twice.
            added.fields = [value if name in _CARD_FIELDS else ""
                            for name, value in zip(names[ntid], note.fields, strict=True)]
            added.guid = note.guid
            added.tags = list(note.tags)
            requests.append(AddNoteRequest(added, decks[note.deck_id]))
        for start in range(0, len(requests), _BATCH):
            scratch.add_notes(requests[start : start + _BATCH])
        return [int(r.note.id) for r in requests]

    def _rewrite_ids(self, path: str, notes: Sequence[NoteToAdd], scratch_ids: list[int],
                     note_ids: list[int]) -> None:
        """Give the package's notes their derived ids and all their fields, and its cards
        their derived ids, moved past ids the user's collection or an earlier package uses."""
        db = sqlite3.connect(path)
        try:
            db.execute("pragma journal_mode = off")
            db.execute("pragma synchronous = off")
            key_of = {sid: note.key for sid, note in zip(scratch_ids, notes, strict=True)}
            cards = db.execute("select id, nid, ord from cards order by nid, ord").fetchall()
            card_ids = identity.free_ids(
                (identity.card_id(key_of[nid], ord_) for _, nid, ord_ in cards),
                lambda i: i in self._taken_cards,
            )
            self._taken_cards.update(card_ids)
            db.execute("create temp table note_ids (old integer primary key, new integer)")
            db.executemany("insert into note_ids values (?, ?)",
                           zip(scratch_ids, note_ids, strict=True))
            db.execute("create temp table card_ids (old integer primary key, new integer)")
            db.executemany("insert into card_ids values (?, ?)",
                           zip((cid for cid, _, _ in cards), card_ids, strict=True))
            db.execute("update cards set id = (select new from card_ids where old = cards.id),"
                       " nid = (select new from note_ids where old = cards.nid)")
            db.executemany("update notes set id = ?, flds = ? where id = ?", (
                (new, "\x1f".join(note.fields), old)
                for old, new, note in zip(scratch_ids, note_ids, notes, strict=True)
            ))
            db.commit()
        finally:
            db.close()


def _derived_ids_in_use(col: Collection, table: str) -> set[int]:
    """Ids in the derived window that the user's collection already has (only notes and
    cards the bridge made, or collisions: a range scan of the primary key)."""
    return set(db(col).list(
        f"select id from {table} where id >= ? and id < ?",
        identity.ID_FLOOR, identity.ID_FLOOR + identity.ID_SPAN,
    ))


@contextmanager
def _import_preferences_kept(col: Collection) -> Iterator[None]:
    """Anki's importer stores the options it was given as the defaults of the Import dialog;
    put the user's own back (in the same undoable way)."""
    before = {key: col.get_config(key, _MISSING) for key in IMPORT_PREFERENCE_KEYS}
    yield
    for key, value in before.items():
        if col.get_config(key, _MISSING) == value:
            continue
        if value is _MISSING:
            col.remove_config(key)
        else:
            col.set_config(key, value, undoable=True)


def _added(col: Collection, notes: Sequence[NoteToAdd], note_ids: list[int]) -> dict[str, int]:
    """Each added note's id by key. The importer keeps an id that is free, and the package's
    ids were chosen free, so the ids are the package's: checked by primary key (Anki keeps
    no index on GUIDs, which a lookup by GUID would scan the whole collection for)."""
    wanted = {nid: note for nid, note in zip(note_ids, notes, strict=True)
              if note.existing_id is None}
    found = {int(nid): guid for nid, guid in db(col).all(
        f"select id, guid from notes where id in {ids2str(wanted)}")}
    return {note.key: nid for nid, note in wanted.items() if found.get(nid) == note.guid}

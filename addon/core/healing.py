"""Settle copies: one note per block, one card per template, one note type per kind.

Copies arise when two devices make the same thing before they sync (earlier versions did not
derive ids, see identity.py), or when a package is imported twice. Every device settles them
by the same rules, so devices that heal independently agree:

- **Notes that share a key.** A copy with the user's work (any review: a revlog entry, or a
  card that is no longer new) is never deleted. Of copies without work, all but one go; the
  one kept is the copy with work if there is one, else the note with the key's derived id, else
  the oldest. Tags the user gave a deleted copy move to the kept note. When two or more copies
  hold reviews, all of them stay, tagged ``roam::duplicate`` and kept up to date, and each run
  reports them until the user deletes the one they do not want.
- **Cards that share a note and a template** (each device generated a new cloze's card): the
  same rules, card by card.
- **Copies of our note types** ("Roam Bridge Basic+"): their notes move into the one note type
  kept (``notetypes.copies``), and the copy is removed. Anki counts that as a schema change.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from anki.cards import CardId
from anki.collection import Collection
from anki.notes import NoteId
from anki.utils import ids2str

from . import identity
from .anki_compat import db
from .owned import ExistingNote, OwnedNotes, has_tag, load_fields

DUPLICATE_TAG = "roam::duplicate"


@dataclass
class Healing:
    """What settling copies does in one run."""

    # Extra copies kept because they hold reviews, by key (each is updated like the note).
    kept: dict[str, list[ExistingNote]] = field(default_factory=dict)
    # Notes and cards to delete: copies without the user's work.
    remove_notes: list[NoteId] = field(default_factory=list)
    remove_cards: list[CardId] = field(default_factory=list)
    # User tags of deleted copies, for the note that is kept, by its id.
    tags_for: dict[int, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return bool(self.remove_notes or self.remove_cards or self.tags_for)


def settle_notes(col: Collection, owned: OwnedNotes, healing: Healing) -> None:
    """Choose which copy of each key stays (``owned.by_key`` is updated to it)."""
    if not owned.copies:
        return
    load_fields(col, [n for ns in owned.copies.values() for n in ns])
    worked = _notes_with_work(col, [n.id for ns in owned.copies.values() for n in ns])
    for key, notes in owned.copies.items():
        with_work = [n for n in notes if n.id in worked]
        keep = _preferred(with_work or notes, identity.note_id(key))
        owned.by_key[key] = keep
        others = [n for n in with_work if n is not keep]
        if others:
            healing.kept[key] = others
            healing.warnings.append(
                f"{key}: {len(others) + 1} notes of this block hold reviews (note ids "
                f"{', '.join(str(n.id) for n in [keep, *others])}); all are kept, tagged "
                f"{DUPLICATE_TAG}: delete the one you do not want"
            )
        gone = [n for n in notes if n.id not in worked and n is not keep]
        healing.remove_notes.extend(n.id for n in gone)
        moved = _user_tags(gone, keep)
        if moved:
            healing.tags_for[keep.id] = moved


def settle_cards(col: Collection, notes: Sequence[ExistingNote], healing: Healing) -> None:
    """Delete second cards of one template of one note, keeping the user's work."""
    key_of = {n.id: n.key for n in notes}
    if not key_of:
        return
    groups: dict[tuple[NoteId, int], list[CardId]] = defaultdict(list)
    for nid, ord_, cid in db(col).all(
        "select nid, ord, id from cards where nid in (select nid from cards where nid in "
        f"{ids2str(key_of)} group by nid, ord having count() > 1) order by id"
    ):
        groups[(NoteId(nid), ord_)].append(CardId(cid))
    groups = {k: v for k, v in groups.items() if len(v) > 1}
    if not groups:
        return
    worked = _cards_with_work(col, [c for cids in groups.values() for c in cids])
    for (nid, ord_), cids in groups.items():
        with_work = [c for c in cids if c in worked]
        keep = _preferred_id(with_work or cids, identity.card_id(key_of[nid], ord_))
        healing.remove_cards.extend(c for c in cids if c not in worked and c != keep)
        if len(with_work) > 1:
            healing.warnings.append(
                f"{key_of[nid]}: card {ord_ + 1} exists {len(with_work)} times with reviews "
                f"(card ids {', '.join(map(str, with_work))}); all are kept"
            )


def _preferred(notes: Sequence[ExistingNote], derived: int) -> ExistingNote:
    return next((n for n in notes if n.id == derived), min(notes, key=lambda n: n.id))


def _preferred_id(ids: Sequence[int], derived: int) -> int:
    return derived if derived in ids else min(ids)


def _notes_with_work(col: Collection, nids: Iterable[int]) -> set[int]:
    ids = ids2str(nids)
    return set(db(col).list(
        f"select distinct nid from cards where nid in {ids} and (type != 0 or"
        f" id in (select cid from revlog where cid in (select id from cards where nid in {ids})))"
    ))


def _cards_with_work(col: Collection, cids: Iterable[int]) -> set[int]:
    ids = ids2str(cids)
    return set(db(col).list(
        f"select id from cards where id in {ids} and"
        f" (type != 0 or id in (select cid from revlog where cid in {ids}))"
    ))


def _user_tags(gone: Iterable[ExistingNote], keep: ExistingNote) -> list[str]:
    """Tags the user gave deleted copies that the kept note lacks (never the bridge's)."""
    have = {t.lower() for t in keep.tags}
    moved: list[str] = []
    for note in gone:
        ours = {t.lower() for t in note.state.tags} if note.state else set()
        for tag in note.tags:
            low = tag.lower()
            if low not in have and low not in ours and not low.startswith("roam::"):
                have.add(low)
                moved.append(tag)
    return moved


def is_duplicate(note: ExistingNote) -> bool:
    return has_tag(note.tags, DUPLICATE_TAG)

"""Plan (diff CardSpecs against the collection) and apply (batched, one undo step).

``plan`` only reads: it returns a SyncPlan that can be printed, tested and dry-run.
``apply`` writes the plan in a fixed number of batched calls inside one custom undo entry
("Roam Bridge sync") and returns a Report.

Guarantees:
- identity is the ``SourceID`` field; the GUID is derived from the key alone;
- note ids, card ids and scheduling survive edits, moves and kind changes (the note type is
  changed in place, never delete + re-add);
- tags the bridge did not add are never removed;
- a block that vanishes is suspended and tagged ``roam::orphaned`` (by default), and restored
  when it comes back; a run that would newly orphan more than half of a source's notes is
  refused unless forced;
- a run with nothing to do writes nothing.

What the bridge remembers about a note (source hash, tags and deck it set, location, cards it
suspended) lives in the note itself, in a hidden element of the ``Source`` field: it syncs and
undoes with the note, and if it is lost the next run simply re-renders and compares (see
note_state.py).
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Any

from anki.collection import AddNoteRequest, Collection, OpChanges
from anki.utils import base91, ids2str

from . import notetypes
from .cards import HASH_LENGTH, CardSpec, Kind, collect
from .config import SyncOptions
from .media import MediaStore
from .model import Graph, gc_paused, is_synthetic
from .note_state import STATE_HASH_MARK, NoteState, strip_state
from .rematch import Item, pair_by_similarity
from .render import image_sources, plain_text

UNDO_NAME = "Roam Bridge sync"
# Notes per add_notes / update_notes call. One call for 10k notes serialises ~11 MB of
# protobuf while holding the GIL (~60 ms), long enough to stutter Anki's UI during a
# background sync; a few calls of this size cost nothing measurable.
WRITE_BATCH = 2000
ORPHAN_TAG = "roam::orphaned"
BRIDGE_TAG_PREFIX = "roam::"

_CLOZE_NUMBER = re.compile(r"\{\{c(\d+)::")


class MassOrphanRefused(Exception):
    """The run would orphan more than half of a source's notes; nothing was written."""


@lru_cache(maxsize=1 << 16)  # asked for several times per new note in one run
def guid_for(key: str) -> str:
    """A GUID derived from the key alone, so every collection gives a block the same GUID."""
    return base91(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))


# The plan ---------------------------------------------------------------------------------


class ExistingNote:
    """A managed note as read from the collection.

    A no-op run needs only the key and the remembered source hash, which one query reads for
    every note; the full fields are loaded (in one batch) only for notes that may change.
    """

    def __init__(
        self, nid: int, guid: str, kind: Kind, key: str, tags: str, source_hash: str,
        names: list[str],
    ) -> None:
        self.id, self.guid, self.kind, self.key = nid, guid, kind, key
        self.tags = tags.split()
        self.source_hash = source_hash
        self.names = names
        self.fields: dict[str, str] = {}

    @cached_property
    def state(self) -> NoteState | None:
        return NoteState.from_field(self.fields.get("Source", ""))

    @property
    def orphaned(self) -> bool:
        return _has_tag(self.tags, ORPHAN_TAG)


@dataclass
class Update:
    """One existing note and what changes on it. ``None`` means "leave as is"."""

    note: ExistingNote
    state: NoteState
    fields: dict[str, str] | None = None
    tags: list[str] | None = None
    deck: str | None = None
    new_kind: Kind | None = None
    # The block's new key, when a block without a stable id was re-matched to this note.
    new_key: str | None = None
    moved: bool = False
    restored: bool = False
    # Card ordinals the note's content gives cards to; None for an orphan (it has none).
    live_ords: frozenset[int] | None = None
    suspend: tuple[int, ...] = ()
    unsuspend: tuple[int, ...] = ()

    @property
    def visible(self) -> bool:
        """True when the note really changes (as opposed to only its remembered state)."""
        return bool(
            self.fields is not None or self.tags is not None or self.deck is not None
            or self.new_kind or self.restored or self.suspend or self.unsuspend
        )


@dataclass
class SyncPlan:
    prefix: str
    options: SyncOptions
    # Every card block of the graph, changed or not (the reviewer panel's index needs all).
    specs: list[CardSpec] = field(default_factory=list)
    creates: list[CardSpec] = field(default_factory=list)
    updates: list[Update] = field(default_factory=list)
    orphans: list[Update] = field(default_factory=list)
    deletes: list[ExistingNote] = field(default_factory=list)
    unchanged: int = 0
    managed_before: int = 0
    refused: bool = False
    warnings: list[str] = field(default_factory=list)
    # Images the rendered notes need, downloaded during planning, written by apply.
    media: MediaStore | None = field(default=None, repr=False)
    # Key -> GUID for new notes whose own GUID a re-matched note already holds (see
    # _spare_guids); every other new note's GUID is guid_for(key).
    guids: dict[str, str] = field(default_factory=dict)
    # Key -> the images each new note shows (see _media_of), found while planning: by apply
    # time the add-on has released the graph, and a block's children are gone.
    new_media: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)

    def guid(self, spec: CardSpec) -> str:
        return self.guids.get(spec.key) or guid_for(spec.key)

    @property
    def has_changes(self) -> bool:
        return bool(self.creates or self.updates or self.orphans or self.deletes)

    @property
    def kind_changes(self) -> int:
        return sum(1 for u in self.updates if u.new_kind)

    def defer_kind_changes(self) -> None:
        """Leave basic <-> cloze changes for a later run: they are schema changes, which
        force a full AnkiWeb sync, so only a run the user started may make them."""
        deferred = [u for u in self.updates if u.new_kind]
        if deferred:
            self.updates = [u for u in self.updates if not u.new_kind]
            self.unchanged += len(deferred)
            self.warnings.append(
                f"{len(deferred)} note(s) would change between basic and cloze, which needs a "
                "full AnkiWeb sync; deferred to the next manual sync"
            )

    def skip_removals(self) -> None:
        """Proceed without orphaning or deleting anything (what a background sync does when
        the mass-orphan guard refuses): the rest of the run still happens."""
        skipped = len(self.orphans) + len(self.deletes)
        if skipped:
            self.unchanged += skipped
            self.orphans, self.deletes = [], []
            self.warnings.append(
                f"{skipped} note(s) whose blocks are gone were left alone; sync manually to "
                "review the removal"
            )
        self.refused = False

    def report(self) -> Report:
        visible = [u for u in self.updates if u.visible]
        return Report(
            created=len(self.creates),
            updated=len(visible),
            unchanged=self.unchanged + len(self.updates) - len(visible),
            orphaned=len(self.orphans),
            moved=sum(1 for u in visible if u.moved),
            deleted=len(self.deletes),
            kind_changes=self.kind_changes,
            refused=self.refused,
            warnings=list(self.warnings),
            updated_ids=[u.note.id for u in visible],
            orphaned_ids=[u.note.id for u in self.orphans],
        )


@dataclass
class Report:
    """What a run did (or, for a dry run or a refused run, would do). Counts are notes."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    orphaned: int = 0
    moved: int = 0
    deleted: int = 0
    kind_changes: int = 0
    refused: bool = False
    dry_run: bool = False
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    created_ids: list[int] = field(default_factory=list)
    updated_ids: list[int] = field(default_factory=list)
    orphaned_ids: list[int] = field(default_factory=list)
    # What the collection saw, for Anki's UI to refresh from (empty when nothing was written).
    changes: OpChanges = field(default_factory=OpChanges, repr=False)

    @staticmethod
    def merge(reports: Iterable[Report]) -> Report:
        total = Report()
        for r in reports:
            for name in ("created", "updated", "unchanged", "orphaned", "moved", "deleted",
                         "kind_changes"):
                setattr(total, name, getattr(total, name) + getattr(r, name))
            for name in ("errors", "warnings", "created_ids", "updated_ids", "orphaned_ids"):
                getattr(total, name).extend(getattr(r, name))
            total.refused = total.refused or r.refused
            total.dry_run = total.dry_run or r.dry_run
        return total

    def counts(self) -> dict[str, Any]:
        return {
            "created": self.created, "updated": self.updated, "unchanged": self.unchanged,
            "orphaned": self.orphaned, "moved": self.moved, "errors": self.errors,
            "deleted": self.deleted, "kind_changes": self.kind_changes,
            "refused": self.refused, "dry_run": self.dry_run, "warnings": self.warnings,
        }


def plan(graph: Graph, col: Collection, options: SyncOptions | None = None) -> SyncPlan:
    """Diff the graph's card blocks against the collection. Reads only."""
    with gc_paused():
        return _plan(graph, col, options or SyncOptions())


def _plan(graph: Graph, col: Collection, options: SyncOptions) -> SyncPlan:
    prefix = f"{graph.source}:{graph.name}:"
    result = SyncPlan(prefix=prefix, options=options)
    media = result.media = (
        MediaStore(col.media.dir(), graph.root) if options.download_images else None
    )
    # graph.blocks is keyed by uid, so every spec has its own key.
    specs = result.specs = collect(
        graph, options.cards, options.deck, images=media.resolve if media else None
    )
    types = notetypes.find(col)
    existing = _existing_notes(col, types, prefix, result.warnings)
    result.managed_before = len(existing)
    decks = _DeckNames(col)

    wanted: set[str] = set()
    new: list[CardSpec] = []
    changed: list[tuple[ExistingNote, CardSpec]] = []
    for spec in specs:
        wanted.add(spec.key)
        note = existing.get(spec.key)
        if note is None:
            new.append(spec)
        elif _still_current(note, spec):
            result.unchanged += 1
        else:
            changed.append((note, spec))
    gone = [note for key, note in existing.items() if key not in wanted]
    _load_fields(col, [note for note, _ in changed] + gone)
    if media is not None:
        _prefetch_images(media, [*new, *(spec for _, spec in changed)],
                         [note for note, _ in changed] + gone)
    result.creates = [spec for spec in new if _has_content(spec, result.warnings)]
    if gone and result.creates:
        rematched = _rematch(prefix, gone, result.creates)
        if rematched:
            taken = {id(n) for n, _ in rematched} | {id(s) for _, s in rematched}
            gone = [n for n in gone if id(n) not in taken]
            result.creates = [s for s in result.creates if id(s) not in taken]
            changed.extend(rematched)
    result.guids = _spare_guids(result.creates, existing)
    if media is not None:
        result.new_media = {spec.key: _media_of(spec, media) for spec in result.creates}

    for note, spec in changed:
        if note.state is not None and note.state.clozes and spec.kind == "cloze":
            spec.__dict__.pop("fields", None)  # rendered without memory while matching
            spec.cloze_memory = note.state.clozes
        if not _has_content(spec, result.warnings):
            result.unchanged += 1
            continue
        result.updates.append(_update_for(note, spec, media))

    for note in gone:
        if note.orphaned:
            result.unchanged += 1
        elif options.on_removed == "delete":
            result.deletes.append(note)
        else:
            result.orphans.append(_orphan_update(note))

    if media is not None:
        result.warnings.extend(media.warnings)
    _attach_card_changes(col, result, decks)
    removed = len(result.orphans) + len(result.deletes)
    if removed * 2 > result.managed_before and removed and not options.force:
        result.refused = True
        result.warnings.append(
            f"refused: this run would remove {removed} of {result.managed_before} notes from "
            f"{prefix.rstrip(':')}; check the source, or force the run"
        )
    return result


def apply(sync_plan: SyncPlan, col: Collection) -> Report:
    """Write the plan in batched calls inside one undo entry; returns what was done."""
    return apply_all([sync_plan], col)


def apply_all(plans: Sequence[SyncPlan], col: Collection) -> Report:
    """Write several sources' plans as one undo step ("Roam Bridge sync").

    Nothing is written if any plan was refused by the mass-orphan guard, or if no plan has
    changes (the collection's modification time stays as it was).
    """
    refused = [w for p in plans if p.refused for w in p.warnings if w.startswith("refused")]
    if refused:
        raise MassOrphanRefused("; ".join(refused))
    report = Report.merge(p.report() for p in plans)
    if not any(p.has_changes for p in plans):
        return report
    with gc_paused():
        undo_entry = col.add_custom_undo_entry(UNDO_NAME)
        types, warnings = notetypes.ensure(col)
        report.warnings.extend(warnings)
        decks = _DeckIds(col)
        taken = _taken_guids(col, [p.guid(spec) for p in plans for spec in p.creates])
        for sync_plan in plans:
            sync_plan.creates = _not_taken(sync_plan, taken, report.warnings)
            report.created_ids.extend(_apply(sync_plan, col, types, decks))
        report.created = len(report.created_ids)
        report.changes = col.merge_undo_entries(undo_entry)
    return report


def _taken_guids(col: Collection, guids: list[str]) -> set[str]:
    """GUIDs of new notes that some note already has: a note of ours in a note type we do
    not manage (a user's clone), or a second source naming the same graph."""
    taken: set[str] = set()
    for chunk in _batches(guids, size=500):  # SQL parameter limit
        marks = ",".join("?" * len(chunk))
        taken.update(col.db.list(f"select guid from notes where guid in ({marks})", *chunk))
    return taken


def _not_taken(sync_plan: SyncPlan, taken: set[str], warnings: list[str]) -> list[CardSpec]:
    """Never two notes for one key: a spec whose GUID exists already is not added again."""
    kept = []
    for spec in sync_plan.creates:
        guid = sync_plan.guid(spec)
        if guid in taken:
            warnings.append(f"{spec.key}: a note with this block's id exists outside Roam "
                            "Bridge's note types (or twice in the sources); not added again")
            continue
        taken.add(guid)
        kept.append(spec)
    return kept


def _apply(
    sync_plan: SyncPlan, col: Collection, types: dict[Kind, Any], decks: _DeckIds
) -> list[int]:
    _change_kinds(col, types, sync_plan.updates)
    if sync_plan.media is not None:
        sync_plan.media.write(col)
    created = _add_notes(col, types, sync_plan, decks)
    _update_notes(col, types, [*sync_plan.updates, *sync_plan.orphans])
    _move_decks(col, sync_plan.updates, decks)
    _set_suspended(col, [*sync_plan.updates, *sync_plan.orphans])
    if sync_plan.deletes:
        col.remove_notes([n.id for n in sync_plan.deletes])
    return created


# Reading the collection -------------------------------------------------------------------


def _existing_notes(
    col: Collection,
    types: dict[Kind, Any],
    prefix: str,
    warnings: list[str],
) -> dict[str, ExistingNote]:
    """Our notes whose key starts with ``prefix``, by key: one query per note type, reading
    the key and the remembered hash in SQL rather than every field of every note."""
    found: dict[str, ExistingNote] = {}
    for kind, nt in types.items():
        names = [f["name"] for f in nt["flds"]]
        key_at, source_at = names.index(notetypes.SOURCE_ID), names.index("Source")
        rows = col.db.all(
            "select id, guid, tags, key, substr(src, instr(src, ?) + ?, ?) from"
            f" (select id, guid, tags, field_at_index(flds, {key_at}) as key,"
            f" field_at_index(flds, {source_at}) as src from notes where mid = ?)"
            " where substr(key, 1, ?) = ? order by id",
            STATE_HASH_MARK, len(STATE_HASH_MARK), HASH_LENGTH, nt["id"], len(prefix), prefix,
        )
        for nid, guid, tags, key, source_hash in rows:
            key = key.strip()
            if key in found:
                warnings.append(f"{key}: more than one note has this key; only one is synced")
                # Keep the note whose GUID is the key's own: the one other devices have.
                if found[key].guid == guid_for(key) or guid != guid_for(key):
                    continue
            found[key] = ExistingNote(nid, guid, kind, key, tags, source_hash, names)
    return found


def _load_fields(col: Collection, notes: list[ExistingNote]) -> None:
    by_id = {note.id: note for note in notes}
    if not by_id:
        return
    for nid, flds in col.db.all(f"select id, flds from notes where id in {ids2str(by_id)}"):
        note = by_id[nid]
        note.fields = dict(zip(note.names, flds.split("\x1f"), strict=False))


def _still_current(note: ExistingNote, spec: CardSpec) -> bool:
    return (
        note.source_hash == spec.source_hash
        and note.kind == spec.kind
        and not note.orphaned
    )


def _prefetch_images(
    media: MediaStore, specs: list[CardSpec], notes: list[ExistingNote]
) -> None:
    """Download the images the notes about to be rendered show, in parallel, before rendering
    asks for them one at a time; images a note already has are not downloaded again."""
    for note in notes:
        for src, name in note.state.media if note.state else ():
            media.remember(src, name)
    media.prefetch(
        (src, spec.block.page) for spec in specs for text in _shown_texts(spec)
        for src in image_sources(text)
    )


def _shown_texts(spec: CardSpec) -> Iterator[str]:
    yield spec.block.string
    for child in spec.block.descendants():
        yield child.string


def _media_of(spec: CardSpec, media: MediaStore | None) -> tuple[tuple[str, str], ...]:
    """The downloaded images this note shows (URL -> media name), to remember."""
    if media is None:
        return ()
    used = media.used()
    srcs = dict.fromkeys(src for text in _shown_texts(spec) for src in image_sources(text))
    return tuple((src, used[src]) for src in srcs if src in used and "://" in src)


def _rematch(
    prefix: str, gone: list[ExistingNote], creates: list[CardSpec]
) -> list[tuple[ExistingNote, CardSpec]]:
    """Notes whose synthetic key vanished, paired with the new card blocks they became (see
    rematch.py). A note with a real block id is never re-matched: its identity is explicit."""
    old = [n for n in gone if is_synthetic(n.key[len(prefix):])]
    if not old:
        return []
    old_items = [Item(n.state.page if n.state else "", _comparable(n.fields)) for n in old]
    new_items = [Item(s.block.page.title, _comparable(s.fields)) for s in creates]
    return [(old[i], creates[j]) for i, j in pair_by_similarity(old_items, new_items)]


def _spare_guids(creates: list[CardSpec], existing: dict[str, ExistingNote]) -> dict[str, str]:
    """GUIDs for new notes whose key's own GUID a note of ours holds under another key: a
    re-matched note keeps the GUID of the key it was created under, and a new block can later
    have that key again (the old text back on the page). It is a different block, so it gets
    a note of its own, under the key's GUID with a counter (still the same on every device)."""
    held = {note.guid: note.key for note in existing.values()}
    spare: dict[str, str] = {}
    for spec in creates:
        if held.get(guid_for(spec.key), spec.key) == spec.key:
            continue
        n = 2
        while (guid := guid_for(f"{spec.key}#{n}")) in held:
            n += 1
        held[guid] = spec.key
        spare[spec.key] = guid
    return spare


def _comparable(fields: dict[str, str]) -> str:
    """What a note says, as plain text: its main field and its back."""
    main = fields.get("Text") or fields.get("Front", "")
    back = fields.get("Back Extra") or fields.get("Back", "")
    return f"{plain_text(main)}\n{plain_text(back)}".strip()


def _has_content(spec: CardSpec, warnings: list[str]) -> bool:
    main = spec.fields["Text" if spec.kind == "cloze" else "Front"]
    if main.strip():
        return True
    warnings.append(f"{spec.key}: the block has no text besides its card tag; skipped")
    return False


# Deciding what changes --------------------------------------------------------------------


def _update_for(note: ExistingNote, spec: CardSpec, media: MediaStore | None) -> Update:
    state = note.state
    fields = dict(spec.fields)
    current = {name: note.fields.get(name, "") for name in fields}
    current["Source"] = strip_state(current.get("Source", ""))
    ours_before = set(state.tags) if state else {
        t.lower() for t in note.tags if t.lower().startswith(BRIDGE_TAG_PREFIX)
    }
    tags, ours = _merge_tags(note.tags, ours_before, spec.tags, drop=(ORPHAN_TAG,))
    deck_before = state.deck if state else None
    new_state = NoteState(
        source_hash=spec.source_hash, tags=ours, deck=spec.deck, location=spec.location,
        clozes=spec.clozes, page=_page_to_remember(spec), media=_media_of(spec, media),
    )
    update = Update(note=note, state=new_state)
    if note.key != spec.key:
        update.new_key = spec.key
    if note.kind != spec.kind or fields != current or update.new_key:
        update.fields = fields
    if tags != note.tags:
        update.tags = tags
    if note.kind != spec.kind:
        update.new_kind = spec.kind
    update.deck = spec.deck if deck_before is None or deck_before != spec.deck else None
    update.moved = bool(state and state.location != spec.location)
    update.restored = note.orphaned
    update.live_ords = _live_ords(spec)
    return update


def _orphan_update(note: ExistingNote) -> Update:
    state = note.state or NoteState()
    ours = tuple(dict.fromkeys((*state.tags, ORPHAN_TAG)))
    return Update(
        note=note, state=replace(state, tags=ours), tags=[*note.tags, ORPHAN_TAG]
    )


def _page_to_remember(spec: CardSpec) -> str:
    return spec.block.page.title if is_synthetic(spec.uid) else ""


def _merge_tags(
    current: Sequence[str], ours_before: Iterable[str], desired: Iterable[str],
    drop: Iterable[str] = (),
) -> tuple[list[str], tuple[str, ...]]:
    """New tag list: the user's tags untouched, ours replaced by ``desired``.

    A desired tag the user already had stays the user's: we never claim it, so we never remove
    it later.
    """
    ours_lower = {t.lower() for t in ours_before} | {t.lower() for t in drop}
    kept = [t for t in current if t.lower() not in ours_lower]
    kept_lower = {t.lower() for t in kept}
    ours = tuple(t for t in desired if t.lower() not in kept_lower)
    return kept + list(ours), ours


def _attach_card_changes(col: Collection, result: SyncPlan, decks: _DeckNames) -> None:
    """Card-level changes, from one query over the notes that change: which cards the bridge
    suspends or unsuspends, and whether cards need moving when no deck was remembered.

    The bridge suspends the cards of an orphan (policy "suspend") and cards left empty by a
    change (a reverse card no longer wanted, a cloze number that is gone), and remembers
    which it suspended: it unsuspends only those, never a card the user suspended.
    """
    pending = [*result.updates, *result.orphans]
    if not pending:
        return
    suspend_orphans = result.options.on_removed == "suspend"
    cards: dict[int, list[tuple[int, int, int, int]]] = defaultdict(list)
    nids = ids2str(u.note.id for u in pending)
    for cid, nid, did, queue, ord_ in col.db.all(
        f"select id, nid, did, queue, ord from cards where nid in {nids}"
    ):
        cards[nid].append((cid, did, queue, ord_))
    for update in pending:
        note_cards = cards.get(update.note.id, [])
        if update.live_ords is None:
            want = {cid for cid, *_ in note_cards} if suspend_orphans else set()
        else:
            want = {cid for cid, _, _, ord_ in note_cards if ord_ not in update.live_ords}
        ours_before = set(update.note.state.suspended if update.note.state else ())
        ours_before &= {cid for cid, *_ in note_cards}
        update.suspend = tuple(cid for cid, _, queue, _ in note_cards
                               if cid in want and queue != -1)
        update.unsuspend = tuple(sorted(ours_before - want))
        update.state = replace(
            update.state, suspended=tuple(sorted((ours_before & want) | set(update.suspend)))
        )
        # Without memory of the deck we set, only move cards that are elsewhere.
        if (
            update.deck is not None
            and update.note.state is None
            and all(decks.name(did) == update.deck for _, did, _, _ in note_cards)
        ):
            update.deck = None


def _live_ords(spec: CardSpec) -> frozenset[int]:
    """The card ordinals this spec's note gives content to (see the note types' templates)."""
    if spec.kind == "cloze":
        return frozenset(int(n) - 1 for n in _CLOZE_NUMBER.findall(spec.fields["Text"]))
    reverse = spec.reversed and bool(spec.fields["Back"].strip())
    return frozenset({0, 1} if reverse else {0})


class _DeckNames:
    """Deck id -> name lookups for planning, cached (reads only)."""

    def __init__(self, col: Collection) -> None:
        self.col = col
        self._names: dict[int, str] = {}

    def name(self, did: int) -> str:
        if did not in self._names:
            self._names[did] = self.col.decks.name_if_exists(did) or ""  # type: ignore[arg-type]
        return self._names[did]


class _DeckIds:
    """Deck name -> id, creating decks on first use (apply only)."""

    def __init__(self, col: Collection) -> None:
        self.col = col
        self._ids: dict[str, int] = {}

    def id(self, name: str) -> int:
        if name not in self._ids:
            self._ids[name] = int(self.col.decks.id(name, create=True))  # type: ignore[arg-type]
        return self._ids[name]


# Writing ----------------------------------------------------------------------------------


def _change_kinds(col: Collection, types: dict[Kind, Any], updates: list[Update]) -> None:
    by_direction: dict[tuple[Kind, Kind], list[int]] = defaultdict(list)
    for update in updates:
        if update.new_kind:
            by_direction[(update.note.kind, update.new_kind)].append(update.note.id)
    for (old, new), nids in by_direction.items():
        old_nt, new_nt = types[old], types[new]
        request = col.models.change_notetype_info(
            old_notetype_id=old_nt["id"], new_notetype_id=new_nt["id"]
        ).input
        request.note_ids.extend(nids)
        old_names = [f["name"] for f in old_nt["flds"]]
        mapping = _FIELD_MAP[(old, new)]
        del request.new_fields[:]
        request.new_fields.extend(
            old_names.index(mapping[f["name"]]) if f["name"] in mapping else -1
            for f in new_nt["flds"]
        )
        col.models.change_notetype_of_notes(request)


# When the note type changes, each field's content follows its counterpart; the update that
# follows rewrites the fields anyway, so the mapping matters only for what a user sees if the
# run is interrupted in between.
_FIELD_MAP: dict[tuple[Kind, Kind], dict[str, str]] = {
    ("basic", "cloze"): {"Text": "Front", "Back Extra": "Back", "Context": "Context",
                         "Source": "Source", "SourceID": "SourceID"},
    ("cloze", "basic"): {"Front": "Text", "Back": "Back Extra", "Context": "Context",
                         "Source": "Source", "SourceID": "SourceID"},
}


def _add_notes(
    col: Collection, types: dict[Kind, Any], sync_plan: SyncPlan, decks: _DeckIds
) -> list[int]:
    blanks = _blank_notes(col, types)
    requests = []
    for spec in sync_plan.creates:
        note = _copy_note(blanks[spec.kind])
        note.guid = sync_plan.guid(spec)
        state = NoteState(spec.source_hash, spec.tags, spec.deck, spec.location,
                          clozes=spec.clozes, page=_page_to_remember(spec),
                          media=sync_plan.new_media.get(spec.key, ()))
        _fill(note, spec.fields, spec.key, state)
        note.tags = list(spec.tags)
        requests.append(AddNoteRequest(note, decks.id(spec.deck)))  # type: ignore[arg-type]
    for batch in _batches(requests):
        col.add_notes(batch)
    return [int(r.note.id) for r in requests]


def _update_notes(col: Collection, types: dict[Kind, Any], updates: list[Update]) -> None:
    """Rewrite changed notes from what planning already read (fields, tags, GUID): no note
    is fetched again, one at a time, from the collection."""
    blanks = _blank_notes(col, types)
    notes = []
    for update in updates:
        existing = update.note
        note = _copy_note(blanks[update.new_kind or existing.kind])
        note.id, note.guid = existing.id, existing.guid  # type: ignore[assignment]
        if update.fields is not None:
            _fill(note, update.fields, update.new_key or existing.key, update.state)
        else:
            for name, value in existing.fields.items():
                if name in note:
                    note[name] = value
            note["Source"] = strip_state(note["Source"]) + update.state.to_html()
        note.tags = update.tags if update.tags is not None else list(existing.tags)
        notes.append(note)
    for batch in _batches(notes):
        col.update_notes(batch)


def _blank_notes(col: Collection, types: dict[Kind, Any]) -> dict[Kind, Any]:
    """One empty note per note type, copied for each note written: col.new_note() is a
    backend round trip per note and gives nothing a copy does not."""
    return {kind: col.new_note(nt) for kind, nt in types.items()}


def _copy_note(blank: Any) -> Any:
    note = copy.copy(blank)
    note.fields = list(blank.fields)
    return note


def _fill(note: Any, fields: dict[str, str], key: str, state: NoteState) -> None:
    for name, value in fields.items():
        note[name] = value
    note["Source"] = fields["Source"] + state.to_html()
    note[notetypes.SOURCE_ID] = key


def _move_decks(col: Collection, updates: list[Update], decks: _DeckIds) -> None:
    by_deck: dict[str, list[int]] = defaultdict(list)
    for update in updates:
        if update.deck is not None:
            by_deck[update.deck].append(update.note.id)
    for deck, nids in by_deck.items():
        cids = col.db.list(f"select id from cards where nid in {ids2str(nids)}")
        col.set_deck(cids, decks.id(deck))


def _set_suspended(col: Collection, updates: list[Update]) -> None:
    suspend = [c for u in updates for c in u.suspend]
    unsuspend = [c for u in updates for c in u.unsuspend]
    if suspend:
        col.sched.suspend_cards(suspend)  # type: ignore[arg-type]
    if unsuspend:
        col.sched.unsuspend_cards(unsuspend)  # type: ignore[arg-type]


def _batches(items: list[Any], size: int = WRITE_BATCH) -> Iterator[list[Any]]:
    """Consecutive slices of ``items``, at most ``size`` long."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _has_tag(tags: Iterable[str], tag: str) -> bool:
    return any(t.lower() == tag for t in tags)

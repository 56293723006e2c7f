"""Plan (diff CardSpecs against the collection) and apply (batched, atomic, one undo step).

``plan`` only reads: it returns a SyncPlan that can be printed, tested and dry-run.
``apply`` writes the plan in a fixed number of batched calls, all in one database
transaction and one custom undo entry ("Roam Bridge sync"), and returns a Report.

Guarantees:
- identity is the ``SourceID`` field; the GUID, and the ids of every note, card, note type
  and deck the bridge creates, are derived from the key (identity.py), so devices that sync
  the same notes before they sync with AnkiWeb create the same objects, which AnkiWeb's sync
  merges into one; copies that exist anyway are settled by healing.py on every run;
- note ids, card ids and scheduling survive edits, moves and kind changes (the note type is
  changed in place, never delete + re-add);
- tags the bridge did not add are never removed, and the bridge's own state tags
  (``roam::orphaned``, ``roam::duplicate``) are never produced by the notes;
- a block that vanishes is suspended and tagged ``roam::orphaned`` (by default), and restored
  when it comes back; guard.py refuses runs that would remove most of a graph;
- a run with nothing to do writes nothing; a run that fails or is killed part way writes
  nothing either (the transaction is rolled back), so the next run starts from a clean state;
- however many notes it touches, a sync stays one undo step (writing.Steps).

What the bridge remembers about a note (source hash, tags and deck it set, location, cards it
suspended) lives in the note itself, in a hidden element of the ``Source`` field: it syncs and
undoes with the note, and if it is lost the next run simply re-renders and compares (see
note_state.py).
"""

from __future__ import annotations

import time
from collections.abc import Collection as Uids
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from anki.cards import CardId
from anki.collection import Collection, OpChanges
from anki.decks import DeckId
from anki.models import NotetypeDict, NotetypeId

from . import (
    guard,
    healing,
    notetypes,
    owned,
    state_tags,
    two_way,
    write_back,
    write_times,
    writing,
)
from .anki_compat import db, forget_undo_history
from .block_writes import BlockEdit
from .cards import CardSpec, ClozeMemory, Kind, collect, key_for
from .config import SyncOptions
from .creation import NoteToAdd, add_with_stable_ids
from .editor_html import editor_stable
from .fields import KINDS, SOURCE, SOURCE_ID, kind_change_map
from .graphs import GraphMismatch, wrong_name
from .healing import DUPLICATE_TAG, Healing
from .identity import guid_for
from .media import MediaStore
from .model import Graph, gc_paused, is_synthetic
from .note_fields import NoteFields, NoteRenderer
from .note_state import NoteState, digests_of, field_digest, strip_state
from .owned import ORPHAN_TAG, ExistingNote
from .progress import IMAGES, PLANNING, RENDERING, WRITING, Progress, report_only, silent, ticking
from .rematch import Item, ambiguous_keys, comparable_text, pair_by_similarity
from .render import image_sources

UNDO_NAME = "Roam Bridge sync"
BRIDGE_TAG_PREFIX = "roam::"
# Tags that mark the bridge's own state. A tag from the notes that would spell one of them
# gets a trailing "_", so the notes can never make a note look orphaned or duplicated.
STATE_TAGS = frozenset({ORPHAN_TAG, DUPLICATE_TAG, "roam::conflict"})


__all__ = ["UNDO_NAME", "GraphMismatch", "MassOrphanRefused", "Report", "SyncPlan",
           "apply", "apply_all", "guid_for", "plan"]


class MassOrphanRefused(Exception):
    """The run would remove most of a source's notes; nothing was written."""


# The plan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnkiEdit:
    """A note edited in Anki (here or on another device) that its block does not say."""

    note_id: int
    key: str
    # Field -> (what the notes say, what Anki says), for every field whose Anki text is kept.
    fields: dict[str, tuple[str, str]]
    # The notes changed the same fields too, and nobody has settled it: the user does.
    conflict: bool
    # The kept fields to report (the others the user already chose to keep as Anki has them).
    outstanding: tuple[str, ...] = ()


@dataclass(frozen=True)
class WriteBack:
    """Block edits that say a note's Anki edit in the notes, and the note's update once every
    one of them is written (its fields then are the notes' rendering of the new text)."""

    edits: tuple[BlockEdit, ...]
    then: Update


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
    suspend: tuple[CardId, ...] = ()
    unsuspend: tuple[CardId, ...] = ()
    # The note's content calls for cards it does not have yet (added under derived ids),
    # and the deck its cards are in, where Anki puts a new card of an existing note.
    new_cards: bool = False
    cards_deck: DeckId | None = None
    # Edits made in Anki that the notes do not have (kept, or in conflict), if any.
    anki_edit: AnkiEdit | None = None
    # How the notes can be made to say that edit (see write_back.py), if they can.
    write_back: WriteBack | None = None

    @property
    def visible(self) -> bool:
        """True when the note really changes (as opposed to only its remembered state)."""
        return bool(
            self.fields is not None or self.tags is not None or self.deck is not None
            or self.new_kind or self.restored or self.suspend or self.unsuspend
            or self.new_cards
        )


@dataclass
class SyncPlan:
    prefix: str
    options: SyncOptions
    # Every card block of the graph, changed or not (the reviewer panel's index needs all);
    # for a scoped plan, only the card blocks in its scope.
    specs: list[CardSpec] = field(default_factory=list)
    # Planned for some blocks only (see plan's ``scope``): notes outside it were not looked at.
    scoped: bool = False
    creates: list[CardSpec] = field(default_factory=list)
    updates: list[Update] = field(default_factory=list)
    orphans: list[Update] = field(default_factory=list)
    deletes: list[ExistingNote] = field(default_factory=list)
    unchanged: int = 0
    managed_before: int = 0
    # Live (not orphaned) notes before the run, and the guard's mark (see guard.py).
    live_before: int = 0
    mark: int = 0
    refused: bool = False
    # Why the guard refused the run; kept when a user confirms it (which resets the mark).
    refusal: str | None = None
    # Notes left as they are because the user pinned them (counted in ``unchanged`` too).
    pinned: int = 0
    # Something was left for a later run (a deferred kind change, a removal left alone, a
    # note left out): planning again would find it still to do (see unchanged.py).
    held_back: bool = False
    warnings: list[str] = field(default_factory=list)
    healing: Healing = field(default_factory=Healing)
    # Copies of our note types to merge into ours (a schema change; see healing.py).
    type_merges: list[tuple[NotetypeDict, NotetypeDict]] = field(default_factory=list)
    # Images the rendered notes need, downloaded during planning, written by apply.
    media: MediaStore | None = field(default=None, repr=False)
    # Key -> GUID of each new note: guid_for(key), or a spare one when a re-matched note
    # already holds that (see _spare_guids).
    guids: dict[str, str] = field(default_factory=dict)
    # Key -> the images each new note shows (see _media_of), found while planning: by apply
    # time the add-on has released the graph, and a block's children are gone.
    new_media: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)

    # Key -> the fields of each new note, rendered while planning (a new note remembers no
    # cloze numbers, so its rendering is final; apply writes exactly this).
    rendered: dict[str, NoteFields] = field(default_factory=dict, repr=False)
    # Write-back: the block edits written into the notes before apply (pipeline.write_back),
    # and why an Anki edit was not written (by key).
    written_back: list[BlockEdit] = field(default_factory=list)
    write_back_problems: dict[str, str] = field(default_factory=dict)

    def guid(self, spec: CardSpec) -> str:
        return self.guids.get(spec.key) or guid_for(spec.key)

    @property
    def has_changes(self) -> bool:
        return bool(self.creates or self.updates or self.orphans or self.deletes
                    or self.healing.has_changes or self.type_merges)

    @property
    def kind_changes(self) -> int:
        return sum(1 for u in self.updates if u.new_kind)

    @property
    def anki_edits(self) -> list[AnkiEdit]:
        """Notes edited in Anki that their blocks do not say, to report: kept, never
        overwritten (until the user settles them or they are written back)."""
        return [u.anki_edit for u in self.updates
                if u.anki_edit is not None and u.anki_edit.outstanding]

    @property
    def pending_write_backs(self) -> list[Update]:
        """Updates whose Anki edit can be written into the notes (not written yet)."""
        return [u for u in self.updates if u.write_back is not None]

    @property
    def schema_changes(self) -> int:
        """Changes Anki counts as schema changes (the next AnkiWeb sync is a full one)."""
        return self.kind_changes + len(self.type_merges)

    @property
    def live_after(self) -> int:
        restored = sum(1 for u in self.updates if u.restored)
        live_deleted = sum(1 for n in self.deletes if not n.orphaned)
        return (self.live_before + len(self.creates) + restored - len(self.orphans)
                - live_deleted)

    @property
    def removed(self) -> int:
        return len(self.orphans) + sum(1 for n in self.deletes if not n.orphaned)

    def defer_kind_changes(self) -> None:
        """Leave schema changes (basic <-> cloze, merging copies of our note types) for a
        later run: they force a full AnkiWeb sync, so only a run the user started may make
        them."""
        deferred = [u for u in self.updates if u.new_kind]
        self.held_back = self.held_back or bool(deferred or self.type_merges)
        if deferred:
            self.updates = [u for u in self.updates if not u.new_kind]
            self.unchanged += len(deferred)
            self.warnings.append(
                f"{len(deferred)} note(s) would change between basic and cloze, which needs a "
                "full AnkiWeb sync; deferred to the next manual sync"
            )
        if self.type_merges:
            self.warnings.append(
                f"{len(self.type_merges)} copies of Roam Bridge's note types would be merged "
                "into one, which needs a full AnkiWeb sync; deferred to the next manual sync"
            )
            self.type_merges = []

    def skip_removals(self) -> None:
        """Proceed without orphaning or deleting anything (what a background sync does when
        the mass-orphan guard refuses): the rest of the run still happens."""
        skipped = len(self.orphans) + len(self.deletes)
        self.held_back = self.held_back or bool(skipped)
        if skipped:
            self.unchanged += skipped
            self.orphans, self.deletes = [], []
            self.warnings.append(
                f"{skipped} note(s) whose blocks are gone were left alone; sync manually to "
                "review the removal"
            )
        self.refused = False

    def leave_out(self, keys: Iterable[str]) -> int:
        """Leave these notes out of this run only (the preview's unticked rows): a new block
        is not added, an existing note keeps what it has. A later run plans them again.
        Returns how many changes were left out."""
        keys = set(keys)
        if not keys:
            return 0
        creates = [s for s in self.creates if s.key not in keys]
        updates = [u for u in self.updates if not _named(u, keys)]
        orphans = [u for u in self.orphans if not _named(u, keys)]
        deletes = [n for n in self.deletes if n.key not in keys]
        kept = len(self.updates) - len(updates) + len(self.orphans) - len(orphans) + len(
            self.deletes) - len(deletes)
        dropped = kept + len(self.creates) - len(creates)
        self.creates, self.updates, self.orphans, self.deletes = creates, updates, orphans, deletes
        self.unchanged += kept  # still in the collection, as they were
        if dropped:
            self.held_back = True
            self.warnings.append(f"{dropped} change(s) left out of this sync at your request")
        return dropped

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
            healed=len(self.healing.remove_notes) + len(self.healing.remove_cards),
            conflicts=sum(1 for e in self.anki_edits if e.conflict),
            kept_anki_edits=sum(1 for e in self.anki_edits if not e.conflict),
            written_back=len({e.key for e in self.written_back}),
            anki_edits=self.anki_edits,
            written=list(self.written_back),
            to_write_back=[e for u in self.pending_write_backs if u.write_back
                           for e in u.write_back.edits],
            write_back_problems=dict(self.write_back_problems),
            refused=self.refused,
            warnings=[*self.warnings, *self.healing.warnings],
            updated_ids=[u.note.id for u in visible],
            orphaned_ids=[u.note.id for u in self.orphans],
        )


def _named(update: Update, keys: set[str]) -> bool:
    return update.note.key in keys or (update.new_key is not None and update.new_key in keys)


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
    # Copies deleted by healing (notes and cards of a block that exist twice).
    healed: int = 0
    # Notes edited in Anki: settled by the user (conflicts: both sides changed), kept
    # (their blocks could not be written), written back into the notes.
    conflicts: int = 0
    kept_anki_edits: int = 0
    written_back: int = 0
    anki_edits: list[AnkiEdit] = field(default_factory=list)
    # The block edits written into the notes; those a run would write (a dry run, or edits
    # waiting for their write); why the others were not written (by key).
    written: list[BlockEdit] = field(default_factory=list)
    to_write_back: list[BlockEdit] = field(default_factory=list)
    write_back_problems: dict[str, str] = field(default_factory=dict)
    # A schema change was made (kind changes, merged note types): the next AnkiWeb sync
    # will be a full one.
    full_sync: bool = False
    refused: bool = False
    dry_run: bool = False
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    created_ids: list[int] = field(default_factory=list)
    updated_ids: list[int] = field(default_factory=list)
    orphaned_ids: list[int] = field(default_factory=list)
    # What the collection saw, for Anki's UI to refresh from (empty when nothing was written).
    changes: OpChanges = field(default_factory=OpChanges, repr=False)

    _COUNTS = ("created", "updated", "unchanged", "orphaned", "moved", "deleted",
               "kind_changes", "healed", "conflicts", "kept_anki_edits", "written_back")

    @staticmethod
    def merge(reports: Iterable[Report]) -> Report:
        total = Report()
        for r in reports:
            for name in Report._COUNTS:
                setattr(total, name, getattr(total, name) + getattr(r, name))
            for name in ("errors", "warnings", "created_ids", "updated_ids", "orphaned_ids",
                         "anki_edits", "written", "to_write_back"):
                getattr(total, name).extend(getattr(r, name))
            total.write_back_problems.update(r.write_back_problems)
            total.refused = total.refused or r.refused
            total.dry_run = total.dry_run or r.dry_run
            total.full_sync = total.full_sync or r.full_sync
        return total

    def counts(self) -> dict[str, Any]:
        return {
            "created": self.created, "updated": self.updated, "unchanged": self.unchanged,
            "orphaned": self.orphaned, "moved": self.moved, "errors": self.errors,
            "deleted": self.deleted, "kind_changes": self.kind_changes,
            "healed": self.healed, "conflicts": self.conflicts,
            "kept_anki_edits": self.kept_anki_edits, "written_back": self.written_back,
            "refused": self.refused, "dry_run": self.dry_run, "warnings": self.warnings,
        }


def plan(
    graph: Graph, col: Collection, options: SyncOptions | None = None,
    progress: Progress = silent, scope: Uids[str] | None = None,
) -> SyncPlan:
    """Diff the graph's card blocks against the collection. Reads only, so ``progress`` may
    cancel it at any call (see progress.py).

    ``scope``, the uids of the blocks an incremental pull found changed (or gone), limits the
    plan to their notes: only those can be created, updated or orphaned, and every other note
    of the graph counts as unchanged. A note is never orphaned merely for being outside the
    scope: a partial pull says nothing about the blocks it did not pull. An orphaned note
    outside it may still be re-matched to a new block in it, as a full plan would.

    Raises GraphMismatch when the blocks it would create already have notes under another
    graph name (see graphs.py)."""
    with gc_paused():
        return _plan(graph, col, options or SyncOptions(), progress, scope)


def _plan(
    graph: Graph, col: Collection, options: SyncOptions, progress: Progress,
    scope: Uids[str] | None = None,
) -> SyncPlan:
    prefix = f"{graph.source}:{graph.name}:"
    result = SyncPlan(prefix=prefix, options=options, scoped=scope is not None)
    media = result.media = (
        MediaStore(col.media.dir(), graph.root) if options.download_images else None
    )
    skipped: dict[str, str] = {}  # card blocks past a limit: key -> warning
    progress(PLANNING, 0, 0)
    # Scoped plan: only the card blocks among the scope's blocks are collected.
    blocks = None if scope is None else [graph.blocks[u] for u in sorted(scope)
                                         if u in graph.blocks]
    specs = result.specs = _unique_keys(
        collect(graph, options.cards, options.deck, skipped=skipped, blocks=blocks),
        result.warnings,
    )
    renderer = NoteRenderer(graph, options.cards, images=media.resolve if media else None)
    progress(PLANNING, 0, len(specs))
    types = _our_types(col)
    mine = owned.read(col, types, prefix)
    healing.settle_notes(col, mine, result.healing)
    existing = mine.by_key
    result.managed_before = len(existing)
    orphaned = {key for key, n in existing.items() if n.orphaned}
    result.live_before = len(existing) - len(orphaned)

    # A skipped block is still there: its note is left as it is, not orphaned.
    result.warnings.extend(skipped.values())
    result.unchanged += len(skipped.keys() & existing.keys())
    wanted: set[str] = set(skipped)
    new: list[CardSpec] = []
    changed: list[tuple[ExistingNote, CardSpec]] = []
    # Copies of one text whose set changed are matched by content, never by key (rematch.py).
    # A scope holds whole pages, and copies of one text are on one page: within a scope,
    # its own keys tell.
    in_scope = None if scope is None else {key_for(graph, uid) for uid in scope}
    ambiguous = ambiguous_keys(existing if in_scope is None else existing.keys() & in_scope,
                               [spec.key for spec in specs])
    for spec in specs:
        wanted.add(spec.key)
        note = existing.get(spec.key) if spec.key not in ambiguous else None
        if note is None:
            new.append(spec)
        elif _still_current(note, spec) and not note.touched and (
            note.id not in result.healing.tags_for and spec.key not in result.healing.kept
            and not healing.is_duplicate(note)
        ):
            result.unchanged += 1
        else:
            changed.append((note, spec))
        for extra in result.healing.kept.get(spec.key, ()):
            changed.append((extra, spec))
    gone = [note for key, note in existing.items() if key not in wanted or key in ambiguous]
    if in_scope is not None:  # scoped plan: notes outside the scope stay as they are
        # An orphaned note stays one too, unless a new block is its text written again
        # (rematch): a full plan would find it so, whichever page it was on.
        result.unchanged += len(existing.keys() - in_scope - orphaned)
        gone = [note for note in gone if note.key in in_scope or note.key in orphaned]
    owned.load_fields(col, [note for note, _ in changed] + gone)
    if media is not None:
        _prefetch_images(media, [*new, *(spec for _, spec in changed)],
                         [note for note, _ in changed] + gone, progress)
    rendered = {spec.key: renderer.render(spec)
                for spec in ticking(new, progress, RENDERING, len(new))}
    result.creates = [s for s in new if _has_content(s, rendered[s.key], result.warnings)]
    rekeyed: set[str] = set()  # keys that re-matched notes take this run
    if gone and result.creates:
        rematched = _rematch(prefix, gone, result.creates, rendered)
        if rematched:
            taken = {id(n) for n, _ in rematched} | {id(s) for _, s in rematched}
            gone = [n for n in gone if id(n) not in taken]
            result.creates = [s for s in result.creates if id(s) not in taken]
            changed.extend(rematched)
            rekeyed = {s.key for n, s in rematched if n.key != s.key}
    result.rendered = {spec.key: rendered[spec.key] for spec in result.creates}
    if result.creates:
        found = wrong_name(col, types, graph.source, graph.name,
                           (s.uid for s in result.creates))
        if found is not None:
            raise GraphMismatch(graph.root or prefix.rstrip(":"), found, graph.name)
    spare = _spare_guids(result.creates, existing)
    result.guids = {s.key: spare.get(s.key) or guid_for(s.key) for s in result.creates}
    if media is not None:
        result.new_media = {spec.key: _media_of(spec, media) for spec in result.creates}

    for note, spec in changed:
        if _pinned(note, result):
            continue
        memory = note.state.clozes if note.state is not None and spec.kind == "cloze" else ()
        fields = renderer.render(spec, memory)
        if not _has_content(spec, fields, result.warnings):
            result.unchanged += 1
            continue
        extra_tags = result.healing.tags_for.get(note.id, ())
        duplicate = spec.key in result.healing.kept
        update = _update_for(note, spec, fields, media, options, extra_tags, duplicate)
        if update.anki_edit is not None and options.write_back and not update.anki_edit.conflict:
            update.write_back = _write_back_for(graph, options, note, spec, memory, update,
                                                media, result, extra_tags, duplicate)
        if update.visible or update.anki_edit or _state_changed(note, update.state):
            result.updates.append(update)
        else:
            result.unchanged += 1  # only touched (say, the user's tags): nothing to write

    for note in gone:
        if _pinned(note, result):
            continue
        if note.key in rekeyed and options.on_removed != "delete":
            # Its key now names another copy's block (rematch.ambiguous_keys): it gives the
            # key up, so one key never maps to two notes.
            (result.updates if note.orphaned else result.orphans).append(_retired(note))
        elif note.orphaned:
            result.unchanged += 1
        elif options.on_removed == "delete":
            result.deletes.append(note)
        else:
            result.orphans.append(_orphan_update(note))

    if media is not None:
        result.warnings.extend(media.warnings)
    _attach_card_changes(col, result)
    healing.settle_cards(col, list(existing.values()), result.healing)
    result.type_merges = [(c, types[kind][0]) for kind, cs in notetypes.copies(col).items()
                          for c in cs]
    result.mark = guard.mark(col, prefix, result.live_before)
    result.refusal = guard.refusal(prefix, result.removed, result.live_before,
                                   result.live_after, result.mark)
    if result.refusal and not options.force:
        result.refused = True
        result.warnings.append(result.refusal)
    return result


def _our_types(col: Collection) -> dict[Kind, list[NotetypeDict]]:
    """Our note types by kind, the one to keep first, then any copies (see healing.py)."""
    types: dict[Kind, list[NotetypeDict]] = {k: [nt] for k, nt in notetypes.find(col).items()}
    for kind, extra in notetypes.copies(col).items():
        types[kind].extend(extra)
    return types


def _unique_keys(specs: list[CardSpec], warnings: list[str]) -> list[CardSpec]:
    """One spec per key: two block ids that Anki would store alike (see
    identity.stored_text) cannot both have a note."""
    seen: set[str] = set()
    unique = []
    for spec in specs:
        if spec.key in seen:
            warnings.append(f"{spec.key}: another block's id reads the same once stored in "
                            "Anki (it differs only in control characters or spaces); skipped")
            continue
        seen.add(spec.key)
        unique.append(spec)
    return unique


def apply(sync_plan: SyncPlan, col: Collection) -> Report:
    """Write the plan in batched calls inside one undo entry; returns what was done."""
    return apply_all([sync_plan], col)


def apply_all(
    plans: Sequence[SyncPlan], col: Collection, progress: Progress = silent
) -> Report:
    """Write several sources' plans as one undo step ("Roam Bridge sync").

    Nothing is written if any plan was refused by the mass-orphan guard, or if no plan has
    changes (the collection's modification time stays as it was). Everything is written in
    one transaction: if anything fails, nothing of the run stays. ``progress`` hears how far
    writing got, and cannot stop it.
    """
    progress = report_only(progress)
    refused = [p.refusal for p in plans if p.refused and p.refusal]
    if refused:
        raise MassOrphanRefused("; ".join(refused))
    report = Report.merge(p.report() for p in plans)
    if not any(p.has_changes for p in plans):
        return report
    with gc_paused():
        try:
            db(col).transact(lambda: _write(plans, col, report, progress))
        except BaseException:
            forget_undo_history(col)  # its undo step describes changes that are gone
            raise
    return report


def _write(plans: Sequence[SyncPlan], col: Collection, report: Report, progress: Progress
           ) -> None:
    started = int(time.time())  # the time written on every note (see write_times.py)
    types, warnings = notetypes.ensure(col)
    report.warnings.extend(warnings)
    decks = writing.Decks(col)
    decks.ensure(list(dict.fromkeys(_deck_names(plans))))
    steps = writing.Steps(col, UNDO_NAME)
    merged: dict[NotetypeId, NotetypeId] = {}
    for copy_nt, into in {c["id"]: (c, i) for p in plans for c, i in p.type_merges}.values():
        writing.merge_note_types(col, copy_nt, into, steps)
        merged[copy_nt["id"]] = into["id"]
    taken = _taken_guids(col, [p.guid(spec) for p in plans for spec in p.creates])
    total, done = sum(_size(p) for p in plans), 0
    for sync_plan in plans:
        progress(WRITING, done, total)
        done += _size(sync_plan)
        sync_plan.creates = _not_taken(sync_plan, taken, report.warnings)
        report.created_ids.extend(_apply(sync_plan, col, types, decks, merged, steps,
                                         started))
        marked = guard.new_mark(sync_plan.mark, sync_plan.live_after,
                                confirmed=bool(sync_plan.refusal and sync_plan.removed))
        guard.store(col, sync_plan.prefix, marked)
        steps.fold()
    write_times.record(col, started, int(time.time()))
    progress(WRITING, total, total)
    report.created = len(report.created_ids)
    report.full_sync = bool(merged) or any(p.kind_changes for p in plans)
    report.changes = steps.fold()


def _size(sync_plan: SyncPlan) -> int:
    """Notes a plan writes."""
    return (len(sync_plan.creates) + len(sync_plan.updates) + len(sync_plan.orphans)
            + len(sync_plan.deletes))


def _deck_names(plans: Sequence[SyncPlan]) -> Iterator[str]:
    for sync_plan in plans:
        yield from (spec.deck for spec in sync_plan.creates)
        yield from (u.deck for u in sync_plan.updates if u.deck is not None)


def _taken_guids(col: Collection, guids: list[str]) -> set[str]:
    """GUIDs of new notes that some note already has: a note of ours in a note type we do
    not manage (a user's clone), or a second source naming the same graph. One scan of the
    notes (Anki keeps no index on GUIDs)."""
    if not guids:
        return set()
    return set(guids) & set(db(col).list("select guid from notes"))


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
    sync_plan: SyncPlan, col: Collection, types: dict[Kind, NotetypeDict],
    decks: writing.Decks, merged: dict[NotetypeId, NotetypeId], steps: writing.Steps, started: int,
) -> list[int]:
    """Write one plan; returns the ids of the notes it created."""
    updates = [*sync_plan.updates, *sync_plan.orphans]
    for update in updates:
        update.note.notetype_id = merged.get(update.note.notetype_id,
                                             update.note.notetype_id)
    kinds_of = {nt["id"]: kind for kind, nt in types.items()}
    kinds_of.update({u.note.notetype_id: u.note.kind for u in updates})
    writing.change_kinds(
        col,
        writing.group(((u.note.notetype_id, u.new_kind), u.note.id)
                      for u in sync_plan.updates if u.new_kind),
        types, _FIELD_MAP, kinds_of, steps,
    )
    if sync_plan.media is not None:
        sync_plan.media.write(col)
    by_id = _notetypes_by_id(col, types, updates)
    created = add_with_stable_ids(col, [
        *(_new_note(sync_plan, spec, types, decks, started) for spec in sync_plan.creates),
        *(_more_cards(u, by_id, decks) for u in sync_plan.updates if u.new_cards),
    ], after_each=steps.fold)
    steps.fold()
    _update_notes(col, by_id, updates, steps, started)
    writing.move_cards(col, writing.group((decks.id(u.deck), u.note.id)
                                          for u in sync_plan.updates if u.deck is not None),
                       steps)
    writing.set_suspended(col, [c for u in updates for c in u.suspend],
                          [c for u in updates for c in u.unsuspend], steps)
    writing.remove(col, [*(n.id for n in sync_plan.deletes), *sync_plan.healing.remove_notes],
                   sync_plan.healing.remove_cards, steps)
    return [created[spec.key] for spec in sync_plan.creates if spec.key in created]


# Reading the collection -------------------------------------------------------------------


def _still_current(note: ExistingNote, spec: CardSpec) -> bool:
    return (
        note.source_hash == spec.source_hash
        and note.kind == spec.kind
        and not note.orphaned
    )


def _prefetch_images(
    media: MediaStore, specs: list[CardSpec], notes: list[ExistingNote], progress: Progress
) -> None:
    """Download the images the notes about to be rendered show, in parallel, before rendering
    asks for them one at a time; images a note already has are not downloaded again."""
    for note in notes:
        for src, name in note.state.media if note.state else ():
            media.remember(src, name)
    media.prefetch(
        ((src, spec.block.page) for spec in specs for text in _shown_texts(spec)
         for src in image_sources(text)),
        progress=lambda done, total: progress(IMAGES, done, total),
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
    prefix: str, gone: list[ExistingNote], creates: list[CardSpec],
    rendered: dict[str, NoteFields],
) -> list[tuple[ExistingNote, CardSpec]]:
    """Notes whose synthetic key vanished, paired with the new card blocks they became (see
    rematch.py). A note with a real block id is never re-matched: its identity is explicit."""
    old = [n for n in gone if is_synthetic(n.key[len(prefix):])]
    if not old:
        return []
    old_items = [Item(n.state.page if n.state else "", comparable_text(n.fields)) for n in old]
    new_items = [Item(s.block.page.title, comparable_text(rendered[s.key].fields))
                 for s in creates]
    pairs = pair_by_similarity(old_items, new_items)
    # A copy that matched nothing better keeps the note of its key, as before it had copies.
    paired_old, paired_new = {i for i, _ in pairs}, {j for _, j in pairs}
    by_key = {n.key: i for i, n in enumerate(old) if i not in paired_old}
    pairs += [(by_key[s.key], j) for j, s in enumerate(creates)
              if j not in paired_new and s.key in by_key]
    return [(old[i], creates[j]) for i, j in pairs]


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


def _pinned(note: ExistingNote, result: SyncPlan) -> bool:
    """A pinned note is left exactly as it is (see state_tags.py), and counted unchanged."""
    if not state_tags.is_pinned(note.tags):
        return False
    result.unchanged += 1
    result.pinned += 1
    return True


def _has_content(spec: CardSpec, fields: NoteFields, warnings: list[str]) -> bool:
    if fields.has_content:
        return True
    warnings.append(f"{spec.key}: the block has no text besides its card tag; skipped")
    return False


# Deciding what changes --------------------------------------------------------------------


def _fields_of(note: NoteFields) -> dict[str, str]:
    """The fields as written: in the form Anki's editor keeps (see editor_html.py)."""
    return {name: editor_stable(value) for name, value in note.fields.items()}

def _update_for(
    note: ExistingNote, spec: CardSpec, note_fields: NoteFields, media: MediaStore | None,
    options: SyncOptions, extra_tags: Iterable[str] = (), duplicate: bool = False,
) -> Update:
    state = note.state
    rendered = _fields_of(note_fields)
    current = {name: note.fields.get(name, "") for name in rendered}
    current[SOURCE] = strip_state(current.get(SOURCE, ""))
    sides = two_way.compare(state, current, rendered)
    chosen = dict(options.resolutions).get(spec.key)
    keep = set() if chosen == "notes" else set(sides.anki) | set(sides.acknowledged)
    if sides.conflicts and (chosen or options.on_conflict) != "notes":
        keep |= set(sides.conflicts)
    fields = {name: current[name] if name in keep else value for name, value in rendered.items()}
    conflict = bool(sides.conflicts) and chosen is None and options.on_conflict == "keep"
    # An edit kept from Anki stays recognised as one: its field keeps the digest the bridge
    # wrote, and the note keeps the time it was last written clean, so every run looks again
    # and reports it until it is settled.
    written = dict(state.fields) if state else {}
    digests = tuple((n, written[n]) if n in keep and n in written else (n, d)
                    for n, d in digests_of(fields))
    acknowledged = dict(state.kept) if state else {}
    if chosen == "anki":
        acknowledged.update((n, field_digest(current[n])) for n in keep)
    outstanding = keep - set(acknowledged) if chosen != "anki" else set()
    ours_before = set(state.tags) if state else {
        t.lower() for t in note.tags if t.lower().startswith(BRIDGE_TAG_PREFIX)
    }
    desired = [*note_tags(spec.tags), *((DUPLICATE_TAG,) if duplicate else ()),
               *((two_way.CONFLICT_TAG,) if conflict else ())]
    tags, ours = _merge_tags([*note.tags, *extra_tags], ours_before, desired,
                             drop=(ORPHAN_TAG, DUPLICATE_TAG, two_way.CONFLICT_TAG))
    deck_before = state.deck if state else None
    new_state = NoteState(
        source_hash=spec.source_hash, tags=ours, deck=spec.deck, location=spec.location,
        clozes=note_fields.clozes, page=_page_to_remember(spec),
        media=_media_of(spec, media), fields=digests,
        written=state.written if outstanding and state else 0,
        kept=tuple((n, d) for n, d in acknowledged.items() if n in keep),
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
    update.live_ords = note_fields.live_ords
    shown = {n: (rendered[n], current[n]) for n in sorted(keep) if n in rendered}
    if shown:
        update.anki_edit = AnkiEdit(note.id, spec.key, shown, conflict=conflict,
                                    outstanding=tuple(sorted(outstanding)))
    return update


def _write_back_for(
    graph: Graph, options: SyncOptions, note: ExistingNote, spec: CardSpec, memory: ClozeMemory,
    update: Update, media: MediaStore | None, result: SyncPlan, extra_tags: Iterable[str],
    duplicate: bool,
) -> WriteBack | None:
    """How the notes can say the note's Anki edit (see write_back.py), and the note's update
    once they do: its fields become the notes' rendering of the new text, recorded as what
    the bridge wrote, so the next run sees nothing to settle."""
    assert update.anki_edit is not None
    proposal = write_back.propose(graph, options.cards, options.deck, spec, memory,
                                  update.anki_edit.fields, media.resolve if media else None)
    if proposal.problems:
        result.write_back_problems[spec.key] = "; ".join(proposal.problems.values())
    if not proposal.edits or proposal.spec is None or proposal.fields is None:
        return None
    then = _update_for(note, proposal.spec, proposal.fields, media, options, extra_tags,
                       duplicate)
    return WriteBack(tuple(proposal.edits), then)


def _state_changed(note: ExistingNote, state: NoteState) -> bool:
    """Whether writing ``state`` would change what the note remembers (its write time
    aside)."""
    return note.state is None or replace(note.state, written=0) != replace(state, written=0)


def note_tags(tags: Iterable[str]) -> list[str]:
    """The tags a note's block asks for, kept clear of the bridge's own state tags."""
    return [f"{t}_" if t.lower() in STATE_TAGS else t for t in tags]


def _retired(note: ExistingNote) -> Update:
    """An orphan whose key another note takes: it keeps its fields under a key no block will
    have (``md-…~<note id>``, still without a stable id, so content can re-match it)."""
    update = _orphan_update(note) if not note.orphaned else Update(
        note=note, state=note.state or NoteState())
    fields = {name: value for name, value in note.fields.items() if name != SOURCE_ID}
    fields[SOURCE] = strip_state(fields.get(SOURCE, ""))
    update.fields, update.new_key = fields, f"{note.key}~{note.id}"
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
    kept = list(dict.fromkeys(t for t in current if t.lower() not in ours_lower))
    kept_lower = {t.lower() for t in kept}
    ours = tuple(t for t in desired if t.lower() not in kept_lower)
    return kept + list(ours), ours


def _attach_card_changes(col: Collection, result: SyncPlan) -> None:
    """Card-level changes, from one query over the notes that change: which cards the bridge
    suspends or unsuspends, whether the note needs new cards, and whether cards need moving
    when no deck was remembered.

    The bridge suspends the cards of an orphan (policy "suspend") and cards left empty by a
    change (a reverse card no longer wanted, a cloze number that is gone), and remembers
    which it suspended: it unsuspends only those, never a card the user suspended.
    """
    pending = [*result.updates, *result.orphans]
    if not pending:
        return
    suspend_orphans = result.options.on_removed == "suspend"
    cards = owned.cards_of(col, (u.note.id for u in pending))
    names: dict[DeckId, str] = {}
    for update in pending:
        note_cards = cards.get(update.note.id, [])
        if update.live_ords is None:
            want = {c.id for c in note_cards} if suspend_orphans else set()
        else:
            want = {c.id for c in note_cards if c.ord not in update.live_ords}
            update.new_cards = bool(update.live_ords - {c.ord for c in note_cards})
            update.cards_deck = note_cards[0].deck_id if note_cards else None
        ours_before = {CardId(c) for c in (update.note.state.suspended if update.note.state
                                          else ())}
        ours_before &= {c.id for c in note_cards}
        update.suspend = tuple(c.id for c in note_cards if c.id in want and c.queue != -1)
        update.unsuspend = tuple(sorted(ours_before - want))
        update.state = replace(
            update.state, suspended=tuple(sorted((ours_before & want) | set(update.suspend)))
        )
        # Without memory of the deck we set, only move cards that are elsewhere.
        if update.deck is not None and update.note.state is None:
            for c in note_cards:
                if c.deck_id not in names:
                    names[c.deck_id] = col.decks.name_if_exists(c.deck_id) or ""
            if all(names[c.deck_id] == update.deck for c in note_cards):
                update.deck = None


# Writing ----------------------------------------------------------------------------------


# When the note type changes, each field's content follows its counterpart; the update that
# follows rewrites the fields anyway, so the mapping matters only for what a user sees if the
# run is interrupted in between.
_FIELD_MAP: dict[tuple[Kind, Kind], dict[str, str]] = {
    (old, new): kind_change_map(old, new) for old in KINDS for new in KINDS if old != new
}


def _new_state(sync_plan: SyncPlan, spec: CardSpec, fields: dict[str, str]) -> NoteState:
    return NoteState(spec.source_hash, tuple(note_tags(spec.tags)), spec.deck, spec.location,
                     clozes=sync_plan.rendered[spec.key].clozes, page=_page_to_remember(spec),
                     media=sync_plan.new_media.get(spec.key, ()), fields=digests_of(fields))


def _filled(fields: dict[str, str], key: str, state: NoteState, started: int
            ) -> dict[str, str]:
    if not state.written:  # written clean now (a kept Anki edit keeps the earlier time)
        state = replace(state, written=started)
    return {**fields, SOURCE: fields[SOURCE] + state.to_html(), SOURCE_ID: key}


def _new_note(sync_plan: SyncPlan, spec: CardSpec, types: dict[Kind, NotetypeDict],
              decks: writing.Decks, started: int) -> NoteToAdd:
    nt = types[spec.kind]
    rendered = _fields_of(sync_plan.rendered[spec.key])
    fields = _filled(rendered, spec.key, _new_state(sync_plan, spec, rendered), started)
    return NoteToAdd(
        key=spec.key, guid=sync_plan.guid(spec), notetype=nt,
        fields=[fields.get(f["name"], "") for f in nt["flds"]],
        tags=note_tags(spec.tags), deck_id=decks.id(spec.deck),
    )


def _more_cards(update: Update, notetypes_by_id: dict[int, NotetypeDict],
                decks: writing.Decks) -> NoteToAdd:
    """An existing note, with the fields it is about to get, so that the importer adds the
    cards those fields call for and the note lacks (the note itself is left to the update)."""
    nt = notetypes_by_id[_notetype_after(update, notetypes_by_id)]
    fields = update.fields or update.note.fields
    return NoteToAdd(
        key=update.new_key or update.note.key, guid=update.note.guid, notetype=nt,
        fields=[fields.get(f["name"], "") for f in nt["flds"]], tags=update.note.tags,
        deck_id=update.cards_deck or decks.id(update.deck or update.state.deck or "Default"),
        existing_id=update.note.id,
    )


def _notetype_after(update: Update, notetypes_by_id: dict[int, NotetypeDict]) -> int:
    """The note type the note has once the run changed its kind (if it does)."""
    if update.new_kind:
        return next(ntid for ntid, nt in notetypes_by_id.items()
                    if nt.get(notetypes.MARKER, {}).get("kind") == update.new_kind)
    return update.note.notetype_id


def _notetypes_by_id(col: Collection, types: dict[Kind, NotetypeDict],
                     updates: Iterable[Update]) -> dict[int, NotetypeDict]:
    """Our note types by id: the ones kept, and any copy a note still belongs to."""
    by_id = {nt["id"]: nt for nt in types.values()}
    for update in updates:
        ntid = update.note.notetype_id
        if ntid not in by_id:
            nt = col.models.get(ntid)
            assert nt is not None
            by_id[ntid] = nt
    return by_id


def _update_notes(col: Collection, notetypes_by_id: dict[int, NotetypeDict],
                  updates: list[Update], steps: writing.Steps, started: int) -> None:
    """Rewrite changed notes from what planning already read (fields, tags, GUID): no note
    is fetched again, one at a time, from the collection."""
    after = {id(u): _notetype_after(u, notetypes_by_id) for u in updates}
    blanks = writing.blank_notes(col, {ntid: notetypes_by_id[ntid] for ntid in after.values()})
    notes = []
    for update in updates:
        existing = update.note
        key = update.new_key or existing.key
        if update.fields is not None:
            fields = _filled(update.fields, key, update.state, started)
        else:
            fields = _filled({**existing.fields,
                              SOURCE: strip_state(existing.fields.get(SOURCE, ""))},
                             key, update.state, started)
        tags = update.tags if update.tags is not None else existing.tags
        notes.append(writing.note_like(blanks[after[id(update)]], fields, tags, existing.guid,
                                       existing.id))
    writing.update_notes(col, notes, steps)

"""One source's way through a sync, the same from the add-on and from the CLI.

    graph = pipeline.read(source, read_options)              # the notes, as a Graph
    planned = pipeline.plan(source, graph, col, options, read_options)
    pipeline.write_back([planned], journal)                  # Anki edits into the notes
    report = sync.apply_all([planned.plan], col)             # then the collection

The add-on and the CLI differ only in how they show progress and what they ask the user
between the steps (a preview, the removal guard); the order is the contract:

- ``plan`` writes missing ``id::`` into Logseq card blocks first (a source's ``write_ids``,
  id_writes.py), then plans, and finds the writer for the source when its ``write_back`` is
  on (what can be written is the source format's, registry.py);
- ``write_back`` writes the Anki edits the plan found a text for into the notes, journals them
  first (``Journal``: Roam's API has no undo), and turns each note written into its update
  "as the notes now say": so the collection is written after the notes, and a run that stops
  in between is healed by the next (it finds notes and Anki saying the same);
- ``revert_last`` puts back what the last write-back replaced, wherever the notes still say
  what it wrote.

A long-lived caller passes ``read`` the folder's ``FolderCache`` (only changed files are
parsed), plans with ``scope_for``'s scope (only the notes the changed pages can affect, where
that is sound; None plans every note) and calls ``settle`` once the plan is applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from anki.collection import Collection

from . import sync, unchanged
from .block_writes import BlockEdit, BlockWriter, FolderWriter, Journal, RoamWriter, reverted
from .config import Config, OnConflict, SourceConfig, SyncOptions
from .id_writes import write_ids
from .model import Graph, SourceError
from .progress import Progress, silent
from .sources.detect import detect_kind, read_source
from .sources.files import read_file
from .sources.folder_cache import FolderCache
from .sources.outline import digest
from .sources.registry import FORMATS, Format, ReadOptions, api_format

JOURNAL_NAME = "write-back-journal.jsonl"


@dataclass
class Planned:
    """One source, planned: the plan, and the writer its Anki edits go back through."""

    source: SourceConfig
    plan: sync.SyncPlan
    graph_name: str
    writer: BlockWriter | None = None


def options_for(config: Config, source: SourceConfig, *, force: bool = False,
                resolutions: Sequence[tuple[str, OnConflict]] = ()) -> SyncOptions:
    """The sync options of one source under ``config``."""
    return SyncOptions(
        cards=replace(config.cards, brace_clozes=source.brace_clozes),
        deck=source.deck, on_removed=config.on_removed, force=force,
        download_images=config.download_images, on_conflict=config.on_conflict,
        write_back=source.write_back, resolutions=tuple(resolutions),
    )


def read(source: SourceConfig, read_options: ReadOptions, cache: FolderCache | None = None
         ) -> Graph:
    """The source's notes (SourceError when they cannot be read). ``cache``: the folder's
    pages as the caller's last read left them, so that only changed files are parsed."""
    return read_source(source.path, source.graph, source.kind,
                       replace(read_options, include=source.include, exclude=source.exclude,
                               folder_cache=cache))


def scope_for(cache: FolderCache | None, look: unchanged.Look | None, col: Collection
              ) -> set[str] | None:
    """The blocks to plan after a read through ``cache`` (for sync.plan's ``scope``), or
    None to plan every note. Scoped only where that is sound: the last read the cache
    settled (``settle``) was planned and applied with nothing left for later, under the
    same options, into a collection nothing has changed since; and since then only page
    files changed (an attachment or the graph's config may change any note). The scope is
    then what the cache says changed (folder_cache.py)."""
    if cache is None or not cache.reads or look is None or look.files is None \
            or cache.changes is None:
        return None  # no folder read through the cache (an export), or nothing known
    mark = cache.mark
    if not isinstance(mark, _Mark) or mark.digest != look.digest or mark.graph != cache.where \
            or mark.collection != unchanged.collection_state(col):
        return None
    then, now = mark.files, look.files
    pages = mark.pages | cache.page_files()
    if any(rel not in pages for rel in then.keys() ^ now.keys()) or any(
            rel not in pages for rel, state in now.items()
            if rel in then and then[rel][3] != state[3]):
        return None
    return set(cache.changes)


def settle(cache: FolderCache | None, read_number: int, look: unchanged.Look | None,
           plan: sync.SyncPlan, col: Collection) -> None:
    """After ``plan`` (of the graph read number ``read_number`` of ``cache`` read) was
    applied: when it left nothing for later, later reads may plan only what changed."""
    if cache is None or not cache.reads:
        return
    if look is None or look.files is None or not unchanged.settled(plan, scoped=True):
        cache.mark = None
        return
    cache.settle(read_number, _Mark(look.digest, cache.where, look.files,
                                    unchanged.collection_state(col),
                                    frozenset(cache.page_files())))


@dataclass(frozen=True)
class _Mark:
    """What a settled run left, for ``scope_for`` to compare."""

    digest: str
    graph: tuple[str, str]
    files: unchanged.FileStates
    collection: unchanged.CollectionState
    pages: frozenset[str]


def plan(
    source: SourceConfig, graph: Graph, col: Collection, options: SyncOptions,
    read_options: ReadOptions, progress: Progress = silent, scope: set[str] | None = None,
    dry_run: bool = False,
) -> Planned:
    """Plan one source (see the module doc). A dry run writes nothing, not even ids."""
    fmt = format_of(source) if source.write_ids or options.write_back else None
    notices: list[str] = []
    if fmt is not None and fmt.writes_ids and source.write_ids and not dry_run:
        before = dict(graph.blocks) if scope is not None else {}
        notices = write_ids(graph, options.cards.card_tags)
        renamed = {uid: block.uid for uid, block in before.items() if block.uid != uid}
        if scope is not None and renamed:
            # A block that got its id:: now has another uid: plan it under both, or plan
            # every note when it was not in the scope.
            scope = scope | set(renamed.values()) if renamed.keys() <= scope else None
    writer: BlockWriter | None = None
    problem = ""
    if options.write_back and fmt is not None and not fmt.writable:
        problem = "an export cannot be written"
    elif options.write_back and not dry_run:
        try:
            writer = writer_for(source, graph, read_options)
        except SourceError as err:
            problem = f"cannot write back: {err.message}"
    if problem:
        options = replace(options, write_back=False)
    planned = Planned(source, sync.plan(graph, col, options, progress, scope=scope),
                      graph.name, writer)
    planned.plan.warnings.extend(notices)
    if problem and planned.plan.anki_edits:
        planned.plan.warnings.append(f"{source.path}: {problem}; edits made in Anki are kept "
                                     "and listed until you settle them")
    return planned


def format_of(source: SourceConfig) -> Format:
    return FORMATS[source.kind if source.kind != "auto" else detect_kind(source.path)]


def writer_for(source: SourceConfig, graph: Graph, read_options: ReadOptions
               ) -> BlockWriter | None:
    """How to write into the source's notes; None for an export."""
    fmt = format_of(source)
    if fmt.connect is not None:
        return RoamWriter(fmt.connect(source.path, graph.name, read_options))
    if fmt.writes_files:
        return FolderWriter(graph.root or str(Path(source.path).expanduser()),
                            graph.file_digests)
    return None


def write_back(planned: Sequence[Planned], journal: Journal) -> None:
    """Write each plan's Anki edits into its notes (see the module doc); the notes written
    get their "as the notes now say" update, the others keep their edit in Anki, with the
    reason in the plan's ``write_back_problems``."""
    for one in planned:
        pending = one.plan.pending_write_backs
        if not pending or one.writer is None:
            continue
        edits = [edit for update in pending if update.write_back
                 for edit in update.write_back.edits]
        journal.record(one.writer.where, edits)
        done = one.writer.write(edits)
        if len(done.written) != len(edits):  # the journal keeps only what was written
            journal.drop_last()
            journal.record(one.writer.where, done.written)
        written = {(e.key, e.uid) for e in done.written}
        updates = []
        for update in one.plan.updates:
            wb = update.write_back
            if wb is not None and all((e.key, e.uid) in written for e in wb.edits):
                updates.append(wb.then)
            else:
                if wb is not None:
                    key = wb.edits[0].key
                    one.plan.write_back_problems[key] = done.failed.get(key, "not written")
                update.write_back = None
                updates.append(update)
        one.plan.updates = updates
        one.plan.written_back.extend(done.written)


def revert_last(journal: Journal, read_options: ReadOptions
                ) -> tuple[list[BlockEdit], dict[str, str]]:
    """Put back what the newest journal entry's write-back replaced: the edits reverted, and
    why the others were not (their text changed since). Reverted edits leave the journal;
    the others stay, to try again."""
    last = journal.last()
    if last is None:
        return [], {}
    where, edits = last
    writer = _writer_at(where, edits, read_options)
    done = writer.write(reverted(edits))
    journal.drop_last()
    undone = {(e.key, e.uid) for e in done.written}
    left = [e for e in edits if (e.key, e.uid) not in undone]
    if left:
        journal.record(where, left)
    return done.written, done.failed


def _writer_at(where: str, edits: Sequence[BlockEdit], read_options: ReadOptions
               ) -> BlockWriter:
    api = api_format(where)
    if api is not None and api.url_graph is not None:
        graph = Graph(api.app, api.url_graph(where))
        writer = writer_for(SourceConfig(path=where), graph, read_options)
        assert writer is not None
        return writer
    root = Path(where)
    digests: dict[str, str] = {}
    for rel in {e.file for e in edits if e.file}:
        try:
            digests[rel] = digest(read_file(root / rel))
        except (OSError, SourceError):
            continue  # the writer says the file cannot be read
    return FolderWriter(where, digests)


def check_unique(planned: Sequence[Planned], graph: Graph, source: SourceConfig) -> str:
    """Why ``graph`` may not be planned beside ``planned`` ("" if it may): two sources under
    one graph name would each remove the other's notes."""
    prefix = f"{graph.source}:{graph.name}:"
    if any(p.plan.prefix == prefix for p in planned):
        return (f"{source.path}: graph {graph.name!r} is already synced from another source; "
                "give each source its own graph")
    return ""

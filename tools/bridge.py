"""Headless bridge: ``python -m tools.bridge sync SOURCE --collection PATH [...]``,
``python -m tools.bridge watch SOURCE --collection PATH [--interval S] [--ankiweb]`` (see
tools/watch.py), ``python -m tools.bridge login --collection PATH`` and
``python -m tools.bridge rename-graph OLD NEW --collection PATH`` and
``python -m tools.bridge revert-write-back --collection PATH``.

The same plan/apply engine as the add-on, against a collection file. Exit codes:
0 done; 2 bad input (one line on stderr; the collection untouched): an unreadable source, a
``--collection`` that is neither a collection nor a new ``.anki2`` file in an existing
folder, or blocks that already have notes under another graph name; 3 refused by the
mass-orphan guard (nothing written); 1 anything else, such as a collection open in Anki, or
Ctrl-C (one line on stderr saying what was written). Ctrl-C while the collection is being
written takes effect once the write is done, so an interrupted run never leaves a sync half
applied. Every line printed is plain text: characters a terminal would act on (escapes, from
a file name or a server) are shown escaped.

Each subcommand is one ``_add_<name>`` that registers its arguments and the function that
runs it; ``main`` only dispatches.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anki.collection  # noqa: F401  (import first: anki 26.9 has an import cycle otherwise)
from anki.collection import Collection
from anki.errors import DBError

from addon.core import graphs, pipeline, preview, sync, unchanged
from addon.core.apps import SOURCES
from addon.core.block_writes import Journal
from addon.core.config import ON_CONFLICT, CardOptions, Config, SourceConfig, SyncOptions
from addon.core.graphs import GraphMismatch
from addon.core.model import Graph, SourceError, gc_paused
from addon.core.render import plain_text
from addon.core.sources import roam_api
from addon.core.sources.detect import is_api
from addon.core.sources.registry import KINDS, ReadOptions

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT, EXIT_REFUSED = 0, 1, 2, 3
COLLECTION_SUFFIX = ".anki2"
COUNTS = ("created", "updated", "unchanged", "orphaned", "moved", "deleted")
# How a count reads when nothing was written (a dry run, or a run the guard refused).
WOULD = {"created": "would create", "updated": "would update", "unchanged": "unchanged",
         "orphaned": "would orphan", "moved": "would move", "deleted": "would delete"}
SQLITE_HEADER = b"SQLite format 3\x00"


class CollectionUnavailable(Exception):
    """The collection cannot be opened; ``code`` is the exit code to end with."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


class _Interrupted(Exception):
    """Ctrl-C came while the collection was written; the write was finished first."""

    def __init__(self, report: sync.Report) -> None:
        super().__init__()
        self.report = report


class _Stage:
    """How far a run got, for a failure's one line to say what is true."""

    def __init__(self) -> None:
        self.writing = False


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    run_command: Callable[[argparse.Namespace], int] = args.run
    try:
        return run_command(args)
    except KeyboardInterrupt:
        _PROGRESS.end()
        _say("interrupted (Ctrl-C); no note was added or changed")
        return EXIT_ERROR
    except _Interrupted as done:
        _PROGRESS.end()
        counts = done.report.counts()
        _say(f"interrupted (Ctrl-C) while the collection was written; the sync was finished "
             f"first ({counts['created']} created, {counts['updated']} updated, "
             f"{counts['orphaned']} orphaned)")
        return EXIT_ERROR
    except BrokenPipeError:
        # Whoever read our output stopped (``| head``). What ran is done; say nothing more,
        # and keep the interpreter's final flush from printing a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return getattr(args, "exit_code", EXIT_OK)


# sync -------------------------------------------------------------------------------------


def _add_sync(commands: Any) -> None:
    cmd = commands.add_parser("sync", help="sync a source into a collection")
    cmd.set_defaults(run=_sync)
    cmd.add_argument(
        "source", help="export file (.json, .edn), zip, folder, roam-api://GRAPH or "
        f"roam-local://GRAPH (token in ${roam_api.TOKEN_ENV})",
    )
    cmd.add_argument(
        "--collection", required=True,
        help=f"a collection, or a new {COLLECTION_SUFFIX} file in an existing folder",
    )
    cmd.add_argument("--dry-run", action="store_true",
                     help="plan, list the notes it would change, and write nothing")
    cmd.add_argument("--force", action="store_true", help="allow orphaning most notes")
    cmd.add_argument("--json", action="store_true", help="end with a JSON line of counts")
    _add_source_options(cmd)


def _add_source_options(cmd: Any) -> None:
    """The flags that say what a source is and how it syncs: one set for sync and watch."""
    cmd.add_argument("--graph", default="", help="graph name (default: the source's name)")
    cmd.add_argument("--deck", default="", help="deck for cards without a deck:: attribute")
    cmd.add_argument("--card-tag", action="append", help="a card tag (repeatable)")
    cmd.add_argument(
        "--on-removed", choices=("suspend", "delete", "keep"), default="suspend",
        help="what happens to notes whose block is gone (default: suspend)",
    )
    cmd.add_argument("--kind", choices=("auto", *KINDS), default="auto",
                     help="the source's format (default: detected)")
    cmd.add_argument("--include", action="append", metavar="GLOB",
                     help="only notes whose path matches (Obsidian; repeatable)")
    cmd.add_argument("--exclude", action="append", metavar="GLOB",
                     help="skip notes whose path matches (Obsidian; repeatable)")
    cmd.add_argument("--write-ids", action="store_true",
                     help="write id:: into Logseq card blocks that have none")
    cmd.add_argument("--brace-clozes", action="store_true",
                     help="read {x} in a card block as a cloze (off: braces are text)")
    cmd.add_argument("--write-back", action="store_true",
                     help="write edits made in Anki back into the notes (Logseq, Obsidian, "
                     "the Roam APIs)")
    cmd.add_argument("--on-conflict", choices=ON_CONFLICT, default="keep",
                     help="a note edited in Anki and in the notes: keep both as they are and "
                     "list it (default), let the notes win, or let Anki win")
    cmd.add_argument("--no-images", action="store_true",
                     help="leave images as links instead of downloading them into media")
    cmd.add_argument("--api-base-url", default="", help=argparse.SUPPRESS)


def _sync(args: argparse.Namespace) -> int:
    # One pause for the whole run: re-enabling the collector between steps would make it
    # scan the freshly built graph (hundreds of thousands of objects) for nothing.
    with gc_paused():
        args.exit_code = _sync_paused(args)
    return args.exit_code


def _sync_paused(args: argparse.Namespace) -> int:
    collection = Path(args.collection).expanduser()
    problem = collection_problem(collection)
    if problem:
        _say(f"{collection}: {problem}")
        return EXIT_BAD_INPUT
    source, config = _source_and_config(args)
    from_api = is_api(args.source)
    options = pipeline.options_for(config, source, force=args.force)
    # Looked at before it is read: an edit made while this run reads it is the next run's.
    ledger = unchanged.Ledger(unchanged.beside(collection))
    look = None if args.dry_run else ledger.look(args.source, options,
                                                  unchanged.run_extra(source))
    if look is not None and look.source_as_recorded and collection.exists():
        skipped = _skip_if_unchanged(look, collection)
        if skipped is not None:
            _print_report(skipped, look.graph, [], as_json=args.json)
            return EXIT_OK
    read_options = ReadOptions(
        api_token=os.environ.get(roam_api.TOKEN_ENV, ""),
        api_base_url=args.api_base_url or roam_api.DEFAULT_BASE_URL,
        progress=_PROGRESS.pages if from_api else None,
        notice=_PROGRESS.notice if from_api else None,
    )
    try:
        graph = pipeline.read(source, read_options)
    except SourceError as err:
        _PROGRESS.end()
        _say(str(err))
        return EXIT_BAD_INPUT
    _PROGRESS.end()
    listed: list[preview.Change] = []
    stage = _Stage()
    try:
        report = run(graph, collection, options, dry_run=args.dry_run,
                     listing=listed if args.dry_run else None, stage=stage,
                     source=source, read_options=read_options,
                     look=(look, ledger) if look is not None else None)
    except GraphMismatch as err:
        _say(str(err))
        return EXIT_BAD_INPUT
    except SourceError as err:  # writing ids into the notes, or reaching them to write back
        _say(str(err))
        return EXIT_BAD_INPUT
    except CollectionUnavailable as err:
        _say(str(err))
        return err.code
    except _Interrupted:
        raise
    except Exception as err:
        if os.environ.get("ROAM_BRIDGE_DEBUG"):
            raise
        what = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
        when = "while writing to the collection" if stage.writing else "before writing"
        _say(f"sync failed {when} ({what}); no note was added or changed (a sync is written "
             "whole or not at all); ROAM_BRIDGE_DEBUG=1 shows details")
        return EXIT_ERROR
    args.exit_code = EXIT_REFUSED if report.refused else EXIT_OK
    _print_report(report, f"{graph.source}:{graph.name}", listed, as_json=args.json)
    return args.exit_code


def _source_and_config(args: argparse.Namespace) -> tuple[SourceConfig, Config]:
    """The CLI's flags as the add-on's settings: one source, and the options around it."""
    source = SourceConfig(
        path=args.source, kind=args.kind, graph=args.graph, deck=args.deck or "",
        include=tuple(args.include or ()), exclude=tuple(args.exclude or ()),
        write_ids=args.write_ids and not args.dry_run, brace_clozes=args.brace_clozes,
        write_back=args.write_back,
    )
    config = Config(
        sources=(source,),
        cards=CardOptions(card_tags=tuple(args.card_tag or CardOptions().card_tags)),
        on_removed=args.on_removed, on_conflict=args.on_conflict,
        download_images=not args.no_images,
    )
    return source, config


def journal_for(collection: Path) -> Journal:
    """The write-back journal of a collection file: beside it."""
    return Journal(collection.with_name(f"{collection.name}.{pipeline.JOURNAL_NAME}"))


def _skip_if_unchanged(look: unchanged.Look, collection: Path) -> sync.Report | None:
    """The report of a run with nothing to do, when the collection is as the last settled
    run left it too (else None: the run reads and plans). The collection is only read
    with SQLite, not opened; one that is open in Anki is never taken as unchanged (the run
    goes on, and its open says so)."""
    return look.report() if look.compare_file(collection) else None


def collection_problem(path: Path) -> str:
    """Why ``path`` cannot be the collection to sync into ("" when it can): it must be an
    Anki collection, or a new ``.anki2`` file whose folder exists. Reads only."""
    if path.is_dir():
        return f"is a folder; give the path of a collection{COLLECTION_SUFFIX} file"
    if not path.exists():
        if path.suffix.lower() != COLLECTION_SUFFIX:
            return (f"no such collection; a new one is made only for a name that ends in "
                    f"{COLLECTION_SUFFIX}")
        if not path.parent.is_dir():
            return f"no such collection, and its folder {path.parent} does not exist"
        return ""
    try:
        with path.open("rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except OSError as err:
        return f"cannot be read ({err.strerror or err})"
    if header != SQLITE_HEADER:
        return "not an Anki collection"
    return "" if _has_anki_tables(path) else "not an Anki collection (a database of another kind)"


def _has_anki_tables(path: Path) -> bool:
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=0.2)
    except sqlite3.Error:
        return True  # let the collection's own open say what is wrong
    try:
        return con.execute("select 1 from sqlite_master where name = 'col'").fetchone() is not None
    except sqlite3.OperationalError:
        return True  # locked by Anki: the open that follows says so
    finally:
        con.close()


class _Progress:
    """The API reader's progress, as one line rewritten in place, on a terminal only: a log
    keeps only the outcome (one line on failure)."""

    def __init__(self) -> None:
        self.line = ""
        self.open = False

    def pages(self, done: int, total: int) -> None:
        self.line = f"read {done} of {total} pages"
        self._show(self.line)

    def notice(self, text: str) -> None:
        self._show(f"{self.line}; {text}" if self.line else text)

    def end(self) -> None:
        if self.open:
            print(file=sys.stderr)
            self.open = False

    def _show(self, text: str) -> None:
        if sys.stderr.isatty():
            # \r and "erase to the end of the line": each report replaces the last one.
            print(f"\r\x1b[Kroam-bridge: {printable(text)}", end="", file=sys.stderr,
                  flush=True)
            self.open = True


_PROGRESS = _Progress()


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on, or that cannot be encoded,
    written as an escape (``\\x1b``, ``\\udcff``), so a file name or a server message can
    never move the cursor, clear the screen or change a title."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def _say(line: str) -> None:
    print(f"roam-bridge: {printable(line)}", file=sys.stderr)


def run(
    graph: Graph, collection: Path, options: SyncOptions, dry_run: bool = False,
    listing: list[preview.Change] | None = None, stage: _Stage | None = None,
    source: SourceConfig | None = None, read_options: ReadOptions | None = None,
    look: tuple[unchanged.Look, unchanged.Ledger] | None = None,
) -> sync.Report:
    """Plan (and unless ``dry_run``, apply) ``graph`` against the collection file. With a
    ``listing``, it is filled with the notes the plan would change (see preview.py).
    ``source`` is where the graph was read from (for writing ids and Anki edits back). With a
    ``look`` (taken before the graph was read), a settled run is recorded in its ledger."""
    stage = stage or _Stage()
    source = source or SourceConfig(path=graph.root or graph.name)
    read_options = read_options or ReadOptions()
    if dry_run and not collection.exists():
        # Nothing may be written, not even a new collection: plan against a throwaway one.
        with tempfile.TemporaryDirectory() as scratch:
            return _run_open(graph, Path(scratch) / "dry-run.anki2", options, True, listing,
                             stage, source, read_options, journal_for(collection), None)
    return _run_open(graph, collection, options, dry_run, listing, stage, source,
                     read_options, journal_for(collection), look)


def _run_open(
    graph: Graph, path: Path, options: SyncOptions, dry_run: bool,
    listing: list[preview.Change] | None, stage: _Stage, source: SourceConfig,
    read_options: ReadOptions, journal: Journal,
    look: tuple[unchanged.Look, unchanged.Ledger] | None,
) -> sync.Report:
    try:
        col = Collection(str(path))
    except DBError as err:
        raise CollectionUnavailable(*_why_unopenable(path, err)) from None
    try:
        if look is not None:
            look[0].compare(col)
        planned = pipeline.plan(source, graph, col, options, read_options, dry_run=dry_run)
        the_plan = planned.plan
        graph.release()  # freed now, by reference counting, not by the collector at exit
        if listing is not None:
            listing.extend(preview.changes(the_plan))
        if dry_run or the_plan.refused:
            report = the_plan.report()
            report.dry_run = dry_run
            return report
        with _deferred_interrupt() as interrupted:
            stage.writing = True
            pipeline.write_back([planned], journal)
            if look is None:
                report = sync.apply(the_plan, col)
            else:
                with look[1].recording(col, [(look[0], the_plan)]):
                    report = sync.apply(the_plan, col)
            stage.writing = False
        if interrupted:
            raise _Interrupted(report)
        if report.full_sync:
            report.warnings.append(
                "note types changed (notes between basic and cloze, or copies of Roam "
                "Bridge's note types merged): the next AnkiWeb sync will be a full sync"
            )
        return report
    finally:
        col.close()


@contextmanager
def _deferred_interrupt() -> Iterator[list[bool]]:
    """Hold Ctrl-C back while the block runs (the collection is written in a few batched
    calls, so this is seconds at most); the yielded list says whether it came."""
    came: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield came
        return

    def note(signum: int, frame: Any) -> None:
        came.append(True)

    previous = signal.signal(signal.SIGINT, note)
    if previous == signal.SIG_IGN:  # started under nohup, or as a background job
        signal.signal(signal.SIGINT, previous)
    try:
        yield came
    finally:
        signal.signal(signal.SIGINT, previous)


def _why_unopenable(path: Path, err: DBError) -> tuple[str, int]:
    message = str(err)
    if "already open" in message.lower():
        return (f"{path}: the collection is open in Anki (or another program); close it and "
                "try again", EXIT_ERROR)
    if "NotADatabase" in message:
        return f"{path}: not an Anki collection", EXIT_BAD_INPUT
    return f"{path}: cannot open the collection ({message})", EXIT_ERROR


def _print_report(
    report: sync.Report, graph: str, listed: list[preview.Change], as_json: bool
) -> None:
    counts = report.counts()
    counts["warnings"] = [printable(w) for w in counts["warnings"]]
    counts["errors"] = [printable(e) for e in counts["errors"]]
    written = not (report.dry_run or report.refused)
    title = printable(f"Roam Bridge sync of {graph}")
    if report.dry_run:
        title += " (dry run: nothing was written)"
    elif report.refused:
        title += " (refused: nothing was written)"
    lines = [title]
    for name in COUNTS:
        label = name if written else WOULD[name]
        lines.append(f"  {label:<12} {counts[name]:>6}")
    lines.extend(f"  warning: {w}" for w in counts["warnings"])
    lines.extend(f"  error: {e}" for e in counts["errors"])
    if report.refused and not report.dry_run:
        lines.append("  --dry-run lists the notes; --force makes the run")
    for change in listed:
        lines.append(printable(f"  {change.label:<15} {change.key}  {_one_line(change)}"))
    lines.extend(printable(line) for line in _edit_lines(report, written))
    if as_json:
        counts["anki_edits"] = [_edit_json(e, report) for e in report.anki_edits]
        counts["write_backs"] = [asdict(e) for e in
                                 (report.written if written else report.to_write_back)]
        if report.dry_run:
            counts["notes"] = {action: [c.as_dict() for c in group]
                               for action, group in preview.by_action(listed).items()}
        lines.append(json.dumps(counts, ensure_ascii=False))
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def _edit_lines(report: sync.Report, written: bool) -> Iterator[str]:
    """One line per note edited in Anki: written back, kept (and why), or in conflict."""
    for block_edit in report.written if written else report.to_write_back:
        label = "written back" if written else "would write back"
        yield (f"  {label:<15} {block_edit.key}  {_cut(block_edit.before)} → "
               f"{_cut(block_edit.after)}")
    for edit in report.anki_edits:
        label = "conflict" if edit.conflict else "kept Anki edit"
        for name in edit.outstanding:
            notes, anki = edit.fields[name]
            yield (f"  {label:<15} {edit.key}  {name}: Anki says {_cut(_plain(anki))!r}; "
                   f"your notes still say {_cut(_plain(notes))!r}")
        problem = report.write_back_problems.get(edit.key)
        if problem:
            yield f"  {'':<15} not written back: {problem}"
    if report.conflicts:
        yield ("  conflicts are left as they are (tagged roam::conflict): --on-conflict notes "
               "or anki settles them")


def _edit_json(edit: sync.AnkiEdit, report: sync.Report) -> dict[str, Any]:
    return {"key": edit.key, "note_id": edit.note_id, "conflict": edit.conflict,
            "fields": {name: {"notes": edit.fields[name][0], "anki": edit.fields[name][1]}
                       for name in edit.outstanding},
            "problem": report.write_back_problems.get(edit.key, "")}


def _plain(html_text: str) -> str:
    return " ".join(plain_text(html_text).split())


def _cut(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _one_line(change: preview.Change, width: int = 100) -> str:
    text = f"{change.before} → {change.text}" if change.text_changed else change.text
    extra = "; ".join(change.details)
    line = f"{text} ({extra})" if extra else text
    return line if len(line) <= width else line[: width - 1] + "…"


# watch and login --------------------------------------------------------------------------


def _add_watch(commands: Any) -> None:
    cmd = commands.add_parser("watch", help="keep syncing a source (and AnkiWeb) until stopped")
    cmd.set_defaults(run=_watch)
    cmd.add_argument("source", help="as for sync; roam-api:// and roam-local:// sources are "
                     "polled for what changed")
    cmd.add_argument("--collection", required=True, help="the collection.anki2 file")
    cmd.add_argument("--interval", type=float, default=20.0,
                     help="seconds between looks at the source (default 20)")
    cmd.add_argument("--ankiweb", action="store_true",
                     help="sync with AnkiWeb around every change (credentials from "
                     "ANKIWEB_USERNAME / ANKIWEB_PASSWORD or the login command)")
    cmd.add_argument("--sync-url", default="", help="a self-hosted sync server instead of AnkiWeb")
    cmd.add_argument("--json", action="store_true", help="print each sync as one JSON line")
    cmd.set_defaults(dry_run=False, force=False)
    _add_source_options(cmd)


def _add_login(commands: Any) -> None:
    cmd = commands.add_parser("login", help="log in to AnkiWeb once, for watch --ankiweb")
    cmd.set_defaults(run=_watch)
    cmd.add_argument("--collection", required=True, help="the collection.anki2 file")
    cmd.add_argument("--sync-url", default="", help="a self-hosted sync server")


def _watch(args: argparse.Namespace) -> int:
    from tools import watch

    try:
        if args.command == "login":
            return watch.login(Path(args.collection), args.sync_url)
        if args.interval < 1:
            _say("--interval must be at least 1 second")
            return EXIT_BAD_INPUT
        source, config = _source_and_config(args)
        read_options = ReadOptions(
            api_token=os.environ.get(roam_api.TOKEN_ENV, ""),
            api_base_url=args.api_base_url or roam_api.DEFAULT_BASE_URL,
        )
        collection = Path(args.collection)
        return watch.Watch(
            source, pipeline.options_for(config, source), read_options, collection,
            journal_for(collection), watch.Every(args.interval, args.ankiweb, args.sync_url,
                                                 args.json),
        ).run()
    except watch.WatchError as err:
        _say(str(err))
        return EXIT_ERROR
    except SourceError as err:
        _say(str(err))
        return EXIT_BAD_INPUT


# rename-graph -----------------------------------------------------------------------------


def _add_rename_graph(commands: Any) -> None:
    cmd = commands.add_parser("rename-graph",
                              help="re-key a graph's notes under a new graph name")
    cmd.set_defaults(run=_rename_graph)
    cmd.add_argument("old", help="the graph name the notes have now")
    cmd.add_argument("new", help="the graph name to give them")
    cmd.add_argument("--collection", required=True, help="the collection.anki2 file")
    cmd.add_argument("--source", choices=SOURCES,
                     help="which notes, when the name is used by several kinds")


def _rename_graph(args: argparse.Namespace) -> int:
    """Re-key a graph's notes to a new name (keeping ids, GUIDs and history)."""
    path = Path(args.collection).expanduser()
    if not path.is_file():
        _say(f"{path}: no such collection")
        return EXIT_BAD_INPUT
    try:
        col = Collection(str(path))
    except DBError as err:
        message, code = _why_unopenable(path, err)
        _say(message)
        return code
    try:
        kinds = [args.source] if args.source else [
            kind for kind in SOURCES if graphs.names_in(col, kind).get(args.old)
        ]
        if not kinds:
            _say(f"{path}: no notes of graph {args.old!r}")
            return EXIT_BAD_INPUT
        if len(kinds) > 1:
            _say(f"graph {args.old!r} has notes from {', '.join(kinds)}; choose one with "
                 "--source")
            return EXIT_BAD_INPUT
        try:
            count = graphs.rename(col, kinds[0], args.old, args.new).count
        except ValueError as err:
            _say(f"{err}")
            return EXIT_BAD_INPUT
    finally:
        col.close()
    print(f"Renamed graph {kinds[0]}:{args.old} to {kinds[0]}:{args.new}: {count} notes "
          "re-keyed (ids, cards and review history kept); sync with the new name next")
    return EXIT_OK


# The parser -------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """Usage errors are bad input too: one line on stderr, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"roam-bridge: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m tools.bridge", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_sync(commands)
    _add_watch(commands)
    _add_login(commands)
    _add_rename_graph(commands)
    _add_revert_write_back(commands)
    return parser


def _add_revert_write_back(commands: Any) -> None:
    cmd = commands.add_parser(
        "revert-write-back", help="put back what the last write-back into the notes replaced")
    cmd.set_defaults(run=_revert_write_back)
    cmd.add_argument("--collection", required=True,
                     help="the collection.anki2 file the write-back was made with")
    cmd.add_argument("--api-base-url", default="", help=argparse.SUPPRESS)


def _revert_write_back(args: argparse.Namespace) -> int:
    """Undo the newest write-back (see pipeline.revert_last); the next sync brings the notes'
    old text back into Anki too."""
    journal = journal_for(Path(args.collection).expanduser())
    if journal.last() is None:
        print("Nothing to revert: no write-back is recorded for this collection")
        return EXIT_OK
    read_options = ReadOptions(api_token=os.environ.get(roam_api.TOKEN_ENV, ""),
                               api_base_url=args.api_base_url or roam_api.DEFAULT_BASE_URL)
    try:
        undone, failed = pipeline.revert_last(journal, read_options)
    except SourceError as err:
        _say(str(err))
        return EXIT_BAD_INPUT
    for edit in undone:
        print(printable(f"reverted {edit.key}: {_cut(edit.before)} → {_cut(edit.after)}"))
    for key, why in failed.items():
        _say(f"not reverted {key}: {why} (kept in the journal; try again later)")
    if undone:
        print("Sync again to bring your notes' old text back into Anki")
    return EXIT_OK if not failed else EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())

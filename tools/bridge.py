"""Headless bridge: ``python -m tools.bridge sync SOURCE --collection PATH [...]``.

The same plan/apply engine as the add-on, against a collection file. Exit codes:
0 ok; 2 bad input (one line on stderr, the collection untouched); 3 refused by the
mass-orphan guard (nothing written); 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import anki.collection  # noqa: F401  (import first: anki 26.9 has an import cycle otherwise)
from anki.collection import Collection
from anki.errors import DBError

from addon.core import sync
from addon.core.config import CardOptions, SyncOptions
from addon.core.model import SourceError, gc_paused
from addon.core.sources.detect import read_source

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT, EXIT_REFUSED = 0, 1, 2, 3


class CollectionUnavailable(Exception):
    pass


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # One pause for the whole run: re-enabling the collector between steps would make it
    # scan the freshly built graph (hundreds of thousands of objects) for nothing.
    with gc_paused():
        return _sync(args)


def _sync(args: argparse.Namespace) -> int:
    try:
        graph = read_source(args.source, args.graph)
    except SourceError as err:
        print(f"roam-bridge: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    options = SyncOptions(
        cards=CardOptions(card_tags=tuple(args.card_tag or CardOptions().card_tags)),
        deck=args.deck or "",
        on_removed=args.on_removed,
        force=args.force,
    )
    try:
        report = run(graph, Path(args.collection), options, dry_run=args.dry_run)
    except CollectionUnavailable as err:
        print(f"roam-bridge: {err}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as err:
        if os.environ.get("ROAM_BRIDGE_DEBUG"):
            raise
        print(f"roam-bridge: sync failed ({type(err).__name__}: {err}); running it again "
              "finishes the job; ROAM_BRIDGE_DEBUG=1 shows details", file=sys.stderr)
        return EXIT_ERROR
    _print_report(report, graph.source, graph.name, as_json=args.json)
    if report.refused:
        return EXIT_REFUSED
    return EXIT_OK


def run(graph, collection: Path, options: SyncOptions, dry_run: bool = False) -> sync.Report:
    """Plan (and unless ``dry_run``, apply) ``graph`` against the collection file."""
    if dry_run and not collection.exists():
        # Nothing may be written, not even a new collection: plan against a throwaway one.
        with tempfile.TemporaryDirectory() as scratch:
            return _run_open(graph, Path(scratch) / "dry-run.anki2", options, dry_run=True)
    collection.parent.mkdir(parents=True, exist_ok=True)
    return _run_open(graph, collection, options, dry_run)


def _run_open(graph, path: Path, options: SyncOptions, dry_run: bool) -> sync.Report:
    try:
        col = Collection(str(path))
    except DBError as err:
        raise CollectionUnavailable(f"{path}: {_why_unopenable(path, err)}") from None
    try:
        the_plan = sync.plan(graph, col, options)
        if dry_run or the_plan.refused:
            report = the_plan.report()
            report.dry_run = dry_run
            return report
        report = sync.apply(the_plan, col)
        if report.kind_changes:
            report.warnings.append(
                f"{report.kind_changes} note(s) changed between basic and cloze: the next "
                "AnkiWeb sync will be a full sync"
            )
        return report
    finally:
        col.close()


def _why_unopenable(path: Path, err: DBError) -> str:
    message = str(err)
    if "already open" in message.lower():
        return "the collection is open in Anki (or another program); close it and try again"
    if "NotADatabase" in message:
        return "not an Anki collection"
    if path.is_dir():
        return "is a folder; give the path of a collection.anki2 file"
    return f"cannot open the collection ({message})"


def _print_report(report: sync.Report, source: str, graph: str, as_json: bool) -> None:
    counts = report.counts()
    title = f"Roam Bridge sync of {source}:{graph}" + (" (dry run)" if report.dry_run else "")
    print(title)
    for name in ("created", "updated", "unchanged", "orphaned", "moved", "deleted"):
        print(f"  {name:<10} {counts[name]:>6}")
    for warning in report.warnings:
        print(f"  warning: {warning}")
    for error in report.errors:
        print(f"  error: {error}")
    if as_json:
        print(json.dumps(counts, ensure_ascii=False))


class _Parser(argparse.ArgumentParser):
    """Usage errors are bad input too: one line on stderr, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"roam-bridge: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m tools.bridge", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sync_cmd = commands.add_parser("sync", help="sync a source into a collection")
    sync_cmd.add_argument("source", help="export file, zip or folder")
    sync_cmd.add_argument(
        "--collection", required=True, help="collection.anki2 (created if missing)"
    )
    sync_cmd.add_argument("--graph", default="", help="graph name (default: the source's name)")
    sync_cmd.add_argument("--deck", default="", help="deck for cards without a deck:: attribute")
    sync_cmd.add_argument("--dry-run", action="store_true", help="plan and report; write nothing")
    sync_cmd.add_argument("--force", action="store_true", help="allow orphaning most notes")
    sync_cmd.add_argument("--json", action="store_true", help="end with a JSON line of counts")
    sync_cmd.add_argument("--card-tag", action="append", help="a card tag (repeatable)")
    sync_cmd.add_argument(
        "--on-removed", choices=("suspend", "delete", "keep"), default="suspend",
        help="what happens to notes whose block is gone (default: suspend)",
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())

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
from addon.core.sources import roam_api
from addon.core.sources.detect import KINDS, ReadOptions, read_source
from addon.core.writeback import write_ids

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
    read_options = ReadOptions(
        include=tuple(args.include or ()), exclude=tuple(args.exclude or ()),
        api_token=os.environ.get(roam_api.TOKEN_ENV, ""),
        api_base_url=args.api_base_url or roam_api.DEFAULT_BASE_URL,
        progress=_api_progress if roam_api.is_url(args.source) else None,
    )
    try:
        graph = read_source(args.source, args.graph, args.kind, read_options)
        if args.write_ids and not args.dry_run:
            for warning in write_ids(graph, args.card_tag or CardOptions().card_tags):
                print(f"roam-bridge: warning: {warning}", file=sys.stderr)
    except SourceError as err:
        print(f"roam-bridge: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    options = SyncOptions(
        cards=CardOptions(card_tags=tuple(args.card_tag or CardOptions().card_tags)),
        deck=args.deck or "",
        on_removed=args.on_removed,
        force=args.force,
        download_images=not args.no_images,
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


def _api_progress(done: int, total: int) -> None:
    if sys.stderr.isatty():  # a log keeps only the outcome: one line on failure
        print(f"\rroam-bridge: read {done} of {total} pages", file=sys.stderr,
              end="\n" if done >= total else "")


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
    sync_cmd.add_argument(
        "source", help="export file (.json, .edn), zip, folder, or roam-api://GRAPH "
        f"(token in ${roam_api.TOKEN_ENV})",
    )
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
    sync_cmd.add_argument("--kind", choices=("auto", *KINDS), default="auto",
                          help="the source's format (default: detected)")
    sync_cmd.add_argument("--include", action="append", metavar="GLOB",
                          help="only notes whose path matches (Obsidian; repeatable)")
    sync_cmd.add_argument("--exclude", action="append", metavar="GLOB",
                          help="skip notes whose path matches (Obsidian; repeatable)")
    sync_cmd.add_argument("--write-ids", action="store_true",
                          help="write id:: into Logseq card blocks that have none")
    sync_cmd.add_argument("--no-images", action="store_true",
                          help="leave images as links instead of downloading them into media")
    sync_cmd.add_argument("--api-base-url", default="", help=argparse.SUPPRESS)
    return parser


if __name__ == "__main__":
    sys.exit(main())

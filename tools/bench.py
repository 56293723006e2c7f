"""``make bench``: our sync against the raw floor, on a 200k-block graph with 10k cards.

Four figures, each the median of a few runs, every run in a fresh child process of the same
interpreter (so imports are warm in the OS cache alike and peak memory is per run):
- floor: json.load, build one note per card block, one batched add_notes, fresh collection;
- first sync: read + plan + apply into a fresh collection;
- no-op resync: the same export again;
- one edit: the export with one card block edited.
Ratios are to the floor. Then each reader on the same graph converted to its format (median
of the same number of child runs), as a ratio to the Roam JSON reader, and the renderer's
median time per block over every block of the graph.
This is a benchmark, not a test: it prints, it does not fail.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".bench"
SCENARIOS = ("floor", "first", "noop", "edit")
# format -> (writer in tools.formats, reader in addon.core.sources, file or folder name)
READERS = {
    "roam-json": ("", "roam_json", "graph.json"),
    "roam-edn": ("edn", "roam_edn", "graph.edn"),
    "roam-markdown": ("roam_markdown", "roam_markdown", "roam-markdown"),
    "logseq": ("logseq", "logseq", "logseq"),
    "obsidian": ("obsidian", "obsidian", "obsidian"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--blocks", type=int, default=200_000)
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", choices=[*SCENARIOS, "read", "render"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--format", choices=READERS, help=argparse.SUPPRESS)
    parser.add_argument("--collection", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--export", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "read":
        _read_child(args.format, args.export)
        return
    if args.child == "render":
        _render_child(args.export)
        return
    if args.child:
        _child(args.child, args.export, args.collection)
        return
    _parent(args.blocks, args.cards, args.runs)


def _parent(blocks: int, cards: int, runs: int) -> None:
    WORK.mkdir(exist_ok=True)
    export, edited = _exports(blocks, cards)
    synced = WORK / "synced" / "collection.anki2"
    if synced.parent.exists():
        shutil.rmtree(synced.parent)
    synced.parent.mkdir()
    _run_child("first", export, synced)  # the starting point for the resync figures
    results: dict[str, list[dict[str, float]]] = {name: [] for name in SCENARIOS}
    for run in range(runs):
        for name in SCENARIOS:
            target = WORK / f"run-{name}-{run}" / "collection.anki2"
            if target.parent.exists():
                shutil.rmtree(target.parent)
            if name in ("noop", "edit"):
                shutil.copytree(synced.parent, target.parent)
            else:
                target.parent.mkdir()
            results[name].append(_run_child(name, edited if name == "edit" else export, target))
            shutil.rmtree(target.parent)
    _print(results, blocks, cards, runs)
    _readers(export, blocks, cards, runs)
    _render(export)


def _readers(export: Path, blocks: int, cards: int, runs: int) -> None:
    """Each reader parses the bench graph converted to its format; ratios to Roam JSON."""
    import importlib

    pages = json.loads(export.read_text(encoding="utf-8"))
    targets: dict[str, Path] = {}
    for fmt, (writer, _, name) in READERS.items():
        target = export if not writer else WORK / f"graph-{blocks}-{cards}" / name
        if writer and not target.exists():
            target.parent.mkdir(exist_ok=True)
            module = importlib.import_module(f"tools.formats.{writer}")
            module.write(pages, target, "bench")
        targets[fmt] = target
    # Round-robin, so a machine that slows down mid-run slows every reader alike.
    samples: dict[str, list[dict[str, float]]] = {fmt: [] for fmt in READERS}
    for _ in range(runs):
        for fmt, target in targets.items():
            samples[fmt].append(_run_reader(fmt, target))
    json_time = statistics.median(s["seconds"] for s in samples["roam-json"])
    for fmt, runs_of in samples.items():
        seconds = statistics.median(s["seconds"] for s in runs_of)
        print(f"read {fmt:<27}{seconds:>9.2f}{seconds / json_time:>9.2f}x JSON  "
              f"({runs_of[0]['blocks']:,} blocks)")
    print("target: every reader <= 1.5x the Roam JSON reader")


def _run_reader(fmt: str, target: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "tools.bench", "--child", "read", "--format", fmt,
         "--export", str(target)],
        cwd=ROOT, check=True, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _read_child(fmt: str, target: Path) -> None:
    import importlib

    from addon.core.model import gc_paused

    reader = importlib.import_module(f"addon.core.sources.{READERS[fmt][1]}")
    start = time.perf_counter()
    with gc_paused():  # as the bridge CLI runs it
        graph = reader.read(target, "bench")
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "blocks": len(graph.blocks)}))


def _render(export: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tools.bench", "--child", "render", "--export", str(export)],
        cwd=ROOT, check=True, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\nrender: median {result['median_us']:.1f} µs per block, "
          f"p99 {result['p99_us']:.0f} µs, {result['blocks']:,} blocks in "
          f"{result['seconds']:.2f} s (card blocks only in a sync)")


def _render_child(export: Path) -> None:
    from addon.core.config import DEFAULT_CARD_TAGS
    from addon.core.model import gc_paused
    from addon.core.render import Renderer
    from addon.core.sources.roam_json import read

    with gc_paused():
        graph = read(export, "bench")
        renderer = Renderer(graph, hidden_tags=DEFAULT_CARD_TAGS)
        timings = []
        clock = time.perf_counter
        for block in graph.blocks.values():
            start = clock()
            renderer.inline(block.string)
            timings.append(clock() - start)
    timings.sort()
    print(json.dumps({
        "median_us": statistics.median(timings) * 1e6,
        "p99_us": timings[int(len(timings) * 0.99)] * 1e6,
        "seconds": sum(timings), "blocks": len(timings),
    }))


def _exports(blocks: int, cards: int) -> tuple[Path, Path]:
    from tools.graphgen import generate

    export = WORK / f"graph-{blocks}-{cards}.json"
    edited = WORK / f"graph-{blocks}-{cards}-edited.json"
    if not export.exists() or not edited.exists():
        pages = generate(blocks, cards)
        export.write_text(json.dumps(pages), encoding="utf-8")
        for raw in _walk(pages):
            if "#card" in raw["string"]:
                raw["string"] = raw["string"].replace("#card", "(edited) #card")
                break
        edited.write_text(json.dumps(pages), encoding="utf-8")
    return export, edited


def _walk(pages: list[dict]):
    stack = [b for p in reversed(pages) for b in reversed(p["children"])]
    while stack:
        raw = stack.pop()
        yield raw
        stack.extend(reversed(raw.get("children", [])))


def _run_child(name: str, export: Path, collection: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "tools.bench", "--child", name, "--export", str(export),
         "--collection", str(collection)],
        cwd=ROOT, check=True, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _child(name: str, export: Path, collection: Path) -> None:
    import anki.collection  # noqa: F401  (import first: anki 26.9 has an import cycle otherwise)
    from anki.collection import Collection

    col = Collection(str(collection))
    start = time.perf_counter()
    counts: dict[str, int] = {}
    if name == "floor":
        _floor(col, export)
    else:
        from addon.core import sync
        from addon.core.model import gc_paused
        from addon.core.sources.detect import read_source

        with gc_paused():  # as the bridge CLI runs it
            graph = read_source(export, "bench")
            report = sync.apply(sync.plan(graph, col), col)
        counts = {k: v for k, v in report.counts().items() if isinstance(v, int)}
    seconds = time.perf_counter() - start
    col.close()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mib": peak_mib, **counts}))


def _floor(col, export: Path) -> None:
    """The least any sync must do: parse, one note per card block, one batched add."""
    from anki.collection import AddNoteRequest

    with export.open(encoding="utf-8") as handle:
        pages = json.load(handle)
    basic = col.models.by_name("Basic")
    deck = col.decks.id("Roam")
    requests = []
    for raw in _walk(pages):
        if "#card" in raw["string"]:
            note = col.new_note(basic)
            note["Front"] = raw["string"]
            note["Back"] = "<br>".join(c["string"] for c in raw.get("children", ()))
            requests.append(AddNoteRequest(note, deck))
    col.add_notes(requests)


def _print(results: dict[str, list[dict[str, float]]], blocks: int, cards: int, runs: int) -> None:
    labels = {"floor": "floor (json.load + add_notes)", "first": "first sync",
              "noop": "no-op resync", "edit": "resync after one edit"}
    floor = statistics.median(r["seconds"] for r in results["floor"])
    print(f"Roam Bridge benchmark: {blocks:,} blocks, {cards:,} cards, median of {runs} runs\n")
    print(f"{'':<32}{'seconds':>9}{'x floor':>9}{'peak MiB':>10}")
    for name in SCENARIOS:
        seconds = statistics.median(r["seconds"] for r in results[name])
        peak = statistics.median(r["peak_mib"] for r in results[name])
        print(f"{labels[name]:<32}{seconds:>9.2f}{seconds / floor:>9.2f}{peak:>10.0f}")
    first = results["first"][0]
    noop, edit = results["noop"][0], results["edit"][0]
    print(f"\nfirst sync created {first.get('created')}; no-op: {noop.get('unchanged')} unchanged; "
          f"one edit: {edit.get('updated')} updated")
    print("targets: first <= 3x floor, no-op <= 1x, one edit <= 1x")


if __name__ == "__main__":
    main()

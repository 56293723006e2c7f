"""``make bench``: our sync against the raw floor, each figure in CPU and wall seconds.

The floor is the least any sync must do: json.load, one note per card block, one batched
add_notes into a fresh collection. Every scenario runs in a fresh child process of the same
interpreter (imports warm in the OS cache alike, peak memory per run), timed from opening the
collection to closing it, through the same ``tools.bridge`` entry the CLI runs. Scenarios are
interleaved (floor, first, no-op, ..., then again) and each figure is the median of the runs;
CPU seconds (``time.process_time``: every thread of the child) stay steady on a shared
machine while wall seconds swing. Ratios are to the floor of the same graph, same run.

Rows, on a 200k-block graph with 10k cards:
- first sync: read + plan + apply into a fresh collection;
- no-op: the same export again (nothing changed: the source and the collection are checked);
- no-op after a collection change: a card was reviewed in between, so the run plans;
- one edit in a JSON export: one card block edited;
- one edit in a Logseq folder: the bench graph as a Logseq folder, synced by a long-lived
  watch (which keeps the folder's parsed pages); the turn after one card block was edited;
- first sync into a collection that holds 100k other notes, as a ratio to the first sync
  into an empty one;
- the EDN reader: the bench graph read from its EDN export, as a ratio to the JSON reader on
  its JSON export (read only, CPU and wall).
``--large`` adds first syncs of a dense graph (50k cards in 100k blocks) and of 100k cards
(in 200k blocks), each against its own floor, with peak memory. Then each reader on the same
graph converted to its format, as a ratio to the Roam JSON reader; the renderer's median time
per block; the Roam API's incremental poll; the rendering worst cases.
``--anki`` (needs Anki desktop: ``make test``'s venv) launches real Anki offscreen with the
add-on and reports the worst gap of a 10 ms main-thread heartbeat during background syncs of
the bench graph (first, no-op, no-op after a review), next to the gap with no sync.
``--scale N`` (``make bench-scale``: 200,000) adds one first sync of N notes and checks that it
stays one undo step.
This is a benchmark, not a test: it prints, it does not fail.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".bench"
# format -> (writer in tools.formats, reader in addon.core.sources, file or folder name)
READERS = {
    "roam-json": ("", "roam_json", "graph.json"),
    "roam-edn": ("edn", "roam_edn", "graph.edn"),
    "roam-markdown": ("roam_markdown", "roam_markdown", "roam-markdown"),
    "logseq": ("logseq", "logseq", "logseq"),
    "obsidian": ("obsidian", "obsidian", "obsidian"),
}
# The sync rows of the 10k graph: name -> (label, what the child starts from, the export).
# "synced" is a copy of a collection the first sync made; "reviewed" the same after one card
# was answered; "crowded" a fresh collection holding 100k notes of the user's own.
_ROWS = {
    "floor": ("floor (json.load + add_notes)", "fresh", "export"),
    "first": ("first sync", "fresh", "export"),
    "noop": ("no-op (nothing changed)", "synced", "export"),
    "noop-changed": ("no-op after a review in Anki", "reviewed", "export"),
    "edit": ("one edit in a JSON export", "synced", "edited"),
    "logseq-edit": ("one edit in a Logseq folder", "fresh", "logseq"),
    "crowded": ("first sync, 100k other notes", "crowded", "export"),
}
OTHER_NOTES = 100_000
# --large: (label, blocks, cards).
_LARGE = {"dense": ("50k cards in 100k blocks", 100_000, 50_000),
          "huge": ("100k cards in 200k blocks", 200_000, 100_000)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--blocks", type=int, default=200_000)
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--large", action="store_true",
                        help="also first syncs of 50k (dense) and 100k cards")
    parser.add_argument("--anki", action="store_true",
                        help="also the main-thread gap in real Anki (needs Anki desktop)")
    parser.add_argument("--scale", type=int, default=0,
                        help="also sync a graph of this many cards once (e.g. 200000)")
    parser.add_argument("--only-syncs", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--skip-main", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=["sync", "floor", "read", "render", "api", "worst",
                                            "review", "crowd", "folder-edit"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--format", choices=READERS, help=argparse.SUPPRESS)
    parser.add_argument("--collection", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--export", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _CHILDREN[args.child](args)
        return
    if not args.skip_main:
        _parent(args.blocks, args.cards, args.runs, args.only_syncs)
    if args.large:
        _large(args.runs)
    if args.anki:
        _anki_gaps(args.blocks, args.cards)
    if args.scale:
        _scale(args.scale)


def _scale(cards: int) -> None:
    """One first sync of ``cards`` notes, against the floor on the same graph."""
    export, _ = _exports(cards * 2, cards)
    rows = {}
    for name in ("floor", "first"):
        target = WORK / f"scale-{name}" / "collection.anki2"
        _fresh(target.parent)
        rows[name] = _run_child("floor" if name == "floor" else "sync", export, target)
        shutil.rmtree(target.parent)
    floor, first = rows["floor"], rows["first"]
    print(f"\nscale: first sync of {first.get('created', 0):,} notes "
          f"({cards * 2:,} blocks): {first['cpu']:.1f} s CPU, {first['seconds']:.1f} s wall, "
          f"{first['cpu'] / floor['cpu']:.2f}x floor ({floor['cpu']:.1f} s CPU), "
          f"peak {first['peak_mib']:.0f} MiB (floor {floor['peak_mib']:.0f}); "
          f"one undo step: {'yes' if first.get('one_undo_step') else 'NO'}")


def _fresh(folder: Path, like: Path | None = None) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    if like is None:
        folder.mkdir(parents=True)
    else:
        shutil.copytree(like, folder)


def _parent(blocks: int, cards: int, runs: int, only_syncs: bool) -> None:
    WORK.mkdir(exist_ok=True)
    export, edited = _exports(blocks, cards)
    exports = {"export": export, "edited": edited, "logseq": _logseq_folder(export)}
    starts = _starting_points(export)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in _ROWS}
    for run in range(runs):
        for name, (_, start, which) in _ROWS.items():
            target = WORK / f"run-{name}-{run}" / "collection.anki2"
            _fresh(target.parent, starts.get(start))
            child = {"floor": "floor", "logseq-edit": "folder-edit"}.get(name, "sync")
            results[name].append(_run_child(child, exports[which], target))
            shutil.rmtree(target.parent)
    _print(results, blocks, cards, runs)
    if only_syncs:
        return
    _edn_row(export, blocks, cards, runs)
    _readers(export, blocks, cards, runs)
    _render(export)
    _api(export, starts["synced"] / "collection.anki2", runs)
    _worst()


def _starting_points(export: Path) -> dict[str, Path]:
    """The collections the rows start from (folders, each with its ledger beside the
    collection): synced, synced + one review, and 100k notes of the user's own."""
    synced = WORK / "synced"
    _fresh(synced)
    _run_child("sync", export, synced / "collection.anki2")
    reviewed = WORK / "reviewed"
    _fresh(reviewed, synced)
    _run_child("review", export, reviewed / "collection.anki2")
    crowded = WORK / f"crowded-{OTHER_NOTES}"
    if not (crowded / "collection.anki2").exists():
        _fresh(crowded)
        _run_child("crowd", export, crowded / "collection.anki2")
    return {"synced": synced, "reviewed": reviewed, "crowded": crowded}


def _large(runs: int) -> None:
    """First syncs of the dense and the huge graph, each against its own floor; the two
    interleaved, medians of ``runs`` (at most 3: each is a minute or more)."""
    exports = {name: _exports(blocks, cards)[0] for name, (_, blocks, cards) in _LARGE.items()}
    results: dict[str, list[dict[str, float]]] = {
        f"{name}-{kind}": [] for name in _LARGE for kind in ("floor", "first")}
    for _ in range(min(runs, 3)):
        for name, export in exports.items():
            for kind in ("floor", "first"):
                target = WORK / f"large-{name}-{kind}" / "collection.anki2"
                _fresh(target.parent)
                results[f"{name}-{kind}"].append(
                    _run_child("floor" if kind == "floor" else "sync", export, target))
                shutil.rmtree(target.parent)
    print(f"\nlarge graphs, first sync (median of {min(runs, 3)}):")
    print(f"{'':<40}{'CPU s':>8}{'x floor':>9}{'wall s':>8}{'x floor':>9}{'peak MiB':>10}"
          f"{'x floor':>9}")
    for name, (label, _, _) in _LARGE.items():
        floor = _medians(results[f"{name}-floor"])
        first = _medians(results[f"{name}-first"])
        for row, figures in ((f"floor, {label}", floor), (f"first sync, {label}", first)):
            print(f"{row:<40}{figures['cpu']:>8.2f}{figures['cpu'] / floor['cpu']:>9.2f}"
                  f"{figures['seconds']:>8.2f}{figures['seconds'] / floor['seconds']:>9.2f}"
                  f"{figures['peak_mib']:>10.0f}{figures['peak_mib'] / floor['peak_mib']:>9.2f}")
    print("targets: first sync <= 2x floor, peak memory <= 1.5x the floor's")


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r.get(key, 0) for r in runs)
            for key in ("cpu", "seconds", "peak_mib")}


_GUI = "__import__('sys').modules['roam_bridge.gui']"
# Each report stamped with its time, so the bench knows when the sync it asked for is done.
_STAMP_REPORTS = (
    "import time\n"
    "c = " + _GUI + ".CONTROLLER\n"
    "c.on_report.append(lambda r: r.__setitem__('_at', time.time()))\n"
    "result = True"
)


def _anki_gaps(blocks: int, cards: int) -> None:
    """The worst gap of a 10 ms heartbeat on Anki's main thread, in real Anki offscreen with
    the add-on built from this tree, while background syncs of the bench graph run."""
    from tests.e2e.harness import (
        START_HEARTBEAT,
        create_base,
        install_ankiaddon,
        install_driver_addon,
        launch_anki,
    )
    from tools.package import build

    export, _ = _exports(blocks, cards)
    folder = WORK / "anki"
    _fresh(folder)
    package = build(folder / "roam_bridge.ankiaddon")
    base = create_base(folder / "base", "bench")
    install_driver_addon(base)
    installed = install_ankiaddon(base, package)
    meta = json.loads((installed / "meta.json").read_text(encoding="utf-8"))
    defaults = json.loads((ROOT / "addon" / "config.json").read_text(encoding="utf-8"))
    meta["config"] = {**defaults, "sync_on_startup": False, "watch": False, "sources": [
        {"path": str(export), "kind": "auto", "graph": "bench", "deck": "",
         "brace_clozes": True}]}
    (installed / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    gaps: dict[str, float] = {}
    with launch_anki(base, "bench", log_path=folder / "anki.log") as anki:
        driver = anki.driver
        driver.wait_for_collection(timeout=120)
        driver.exec(START_HEARTBEAT)
        driver.exec(_STAMP_REPORTS)

        def worst_during(action: str, timeout: float = 600) -> float:
            start = driver.eval("__import__('time').time()")
            driver.exec(f"mw._heartbeat[1]['worst'] = 0.0\n{action}\nresult = True")
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                # Only the report's time: the report itself lists every note the sync
                # touched, and serialising it on Anki's main thread is a gap of its own.
                running, at = driver.eval(f"({_GUI}.CONTROLLER.running, "
                                          f"({_GUI}.CONTROLLER.last_report or {{}}).get('_at', 0))")
                if not running and at > start:
                    break
                time.sleep(0.05)
            return driver.eval("mw._heartbeat[1]['worst']")

        driver.exec("mw._heartbeat[1]['worst'] = 0.0\nresult = True")
        time.sleep(5)
        gaps["no sync (idle, 5 s)"] = driver.eval("mw._heartbeat[1]['worst']")
        request = f"{_GUI}.CONTROLLER.request(manual=False)"
        gaps[f"first sync ({cards:,} notes)"] = worst_during(request)
        gaps["no-op (nothing changed)"] = worst_during(request)
        review = ("card = mw.col.get_card(mw.col.find_cards('')[0])\ncard.start_timer()\n"
                  "mw.col.sched.answerCard(card, 3)\n")
        gaps["no-op after a review"] = worst_during(review + request)
        driver.quit()
        anki.assert_clean_exit(timeout=60)
    print("\nreal Anki, background sync: worst gap of a 10 ms main-thread heartbeat")
    for label, gap in gaps.items():
        print(f"  {label:<32}{gap * 1000:>7.0f} ms")
    print("target: < 50 ms during a background sync")


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


def _edn_row(export: Path, blocks: int, cards: int, runs: int) -> None:
    """The EDN reader against the JSON reader on the same graph, interleaved runs."""
    from tools.formats import edn

    target = WORK / f"graph-{blocks}-{cards}" / READERS["roam-edn"][2]
    if not target.exists():
        target.parent.mkdir(exist_ok=True)
        edn.write(json.loads(export.read_text(encoding="utf-8")), target, "bench")
    samples: dict[str, list[dict[str, float]]] = {"roam-json": [], "roam-edn": []}
    for _ in range(runs):
        for fmt, path in (("roam-json", export), ("roam-edn", target)):
            samples[fmt].append(_run_reader(fmt, path))
    json_m, edn_m = (_medians(samples[fmt]) for fmt in ("roam-json", "roam-edn"))
    print(f"{'EDN reader (read only)':<34}{edn_m['cpu']:>8.3f}{edn_m['cpu'] / json_m['cpu']:>9.3f}"
          f"{edn_m['seconds']:>8.3f}{edn_m['seconds'] / json_m['seconds']:>9.3f}"
          f"{edn_m['peak_mib']:>10.0f}  (x the JSON reader: {json_m['cpu']:.3f} s CPU)")
    print("target: EDN reader <= 1.5x the JSON reader")


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

    def work() -> dict[str, int]:
        with gc_paused():  # as the bridge CLI runs it
            return {"blocks": len(reader.read(target, "bench").blocks)}

    print(json.dumps(_timed(work)))


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


def _api(export: Path, synced: Path, runs: int) -> None:
    target = WORK / "api" / "collection.anki2"
    if target.parent.exists():
        shutil.rmtree(target.parent)
    shutil.copytree(synced.parent, target.parent)
    out = subprocess.run(
        [sys.executable, "-m", "tools.bench", "--child", "api", "--export", str(export),
         "--collection", str(target), "--runs", str(runs)],
        cwd=ROOT, check=True, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    shutil.rmtree(target.parent)
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\nRoam API, live (fake API on 127.0.0.1; poll: median of {runs}):")
    print(f"{'':<32}{'seconds':>9}{'server s':>10}{'requests':>10}{'KiB':>11}")
    for name, label in (("full", "full pull + plan all"), ("quiet", "quiet poll"),
                        ("poll", "poll after one edit + sync")):
        row = rows[name]
        print(f"{label:<32}{row['seconds']:>9.2f}{row['server']:>10.2f}{row['requests']:>10}"
              f"{row['bytes'] / 1024:>11.1f}")
    print(f"one edit: {rows['poll']['updated']} updated, planned {rows['poll']['scope']} blocks; "
          "seconds include the fake server's, which runs in the same process")


def _api_child(export: Path, collection: Path, runs: int) -> None:
    import anki.collection  # noqa: F401  (import first: anki 26.9 has an import cycle otherwise)
    from anki.collection import Collection

    from addon.core import sync
    from addon.core.config import SyncOptions
    from addon.core.live import LiveSource
    from addon.core.model import gc_paused
    from addon.core.sources.detect import ReadOptions
    from tests.fake_roam_api import FakeRoamApi

    pages = json.loads(export.read_text(encoding="utf-8"))
    col = Collection(str(collection))
    token = "roam-graph-token-bench"
    results: dict[str, object] = {}
    with FakeRoamApi(pages, graph="bench", token=token) as api, gc_paused():
        # A real graph was written over months, a block a minute, until a day ago.
        day_ago = api.db.now() - 86_400_000
        for age, entity in enumerate(reversed(api.db.entities.values())):
            entity[":edit/time"] = day_ago - age * 60_000
        live = LiveSource("roam-api://bench", "bench",
                          ReadOptions(api_token=token, api_base_url=api.base_url))
        live.session.trust_env = False
        card_uids = [raw["uid"] for raw in _walk(pages) if "#card" in raw["string"]]

        def measure(edit: str | None) -> dict[str, float]:
            if edit is not None:
                entity = api.db.entities[api.db.eid(edit)]
                api.db.edit(edit, entity[":block/string"].replace("#card", "(live) #card"))
            calls, sent, server = len(api.calls), api.bytes_out, api.server_seconds
            start = time.perf_counter()
            pulled = live.pull()
            report = sync.Report()
            if pulled.changed:
                report = sync.apply(sync.plan(pulled.graph, col, SyncOptions(),
                                              scope=pulled.scope), col)
            return {"seconds": time.perf_counter() - start,
                    "server": api.server_seconds - server,
                    "requests": sum(1 for c in api.calls[calls:] if c.server == "peer"),
                    "bytes": api.bytes_out - sent, "updated": report.updated,
                    "scope": len(pulled.scope or ())}

        results["full"] = measure(None)
        quiet = [measure(None) for _ in range(runs)]
        polls = [measure(card_uids[i * 97 % len(card_uids)]) for i in range(runs)]
        for name, samples in (("quiet", quiet), ("poll", polls)):
            results[name] = {key: statistics.median(s[key] for s in samples)
                             for key in samples[0]}
        live.close()
    col.close()
    print(json.dumps(results))


# Openers of every markup the renderer and the cloze engine look for, none of them closed.
UNCLOSED = ["{{", "[[", "((", "**", "__", "^^", "~~", "==", "`", "```", "$$", "$", "{", "[",
            "![", "](", "{{c1::", "{{cloze ", "{{[[", "#[[", "<", "&", "\\(", "[sound:"]


def _worst() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tools.bench", "--child", "worst"],
        cwd=ROOT, check=True, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"render worst case: a 1 MB card block of unclosed markup (and a 1 MB child) "
          f"{result['unclosed']:.2f} s; a card over a web of 5 layers of 14 block refs "
          f"(14^5 paths) {result['web']:.3f} s")


def _worst_child() -> None:
    """The rendering step (collect + render one note) on the two worst inputs known."""
    from addon.core.cards import collect
    from addon.core.config import CardOptions
    from addon.core.model import Block, Graph, Page
    from addon.core.note_fields import NoteRenderer

    options = CardOptions(brace_clozes=True, highlight_cloze=True)
    body = " x ".join(unit * 40 for unit in UNCLOSED) + " "
    # Just under the most one block a card shows (limits.MAX_BLOCK_CHARS), so it is rendered.
    body = (body * (2**20 // len(body) + 1))[: 999_000]
    graph = Graph("roam", "worst")
    home = graph.add_page(Page("Home", "home"))
    card = graph.add_block(Block("cardblock", "What is this? #card " + body, home))
    home.children.append(card)
    card.children.append(graph.add_block(Block("childblock", body, home, card)))
    start = time.perf_counter()
    [spec] = collect(graph, options)
    NoteRenderer(graph, options).render(spec)
    unclosed = time.perf_counter() - start

    web = Graph("roam", "web")
    page = web.add_page(Page("Web", "web"))
    for layer in range(5):
        for i in range(14):
            refs = " ".join(f"((web{layer + 1}x{j:02d}))" for j in range(14)) if layer < 4 else ""
            page.children.append(web.add_block(Block(f"web{layer}x{i:02d}",
                                                     f"layer {layer} {i} {refs}", page)))
    top = " ".join(f"((web0x{j:02d}))" for j in range(14))
    page.children.append(web.add_block(Block("webcard", f"The web {top} #card", page)))
    start = time.perf_counter()
    [spec] = collect(web, options)
    NoteRenderer(web, options).render(spec)
    print(json.dumps({"unclosed": unclosed, "web": time.perf_counter() - start}))


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


def _logseq_folder(export: Path) -> Path:
    from tools.formats import logseq

    target = export.with_suffix("") / "logseq"
    if not target.exists():
        target.parent.mkdir(exist_ok=True)
        logseq.write(json.loads(export.read_text(encoding="utf-8")), target, "bench")
    return target


def _folder_edit_child(args: argparse.Namespace) -> None:
    """One edit in a notes folder, as the watch (and the add-on) syncs it: a first turn
    syncs the folder (not timed), one card block is edited, and the next turn is timed."""
    import anki.collection  # noqa: F401  (import first: anki 26.9 has an import cycle otherwise)
    from anki.collection import Collection

    from addon.core.block_writes import Journal
    from addon.core.config import CardOptions, SourceConfig, SyncOptions
    from addon.core.sources.detect import ReadOptions
    from tools.watch import Every, Watch

    notes = args.collection.parent / "notes"
    shutil.copytree(args.export, notes)
    options = SyncOptions(cards=CardOptions(brace_clozes=True))
    journal = Journal(args.collection.with_name("journal.jsonl"))
    watch = Watch(SourceConfig(path=str(notes), graph="bench"), options, ReadOptions(),
                  args.collection, journal, Every(0, as_json=True))
    col = Collection(str(args.collection))
    with contextlib.redirect_stdout(io.StringIO()):
        watch._turn(col, None)
    page = next(p for p in sorted((notes / "pages").iterdir()) if "#card" in p.read_text())
    page.write_text(page.read_text().replace("#card", "(edited) #card", 1))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = _timed(lambda: watch._turn(col, None))
    col.close()
    counts = json.loads(out.getvalue().strip().splitlines()[-1])
    print(json.dumps({**result, "updated": counts.get("updated", 0)}))


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


def _timed(work) -> dict[str, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    counts = work() or {}
    return {"cpu": time.process_time() - cpu, "seconds": time.perf_counter() - wall,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **counts}


def _sync_child(args: argparse.Namespace) -> None:
    """One CLI sync, as ``python -m tools.bridge sync`` runs it (the bench graph writes a
    quarter of its cards with the {x} cloze shorthand)."""
    import anki.collection  # noqa: F401  (import first: anki 26.9 has an import cycle otherwise)
    from anki.collection import Collection

    from addon.core import sync
    from tools import bridge

    # Anki keeps undo steps in memory only, so the last one is read as the CLI closes the
    # collection, not from a reopened one (which never has any).
    last_undo: list[str] = []
    close = Collection.close

    def close_noting_undo(col: Collection, *rest: Any, **named: Any) -> None:
        last_undo.append(col.undo_status().undo)
        close(col, *rest, **named)

    def work() -> dict[str, int]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = bridge.main(["sync", str(args.export), "--collection", str(args.collection),
                                "--graph", "bench", "--brace-clozes", "--json"])
        assert code == 0, code
        counts = json.loads(out.getvalue().strip().splitlines()[-1])
        return {k: v for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool)}

    Collection.close = close_noting_undo  # type: ignore[method-assign, assignment]
    try:
        result = _timed(work)
    finally:
        Collection.close = close  # type: ignore[method-assign]
    result["one_undo_step"] = int(last_undo[-1:] == [sync.UNDO_NAME] or not result.get("created"))
    print(json.dumps(result))


def _floor_child(args: argparse.Namespace) -> None:
    import anki.collection  # noqa: F401  (import first: anki 26.9 has an import cycle otherwise)
    from anki.collection import Collection

    def work() -> None:
        col = Collection(str(args.collection))
        _floor(col, args.export)
        col.close()

    print(json.dumps(_timed(work)))


def _review_child(args: argparse.Namespace) -> None:
    """Answer one card of the synced collection, as a review in Anki would."""
    import anki.collection  # noqa: F401  (import first: anki 26.9 has an import cycle otherwise)
    from anki.collection import Collection

    col = Collection(str(args.collection))
    card = col.get_card(col.find_cards("")[0])
    card.start_timer()
    col.sched.answerCard(card, 3)
    col.close()
    print(json.dumps({}))


def _crowd_child(args: argparse.Namespace) -> None:
    """A collection with OTHER_NOTES notes of the user's own (two short fields each)."""
    import anki.collection  # noqa: F401  (import first: anki 26.9 has an import cycle otherwise)
    from anki.collection import AddNoteRequest, Collection

    col = Collection(str(args.collection))
    basic = col.models.by_name("Basic")
    deck = col.decks.id("Default")
    assert basic is not None and deck is not None, "a new collection has both"
    for start in range(0, OTHER_NOTES, 10_000):
        requests = []
        for i in range(start, start + 10_000):
            note = col.new_note(basic)
            note["Front"] = f"My own question number {i} about something I read"
            note["Back"] = f"My own answer {i}, a sentence or two long, as most notes are."
            requests.append(AddNoteRequest(note, deck))
        col.add_notes(requests)
    col.close()
    print(json.dumps({}))


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


def _print(results: dict[str, list[dict[str, float]]], blocks: int, cards: int, runs: int
           ) -> None:
    medians = {name: _medians(rows) for name, rows in results.items()}
    floor = medians["floor"]
    print(f"Roam Bridge benchmark: {blocks:,} blocks, {cards:,} cards, median of {runs} "
          "interleaved runs\n")
    print(f"{'':<34}{'CPU s':>8}{'x floor':>9}{'wall s':>8}{'x floor':>9}{'peak MiB':>10}")
    for name, (label, _, _) in _ROWS.items():
        m = medians[name]
        print(f"{label:<34}{m['cpu']:>8.3f}{m['cpu'] / floor['cpu']:>9.3f}"
              f"{m['seconds']:>8.3f}{m['seconds'] / floor['seconds']:>9.3f}"
              f"{m['peak_mib']:>10.0f}")
    first, crowded = medians["first"], medians["crowded"]
    print(f"100k other notes: {crowded['cpu'] / first['cpu']:.2f}x the CPU of a first sync "
          f"into an empty collection ({crowded['seconds'] / first['seconds']:.2f}x wall)")
    one = {name: rows[0] for name, rows in results.items()}
    print(f"first sync created {one['first'].get('created')}; no-op: "
          f"{one['noop'].get('unchanged')} unchanged; after a review: "
          f"{one['noop-changed'].get('unchanged')} unchanged; one edit: "
          f"{one['edit'].get('updated')} updated; 100k other notes: "
          f"{one['crowded'].get('created')} created")
    print("targets: first <= 2x floor; no-op <= 0.05x; one edit in a JSON export <= 0.6x; "
          "one edit in a Logseq folder <= 0.1x; 100k other notes <= 1.1x the first sync")


_CHILDREN = {
    "sync": _sync_child, "floor": _floor_child, "review": _review_child,
    "crowd": _crowd_child, "folder-edit": _folder_edit_child,
    "read": lambda a: _read_child(a.format, a.export),
    "render": lambda a: _render_child(a.export),
    "api": lambda a: _api_child(a.export, a.collection, a.runs),
    "worst": lambda a: _worst_child(),
}


if __name__ == "__main__":
    main()

"""``make demo``: sync the bundled seeds into .demo/collection.anki2 and show the result.

Prints the sync report as a table and writes .demo/preview.html, which shows every card's
front, back and context as Anki renders them. Run it twice: the second run changes nothing.
"""

from __future__ import annotations

import html
import sys
from pathlib import Path

import anki.collection  # noqa: F401  (import first: anki 26.9 has an import cycle otherwise)
from anki.collection import Collection
from anki.notes import Note

from addon.core.config import CardOptions, SyncOptions
from addon.core.sources.detect import read_source
from tools.bridge import run

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
DEMO = ROOT / ".demo"
GRAPH = "roam-bridge-demo"


def main() -> int:
    graph = read_source(SEEDS, GRAPH)
    collection = DEMO / "collection.anki2"
    DEMO.mkdir(exist_ok=True)
    # The seed is written with the {x} cloze shorthand of Roam's Anki tools: turn it on.
    report = run(graph, collection, SyncOptions(cards=CardOptions(brace_clozes=True)))
    rows = [("created", report.created), ("updated", report.updated),
            ("unchanged", report.unchanged), ("orphaned", report.orphaned),
            ("moved", report.moved)]
    print(f"Synced {SEEDS.relative_to(ROOT)}/ (graph {GRAPH}) into "
          f"{collection.relative_to(ROOT)}\n")
    print("+-----------+-------+")
    print("| notes     | count |")
    print("+-----------+-------+")
    for name, count in rows:
        print(f"| {name:<9} | {count:>5} |")
    print("+-----------+-------+")
    for warning in report.warnings:
        print(f"warning: {warning}")
    preview = write_preview(collection, DEMO / "preview.html")
    print(f"\nEvery card as Anki renders it: {preview.relative_to(ROOT)}")
    return 0


def note_type_name(note: Note) -> str:
    notetype = note.note_type()
    return notetype["name"] if notetype else ""


def write_preview(collection: Path, target: Path) -> Path:
    col = Collection(str(collection))
    try:
        sections = []
        for cid in col.find_cards("SourceID:_*", order=True):
            card = col.get_card(cid)
            note = card.note()
            sections.append(
                '<section class="card-preview">'
                f"<h2>{html.escape(note_type_name(note))} · card {card.ord + 1} · "
                f"deck {html.escape(col.decks.name(card.did))}</h2>"
                f'<div class="side"><h3>Front</h3>{card.question()}</div>'
                f'<div class="side"><h3>Back</h3>{card.answer()}</div>'
                "</section>"
            )
    finally:
        col.close()
    target.write_text(
        "<!doctype html><meta charset=utf-8><title>Roam Bridge demo</title>"
        "<style>body{max-width:52em;margin:2em auto;font-family:sans-serif}"
        ".card-preview{border:1px solid #ccc;border-radius:8px;margin:1.5em 0;padding:1em}"
        ".side{margin:.5em 0}h2{font-size:14px;color:#666}h3{font-size:12px;color:#999}</style>"
        f'<body class="card">{"".join(sections)}</body>',
        encoding="utf-8",
    )
    return target


if __name__ == "__main__":
    sys.exit(main())

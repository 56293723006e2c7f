"""A sync killed at any moment is healed by the next run: the result equals a clean run.

The CLI runs in a child process that is killed (``os._exit``, no clean-up) at one write step
of ``apply``: after the k-th batched write, while creating the note types, or just before the
package of new notes is imported. The next run must leave the collection exactly as one clean
run does: the same note and card ids, fields, tags, decks, queues and review history.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from anki.collection import Collection

from tests.roam import block, page, write_export

ROOT = Path(__file__).resolve().parent.parent


def _pages(edited: bool) -> list[dict]:
    cards = [block(f"Fact {i} #card", block(f"answer {i}"), uid=f"fact{i:05d}")
             for i in range(12)]
    if edited:
        cards = cards[:4]  # 8 blocks gone: orphaned, their cards suspended
        cards[0]["string"] = "Fact 0, edited #card"
        cards[1]["string"] = "Fact {1} is a cloze now #card"  # a kind change
        cards[2]["children"].append(block("deck:: Elsewhere"))  # a deck move
        cards.extend(block(f"New {i} #card #reversed", block(f"b{i}"), uid=f"new{i:06d}")
                     for i in range(3))
    return [page("Facts", *cards, uid="facts")]


_RUNNER = """
import os, sys
sys.path.insert(0, {root!r})
from addon.core import anki_compat, creation, writing
mode, at = {mode!r}, {at}
count = [0]
def dies(original):
    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        count[0] += 1
        if count[0] == at:
            os._exit(9)
        return result
    return wrapper
if mode == "fold":
    writing.Steps.fold = dies(writing.Steps.fold)
elif mode == "notetype":
    anki_compat.add_notetype_with_id = dies(anki_compat.add_notetype_with_id)
    import addon.core.notetypes as notetypes
    notetypes.add_notetype_with_id = anki_compat.add_notetype_with_id
elif mode == "package":
    creation._Builder.build = dies(creation._Builder.build)
from tools.bridge import main
code = main(sys.argv[1:])
print("FOLDS", count[0])
sys.exit(code)
"""


def run(collection: Path, export: Path, mode: str = "none", at: int = 0
        ) -> subprocess.CompletedProcess[str]:
    code = _RUNNER.format(root=str(ROOT), mode=mode, at=at)
    return subprocess.run(
        [sys.executable, "-c", code, "sync", str(export), "--collection", str(collection),
         "--graph", "crash", "--force"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


_WRITTEN = re.compile(r'(data-h="[0-9a-f]+)\.\d{10}"')


def snapshot(collection: Path) -> dict:
    """What a run leaves, down to every field (but the time each note was written)."""
    col = Collection(str(collection))
    try:
        return {
            "notes": [(nid, guid, mid, tags, _WRITTEN.sub(r'\1"', flds))
                      for nid, guid, mid, tags, flds
                      in col.db.all("select id, guid, mid, tags, flds from notes order by id")],
            "cards": col.db.all("select id, nid, did, ord, queue, type, due from cards"
                                " order by id"),
            "revlog": col.db.all("select id, cid, ease from revlog order by id"),
            "decks": sorted((d.id, d.name) for d in col.decks.all_names_and_ids()),
            "notetypes": sorted((n.id, n.name) for n in col.models.all_names_and_ids()),
        }
    finally:
        col.close()


@pytest.fixture(scope="module")
def before(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A collection synced from the first version of the notes, with reviews."""
    folder = tmp_path_factory.mktemp("before")
    collection = folder / "collection.anki2"
    assert run(collection, write_export(folder / "v1.json", _pages(False))).returncode == 0
    col = Collection(str(collection))
    for cid in col.find_cards("")[:6]:
        card = col.get_card(cid)
        card.start_timer()
        col.sched.answerCard(card, 3)
    col.close()
    return collection


@pytest.fixture(scope="module")
def clean(before: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, int, Path]:
    """The edited notes synced in one uninterrupted run: what every crash must converge to."""
    folder = tmp_path_factory.mktemp("clean")
    export = write_export(folder / "v2.json", _pages(True))
    collection = folder / "collection.anki2"
    shutil.copy(before, collection)
    result = run(collection, export, mode="fold", at=10**6)
    assert result.returncode == 0, result.stderr
    folds = int(result.stdout.split("FOLDS")[-1])
    assert re.search(r"orphaned\s+8\n", result.stdout) and re.search(r"created\s+3\n",
                                                                     result.stdout)
    return snapshot(collection), folds, export


def _converges(before: Path, clean: tuple[dict, int, Path], tmp_path: Path, mode: str,
               at: int) -> None:
    expected, _, export = clean
    collection = tmp_path / "collection.anki2"
    shutil.copy(before, collection)
    killed = run(collection, export, mode=mode, at=at)
    assert killed.returncode == 9, (killed.stdout, killed.stderr)
    assert snapshot(collection) == snapshot(before)  # nothing of the killed run stayed
    healed = run(collection, export)
    assert healed.returncode == 0, healed.stderr
    assert snapshot(collection) == expected


# The clean run's write steps: kinds, import, updates, decks, suspends, guard, the last folds.
WRITE_STEPS = 8


def test_every_write_step_of_the_clean_run_has_its_crash_test(
    clean: tuple[dict, int, Path],
) -> None:
    _, folds, _ = clean
    assert folds == WRITE_STEPS, "a write step was added or removed: set WRITE_STEPS to it"


@pytest.mark.parametrize("at", range(1, WRITE_STEPS + 1))
def test_a_run_killed_after_any_write_step_converges(
    before: Path, clean: tuple[dict, int, Path], tmp_path: Path, at: int
) -> None:
    _converges(before, clean, tmp_path, "fold", at)


def test_a_run_killed_while_building_the_package_of_new_notes_converges(
    before: Path, clean: tuple[dict, int, Path], tmp_path: Path
) -> None:
    _converges(before, clean, tmp_path, "package", 1)


def test_a_first_sync_killed_between_creating_the_two_note_types_leaves_none(
    tmp_path: Path,
) -> None:
    export = write_export(tmp_path / "v1.json", _pages(False))
    collection = tmp_path / "collection.anki2"
    killed = run(collection, export, mode="notetype", at=1)
    assert killed.returncode == 9
    assert not any("Roam Bridge" in name for _, name in snapshot(collection)["notetypes"])
    assert run(collection, export).returncode == 0
    names = sorted(name for _, name in snapshot(collection)["notetypes"] if "Roam" in name)
    assert names == ["Roam Bridge Basic", "Roam Bridge Cloze"]

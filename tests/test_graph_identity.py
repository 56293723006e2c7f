"""A graph keeps its identity: a wrong name is refused, a renamed graph is re-keyed.

Through the CLI as a user runs it, against a real collection file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from anki.collection import Collection

from tests.roam import block, page, write_export

ROOT = Path(__file__).resolve().parent.parent
PAGES = [page("P", block("One #card", block("1"), uid="one0000001"),
              block("Two #card", block("2"), uid="two0000002"), uid="p")]


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.bridge", *map(str, args)], cwd=ROOT,
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def state(collection: Path) -> dict:
    col = Collection(str(collection))
    try:
        return {
            "mod": col.mod,
            "notes": sorted((nid, col.get_note(nid)["SourceID"]) for nid in col.find_notes("")),
            "cards": col.db.all("select id, nid, ord from cards order by id"),
            "revlog": col.db.all("select id, cid from revlog order by id"),
        }
    finally:
        col.close()


def review_all(collection: Path) -> None:
    col = Collection(str(collection))
    try:
        for cid in col.find_cards(""):
            card = col.get_card(cid)
            card.start_timer()
            col.sched.answerCard(card, 3)
    finally:
        col.close()


def test_a_wrong_graph_name_is_refused_with_one_line_naming_the_right_one(tmp_path: Path
                                                                          ) -> None:
    export = write_export(tmp_path / "notes.json", PAGES)
    collection = tmp_path / "collection.anki2"
    assert cli("sync", export, "--collection", collection, "--graph", "physics").returncode == 0
    before = state(collection)
    typo = cli("sync", export, "--collection", collection, "--graph", "phisics")
    assert typo.returncode == 2
    (line,) = typo.stderr.strip().splitlines()
    assert "'physics'" in line and "--graph 'physics'" in line and "rename-graph" in line
    assert state(collection) == before


def test_an_export_downloaded_again_keeps_its_graph_name(tmp_path: Path) -> None:
    collection = tmp_path / "collection.anki2"
    first = write_export(tmp_path / "my-graph.json", PAGES)
    assert cli("sync", first, "--collection", collection).returncode == 0
    again = tmp_path / "downloads" / "my-graph (1).json"
    again.parent.mkdir()
    shutil.copy(first, again)
    result = cli("sync", again, "--collection", collection, "--json")
    assert result.returncode == 0, result.stderr
    assert '"created": 0' in result.stdout and '"unchanged": 2' in result.stdout


def test_rename_graph_rekeys_the_notes_and_keeps_ids_cards_and_history(tmp_path: Path
                                                                      ) -> None:
    export = write_export(tmp_path / "notes.json", PAGES)
    collection = tmp_path / "collection.anki2"
    cli("sync", export, "--collection", collection, "--graph", "old-name")
    review_all(collection)
    before = state(collection)
    renamed = cli("rename-graph", "old-name", "new-name", "--collection", collection)
    assert renamed.returncode == 0, renamed.stderr
    assert "2 notes" in renamed.stdout
    after = state(collection)
    assert [nid for nid, _ in after["notes"]] == [nid for nid, _ in before["notes"]]
    assert {key for _, key in after["notes"]} == {"roam:new-name:one0000001",
                                                  "roam:new-name:two0000002"}
    assert (after["cards"], after["revlog"]) == (before["cards"], before["revlog"])
    synced = cli("sync", export, "--collection", collection, "--graph", "new-name", "--json")
    assert '"created": 0' in synced.stdout and '"orphaned": 0' in synced.stdout
    final = state(collection)
    assert (final["cards"], final["revlog"]) == (before["cards"], before["revlog"])
    old_name = cli("sync", export, "--collection", collection, "--graph", "old-name")
    assert old_name.returncode == 2 and "'new-name'" in old_name.stderr


def test_rename_graph_never_merges_two_graphs(tmp_path: Path) -> None:
    collection = tmp_path / "collection.anki2"
    cli("sync", write_export(tmp_path / "a.json", PAGES), "--collection", collection,
        "--graph", "a")
    other = [page("Q", block("Three #card", uid="three00003"), uid="q")]
    cli("sync", write_export(tmp_path / "b.json", other), "--collection", collection,
        "--graph", "b")
    before = state(collection)
    result = cli("rename-graph", "a", "b", "--collection", collection)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "already has notes" in result.stderr
    assert state(collection) == before
    missing = cli("rename-graph", "nope", "c", "--collection", collection)
    assert missing.returncode == 2 and "no notes of graph 'nope'" in missing.stderr


def test_blocks_without_ids_are_recognised_under_another_graph_name_too(tmp_path: Path
                                                                        ) -> None:
    notes = tmp_path / "vault"
    (notes / ".obsidian").mkdir(parents=True)
    (notes / "Spanish.md").write_text("- hola #card\n  - hello\n- adios #card\n  - bye\n",
                                      encoding="utf-8")
    collection = tmp_path / "collection.anki2"
    assert cli("sync", notes, "--collection", collection).returncode == 0
    renamed_folder = notes.rename(tmp_path / "vault-copy")
    result = cli("sync", renamed_folder, "--collection", collection)
    assert result.returncode == 2 and "'vault'" in result.stderr

"""The bridge CLI as a user runs it: exit codes, one-line errors, dry runs, the guard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from anki.collection import Collection

from tests.roam import block, page, write_export

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"

TWO_CARDS = [page("P", block("One #card", uid="one"), block("Two #card", uid="two"))]


def bridge(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.bridge", "sync", *map(str, args)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


def last_json(result: subprocess.CompletedProcess[str]) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_sync_prints_counts_as_a_json_last_line_and_is_idempotent(tmp_path: Path) -> None:
    collection = tmp_path / "new" / "collection.anki2"
    first = bridge(SEEDS, "--collection", collection, "--graph", "demo", "--json")
    assert first.returncode == 0, first.stderr
    counts = last_json(first)
    assert counts["created"] >= 8 and counts["errors"] == []
    second = bridge(SEEDS, "--collection", collection, "--graph", "demo", "--json")
    again = last_json(second)
    assert (again["created"], again["updated"], again["orphaned"]) == (0, 0, 0)
    assert again["unchanged"] == counts["created"]


def test_deck_flag_sets_the_deck_for_cards_without_one(tmp_path: Path) -> None:
    export = write_export(tmp_path / "e.json", TWO_CARDS)
    collection = tmp_path / "c.anki2"
    assert bridge(export, "--collection", collection, "--deck", "From CLI").returncode == 0
    col = Collection(str(collection))
    try:
        decks = {col.decks.name(col.get_card(c).did) for c in col.find_cards("")}
    finally:
        col.close()
    assert decks == {"From CLI"}


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("broken.json", b'[{"title": ', "not valid JSON"),
        ("empty.json", b"[]", "holds no pages"),
        ("shape.json", b'{"pages": []}', "expected a list of pages"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_leaves_the_collection_untouched(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    collection = tmp_path / "c.anki2"
    assert bridge(write_export(tmp_path / "ok.json", TWO_CARDS), "--collection",
                  collection).returncode == 0
    before = collection.read_bytes(), collection.stat().st_mtime_ns
    bad = tmp_path / name
    bad.write_bytes(content)
    result = bridge(bad, "--collection", collection)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert name in lines[0] and reason in lines[0]
    assert "Traceback" not in result.stderr
    assert (collection.read_bytes(), collection.stat().st_mtime_ns) == before


def test_bad_input_never_creates_a_collection(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("nope")
    assert bridge(bad, "--collection", tmp_path / "c.anki2").returncode == 2
    assert not (tmp_path / "c.anki2").exists()


def test_zip_slip_export_is_bad_input(tmp_path: Path) -> None:
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape.json", json.dumps(TWO_CARDS))
    result = bridge(evil, "--collection", tmp_path / "c.anki2")
    assert result.returncode == 2 and "unsafe file name" in result.stderr


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    export = write_export(tmp_path / "e.json", TWO_CARDS)
    collection = tmp_path / "c.anki2"
    result = bridge(export, "--collection", collection, "--dry-run", "--json")
    assert result.returncode == 0
    assert last_json(result)["created"] == 2 and last_json(result)["dry_run"] is True
    assert not collection.exists()
    bridge(export, "--collection", collection)
    before = collection.read_bytes()
    edited = write_export(tmp_path / "e2.json", [page("P", block("One! #card", uid="one"),
                                                      block("Two #card", uid="two"))])
    result = bridge(edited, "--collection", collection, "--graph", "e", "--dry-run", "--json")
    assert last_json(result)["updated"] == 1
    assert collection.read_bytes() == before


def test_mass_orphan_guard_exits_3_and_writes_nothing_unless_forced(tmp_path: Path) -> None:
    export = write_export(tmp_path / "g.json", TWO_CARDS)
    collection = tmp_path / "c.anki2"
    bridge(export, "--collection", collection)
    before = collection.read_bytes()
    write_export(export, [page("P", block("nothing marked", uid="x"))])
    refused = bridge(export, "--collection", collection, "--json")
    assert refused.returncode == 3
    assert last_json(refused)["refused"] is True
    assert collection.read_bytes() == before
    forced = bridge(export, "--collection", collection, "--force", "--json")
    assert forced.returncode == 0 and last_json(forced)["orphaned"] == 2


def test_kind_change_is_done_and_warned_about(tmp_path: Path) -> None:
    export = write_export(tmp_path / "g.json", TWO_CARDS)
    collection = tmp_path / "c.anki2"
    bridge(export, "--collection", collection)
    write_export(export, [page("P", block("{One} #card", uid="one"),
                               block("Two #card", uid="two"))])
    result = bridge(export, "--collection", collection, "--json")
    assert result.returncode == 0
    assert last_json(result)["updated"] == 1
    assert "full sync" in result.stdout


def test_collection_open_elsewhere_gets_a_clear_message(tmp_path: Path) -> None:
    export = write_export(tmp_path / "g.json", TWO_CARDS)
    collection = tmp_path / "c.anki2"
    holder = Collection(str(collection))
    try:
        result = bridge(export, "--collection", collection)
    finally:
        holder.close()
    assert result.returncode == 1
    assert "is open in Anki" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_usage_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    result = bridge("--collection")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_file_that_is_not_a_collection_gets_a_clear_message(tmp_path: Path) -> None:
    export = write_export(tmp_path / "g.json", TWO_CARDS)
    bogus = tmp_path / "notes.anki2"
    bogus.write_text("not a database")
    result = bridge(export, "--collection", bogus)
    assert result.returncode == 1
    assert result.stderr.strip() == f"roam-bridge: {bogus}: not an Anki collection"
    assert bogus.read_text() == "not a database"

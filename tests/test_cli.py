"""The bridge CLI as a user runs it: exit codes, one-line errors, dry runs, the guard."""

from __future__ import annotations

import json
import os
import sqlite3
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
    collection = tmp_path / "collection.anki2"
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
    # {One} is a cloze only with the {x} shorthand turned on.
    result = bridge(export, "--collection", collection, "--brace-clozes", "--json")
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
    assert result.returncode == 2
    assert result.stderr.strip() == f"roam-bridge: {bogus}: not an Anki collection"
    assert bogus.read_text() == "not a database"


@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ("missing-folder/collection.anki2", "its folder"),
        ("collection.anki", "ends in .anki2"),
        ("collection", "ends in .anki2"),
        (".", "is a folder"),
    ],
)
def test_a_collection_path_that_is_not_one_exits_2_and_creates_nothing(
    tmp_path: Path, where: str, problem: str
) -> None:
    export = write_export(tmp_path / "g.json", TWO_CARDS)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = bridge(export, "--collection", tmp_path / where)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and problem in lines[0], result.stderr
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.rglob("*")) == before, "nothing was created"


def test_a_database_that_is_not_a_collection_is_bad_input_and_left_alone(
    tmp_path: Path,
) -> None:
    other = tmp_path / "other.anki2"
    con = sqlite3.connect(other)
    con.execute("create table notes (id integer)")
    con.commit()
    con.close()
    before = other.read_bytes()
    result = bridge(write_export(tmp_path / "g.json", TWO_CARDS), "--collection", other)
    assert result.returncode == 2
    assert "not an Anki collection" in result.stderr
    assert other.read_bytes() == before


def test_dry_run_lists_the_notes_it_would_change_and_json_gives_them_as_lists(
    tmp_path: Path,
) -> None:
    export = write_export(tmp_path / "g.json", [
        page("P", block("One #card", uid="one"), block("Two #card", uid="two"),
             block("Three #card", uid="three")),
    ])
    collection = tmp_path / "c.anki2"
    assert bridge(export, "--collection", collection).returncode == 0
    col = Collection(str(collection))
    try:
        nids = {uid: col.find_notes(f'"SourceID:roam:g:{uid}"')[0] for uid in ("one", "two")}
    finally:
        col.close()
    before = collection.read_bytes()
    write_export(export, [page("P", block("One, edited #card", uid="one"),
                               block("Three #card", uid="three"),
                               block("Four #card", uid="four"))])
    result = bridge(export, "--collection", collection, "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    assert collection.read_bytes() == before
    text = result.stdout
    assert "(dry run: nothing was written)" in text
    assert "would create" in text and "would orphan" in text
    assert "new             roam:g:four  Four" in text
    assert "updated         roam:g:one  One → One, edited" in text
    assert "orphaned        roam:g:two  Two" in text
    assert "roam:g:three" not in text, "an unchanged note is not listed"
    notes = last_json(result)["notes"]
    assert [(n["key"], n["note_id"], n["text"]) for n in notes["create"]] == [
        ("roam:g:four", None, "Four")]
    assert [(n["key"], n["note_id"], n["before"], n["text"]) for n in notes["update"]] == [
        ("roam:g:one", nids["one"], "One", "One, edited")]
    assert [(n["key"], n["note_id"]) for n in notes["orphan"]] == [("roam:g:two", nids["two"])]
    assert notes["delete"] == []


def test_a_refused_run_says_what_it_would_have_done(tmp_path: Path) -> None:
    export = write_export(tmp_path / "g.json", TWO_CARDS)
    collection = tmp_path / "c.anki2"
    bridge(export, "--collection", collection)
    write_export(export, [page("P", block("nothing marked", uid="x"))])
    refused = bridge(export, "--collection", collection)
    assert refused.returncode == 3
    assert "(refused: nothing was written)" in refused.stdout
    assert "would orphan      2" in refused.stdout
    assert "  orphaned " not in refused.stdout


def test_a_closed_pipe_ends_quietly_with_the_runs_exit_code(tmp_path: Path) -> None:
    export = write_export(tmp_path / "g.json", TWO_CARDS)
    collection = tmp_path / "c.anki2"
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.bridge", "sync", str(export), "--collection",
         str(collection), "--json"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # as `| head -0` does: nobody reads what it prints
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 0
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    col = Collection(str(collection))
    try:
        assert len(col.find_notes('"SourceID:roam:g:*"')) == 2, "the sync itself was done"
    finally:
        col.close()


def test_write_back_and_its_revert_from_the_cli(tmp_path: Path) -> None:
    """--write-back writes an Anki edit into the Logseq file and lists it in the JSON line;
    a kept edit and a conflict are listed with both sides; revert-write-back puts it back."""
    from tests.test_write_back import ADIOS, HOLA, LOGSEQ_PAGE, later

    graph = tmp_path / "graph"
    (graph / "pages").mkdir(parents=True)
    (graph / "logseq").mkdir()
    page_file = graph / "pages" / "Spanish.md"
    page_file.write_text(LOGSEQ_PAGE, encoding="utf-8")
    collection = tmp_path / "collection.anki2"
    args = (graph, "--collection", collection, "--graph", "g", "--json")
    assert bridge(*args).returncode == 0
    later()
    col = Collection(str(collection))
    try:
        for key, front in ((HOLA, "What does hola mean, from the CLI?"), (ADIOS, "Adiós?")):
            [nid] = col.find_notes(f'"SourceID:{key}"')
            note = col.get_note(nid)
            note["Front"] = front
            col.update_note(note)
    finally:
        col.close()
    page_file.write_text(LOGSEQ_PAGE.replace("adios means?", "adios means what?"),
                         encoding="utf-8")  # and the notes change ADIOS too: a conflict
    result = bridge(*args, "--write-back")
    assert result.returncode == 0, result.stderr
    counts = last_json(result)
    assert (counts["written_back"], counts["conflicts"]) == (1, 1)
    assert [e["key"] for e in counts["write_backs"]] == [HOLA]
    [conflict] = counts["anki_edits"]
    assert conflict["key"] == ADIOS and conflict["conflict"] is True
    assert conflict["fields"]["Front"]["anki"] == "Adiós?"
    assert f"conflict        {ADIOS}  Front: Anki says 'Adiós?'" in result.stdout
    assert "- What does hola mean, from the CLI? #card" in page_file.read_text(encoding="utf-8")
    reverted = subprocess.run(
        [sys.executable, "-m", "tools.bridge", "revert-write-back", "--collection",
         str(collection)], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert reverted.returncode == 0, reverted.stderr
    assert f"reverted {HOLA}" in reverted.stdout
    assert page_file.read_text(encoding="utf-8") == LOGSEQ_PAGE.replace(
        "adios means?", "adios means what?")
    settled = last_json(bridge(*args, "--on-conflict", "notes"))
    assert settled["conflicts"] == 0 and settled["updated"] == 2

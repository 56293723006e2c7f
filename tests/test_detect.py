"""Picking the reader from a source's shape, and syncing every format of the seeds."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from anki.collection import Collection

from addon.core.model import SourceError
from addon.core.sources.detect import default_graph_name, detect_kind, is_notes_folder, read_source
from addon.core.watching import Fingerprints, watch_paths
from tests.test_cli import bridge, last_json

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_JSON = SEEDS / "roam-bridge-demo.json"
# Each format of the seeds, as a user would point the bridge at it.
SEED_SOURCES = {
    "roam-json": SEED_JSON,
    "roam-edn": SEEDS / "roam-edn" / "roam-bridge-demo.edn",
    "roam-markdown": SEEDS / "roam-markdown",
    "logseq": SEEDS / "logseq",
    "obsidian": SEEDS / "obsidian",
}


@pytest.mark.parametrize("kind", ["logseq", "obsidian"])
@pytest.mark.parametrize("stray", ["attachment.zip", "data.json", "old.edn"])
def test_a_notes_folder_holding_an_export_file_is_still_watched_as_notes(
    tmp_path: Path, kind: str, stray: str
) -> None:
    # Obsidian saves attachments in the vault root by default: a .zip or .json there is common.
    folder = tmp_path / kind
    shutil.copytree(SEEDS / kind, folder)
    (folder / stray).write_bytes(b"not an export")
    assert detect_kind(folder) == kind
    assert is_notes_folder(folder)
    fingerprint = Fingerprints().of
    before = fingerprint(folder)
    note = next(p for p in sorted(folder.rglob("*.md")) if ".obsidian" not in p.parts)
    note.write_text(note.read_text(encoding="utf-8") + "\n- more\n", encoding="utf-8")
    assert fingerprint(folder) != before
    assert str(folder / stray) not in watch_paths(folder)
    assert str(note.parent) in watch_paths(folder)


@pytest.mark.parametrize(("kind", "source"), SEED_SOURCES.items())
def test_each_seed_format_is_recognised(kind: str, source: Path) -> None:
    assert detect_kind(source) == kind


def test_an_api_url_is_recognised_without_touching_the_network() -> None:
    assert detect_kind("roam-api://my-graph") == "roam-api"
    assert default_graph_name("roam-api://my-graph") == "my-graph"
    assert Fingerprints().of("roam-api://my-graph") == ""
    assert Fingerprints().of("roam-local://my-graph") == ""
    assert watch_paths("roam-api://my-graph") == set()
    assert watch_paths("roam-local://my-graph") == set()


def test_zips_are_recognised_by_what_they_hold(tmp_path: Path) -> None:
    for name, member in (("j.zip", "g.json"), ("e.zip", "g.edn"), ("m.zip", "Page.md")):
        with zipfile.ZipFile(tmp_path / name, "w") as archive:
            archive.writestr(member, "x")
    assert detect_kind(tmp_path / "j.zip") == "roam-json"
    assert detect_kind(tmp_path / "e.zip") == "roam-edn"
    assert detect_kind(tmp_path / "m.zip") == "roam-markdown"
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("notes.txt", "x")
    with pytest.raises(SourceError, match="holds no Roam export"):
        detect_kind(tmp_path / "other.zip")


def test_a_folder_of_exports_reads_its_newest(tmp_path: Path) -> None:
    shutil.copy(SEED_JSON, tmp_path / "old.json")
    shutil.copy(SEEDS / "roam-edn" / "roam-bridge-demo.edn", tmp_path / "new.edn")
    (tmp_path / "new.edn").touch()
    assert detect_kind(tmp_path) == "roam-edn"
    assert not is_notes_folder(tmp_path)
    assert str(tmp_path / "new.edn") in watch_paths(tmp_path)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.json", "no such file"),
        (lambda p: (p / "notes.txt").write_text("x") and p / "notes.txt", "unknown export"),
        (lambda p: (p / "Page.md").write_text("- x") and p / "Page.md", "single Markdown"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "no export"),
    ],
)
def test_unknown_sources_get_a_clear_error(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        read_source(make(tmp_path))


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(SourceError, match="unknown source kind"):
        read_source(SEED_JSON, kind="roam-xml")


def test_a_notes_folder_fingerprint_follows_its_notes(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    shutil.copytree(SEEDS / "obsidian", vault)
    assert is_notes_folder(vault)
    fingerprint = Fingerprints().of
    before = fingerprint(vault)
    assert fingerprint(vault) == before
    note = next(vault.glob("*.md"))
    note.write_text(note.read_text(encoding="utf-8") + "\n- more\n", encoding="utf-8")
    assert fingerprint(vault) != before


@pytest.mark.parametrize(("kind", "source"), SEED_SOURCES.items())
def test_every_seed_format_syncs_through_the_cli(
    tmp_path: Path, kind: str, source: Path
) -> None:
    collection = tmp_path / "collection.anki2"
    first = bridge(source, "--collection", collection, "--json")
    assert first.returncode == 0, first.stderr
    counts = last_json(first)
    assert (counts["created"], counts["errors"]) == (9, [])
    again = last_json(bridge(source, "--collection", collection, "--json"))
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 9)
    col = Collection(str(collection))
    try:
        keys = {col.get_note(n)["SourceID"] for n in col.find_notes("")}
    finally:
        col.close()
    expected_source = {"logseq": "logseq", "obsidian": "obsidian"}.get(kind, "roam")
    assert all(key.startswith(f"{expected_source}:") for key in keys)


def test_json_and_edn_of_one_graph_are_interchangeable(tmp_path: Path) -> None:
    collection = tmp_path / "collection.anki2"
    first = last_json(bridge(SEED_JSON, "--collection", collection, "--json"))
    assert first["created"] == 9
    edn = SEED_SOURCES["roam-edn"]
    second = last_json(bridge(edn, "--collection", collection, "--json"))
    assert (second["created"], second["updated"], second["unchanged"]) == (0, 0, 9)


def test_the_seed_pages_are_the_same_in_every_format() -> None:
    pages = json.loads(SEED_JSON.read_text(encoding="utf-8"))
    titles = {p["title"] for p in pages}
    for kind, source in SEED_SOURCES.items():
        graph = read_source(source)
        assert set(graph.pages) == titles, kind


def _edit_first_card_line(folder: Path, edit) -> None:
    for note in sorted(folder.rglob("*.md")):
        text = note.read_text(encoding="utf-8")
        lines = text.split("\n")
        for i, line in enumerate(lines):
            if "#card" in line and "{" not in line and "no-card" not in line:
                lines[i] = edit(line)
                note.write_text("\n".join(lines), encoding="utf-8")
                return
    raise AssertionError("no card line found")


@pytest.mark.parametrize("kind", ["roam-markdown", "logseq", "obsidian"])
def test_editing_and_untagging_in_a_notes_folder_behave_as_with_json(
    tmp_path: Path, kind: str
) -> None:
    folder = tmp_path / kind
    shutil.copytree(SEED_SOURCES[kind], folder)
    collection = tmp_path / "collection.anki2"
    assert last_json(bridge(folder, "--collection", collection, "--json"))["created"] == 9

    _edit_first_card_line(folder, lambda line: line.replace("#card", "(edited) #card", 1))
    edited = last_json(bridge(folder, "--collection", collection, "--json"))
    assert (edited["created"], edited["updated"], edited["orphaned"]) == (0, 1, 0)

    _edit_first_card_line(folder, lambda line: line.replace(" #card", "", 1))
    untagged = last_json(bridge(folder, "--collection", collection, "--json"))
    assert (untagged["created"], untagged["updated"], untagged["orphaned"]) == (0, 0, 1)


def test_write_ids_gives_logseq_cards_ids_and_keeps_their_notes(tmp_path: Path) -> None:
    folder = tmp_path / "graph"
    shutil.copytree(SEED_SOURCES["logseq"], folder)
    collection = tmp_path / "collection.anki2"
    assert last_json(bridge(folder, "--collection", collection, "--json"))["created"] == 9
    col = Collection(str(collection))
    nids = set(col.find_notes(""))
    col.close()

    written = last_json(bridge(folder, "--collection", collection, "--json", "--write-ids"))
    assert (written["created"], written["updated"], written["orphaned"]) == (0, 9, 0)
    text = "".join(p.read_text(encoding="utf-8") for p in folder.rglob("*.md"))
    assert text.count("id:: ") >= 9
    col = Collection(str(collection))
    try:
        assert set(col.find_notes("")) == nids
        keys = [col.get_note(n)["SourceID"] for n in nids]
    finally:
        col.close()
    assert not any(":md-" in key for key in keys)
    again = last_json(bridge(folder, "--collection", collection, "--json"))
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 9)


def test_without_write_ids_a_notes_folder_is_never_written(tmp_path: Path) -> None:
    folder = tmp_path / "graph"
    shutil.copytree(SEED_SOURCES["logseq"], folder)
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}
    bridge(folder, "--collection", tmp_path / "c.anki2")
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}
    assert after == before


def test_the_seed_syncs_from_the_roam_api_through_the_cli(tmp_path: Path) -> None:
    """roam-api://GRAPH through the CLI, against a local server that behaves like the API
    (redirect to a peer, token in X-Authorization): the same notes as the JSON seed."""
    from tests.fake_roam_api import FakeRoamApi

    pages = json.loads(SEED_JSON.read_text(encoding="utf-8"))
    token = "roam-graph-token-cli-test"
    with FakeRoamApi(pages, graph="roam-bridge-demo", token=token) as api:
        env = {"ROAM_API_TOKEN": token}
        collection = tmp_path / "collection.anki2"
        args = ("roam-api://roam-bridge-demo", "--collection", collection, "--json",
                "--api-base-url", api.base_url)
        first = bridge(*args, env=env)
        assert first.returncode == 0, first.stderr
        assert last_json(first)["created"] == 9
        assert token not in first.stdout + first.stderr
        # The same graph as a JSON export: the same keys, nothing to do.
        again = last_json(bridge(SEED_JSON, "--collection", collection, "--json"))
        assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 9)
        refused = bridge(*args, env={"ROAM_API_TOKEN": "wrong"})
    assert refused.returncode == 2
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "refused the token" in refused.stderr

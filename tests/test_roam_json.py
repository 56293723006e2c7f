"""The Roam JSON reader: files, zips, folders, both export generations, clear errors."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from addon.core.model import SourceError
from addon.core.sources import roam_json
from addon.core.sources.detect import default_graph_name, read_source
from tests.conftest import FIXTURES
from tests.roam import block, page, write_export

BACKUP_JSON = FIXTURES / "roam-to-csv" / "backup.json"


def test_real_export_fixture_gives_pages_blocks_and_tree() -> None:
    graph = roam_json.read(BACKUP_JSON, "fixture")
    assert list(graph.pages) == ["June 28th, 2021"]
    daily = graph.pages["June 28th, 2021"]
    assert daily.uid == "06-28-2021"
    assert [b.string for b in daily.children] == ["one", "four"]
    assert [b.string for b in daily.children[0].children] == ["two", "three"]
    six = graph.blocks["xNUTmfMSW"]
    assert six.string == "six"
    assert [a.string for a in six.ancestors()] == ["four", "five"]
    assert six.page is daily
    assert len(graph.blocks) == 6


def test_old_and_new_export_generations_read_alike(tmp_path: Path) -> None:
    new = [{
        "title": "P", "uid": "pg1", ":create/user": {":user/uid": "u"}, "create-time": 1,
        "children": [{"string": "a [[B]]", "uid": "b1", ":block/refs": [{":block/uid": "x"}],
                      ":create/user": {":user/uid": "u"}, "edit-time": 2, "heading": 2}],
    }]
    old = [{
        "title": "P", "create-email": "me@example.com",
        "children": [{"string": "a [[B]]", "uid": "b1", "refs": [{"uid": "x"}],
                      "create-email": "me@example.com", "heading": 2}],
    }]
    g_new = roam_json.read(write_export(tmp_path / "new.json", new), "g")
    g_old = roam_json.read(write_export(tmp_path / "old.json", old), "g")
    for graph in (g_new, g_old):
        only = graph.blocks["b1"]
        assert only.string == "a [[B]]"
        assert only.heading == 2
    assert g_old.pages["P"].uid == ""


def test_children_keep_array_order(tmp_path: Path) -> None:
    pages = [page("P", block("z", uid="z1"), block("a", uid="a1"), block("m", uid="m1"))]
    graph = roam_json.read(write_export(tmp_path / "e.json", pages), "g")
    assert [b.uid for b in graph.pages["P"].children] == ["z1", "a1", "m1"]


def test_deep_nesting_is_read_without_recursion(tmp_path: Path) -> None:
    depth = 450  # two JSON levels each: close to what the JSON parser itself accepts
    text = "".join(f'{{"string":"level {i}","uid":"u{i}","children":[' for i in range(depth))
    text += '{"string":"leaf","uid":"leaf"}' + "]}" * depth
    deep = tmp_path / "deep.json"
    deep.write_text(f'[{{"title":"P","children":[{text}]}}]')
    graph = roam_json.read(deep, "g")
    assert len(graph.blocks["leaf"].ancestors()) == depth


def test_zip_holding_one_json_is_read(tmp_path: Path) -> None:
    archive = tmp_path / "Roam-Export-1700000000000.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(BACKUP_JSON, "my-graph.json")
    graph = roam_json.read(archive, "g")
    assert "June 28th, 2021" in graph.pages


def test_folder_source_takes_the_newest_export(tmp_path: Path) -> None:
    old = write_export(tmp_path / "Roam-Export-1.json", [page("Old", block("x"))])
    new = write_export(tmp_path / "Roam-Export-2.json", [page("New", block("y"))])
    os.utime(old, (2_000_000_000, 2_000_000_000))
    os.utime(new, (1_000_000_000, 1_000_000_000))
    assert list(roam_json.read(tmp_path, "g").pages) == ["Old"]


def test_default_graph_name_comes_from_the_source_name(tmp_path: Path) -> None:
    (tmp_path / "brain").mkdir()
    assert default_graph_name(tmp_path / "brain") == "brain"
    assert default_graph_name(tmp_path / "my-notes.json") == "my-notes"
    assert default_graph_name(tmp_path / "brain" / "Roam-Export-1700.zip") == "brain"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not valid JSON"),
        (b"[{\"title\": \"P\", ", "not valid JSON"),
        (b"[]", "holds no pages"),
        (b"{\"title\": \"P\"}", "expected a list of pages"),
        (b"[{\"children\": []}]", "has no title"),
        (b"[{\"title\": \"P\", \"children\": [{\"string\": 5, \"uid\": \"a\"}]}]", "not text"),
    ],
)
def test_bad_exports_raise_a_source_error_naming_the_file(
    tmp_path: Path, content: bytes, message: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    with pytest.raises(SourceError) as caught:
        roam_json.read(bad, "g")
    assert message in str(caught.value)
    assert str(bad) in str(caught.value)


def test_zip_slip_member_names_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../outside.json", json.dumps([page("P", block("x"))]))
    with pytest.raises(SourceError, match="unsafe file name"):
        roam_json.read(archive, "g")
    assert not (tmp_path.parent / "outside.json").exists()


def test_zip_without_json_and_corrupt_zip_are_clear_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("notes.txt", "hello")
    with pytest.raises(SourceError, match=r"holds no \.json"):
        roam_json.read(empty, "g")
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(SourceError, match="not a valid zip"):
        roam_json.read(corrupt, "g")


def test_unknown_format_and_missing_path_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        read_source(tmp_path / "missing.json")
    odd = tmp_path / "notes.docx"
    odd.write_bytes(b"x")
    with pytest.raises(SourceError, match="unknown export format"):
        read_source(odd)


def test_fingerprint_changes_with_content_not_with_a_touch(tmp_path: Path) -> None:
    from addon.core.watching import Fingerprints

    fingerprint = Fingerprints().of
    export = write_export(tmp_path / "e.json", [page("P", block("a"))])
    before = fingerprint(export)
    os.utime(export, (3_000_000_000, 3_000_000_000))
    assert fingerprint(export) == before
    write_export(export, [page("P", block("b"))])
    assert fingerprint(export) != before
    assert fingerprint(tmp_path / "gone.json") == "missing"
    newer = write_export(tmp_path / "Roam-Export-9.json", [page("Q", block("c"))])
    os.utime(newer, (4_000_000_000, 4_000_000_000))
    assert str(newer) in fingerprint(tmp_path)


def test_released_graph_has_no_links_left() -> None:
    graph = roam_json.read(BACKUP_JSON, "g")
    six = graph.blocks["xNUTmfMSW"]
    graph.release()
    assert six.parent is None and graph.blocks == {} and graph.pages == {}


def test_a_block_uid_that_is_not_text_is_a_source_error(tmp_path: Path) -> None:
    bad = write_export(tmp_path / "e.json", [page("P", block("x", uid=["not", "text"]))])
    with pytest.raises(SourceError, match="'uid' is not text"):
        roam_json.read(bad, "g")


def test_graph_names_are_nfc_and_never_hold_a_colon(tmp_path: Path) -> None:
    import unicodedata

    export = write_export(tmp_path / "e.json", [page("P", block("x"))])
    assert read_source(export, unicodedata.normalize("NFD", "Café")).name == "Café"
    with pytest.raises(SourceError, match="no ':'"):
        read_source(export, "work:2024")
    assert default_graph_name(tmp_path / "a:b.json") == "a-b"

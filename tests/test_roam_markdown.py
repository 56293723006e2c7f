"""The Roam Markdown export reader: outline parsing, synthetic uids, zips and folders, the seed,
a sync into a real collection, and speed against the JSON reader."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from anki.collection import Collection

from addon.core import cards, sync
from addon.core.config import CardOptions, SyncOptions
from addon.core.model import (
    RARE_SPACES,
    Graph,
    Page,
    SourceError,
    is_synthetic,
    page_uids,
    synthetic_uid,
)
from addon.core.sources import roam_json, roam_markdown
from addon.core.sources.outline import Outline, parse, parse_text
from tests.test_cards import Card, rendered_cards
from tools.formats import roam_markdown as writer

ROOT = Path(__file__).resolve().parent.parent
SEED_JSON = ROOT / "seeds" / "roam-bridge-demo.json"
SEED = ROOT / "seeds" / "roam-markdown"


def write(folder: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        target.write_bytes(content)
    return folder


def tree(block) -> list:
    return [block.string, [tree(child) for child in block.children]]


def page_tree(graph: Graph, title: str) -> list:
    return [tree(block) for block in graph.pages[title].children]


def folder_digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


# Parsing ----------------------------------------------------------------------------------


def test_bullets_nest_by_four_spaces_and_continuation_lines_join_their_block(
    tmp_path: Path,
) -> None:
    write(tmp_path, {"Page.md": (
        "- one\n"
        "    - two\n"
        "second line of two\n"
        "\n"
        "third line of two\n"
        "        - three\n"
        "    - four\n"
        "- five\n"
    )})
    graph = roam_markdown.read(tmp_path, "g")
    assert page_tree(graph, "Page") == [
        ["one", [
            ["two\nsecond line of two\n\nthird line of two", [["three", []]]],
            ["four", []],
        ]],
        ["five", []],
    ]
    assert graph.source == "roam"
    assert graph.root == str(tmp_path)
    assert graph.pages["Page"].path == "Page.md"
    three = next(b for b in graph.blocks.values() if b.string == "three")
    assert [a.string.split("\n")[0] for a in three.ancestors()] == ["one", "two"]


def test_a_code_fence_keeps_bullet_like_lines_inside_its_block(tmp_path: Path) -> None:
    write(tmp_path, {"Code.md": (
        "- Snippet\n"
        "```yaml\n"
        "- not a block\n"
        "    - nor this\n"
        "```\n"
        "- next block\n"
    )})
    graph = roam_markdown.read(tmp_path, "g")
    assert page_tree(graph, "Code") == [
        ["Snippet\n```yaml\n- not a block\n    - nor this\n```", []],
        ["next block", []],
    ]


def test_headings_are_read_into_the_block_and_tags_are_not_headings(tmp_path: Path) -> None:
    write(tmp_path, {"H.md": "- ## Section\n    - #tag only\n- ### Deep\n"})
    graph = roam_markdown.read(tmp_path, "g")
    blocks = {b.string: b.heading for b in graph.blocks.values()}
    assert blocks == {"Section": 2, "#tag only": 0, "Deep": 3}


def test_a_subfolder_is_a_namespace_in_the_title(tmp_path: Path) -> None:
    write(tmp_path, {"Projects/Anki/Ideas.md": "- idea\n", "Top.md": "- x\n"})
    graph = roam_markdown.read(tmp_path, "g")
    assert set(graph.pages) == {"Projects/Anki/Ideas", "Top"}
    assert graph.pages["Projects/Anki/Ideas"].path == "Projects/Anki/Ideas.md"


def test_synthetic_uids_come_from_page_and_text_and_duplicates_are_numbered(
    tmp_path: Path,
) -> None:
    write(tmp_path, {
        "A.md": "- same #card\n- same #card\n    - same #card\n- other\n",
        "B.md": "- same #card\n",
    })
    graph = roam_markdown.read(tmp_path, "g")
    a_uids = [b.uid for b in graph.blocks.values() if b.page.title == "A"]
    first = synthetic_uid("A", "same #card")
    assert a_uids[:3] == [first, f"{first}-2", f"{first}-3"]
    assert all(is_synthetic(uid) for uid in graph.blocks)
    b_uid = next(b.uid for b in graph.blocks.values() if b.page.title == "B")
    assert b_uid == synthetic_uid("B", "same #card") != first
    again = roam_markdown.read(tmp_path, "g")
    assert list(again.blocks) == list(graph.blocks)


@pytest.mark.parametrize("plain", [True, False])
def test_page_uids_give_exactly_the_synthetic_uids(plain: bool) -> None:
    spaces = [" ", "  ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\u00a0",
              "\u2003", "\u3000", "\u200b"]
    texts = ["", "a", "é b", "x\x00y", "#card q", *(f"{s}a{s}b{s}" for s in spaces),
             *(f"a{s}b" for s in spaces), *(f"a {s} b" for s in spaces)]
    for title in ("A", "Café / ns"):
        uid_of = page_uids(title)
        taken: dict[str, object] = {}
        for text in [*texts, *texts]:  # twice: duplicates are numbered alike
            # plain=True is only ever given for text without RARE_SPACES.
            vouched = plain and not any(c in text for c in RARE_SPACES)
            uid = uid_of(text, taken, vouched)
            assert uid == synthetic_uid(title, text, taken)
            taken[uid] = text
        assert len(taken) == 2 * len(texts)


def test_blocks_with_odd_whitespace_keep_the_uids_of_their_normalized_text(
    tmp_path: Path,
) -> None:
    write(tmp_path, {"W.md": "- a\tb\n- c\x0bd\n- e\u00a0f\n", "P.md": "- a b\n- c d\n- e f\n"})
    graph = roam_markdown.read(tmp_path, "g")
    odd = [b.uid for b in graph.pages["W"].children]
    assert odd == [synthetic_uid("W", text) for text in ("a b", "c d", "e f")]
    assert [b.uid for b in graph.pages["P"].children] == [
        synthetic_uid("P", text) for text in ("a b", "c d", "e f")
    ]


def test_editing_a_block_changes_only_its_own_uid(tmp_path: Path) -> None:
    write(tmp_path, {"A.md": "- keep\n- edit me\n"})
    before = set(roam_markdown.read(tmp_path, "g").blocks)
    write(tmp_path, {"A.md": "- keep\n- edited\n"})
    after = set(roam_markdown.read(tmp_path, "g").blocks)
    assert len(before & after) == 1
    assert synthetic_uid("A", "keep") in before & after


def test_bom_crlf_cp1252_and_empty_files_are_read(tmp_path: Path) -> None:
    write(tmp_path, {
        "Bom.md": b"\xef\xbb\xbf- first\r\n    - child\r\n",
        "Legacy.md": "- caf\u00e9 \u2013 na\u00efve\n".encode("cp1252"),
        "Empty.md": b"",
    })
    graph = roam_markdown.read(tmp_path, "g")
    assert page_tree(graph, "Bom") == [["first", [["child", []]]]]
    assert page_tree(graph, "Legacy") == [["caf\u00e9 \u2013 na\u00efve", []]]
    assert page_tree(graph, "Empty") == []


def test_text_before_the_first_bullet_is_kept_as_a_block(tmp_path: Path) -> None:
    write(tmp_path, {"P.md": "Loose note\nover two lines\n\n- bullet\n"})
    graph = roam_markdown.read(tmp_path, "g")
    assert page_tree(graph, "P") == [["Loose note\nover two lines", []], ["bullet", []]]


def outline_shape(outline: Outline) -> tuple[list[str], list[list]]:
    return outline.preamble, [tree(block) for block in outline.blocks if block.parent is None]


def test_parse_text_matches_line_parse_for_any_line_ending() -> None:
    text = "pre\n- a\n  cont\n\t- b\n```\n- c\n```\n- d\n"
    for indented in (False, True):
        expected = outline_shape(parse(text.split("\n"), indented, Page("P")))
        for ending in ("\r\n", "\r"):
            got = parse_text(text.replace("\n", ending), indented, Page("P"))
            assert outline_shape(got) == expected
    assert expected[1] == [["a\ncont", [["b\n```\n- c\n```", []]]], ["d", []]]


def test_parsed_blocks_are_linked_into_their_page_in_document_order() -> None:
    page = Page("P")
    positions: list[tuple[int, str]] = []
    outline = parse(["- a", "    - b", "        - c", "    - d", "- e"], False, page, positions)
    a, b, c, d, e = outline.blocks
    assert [x.string for x in outline.blocks] == ["a", "b", "c", "d", "e"]
    assert page.children == [a, e] and a.children == [b, d] and b.children == [c]
    assert [x.parent for x in outline.blocks] == [None, a, b, a, None]
    assert all(x.page is page and x.uid == "" for x in outline.blocks)
    assert positions == [(0, ""), (1, "    "), (2, "        "), (3, "    "), (4, "")]


def test_block_refs_stay_as_written_and_render_as_a_missing_placeholder(tmp_path: Path) -> None:
    write(tmp_path, {"P.md": "- Question #card\n    - ((abcDEF123))\n"})
    graph = roam_markdown.read(tmp_path, "g")
    [spec] = rendered_cards(graph)
    assert "rb-missing" in spec.fields["Back"]
    assert "((" not in spec.fields["Back"]


# Zips, folders, detection, errors ---------------------------------------------------------


def test_a_zip_export_is_read_in_memory_with_an_empty_root(tmp_path: Path) -> None:
    archive = tmp_path / "Roam-Export-1700000000000.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("Page One.md", "- hello #card\n    - world\n")
        zf.writestr("ns/Child.md", "- nested page\n")
        zf.writestr("__MACOSX/._junk.md", "binary")
    graph = roam_markdown.read(archive, "g")
    assert set(graph.pages) == {"Page One", "ns/Child"}
    assert graph.root == ""
    assert page_tree(graph, "Page One") == [["hello #card", [["world", []]]]]


def test_unsafe_zip_names_empty_folders_and_missing_paths_are_source_errors(
    tmp_path: Path,
) -> None:
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape.md", "- x\n")
    with pytest.raises(SourceError, match="unsafe file name"):
        roam_markdown.read(evil, "g")
    no_md = tmp_path / "nomd.zip"
    with zipfile.ZipFile(no_md, "w") as zf:
        zf.writestr("notes.txt", "x")
    with pytest.raises(SourceError, match=r"no \.md file"):
        roam_markdown.read(no_md, "g")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match=r"no \.md files") as caught:
        roam_markdown.read(tmp_path / "empty", "g")
    assert str(tmp_path / "empty") in str(caught.value)
    with pytest.raises(SourceError, match="no such file"):
        roam_markdown.read(tmp_path / "missing", "g")
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(b"PK\x03\x04 nope")
    with pytest.raises(SourceError, match="not a valid zip"):
        roam_markdown.read(corrupt, "g")


def test_looks_like_accepts_markdown_exports_and_leaves_other_apps_alone(tmp_path: Path) -> None:
    export = write(tmp_path / "export", {"a/b.md": "- x\n"})
    assert roam_markdown.looks_like(export)
    logseq = write(tmp_path / "logseq", {"pages/p.md": "- x\n"})
    assert not roam_markdown.looks_like(logseq)
    vault = write(tmp_path / "vault", {".obsidian/app.json": "{}", "note.md": "x"})
    assert not roam_markdown.looks_like(vault)
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("p.md", "- x\n")
    assert roam_markdown.looks_like(archive)
    assert not roam_markdown.looks_like(SEED_JSON)
    assert not roam_markdown.looks_like(write(tmp_path / "none", {"a.txt": "x"}))


# The seed, and a sync ---------------------------------------------------------------------


def shown(specs: list[Card], names: tuple[str, ...]) -> list[tuple]:
    return [(s.kind, s.reversed, s.deck, s.tags, *(s.fields.get(n) for n in names))
            for s in specs]


def test_the_seed_folder_is_what_the_writer_makes_of_the_json_seed(tmp_path: Path) -> None:
    made = writer.write(json.loads(SEED_JSON.read_text("utf-8")), tmp_path / "out", "demo")
    assert folder_digest(made) == folder_digest(SEED)


def test_the_seed_gives_the_same_cards_as_the_json_seed() -> None:
    expected = rendered_cards(roam_json.read(SEED_JSON, "demo"))
    got = rendered_cards(roam_markdown.read(SEED, "demo"))
    assert len(got) == len(expected) > 5
    assert shown(got, ("Front", "Text")) == shown(expected, ("Front", "Text"))
    assert all(s.key.startswith("roam:demo:md-") for s in got)


def test_syncing_the_seed_twice_creates_then_changes_nothing_and_never_writes_the_folder(
    tmp_path: Path,
) -> None:
    before = folder_digest(SEED)
    col = Collection(str(tmp_path / "c.anki2"))
    try:
        graph = roam_markdown.read(SEED, "demo")
        count = len(cards.collect(graph, CardOptions()))
        first = sync.apply(sync.plan(graph, col, SyncOptions()), col)
        assert (first.created, first.errors) == (count, [])
        again = sync.apply(sync.plan(roam_markdown.read(SEED, "demo"), col, SyncOptions()), col)
        assert (again.created, again.updated, again.unchanged) == (0, 0, count)
        nids = col.find_notes('"SourceID:roam:demo:md-*"')
        assert len(nids) == count
    finally:
        col.close()
    assert folder_digest(SEED) == before

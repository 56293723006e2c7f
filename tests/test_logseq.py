"""The Logseq graph reader and id write-back: outline, properties, titles, journals, the seed,
a sync into a real collection, write-back guarantees, and speed against the JSON reader."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import uuid
from pathlib import Path

import pytest
from anki.collection import Collection

from addon.core import cards, sync
from addon.core.config import CardOptions, SyncOptions
from addon.core.id_writes import write_back_ids
from addon.core.model import Graph, SourceError, is_synthetic, synthetic_uid
from addon.core.sources import logseq, roam_json
from addon.core.sources.logseq import format_date
from tests.test_cards import Card, rendered_cards
from tools.formats import logseq as writer

ROOT = Path(__file__).resolve().parent.parent
SEED_JSON = ROOT / "seeds" / "roam-bridge-demo.json"
SEED = ROOT / "seeds" / "logseq"
UUID_A = "65a1f0c2-1111-4a5b-9c3d-0123456789ab"
UUID_B = "65a1f0c2-2222-4a5b-9c3d-0123456789ab"


def graph_at(folder: Path, pages: dict[str, str | bytes], config: str | None = None) -> Path:
    for rel, content in pages.items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
    (folder / "pages").mkdir(parents=True, exist_ok=True)
    if config is not None:
        (folder / "logseq").mkdir(exist_ok=True)
        (folder / "logseq" / "config.edn").write_text(config, encoding="utf-8")
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


def by_text(graph: Graph, text: str):
    return next(b for b in graph.blocks.values() if b.string == text)


# Outline ----------------------------------------------------------------------------------


def test_tab_indented_bullets_nest_and_continuation_lines_lose_their_indent(
    tmp_path: Path,
) -> None:
    graph = logseq.read(graph_at(tmp_path, {"pages/P.md": (
        "- one\n"
        "  more of one\n"
        "\t- two\n"
        "\t  more of two\n"
        "\t\t- three\n"
        "\t- four\n"
        "- five\n"
    )}), "g")
    assert page_tree(graph, "P") == [
        ["one\nmore of one", [
            ["two\nmore of two", [["three", []]]],
            ["four", []],
        ]],
        ["five", []],
    ]
    assert graph.source == "logseq"
    assert graph.root == str(tmp_path)
    assert graph.pages["P"].path == "pages/P.md"


def test_code_fences_inside_a_block_stay_verbatim(tmp_path: Path) -> None:
    graph = logseq.read(graph_at(tmp_path, {"pages/P.md": (
        "- Code\n"
        "\t- ```python\n"
        "\t  def f():\n"
        "\t      return 1\n"
        "\t  - not a bullet\n"
        "\t  ```\n"
        "\t- after\n"
    )}), "g")
    assert page_tree(graph, "P") == [["Code", [
        ["```python\ndef f():\n    return 1\n- not a bullet\n```", []],
        ["after", []],
    ]]]


def test_block_properties_become_attribute_children_and_id_becomes_the_uid(
    tmp_path: Path,
) -> None:
    graph = logseq.read(graph_at(tmp_path, {"pages/P.md": (
        "- What is it? #card\n"
        f"  id:: {UUID_A}\n"
        "  deck:: Science::Physics\n"
        "  collapsed:: true\n"
        "  card-next-schedule:: 2024-01-01T00:00:00.000Z\n"
        "  Body line after the properties\n"
        "\t- The answer\n"
    )}), "g")
    block = graph.blocks[UUID_A]
    assert block.string == "What is it? #card\nBody line after the properties"
    assert [c.string for c in block.children] == ["deck:: Science::Physics", "The answer"]
    assert is_synthetic(block.children[0].uid)
    [spec] = rendered_cards(graph)
    assert spec.key == f"logseq:g:{UUID_A}"
    assert spec.deck == "Science::Physics"
    assert "The answer" in spec.fields["Back"]
    assert "deck" not in spec.fields["Back"]
    assert graph.link(UUID_A) == f"logseq://graph/g?block-id={UUID_A}"


def test_headings_come_from_hashes_or_the_heading_property(tmp_path: Path) -> None:
    graph = logseq.read(graph_at(tmp_path, {"pages/P.md": (
        "- ## Markdown heading\n- Property heading\n  heading:: 3\n- #tag not a heading\n"
    )}), "g")
    assert {b.string: b.heading for b in graph.blocks.values()} == {
        "Markdown heading": 2, "Property heading": 3, "#tag not a heading": 0,
    }


def test_a_bullet_of_only_properties_is_roam_style_attribute_blocks(tmp_path: Path) -> None:
    graph = logseq.read(graph_at(tmp_path, {"pages/P.md": (
        "- Section\n"
        "\t- deck:: Chosen\n"
        "\t  anki-tag:: mine\n"
        "\t- Q? #card\n"
        "\t\t- A\n"
    )}), "g")
    assert page_tree(graph, "P") == [["Section", [
        ["deck:: Chosen", []], ["anki-tag:: mine", []], ["Q? #card", [["A", []]]],
    ]]]
    [spec] = cards.collect(graph, CardOptions())
    assert spec.deck == "Chosen"


def test_page_properties_before_the_first_bullet_are_top_level_attributes(
    tmp_path: Path,
) -> None:
    graph = logseq.read(graph_at(tmp_path, {"pages/file-name.md": (
        "title:: Real Title\n"
        "anki-tag:: my_tag\n"
        "tags:: physics, [[Deep Topic]]\n"
        "\n"
        "- Q? #card\n"
        "\t- A\n"
    )}), "g")
    page = graph.pages["Real Title"]
    assert page.path == "pages/file-name.md"
    assert [b.string for b in page.children] == [
        "anki-tag:: my_tag", "tags:: physics, [[Deep Topic]]", "Q? #card",
    ]
    [spec] = cards.collect(graph, CardOptions())
    assert set(spec.tags) == {"my_tag", "roam::physics", "roam::Deep_Topic"}


def test_a_first_bullet_of_only_properties_holds_the_page_properties(tmp_path: Path) -> None:
    graph = logseq.read(graph_at(tmp_path, {"pages/p.md": (
        "- title:: Named\n"
        "  deck:: Pre Block\n"
        "- Q? #card\n"
    )}), "g")
    page = graph.pages["Named"]
    assert [b.string for b in page.children] == ["deck:: Pre Block", "Q? #card"]
    assert cards.collect(graph, CardOptions())[0].deck == "Pre Block"


def test_property_blocks_take_their_place_in_a_tree_built_while_parsing(
    tmp_path: Path,
) -> None:
    # The parser links blocks as it reads them; properties found afterwards must still land
    # where a reader of the file expects them, with uids in document order.
    graph = logseq.read(graph_at(tmp_path, {"pages/p.md": (
        "- alias:: Other\n"
        "\t- lifted\n"
        "\t\t- deep\n"
        "- before\n"
        "- deck:: D\n"
        "  anki-tag:: t\n"
        "\t- under the property bullet\n"
        "- Q? #card\n"
        "  source:: book\n"
        "\t- A\n"
        "- after\n"
    )}), "g")
    assert page_tree(graph, "p") == [
        ["alias:: Other", []], ["lifted", [["deep", []]]], ["before", []],
        ["deck:: D", [["under the property bullet", []]]], ["anki-tag:: t", []],
        ["Q? #card", [["source:: book", []], ["A", []]]], ["after", []],
    ]
    assert graph.pages["p"].children[1].parent is None
    assert [b.string for b in graph.blocks.values()] == [
        "alias:: Other", "lifted", "deep", "before", "deck:: D", "anki-tag:: t",
        "under the property bullet", "Q? #card", "source:: book", "A", "after",
    ]
    assert all(b.uid == uid and uid for uid, b in graph.blocks.items())


def test_uids_are_the_same_whatever_whitespace_a_block_holds(tmp_path: Path) -> None:
    # Equal after normalizing, so numbered as duplicates: the fast path must agree.
    texts = ["a b", "a\tb", "a\x0bb", "a\x1fb", "a\u00a0b", "a\u3000b", "caf\u00e9", "x\x00y"]
    body = "".join(f"- {text}\n" for text in texts)
    graph = logseq.read(graph_at(tmp_path, {"pages/w.md": body}), "g")
    expected: list[str] = []
    for text in texts:
        expected.append(synthetic_uid("w", text, set(expected)))
    assert [b.uid for b in graph.pages["w"].children] == expected
    assert expected[5].endswith("-6") and not expected[6].endswith("-7")


def test_a_page_of_only_properties_and_empty_pages_are_read(tmp_path: Path) -> None:
    graph = logseq.read(graph_at(tmp_path, {
        "pages/Props.md": "alias:: Other\nicon:: x\n",
        "pages/Empty.md": "",
    }), "g")
    assert page_tree(graph, "Props") == [["alias:: Other", []], ["icon:: x", []]]
    assert page_tree(graph, "Empty") == []


def test_logbook_drawers_are_not_block_text(tmp_path: Path) -> None:
    graph = logseq.read(graph_at(tmp_path, {"pages/P.md": (
        "- DONE Task #card\n"
        "  :LOGBOOK:\n"
        "  CLOCK: [2024-01-01 Mon 10:00]--[2024-01-01 Mon 10:05] =>  00:05:00\n"
        "  :END:\n"
    )}), "g")
    assert page_tree(graph, "P") == [["DONE Task #card", []]]


def test_bom_crlf_and_non_utf8_files_are_read(tmp_path: Path) -> None:
    graph = logseq.read(graph_at(tmp_path, {
        "pages/Bom.md": b"\xef\xbb\xbftitle:: Bom page\r\n- first\r\n\t- child\r\n",
        "pages/Legacy.md": "- caf\u00e9 \u2013 ok\n".encode("cp1252"),
    }), "g")
    assert page_tree(graph, "Bom page") == [["first", [["child", []]]]]
    assert page_tree(graph, "Legacy") == [["caf\u00e9 \u2013 ok", []]]


def test_duplicates_on_a_page_and_a_repeated_id_get_their_own_uids(tmp_path: Path) -> None:
    graph = logseq.read(graph_at(tmp_path, {
        "pages/A.md": f"- same\n- same\n- copied\n  id:: {UUID_A}\n",
        "pages/B.md": f"- copied again\n  id:: {UUID_A}\n",
    }), "g")
    assert len(graph.blocks) == 4
    assert graph.blocks[UUID_A].string == "copied"
    same = [b.uid for b in graph.blocks.values() if b.string == "same"]
    assert same[1] == same[0] + "-2"
    assert is_synthetic(by_text(graph, "copied again").uid)


# Titles and journals ----------------------------------------------------------------------


def test_namespaced_file_names_give_slashed_titles(tmp_path: Path) -> None:
    graph = logseq.read(graph_at(tmp_path, {
        "pages/Projects___Anki.md": "- a\n",
        "pages/What%3F now.md": "- b\n",
        "pages/v1.2 notes.md": "- c\n",
    }, config="{:file/name-format :triple-lowbar}"), "g")
    assert set(graph.pages) == {"Projects/Anki", "What? now", "v1.2 notes"}


def test_the_legacy_file_name_format_reads_dots_and_percent_2f_as_namespaces(
    tmp_path: Path,
) -> None:
    graph = logseq.read(graph_at(tmp_path, {
        "pages/Projects.Anki.md": "- a\n",
        "pages/Area%2FSub.md": "- b\n",
    }, config="{:meta/version 1}"), "g")
    assert set(graph.pages) == {"Projects/Anki", "Area/Sub"}


def test_journals_are_titled_in_logseqs_default_format(tmp_path: Path) -> None:
    graph = logseq.read(graph_at(tmp_path, {
        "journals/2024_01_15.md": "- day one\n",
        "journals/2024_03_02.md": "- day two\n",
        "journals/2023_12_22.md": "- day three\n",
        "journals/not-a-date.md": "- odd\n",
    }), "g")
    assert set(graph.pages) == {"Jan 15th, 2024", "Mar 2nd, 2024", "Dec 22nd, 2023",
                                "not-a-date"}
    assert graph.pages["Jan 15th, 2024"].path == "journals/2024_01_15.md"


def test_journal_titles_follow_the_graphs_configured_formats(tmp_path: Path) -> None:
    config = ('{:journal/page-title-format "EEEE, dd.MM.yyyy"\n'
              ' ;; :journal/page-title-format "ignored"\n'
              ' :journal/file-name-format "yyyy-MM-dd"}')
    graph = logseq.read(graph_at(tmp_path, {"journals/2024-01-15.md": "- x\n"}, config), "g")
    assert list(graph.pages) == ["Monday, 15.01.2024"]


@pytest.mark.parametrize(
    ("day", "fmt", "expected"),
    [
        (dt.date(2024, 1, 1), "MMM do, yyyy", "Jan 1st, 2024"),
        (dt.date(2024, 1, 11), "MMM do, yyyy", "Jan 11th, 2024"),
        (dt.date(2024, 1, 23), "MMMM do, yyyy", "January 23rd, 2024"),
        (dt.date(2024, 2, 5), "yyyy-MM-dd", "2024-02-05"),
        (dt.date(2024, 2, 5), "E, M/d/yy", "Mon, 2/5/24"),
    ],
)
def test_format_date_speaks_logseqs_date_tokens(day: dt.date, fmt: str, expected: str) -> None:
    assert format_date(day, fmt) == expected


# Cards, refs, detection, errors -----------------------------------------------------------


def test_logseq_cloze_and_block_refs_make_the_card(tmp_path: Path) -> None:
    graph = logseq.read(graph_at(tmp_path, {
        "pages/P.md": "- The capital of France is {{cloze Paris}} #card\n"
                      "- Why? #card\n\t- ((" + UUID_B + "))\n",
        "pages/Other.md": f"- Because it is referenced\n  id:: {UUID_B}\n",
    }), "g")
    specs = {s.block.string.split()[0]: s for s in rendered_cards(graph)}
    assert specs["The"].kind == "cloze"
    assert "{{c1::Paris}}" in specs["The"].fields["Text"]
    assert "Because it is referenced" in specs["Why?"].fields["Back"]
    assert "rb-missing" not in specs["Why?"].fields["Back"]


def test_looks_like_and_bad_folders(tmp_path: Path) -> None:
    assert logseq.looks_like(SEED)
    assert logseq.looks_like(graph_at(tmp_path / "j", {"journals/2024_01_01.md": "- x\n"}))
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "note.md").write_text("- x\n")
    assert not logseq.looks_like(plain)
    assert not logseq.looks_like(SEED_JSON)
    with pytest.raises(SourceError, match="not a Logseq graph"):
        logseq.read(plain, "g")
    with pytest.raises(SourceError, match="no such file"):
        logseq.read(tmp_path / "missing", "g")
    empty = graph_at(tmp_path / "empty", {})
    with pytest.raises(SourceError, match=r"holds no \.md pages") as caught:
        logseq.read(empty, "g")
    assert str(empty) in str(caught.value)


# The seed, and a sync ---------------------------------------------------------------------


def shown(specs: list[Card]) -> list[tuple]:
    return [(s.kind, s.reversed, s.deck, s.tags,
             *(s.fields.get(n) for n in ("Front", "Text", "Back", "Back Extra")))
            for s in specs]


def test_the_seed_folder_is_what_the_writer_makes_of_the_json_seed(tmp_path: Path) -> None:
    made = writer.write(json.loads(SEED_JSON.read_text("utf-8")), tmp_path / "out",
                        "roam-bridge-demo")
    assert folder_digest(made) == folder_digest(SEED)


def test_the_seed_gives_the_same_cards_as_the_json_seed() -> None:
    expected = rendered_cards(roam_json.read(SEED_JSON, "demo"))
    got = rendered_cards(logseq.read(SEED, "demo"))
    assert len(got) == len(expected) > 5
    # Refs survive the conversion (the referenced block carries an id::), so backs match too.
    assert shown(got) == shown(expected)
    assert all(s.key.startswith("logseq:demo:") for s in got)


def test_syncing_the_seed_never_writes_the_graph_folder(tmp_path: Path) -> None:
    before = folder_digest(SEED)
    col = Collection(str(tmp_path / "c.anki2"))
    try:
        graph = logseq.read(SEED, "demo")
        count = len(cards.collect(graph, CardOptions()))
        report = sync.apply(sync.plan(graph, col, SyncOptions()), col)
        assert (report.created, report.errors) == (count, [])
        again = sync.apply(sync.plan(logseq.read(SEED, "demo"), col, SyncOptions()), col)
        assert (again.created, again.updated, again.unchanged) == (0, 0, count)
    finally:
        col.close()
    assert folder_digest(SEED) == before


# Write-back -------------------------------------------------------------------------------


def card_blocks(graph: Graph) -> list:
    return [s.block for s in cards.collect(graph, CardOptions())]


def test_write_back_gives_card_blocks_ids_that_the_next_read_keeps(tmp_path: Path) -> None:
    folder = graph_at(tmp_path, {"pages/P.md": (
        "title:: P\n"
        "\n"
        "- Q one? #card\n"
        "  Second line\n"
        "\t- A one\n"
        "- Q two? #card\n"
        f"  id:: {UUID_A}\n"
        "- ```js\n"
        "  code()\n"
        "  ```\n"
        "  What does it print? #card\n"
    )})
    graph = logseq.read(folder, "g")
    blocks = card_blocks(graph)
    old = [b.uid for b in blocks]
    mapping, warnings = write_back_ids(graph, blocks)
    assert warnings == []
    assert set(mapping) == {old[0], old[2]}  # the block that had an id keeps it
    for new in mapping.values():
        assert uuid.UUID(new).version == 4
        assert graph.blocks[new].uid == new
    assert not any(uid in graph.blocks for uid in mapping)
    reread = logseq.read(folder, "g")
    assert [b.uid for b in card_blocks(reread)] == [b.uid for b in card_blocks(graph)]
    assert [b.string for b in card_blocks(reread)] == [b.string for b in blocks]
    text = (folder / "pages" / "P.md").read_text()
    assert f"- Q one? #card\n  id:: {mapping[old[0]]}\n  Second line\n" in text
    assert text.endswith(f"  ```\n  id:: {mapping[old[2]]}\n  What does it print? #card\n")
    assert list(graph.blocks) == list(reread.blocks)  # still in document order


def test_write_back_keeps_crlf_and_bom(tmp_path: Path) -> None:
    folder = graph_at(tmp_path, {"pages/P.md": b"\xef\xbb\xbf- Q? #card\r\n\t- A\r\n"})
    graph = logseq.read(folder, "g")
    mapping, warnings = write_back_ids(graph, card_blocks(graph))
    [new] = mapping.values()
    assert warnings == []
    expected = f"\ufeff- Q? #card\r\n  id:: {new}\r\n\t- A\r\n".encode()
    assert (folder / "pages" / "P.md").read_bytes() == expected


def test_write_back_skips_a_file_changed_since_it_was_read(tmp_path: Path) -> None:
    folder = graph_at(tmp_path, {"pages/A.md": "- Qa? #card\n", "pages/B.md": "- Qb? #card\n"})
    graph = logseq.read(folder, "g")
    changed = "- Qa? #card\n- typed in Logseq meanwhile\n"
    (folder / "pages" / "A.md").write_text(changed)
    mapping, warnings = write_back_ids(graph, card_blocks(graph))
    assert (folder / "pages" / "A.md").read_text() == changed
    assert len(warnings) == 1 and "A.md" in warnings[0] and "changed" in warnings[0]
    [new] = mapping.values()
    assert graph.blocks[new].string == "Qb? #card"
    assert is_synthetic(by_text(graph, "Qa? #card").uid)
    assert f"id:: {new}" in (folder / "pages" / "B.md").read_text()


def test_write_back_leaves_non_utf8_files_alone(tmp_path: Path) -> None:
    data = "- caf\u00e9? #card\n".encode("cp1252")
    folder = graph_at(tmp_path, {"pages/A.md": data})
    graph = logseq.read(folder, "g")
    mapping, warnings = write_back_ids(graph, card_blocks(graph))
    assert mapping == {} and "UTF-8" in warnings[0]
    assert (folder / "pages" / "A.md").read_bytes() == data


def test_write_back_leaves_a_symlinked_page_a_symlink(tmp_path: Path) -> None:
    folder = graph_at(tmp_path, {"pages/shared/B.md": "- Qb? #card\n"})
    try:
        os.symlink(Path("shared") / "B.md", folder / "pages" / "Link.md")
    except (OSError, NotImplementedError):
        pytest.skip("symlinks not available")
    graph = logseq.read(folder, "g")
    linked = [b for b in card_blocks(graph) if b.page.path == "pages/Link.md"]
    assert linked
    mapping, warnings = write_back_ids(graph, linked)
    # Replacing the link by a file would cut it from its target and fork the page.
    assert (folder / "pages" / "Link.md").is_symlink()
    assert mapping == {} and "symlink" in warnings[0]
    assert (folder / "pages" / "shared" / "B.md").read_text() == "- Qb? #card\n"


def test_write_back_leaves_no_temporary_files_and_keeps_the_file_mode(tmp_path: Path) -> None:
    folder = graph_at(tmp_path, {"pages/A.md": "- Q? #card\n"})
    target = folder / "pages" / "A.md"
    os.chmod(target, 0o640)
    graph = logseq.read(folder, "g")
    write_back_ids(graph, card_blocks(graph))
    assert sorted(p.name for p in (folder / "pages").iterdir()) == ["A.md"]
    assert target.stat().st_mode & 0o777 == 0o640


def test_with_write_back_the_note_moves_from_its_synthetic_key_to_the_uuid(
    tmp_path: Path,
) -> None:
    folder = graph_at(tmp_path / "graph", {"pages/A.md": "- Q? #card\n\t- A\n"})
    col = Collection(str(tmp_path / "c.anki2"))
    try:
        graph = logseq.read(folder, "g")
        sync.apply(sync.plan(graph, col, SyncOptions()), col)
        graph = logseq.read(folder, "g")
        mapping, _ = write_back_ids(graph, card_blocks(graph))
        [new] = mapping.values()
        assert [s.key for s in cards.collect(graph, CardOptions())] == [f"logseq:g:{new}"]
    finally:
        col.close()

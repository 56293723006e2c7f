"""The Obsidian vault reader and writer: structure, ids, front matter, embeds, skip rules,
the seed vault against the JSON seed, a real sync, a read-only vault, and speed."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from anki.collection import Collection

from addon.core import sync
from addon.core.cards import collect
from addon.core.config import CardOptions
from addon.core.model import Block, Graph, Page, SourceError, is_synthetic, synthetic_uid
from addon.core.sources import obsidian, roam_json
from tests.test_cards import rendered_cards
from tools.formats import obsidian as writer
from tools.graphgen import generate

ROOT = Path(__file__).resolve().parent.parent
SEED_JSON = ROOT / "seeds" / "roam-bridge-demo.json"
SEED_VAULT = ROOT / "seeds" / "obsidian"


def make_vault(root: Path, files: dict[str, str | bytes]) -> Path:
    (root / ".obsidian").mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")
    return root


def read_note(tmp_path: Path, text: str, **files: str | bytes) -> Page:
    vault = make_vault(tmp_path / "vault", {"Note.md": text, **files})
    return obsidian.read(vault, "vault").pages["Note"]


def tree(blocks: list[Block]) -> list:
    """Blocks as nested lists: a text, or ``(text, [children])`` when it has children."""
    return [(b.string, tree(b.children)) if b.children else b.string for b in blocks]


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file and folder under ``folder``: content hash and modification time."""
    found = {}
    for path in sorted(folder.rglob("*")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        found[str(path.relative_to(folder))] = (digest, path.stat().st_mtime_ns)
    return found


# Structure --------------------------------------------------------------------------------


def test_headings_open_sections_nested_by_real_level(tmp_path: Path) -> None:
    page = read_note(tmp_path, (
        "Before any heading\n\n"
        "# One\nunder one\n"
        "## Two\nunder two\n"
        "#### Four\nunder four\n"
        "### Three\n"
        "# Next\n"
        "#tag is not a heading\n"
    ))
    assert tree(page.children) == [
        "Before any heading",
        ("One", ["under one", ("Two", ["under two", ("Four", ["under four"]), "Three"])]),
        ("Next", ["#tag is not a heading"]),
    ]
    one = page.children[1]
    four = one.children[1].children[1]
    assert (one.heading, one.children[1].heading, four.heading) == (1, 2, 3)  # capped at 3
    assert [a.string for a in four.children[0].ancestors()] == ["One", "Two", "Four"]


def test_list_items_nest_by_tabs_or_spaces(tmp_path: Path) -> None:
    page = read_note(tmp_path, (
        "- a\n\t- a1\n\t\t- a11\n\t- a2\n- b\n"
        "\n"
        "* c\n    * c1\n  * c2\n1. d\n   2. d1\n"
    ))
    assert tree(page.children) == [
        ("a", [("a1", ["a11"]), "a2"]),
        "b",
        ("c", ["c1", "c2"]),
        ("d", ["d1"]),
    ]


def test_paragraph_lines_join_and_blank_lines_separate(tmp_path: Path) -> None:
    page = read_note(tmp_path, "first line\nsecond line\n\n\nnext paragraph\n- item\n"
                               "  continued\nlazy line\n\n  second paragraph of item\n")
    assert tree(page.children) == [
        "first line\nsecond line",
        "next paragraph",
        "item\ncontinued\nlazy line\n\nsecond paragraph of item",
    ]


def test_code_fences_stay_whole_in_one_block(tmp_path: Path) -> None:
    page = read_note(tmp_path, (
        "What does this print? #card\n"
        "```python\n# not a heading\n- not an item\n\nprint(1)  ^notanid\n```\n"
        "\n"
        "- item with code\n"
        "  ~~~\n    indented\n  ~~~\n"
        "\n"
        "```\n#card in code\n```\n"
    ))
    assert tree(page.children) == [
        "What does this print? #card\n```python\n# not a heading\n- not an item\n\n"
        "print(1)  ^notanid\n```",
        "item with code\n~~~\n  indented\n~~~",
        "```\n#card in code\n```",
    ]
    cards = collect(obsidian.read(tmp_path / "vault", "vault"), CardOptions())
    assert [c.block.string.split("\n")[0] for c in cards] == ["What does this print? #card"]


def test_tasks_read_as_todo_and_done(tmp_path: Path) -> None:
    page = read_note(tmp_path, "- [ ] buy milk\n- [x] call Ada\n- [-] other status\n")
    assert tree(page.children) == [
        "{{[[TODO]]}} buy milk", "{{[[DONE]]}} call Ada", "[-] other status",
    ]


def test_rules_and_setext_headings(tmp_path: Path) -> None:
    page = read_note(tmp_path, "Title\n===\nbody\n\n---\n\nafter rule\n\nSub\n---\nx\n")
    assert tree(page.children) == [("Title", ["body", "after rule", ("Sub", ["x"])])]
    assert page.children[0].children[2].heading == 2


# Block ids --------------------------------------------------------------------------------


def test_block_ids_are_uids_and_leave_the_text(tmp_path: Path) -> None:
    page = read_note(tmp_path, (
        "A paragraph ^para-1\n\n"
        "Two lines\nof text\n^own-line\n\n"
        "```\ncode\n```\n\n^after-code\n\n"
        "- item #card ^item1\n\t- child\n"
        "## Heading ^head\n"
        "x^notid and 2^3\n"
    ))
    by_text = {b.string: b.uid for b in page.children} | {
        b.string: b.uid for b in page.children[3].children}
    assert by_text["A paragraph"] == "para-1"
    assert by_text["Two lines\nof text"] == "own-line"
    assert by_text["```\ncode\n```"] == "after-code"
    assert by_text["item #card"] == "item1"
    assert by_text["Heading"] == "head"
    child = page.children[3].children[0]
    assert child.string == "child" and is_synthetic(child.uid)
    assert child.uid == synthetic_uid("Note", "child")
    assert page.children[4].children[0].string == "x^notid and 2^3"


def test_a_taken_id_keeps_the_first_block_and_gives_the_next_a_synthetic_uid(
    tmp_path: Path,
) -> None:
    vault = make_vault(tmp_path, {"a.md": "- first ^same\n", "b.md": "- second ^same\n"})
    graph = obsidian.read(vault, "v")
    assert graph.blocks["same"].string == "first"
    second = graph.pages["b"].children[0]
    assert second.string == "second" and is_synthetic(second.uid)


def test_identical_blocks_get_distinct_synthetic_uids(tmp_path: Path) -> None:
    page = read_note(tmp_path, "- same #card\n- same #card\n")
    uids = [b.uid for b in page.children]
    assert len(set(uids)) == 2 and all(is_synthetic(u) for u in uids)


def test_links_open_the_block_by_id_or_its_note(tmp_path: Path) -> None:
    vault = make_vault(tmp_path / "My Vault", {
        "Folder/Deep Note.md": "- with id ^abc123\n- without id\n",
    })
    graph = obsidian.read(vault, "My Vault")
    page = graph.pages["Deep Note"]
    assert page.path == "Folder/Deep Note.md"
    assert graph.link("abc123") == (
        "obsidian://open?vault=My%20Vault&file=Folder%2FDeep%20Note%23%5Eabc123")
    synthetic = page.children[1].uid
    assert is_synthetic(synthetic)
    assert graph.link(synthetic) == "obsidian://open?vault=My%20Vault&file=Folder%2FDeep%20Note"



def test_an_item_id_counts_only_at_the_end_of_its_last_line(tmp_path: Path) -> None:
    page = read_note(tmp_path, (
        "- first ^early\n  more ^late\n"
        "- kept ^early2\n  more\n"
        "- code ^not-yet\n  ```\n  x\n  ```\n"
        "- alone ^solo\n"
    ))
    joined, kept, code, alone = page.children
    assert (joined.string, joined.uid) == ("first ^early\nmore", "late")
    assert kept.string == "kept ^early2\nmore"
    assert kept.uid == synthetic_uid("Note", kept.string)
    assert code.string.startswith("code ^not-yet\n```") and is_synthetic(code.uid)
    assert (alone.string, alone.uid) == ("alone", "solo")


@pytest.mark.parametrize(("line", "text", "uid"), [
    ("- a ^ab-c", "a", "ab-c"),
    ("- a ^---", "a", "---"),
    ("- a ^id9  ", "a", "id9"),
    ("- a\t^tab", "a", "tab"),
    ("- a  ^two", "a", "two"),
    ("- [ ] task ^t1", "{{[[TODO]]}} task", "t1"),
    ("- ## Head ^h1", "Head", "h1"),
    ("- ^only", "", "only"),
    ("- a ^x b ^y", "a ^x b", "y"),
    ("- a ^x b^y", "a ^x b^y", ""),
    ("- a ^é", "a ^é", ""),
    ("- a ^x_y", "a ^x_y", ""),
])
def test_item_ids_of_every_shape(tmp_path: Path, line: str, text: str, uid: str) -> None:
    block = read_note(tmp_path, line + "\n").children[0]
    assert block.string == text
    assert block.uid == (uid or synthetic_uid("Note", text))


def test_an_id_line_after_an_item_that_has_an_id_is_a_block_of_its_own(tmp_path: Path) -> None:
    graph = obsidian.read(make_vault(tmp_path, {"n.md": "- item ^a\n\n^b\n"}), "v")
    assert graph.blocks["a"].string == "item"
    assert graph.blocks["b"] is not graph.blocks["a"]


def test_synthetic_uids_match_synthetic_uid_whatever_the_white_space(tmp_path: Path) -> None:
    # Rare spaces in the body, or made by a YAML escape in the front matter, must not let the
    # reader's fast uid path skip the whitespace normalizing synthetic_uid does.
    vault = make_vault(tmp_path, {
        "escaped.md": '---\ntitle: "a\\fb"\nplain: "no escapes"\n---\n- plain\n',
        "body.md": "- x\x0by\n- tab\there\n- two  spaces\n- plain\n",
    })
    graph = obsidian.read(vault, "v")
    escaped = graph.pages["escaped"].children
    assert [b.string for b in escaped[:2]] == ["title:: a\x0cb", "plain:: no escapes"]
    for page in graph.pages.values():
        assert [b.uid for b in page.children] == [
            synthetic_uid(page.title, b.string) for b in page.children]


def test_front_matter_flow_lists_with_and_without_quotes(tmp_path: Path) -> None:
    page = read_note(tmp_path, (
        "---\nplain: [a, b c , d]\nquoted: ['x, y', \"z\"]\nopen: [a, 'b]\n---\n"
    ))
    assert [b.string for b in page.children] == ["plain:: a, b c, d", "quoted:: x, y, z"]

# Front matter -----------------------------------------------------------------------------


def test_front_matter_becomes_page_attributes_first_on_the_page(tmp_path: Path) -> None:
    page = read_note(tmp_path, (
        "---\n"
        "deck: Biology::Cells\n"
        "tags: [biology, \"cell-theory\", '#exam']\n"
        "anki-tag: bio_101\n"
        "Author: \"[[Ada]], and [[Bo]]\"  \n"
        "aliases:\n  - Cells\n  - \"Cell biology\"\n"
        "nested:\n  key: value\n"
        "multi: |\n  line one\n  line two\n"
        "empty:\n"
        "comment: kept # dropped\n"
        "---\n"
        "Body:: stays a block\n"
        "- What is a cell? #card\n"
    ))
    assert tree(page.children) == [
        "deck:: Biology::Cells",
        "Tags:: #biology, #cell-theory, #exam",
        "anki-tag:: bio_101",
        "Author:: [[Ada]], and [[Bo]]",
        "aliases:: Cells, Cell biology",
        "comment:: kept",
        "Body:: stays a block",
        "What is a cell? #card",
    ]
    attrs = page.attributes()
    assert attrs["deck"][1] == "Biology::Cells"
    assert attrs["anki_tag"][1] == "bio_101"
    assert attrs["body"][1] == "stays a block"
    graph = obsidian.read(tmp_path / "vault", "vault")
    [card] = collect(graph, CardOptions())
    assert card.deck == "Biology::Cells"
    assert set(card.tags) == {"bio_101", "roam::biology", "roam::cell-theory", "roam::exam"}


def test_tags_as_one_string_and_tags_with_spaces(tmp_path: Path) -> None:
    page = read_note(tmp_path, "---\ntags: one, two three\n---\n")
    assert tree(page.children) == ["Tags:: #one, #two, #three"]
    page = read_note(tmp_path / "b", "---\ntags:\n  - Large Language Models (LLM)\n---\n")
    assert tree(page.children) == ["Tags:: #[[Large Language Models (LLM)]]"]


def test_a_note_of_only_front_matter_and_unclosed_front_matter(tmp_path: Path) -> None:
    vault = make_vault(tmp_path, {
        "only.md": "---\ndeck: D\n---",
        "unclosed.md": "---\ndeck: D\n",
        "empty.md": "",
    })
    graph = obsidian.read(vault, "v")
    assert tree(graph.pages["only"].children) == ["deck:: D"]
    # Never closed: not front matter. "---" is then a rule, and the rest a paragraph.
    assert tree(graph.pages["unclosed"].children) == ["deck: D"]
    assert graph.pages["empty"].children == []


def test_front_matter_unicode_escapes_of_a_surrogate_pair_are_one_character(
    tmp_path: Path,
) -> None:
    page = read_note(tmp_path, '---\nmood: "smile \\ud83d\\ude00, lone \\ud800"\n---\n')
    assert tree(page.children) == ["mood:: smile \U0001f600, lone \ufffd"]
    page.children[0].string.encode("utf-8")


# Text details -----------------------------------------------------------------------------


def test_crlf_bom_and_comments(tmp_path: Path) -> None:
    text = ("\ufeff# Head\r\n- a %%hidden%% b\r\n%%\r\nmany\r\n\r\nlines\r\n%%\r\n- c\r\n"
            "- `%%code%%` stays\r\n")
    page = read_note(tmp_path, text)
    assert tree(page.children) == [("Head", ["a  b", "c", "`%%code%%` stays"])]


def test_a_non_utf8_note_reads_as_windows_1252_as_in_every_folder_reader(
    tmp_path: Path,
) -> None:
    vault = make_vault(tmp_path, {"ok.md": "fine",
                                  "latin.md": "caf\xe9 \u2013 ok".encode("cp1252")})
    graph = obsidian.read(vault, "v")
    assert [b.string for b in graph.pages["latin"].children] == ["caf\xe9 \u2013 ok"]
    assert [b.string for b in graph.pages["ok"].children] == ["fine"]


def test_images_and_embeds(tmp_path: Path) -> None:
    page = read_note(
        tmp_path,
        "- ![[pic.png]] ![[pic.png|200]] ![[assets/pic.png]] ![[gone.png]]\n"
        "- ![[Other]] ![[Other#Part]] ![[Other#^blk]] ![[Other#^nope]] ![[doc.pdf]]\n"
        "- `![[pic.png]]` ![](relative.png)\n",
        **{"assets/pic.png": b"\x89PNG", "Other.md": "- target ^blk\n", "doc.pdf": b"%PDF"},
    )
    assert tree(page.children) == [
        "![pic.png](</assets/pic.png>) ![pic.png](</assets/pic.png>) "
        "![pic.png](</assets/pic.png>) ![[gone.png]]",
        "[[Other]] [[Other#Part]] ((blk)) [[Other#^nope]] ![[doc.pdf]]",
        "`![[pic.png]]` ![](relative.png)",
    ]


def test_same_name_in_two_folders_keeps_both(tmp_path: Path) -> None:
    vault = make_vault(tmp_path, {"b/Note.md": "deeper", "Note.md": "root", "a/Note.md": "a"})
    graph = obsidian.read(vault, "v")
    assert {t: p.path for t, p in graph.pages.items()} == {
        "Note": "Note.md", "a/Note": "a/Note.md", "b/Note": "b/Note.md",
    }
    assert graph.pages["Note"].children[0].string == "root"


# Skip rules and options -------------------------------------------------------------------


def test_dot_folders_attachments_and_globs(tmp_path: Path) -> None:
    vault = make_vault(tmp_path, {
        ".obsidian/workspace.md": "x", ".trash/old.md": "x", ".hidden/n.md": "x",
        ".dotnote.md": "x", "pic.png": b"x", "notes.txt": "x",
        "Top.md": "t", "Daily/2024-01-01.md": "d", "Daily/Archive/old.md": "o",
        "Projects/p.md": "p", "Templates/t.md": "tpl",
    })
    def titles(**options: list[str]) -> list[str]:
        return sorted(obsidian.read(vault, "v", **options).pages)

    assert titles() == ["2024-01-01", "Top", "old", "p", "t"]
    assert titles(exclude=["Templates"]) == ["2024-01-01", "Top", "old", "p"]
    assert titles(include=["Daily/*.md"]) == ["2024-01-01"]
    assert titles(include=["Daily/**"]) == ["2024-01-01", "old"]
    assert titles(include=["**/*.md"], exclude=["**/Archive", "Templates/"]) == [
        "2024-01-01", "Top", "p"]
    assert titles(include=["Daily", "Projects/?.md"]) == ["2024-01-01", "old", "p"]
    assert titles(exclude=["[TP]*"]) == ["2024-01-01", "old"]


def test_bad_input_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such folder"):
        obsidian.read(tmp_path / "missing", "v")
    file = tmp_path / "note.md"
    file.write_text("x")
    with pytest.raises(SourceError, match="not a folder"):
        obsidian.read(file, "v")
    empty = make_vault(tmp_path / "empty", {"pic.png": b"x"})
    with pytest.raises(SourceError, match="no Markdown notes"):
        obsidian.read(empty, "v")
    with pytest.raises(SourceError, match="matching the include/exclude"):
        obsidian.read(make_vault(tmp_path / "one", {"a.md": "x"}), "v", include=["b/**"])


def test_looks_like_wants_an_obsidian_folder(tmp_path: Path) -> None:
    assert obsidian.looks_like(make_vault(tmp_path / "v", {"a.md": "x"}))
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.md").write_text("x")
    assert not obsidian.looks_like(plain)
    assert not obsidian.looks_like(tmp_path / "v" / "a.md")


# The seed vault ---------------------------------------------------------------------------


def _shown(graph: Graph) -> list[tuple]:
    """What each card says and where it goes, without what differs by source (keys, links)."""
    specs = rendered_cards(graph)
    return [
        (s.kind, s.reversed, s.deck, s.tags,
         {k: v for k, v in s.fields.items() if k not in ("Context", "Source")})
        for s in specs
    ]


def test_seed_vault_is_what_the_writer_makes_of_the_json_seed(tmp_path: Path) -> None:
    pages = json.loads(SEED_JSON.read_text(encoding="utf-8"))
    vault = writer.write(pages, tmp_path, "obsidian", block_ids="cards")
    made = {str(p.relative_to(vault)): p.read_bytes() for p in vault.rglob("*") if p.is_file()}
    seed = {str(p.relative_to(SEED_VAULT)): p.read_bytes()
            for p in SEED_VAULT.rglob("*") if p.is_file()}
    assert made == seed


def test_seed_vault_collects_the_same_cards_as_the_json_seed() -> None:
    from_json = _shown(roam_json.read(SEED_JSON, "demo"))
    from_vault = _shown(obsidian.read(SEED_VAULT, "obsidian"))
    assert len(from_json) >= 5
    assert from_vault == from_json


def test_writer_keeps_every_block_id_by_default(tmp_path: Path) -> None:
    pages = generate(blocks=600, cards=40, seed=3)
    graph = obsidian.read(writer.write(pages, tmp_path, "g"), "g")
    expected = roam_json.build_graph(copy.deepcopy(pages), "g")
    assert len(graph.blocks) == len(expected.blocks)
    # Only the front matter's attributes, which have nowhere to carry an id, are synthetic.
    front = {b.uid for p in graph.pages.values() for b in p.children[:2]}
    assert {uid for uid in graph.blocks if is_synthetic(uid)} == front
    # Obsidian ids allow letters, digits and "-" only: "_" in a Roam uid becomes "-".
    assert {uid for uid in graph.blocks if uid not in front} == {
        uid.replace("_", "-") for uid in expected.blocks if uid not in {
            b.uid for p in expected.pages.values() for b in p.children[:2]}}
    assert sorted(_shown(graph), key=repr) == sorted(_shown(expected), key=repr)


def test_seed_vault_syncs_into_a_collection_and_stays_untouched(
    tmp_path: Path, col: Collection,
) -> None:
    vault = tmp_path / "obsidian"
    shutil.copytree(SEED_VAULT, vault)
    before = snapshot(vault)
    report = sync.apply(sync.plan(obsidian.read(vault, "obsidian"), col), col)
    expected = len(collect(roam_json.read(SEED_JSON, "demo"), CardOptions()))
    assert report.counts()["created"] == expected
    keys = [col.get_note(nid)["SourceID"] for nid in col.find_notes("SourceID:obsidian:*")]
    assert len(keys) == expected
    assert all(k.startswith("obsidian:obsidian:") for k in keys)
    again = sync.apply(sync.plan(obsidian.read(vault, "obsidian"), col), col)
    assert again.counts()["unchanged"] == expected and again.counts()["created"] == 0
    assert snapshot(vault) == before


def test_reading_never_changes_the_vault(tmp_path: Path) -> None:
    vault = make_vault(tmp_path, {
        "a.md": "---\ntags: [x]\n---\n# H\r\n- item ^id1\n", "b/c.md": "\ufeffpara %%c%%\n",
        "img.png": b"\x89PNG",
    })
    before = snapshot(vault)
    obsidian.read(vault, "v")
    obsidian.read(vault, "v", include=["b/**"])
    assert snapshot(vault) == before


# Speed ------------------------------------------------------------------------------------


def test_excalidraw_drawings_are_not_notes(tmp_path: Path) -> None:
    vault = make_vault(tmp_path, {
        "Note.md": "- a note #card\n",
        "Drawing.excalidraw.md": "# Text Elements\nlabel ^abc123\n",
    })
    graph = obsidian.read(vault, "v")
    assert set(graph.pages) == {"Note"}

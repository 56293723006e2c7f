"""What a card shows depends on how its notes are read: the rendering-related parts of the
Logseq and Obsidian readers and of the folder detection, end to end through a real sync."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

from anki.collection import Collection

from addon.core import sync
from addon.core.cards import collect
from addon.core.config import CardOptions, SyncOptions
from addon.core.sources import logseq, obsidian
from addon.core.sources.detect import detect_kind, is_notes_folder, read_source
from tests.test_roam_markdown import write

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
# A 1x1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4c80000000049454e44ae426082")


def synced_notes(col: Collection, source: Path, kind: str = "auto") -> dict[str, dict]:
    """Sync ``source`` into ``col``; every note's fields, by the first line of its block."""
    graph = read_source(source, "g", kind)
    sync.apply(sync.plan(graph, col, SyncOptions()), col)
    notes = {}
    for nid in col.find_notes("SourceID:_*"):
        note = col.get_note(nid)
        lines = re.sub(r"<[^>]+>", "", note.fields[0]).split("\n")
        notes[next(line.strip() for line in lines if line.strip())] = dict(note.items())
    return notes


def test_a_logseq_page_that_opens_with_a_heading_makes_it_a_card_with_its_children(
    tmp_path: Path, col: Collection
) -> None:
    graph = write(tmp_path / "graph", {"pages/Topic.md": (
        "## What is a heading? #card\n\t- A line that opens a page\n\t\t- with detail\n"
        "- A sibling, not a child\n")})
    [page] = logseq.read(graph, "g").pages.values()
    heading = page.children[0]
    assert (heading.string, heading.heading) == ("What is a heading? #card", 2)
    assert [c.string for c in heading.children] == ["A line that opens a page"]
    assert page.children[1].string == "A sibling, not a child"
    note = synced_notes(col, graph)["What is a heading?"]
    assert note["Front"] == "<h2>What is a heading?</h2>"
    assert note["Back"] == ('<ul class="rb-children"><li>A line that opens a page'
                            '<ul class="rb-children"><li>with detail</li></ul></li></ul>')


def test_a_fence_mark_in_the_middle_of_a_logseq_line_does_not_swallow_the_page(
    tmp_path: Path, col: Collection
) -> None:
    graph = write(tmp_path / "graph", {"pages/Code.md": (
        "- Type ``` to open a fence #card\n\t- and close it the same way\n"
        "- A real one: #card\n  ```python\n  - not a bullet\n  ```\n\t- after it\n")})
    notes = synced_notes(col, graph)
    assert set(notes) == {"Type ``` to open a fence", "A real one:"}
    assert notes["Type ``` to open a fence"]["Back"] == (
        '<ul class="rb-children"><li>and close it the same way</li></ul>')
    real = notes["A real one:"]
    assert '<pre><code class="language-python">- not a bullet\n</code></pre>' in real["Front"]
    assert "after it" in real["Back"]


def test_logseq_quotes_markers_and_images_with_a_size_and_spaces(
    tmp_path: Path, col: Collection
) -> None:
    graph = write(tmp_path / "graph", {
        "pages/Reading.md": (
            "- #+BEGIN_QUOTE\n  All that **is** gold\n  #+END_QUOTE\n  Who said it? #card\n"
            "\t- Tolkien\n"
            "- TODO Read it again #card\n"
            "- DONE ![my cat](../assets/my cat.png){:height 560, :width 960} #card\n"),
        "assets/my cat.png": PNG,
    })
    notes = synced_notes(col, graph)
    quote = notes["All that is gold"]
    assert quote["Front"].startswith(
        "<blockquote>\n<p>All that <strong>is</strong> gold</p>\n</blockquote>")
    assert notes["☐ Read it again"]["Front"] == (
        '<span class="rb-todo">☐</span> Read it again')
    done = next(n for k, n in notes.items() if k.startswith("☑"))
    image = re.search(r'<img alt="my cat" src="(rb-[0-9a-f]{16}\.png)">', done["Front"])
    assert image and col.media.have(image.group(1))


def test_an_obsidian_image_is_found_by_name_anywhere_in_the_vault(
    tmp_path: Path, col: Collection
) -> None:
    vault = write(tmp_path / "vault", {
        ".obsidian/app.json": "{}",
        "Notes/Deep/Animals.md": ("- ![[cat.png]] is it a cat? #card\n"
                                  "- ![a dog](dog.png) and a dog? #card\n"
                                  "- ![gone](nowhere.png) missing? #card\n"),
        "Attachments/cat.png": PNG,
        "Attachments/Sub/dog.png": PNG[:-1] + b"\x83",  # another image, another name
    })
    page = obsidian.read(vault, "v").pages["Animals"]
    assert [b.string for b in page.children] == [
        "![cat.png](</Attachments/cat.png>) is it a cat? #card",
        "![a dog](</Attachments/Sub/dog.png>) and a dog? #card",
        "![gone](nowhere.png) missing? #card",
    ]
    notes = synced_notes(col, vault)
    for key in ("is it a cat?", "and a dog?"):
        src = re.search(r'src="(rb-[0-9a-f]{16}\.png)"', notes[key]["Front"])
        assert src and col.media.have(src.group(1)), key
    missing = notes["gone missing?"]["Front"]
    assert missing.startswith('<span class="rb-missing rb-image">gone</span>')


def test_a_vault_copied_without_its_settings_is_read_as_markdown_notes(
    tmp_path: Path, col: Collection
) -> None:
    vault = tmp_path / "copied"
    shutil.copytree(SEEDS / "obsidian", vault, ignore=shutil.ignore_patterns(".obsidian"))
    (vault / "export-of-something.json").write_text("[]")  # an attachment, not an export
    assert not (vault / ".obsidian").exists()
    assert detect_kind(vault) == "obsidian" and is_notes_folder(vault)
    expected = collect(obsidian.read(SEEDS / "obsidian", "g"), CardOptions())
    notes = synced_notes(col, vault)
    assert len(notes) == len(expected) > 5
    keys = {col.get_note(nid)["SourceID"] for nid in col.find_notes("SourceID:_*")}
    assert keys == {s.key for s in expected}


def test_stray_notes_beside_exports_and_roam_markdown_exports_are_not_vaults(
    tmp_path: Path,
) -> None:
    downloads = write(tmp_path / "downloads", {"README.md": "# Read me\ntext"})
    with zipfile.ZipFile(downloads / "Roam-Export-1700000000000.zip", "w") as archive:
        archive.writestr("graph.json", json.dumps([{"title": "P", "children": []}]))
    assert detect_kind(downloads) == "roam-json"
    exports = write(tmp_path / "exports", {"notes.md": "just a note", "graph.json": "[]"})
    assert detect_kind(exports) == "roam-json"
    assert detect_kind(SEEDS / "roam-markdown") == "roam-markdown"

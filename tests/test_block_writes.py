"""Writing a block's new text into a notes folder: only its own lines change."""

from __future__ import annotations

from pathlib import Path

import pytest

from addon.core.block_writes import BlockEdit, FolderWriter, Journal, replace_block_text
from addon.core.sources.outline import digest

LOGSEQ = (
    "title:: Spanish\n"
    "- Greetings\n"
    "\t- hola means? #card\n"
    "\t  id:: 6650a1b2-0000-4000-8000-000000000001\n"
    "\t\t- hello\n"
    "\t- adios #card\n"
    "- a line\n"
    "  that goes on #card\n"
)
OBSIDIAN = (
    "---\ntags: [spanish]\n---\n"
    "# Greetings\n"
    "- hola means? #card ^hola-1\n"
    "  - hello\n"
    "1. numbered one #card\n"
    "> quoted #card\n"
)


@pytest.mark.parametrize(("text", "before", "after", "expected"), [
    (LOGSEQ, "hola means? #card", "hola means what? #card",
     LOGSEQ.replace("hola means? #card", "hola means what? #card")),
    (LOGSEQ, "a line\nthat goes on #card", "one line\nthat went on #card",
     LOGSEQ.replace("- a line\n  that goes on", "- one line\n  that went on")),
    (OBSIDIAN, "hola means? #card", "¿hola? #card",
     OBSIDIAN.replace("- hola means? #card ^hola-1", "- ¿hola? #card ^hola-1")),
    (OBSIDIAN, "numbered one #card", "numbered 1 #card",
     OBSIDIAN.replace("1. numbered one", "1. numbered 1")),
    (OBSIDIAN, "quoted #card", "quoted again #card",
     OBSIDIAN.replace("> quoted #card", "> quoted again #card")),
])
def test_only_the_blocks_own_text_changes(text: str, before: str, after: str, expected: str
                                          ) -> None:
    assert replace_block_text(text, before, after) == expected


@pytest.mark.parametrize(("before", "after"), [
    ("adios", "bye"),  # is only part of a block's text: not the whole of one
    ("#card", "x"),  # found more than once
    ("hola means? #card", "two\nlines #card"),  # would need a new line
    ("not there", "x"),
])
def test_a_block_text_not_found_exactly_is_never_guessed(before: str, after: str) -> None:
    assert replace_block_text(LOGSEQ, before, after) is None


def _folder(tmp_path: Path, text: str) -> tuple[Path, FolderWriter]:
    page = tmp_path / "pages" / "Spanish.md"
    page.parent.mkdir(parents=True)
    page.write_bytes(text.encode())
    return page, FolderWriter(str(tmp_path), {"pages/Spanish.md": digest(text.encode())})


def test_a_file_is_rewritten_atomically_and_byte_for_byte_elsewhere(tmp_path: Path) -> None:
    page, writer = _folder(tmp_path, LOGSEQ.replace("\n", "\r\n"))
    edit = BlockEdit("logseq:g:x", "x", "adios #card", "adiós #card", "pages/Spanish.md")
    done = writer.write([edit])
    assert done.written == [edit] and done.failed == {}
    assert page.read_bytes() == LOGSEQ.replace("\n", "\r\n").replace(
        "adios #card", "adiós #card").encode()
    assert [p.name for p in page.parent.iterdir()] == ["Spanish.md"]  # no temporary left


def test_a_file_changed_since_it_was_read_is_not_touched(tmp_path: Path) -> None:
    page, writer = _folder(tmp_path, LOGSEQ)
    page.write_text(LOGSEQ + "- written by the user meanwhile\n", encoding="utf-8")
    done = writer.write([BlockEdit("k", "u", "adios #card", "bye #card", "pages/Spanish.md")])
    assert done.written == [] and "changed since it was read" in done.failed["k"]
    assert "meanwhile" in page.read_text(encoding="utf-8")


def test_a_symlinked_page_is_not_replaced_by_a_file(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.md"
    target.write_text(LOGSEQ, encoding="utf-8")
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "Spanish.md").symlink_to(target)
    writer = FolderWriter(str(tmp_path), {"pages/Spanish.md": digest(LOGSEQ.encode())})
    done = writer.write([BlockEdit("k", "u", "adios #card", "bye #card", "pages/Spanish.md")])
    assert "symlink" in done.failed["k"]
    assert (tmp_path / "pages" / "Spanish.md").is_symlink()


def test_the_journal_keeps_what_each_write_back_replaced(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    assert journal.last() is None
    first = [BlockEdit("k1", "u1", "a", "b", "p.md")]
    second = [BlockEdit("k2", "u2", "c", "d")]
    journal.record("/notes", first)
    journal.record("roam-api://g", second)
    assert journal.last() == ("roam-api://g", second)
    journal.drop_last()
    assert journal.last() == ("/notes", first)

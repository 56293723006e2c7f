"""Folder readers never read through a symlink that leads out of the notes folder, and a
dangling link does not stop the read (Logseq graphs, Obsidian vaults, Roam Markdown folders)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from addon.core.sources import logseq, obsidian, roam_markdown


def _link(link: Path, target: Path) -> None:
    try:
        os.symlink(target, link)
    except (OSError, NotImplementedError):
        pytest.skip("symlinks not available")


def _logseq(root: Path) -> Path:
    (root / "pages").mkdir(parents=True)
    (root / "pages" / "own.md").write_text("- own block\n", encoding="utf-8")
    (root / "pages" / "twin.md").write_text("- twin block\n", encoding="utf-8")
    return root / "pages"


def _obsidian(root: Path) -> Path:
    (root / ".obsidian").mkdir(parents=True)
    (root / "own.md").write_text("own block\n", encoding="utf-8")
    (root / "twin.md").write_text("twin block\n", encoding="utf-8")
    return root


def _markdown(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "own.md").write_text("- own block\n", encoding="utf-8")
    (root / "twin.md").write_text("- twin block\n", encoding="utf-8")
    return root


READERS = {
    "logseq": (_logseq, logseq.read),
    "obsidian": (_obsidian, obsidian.read),
    "roam-markdown": (_markdown, roam_markdown.read),
}


@pytest.mark.parametrize("kind", sorted(READERS))
def test_a_symlink_out_of_the_folder_is_not_read(tmp_path: Path, kind: str) -> None:
    make, read = READERS[kind]
    secret = tmp_path / "private" / "secret.md"
    secret.parent.mkdir()
    secret.write_text("- secret block\n", encoding="utf-8")
    notes = make(tmp_path / "notes")
    _link(notes / "leak.md", secret)
    _link(notes / "leak2.md", Path("..") / ".." / "private" / "secret.md")

    graph = read(tmp_path / "notes", "g")

    texts = {b.string for b in graph.blocks.values()}
    assert "own block" in texts
    assert not any("secret" in text for text in texts)
    assert "leak" not in graph.pages and "leak2" not in graph.pages


@pytest.mark.parametrize("kind", sorted(READERS))
def test_a_symlink_inside_the_folder_is_read_and_a_dangling_one_skipped(
    tmp_path: Path, kind: str
) -> None:
    make, read = READERS[kind]
    notes = make(tmp_path / "notes")
    _link(notes / "alias.md", notes / "twin.md")
    _link(notes / "gone.md", notes / "missing.md")

    graph = read(tmp_path / "notes", "g")

    assert "alias" in graph.pages and "gone" not in graph.pages
    assert "own" in graph.pages


def test_a_notes_folder_reached_through_a_symlink_is_read(tmp_path: Path) -> None:
    notes = _obsidian(tmp_path / "real")
    _link(tmp_path / "vault", notes)
    graph = obsidian.read(tmp_path / "vault", "g")
    assert {"own", "twin"} <= set(graph.pages)


def test_a_logseq_pages_folder_configured_out_of_the_graph_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "secret.md").write_text("- secret block\n", encoding="utf-8")
    root = tmp_path / "graph"
    (root / "logseq").mkdir(parents=True)
    (root / "journals").mkdir()
    (root / "journals" / "2024_01_15.md").write_text("- day block\n", encoding="utf-8")
    (root / "logseq" / "config.edn").write_text(
        '{:file/name-format :triple-lowbar :pages-directory "../elsewhere"}', encoding="utf-8"
    )
    graph = logseq.read(root, "g")
    texts = {b.string for b in graph.blocks.values()}
    assert "day block" in texts and "secret block" not in texts

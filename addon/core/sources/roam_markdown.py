"""Roam Research Markdown export (a .zip or a folder of .md files) -> Graph with source "roam".

The export is one file per page: the page title is the file's path without ``.md`` (a ``/`` in a
title is a subfolder), blocks are ``- `` bullets nested by four spaces, and a block's further
lines start at column 0. ``# ``…``### `` at the start of a block is its heading.

What the format loses, so this reader cannot give back:
- block uids: each block gets a synthetic uid from its page and text (``model.synthetic_uid``),
  so editing a block changes its key (sync re-matches such notes by similarity);
- ``((uid))`` block references: they name uids the export no longer has, and show as a muted
  placeholder;
- page uids, so a card's link opens the graph, not the page;
- in a zip, images: ``Graph.root`` stays "" and local images are not found;
- a line of a block's text that itself starts with ``- `` is read as a new block.
Nothing is ever written to the export.
"""

from __future__ import annotations

import os
import re
import unicodedata
import zipfile
from collections.abc import Iterator
from pathlib import Path

from ..model import Block, Graph, Page, SourceError, gc_paused, page_uids
from .exports import open_zip, zip_members
from .outline import decode, outside, parse_text, plain

SUFFIX = ".md"
_HEADING = re.compile(r"(#{1,3}) (?=\S)")
# Folders that mark a notes folder of another app, read by its own reader.
_OTHER_APPS = ("logseq", "pages", "journals", ".obsidian")


def looks_like(path: Path) -> bool:
    """A zip holding .md files, or a folder with .md files that is not a Logseq graph or an
    Obsidian vault."""
    if path.is_file():
        if path.suffix.lower() != ".zip":
            return False
        try:
            with zipfile.ZipFile(path) as archive:
                return any(n.lower().endswith(SUFFIX) for n in archive.namelist())
        except (zipfile.BadZipFile, OSError):
            return False
    if not path.is_dir() or any((path / name).exists() for name in _OTHER_APPS):
        return False
    return next(_markdown_files(path), None) is not None


def read(path: str | Path, graph_name: str) -> Graph:
    path = Path(path)
    if path.is_dir():
        files = [(rel, _read_bytes(path / rel)) for rel in sorted(_markdown_files(path))]
        if not files:
            raise SourceError(path, "no .md files in this folder; not a Roam Markdown export")
        root = str(path)
    elif path.suffix.lower() == ".zip":
        files = _zip_members(path)
        root = ""
    elif not path.exists():
        raise SourceError(path, "no such file or folder")
    else:
        raise SourceError(path, "not a Roam Markdown export (expected a .zip or a folder)")
    graph = Graph(source="roam", name=graph_name, root=root)
    with gc_paused():
        for rel, data in files:
            text, _ = decode(data)
            # NFC: macOS may give decomposed names, and the title is part of every uid.
            title = unicodedata.normalize("NFC", rel[: -len(SUFFIX)])
            page = graph.add_page(Page(title=title, path=rel))
            outline = parse_text(text, False, page)
            if any(line.strip() for line in outline.preamble):
                # Text before the first bullet (a hand-edited file): keep it as a first block.
                lead = Block("", "\n".join(outline.preamble).strip("\n"), page)
                page.children.insert(0, lead)
                outline.blocks.insert(0, lead)
            name_blocks(graph, page, outline.blocks, plain(text))
    return graph


def name_blocks(graph: Graph, page: Page, made: list[Block], plain: bool = False) -> None:
    """Give the parsed blocks of ``page`` their headings and synthetic uids, in document order,
    and list them in ``graph``. ``plain``: the file's text passed ``outline.plain`` (the uids'
    fast path)."""
    blocks = graph.blocks
    uid_of = page_uids(page.title)
    for block in made:
        text = block.string
        if text[:1] == "#":
            match = _HEADING.match(text)
            if match:
                block.heading = len(match.group(1))
                block.string = text = text[match.end():]
        block.uid = uid = uid_of(text, blocks, plain)
        blocks[uid] = block


def _markdown_files(folder: Path) -> Iterator[str]:
    """Posix paths, relative to ``folder``, of its .md files (hidden files and folders skipped,
    and symlinks out of the folder: see ``outline.outside``)."""
    real = os.path.realpath(folder)
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel_dir = Path(dirpath).relative_to(folder).as_posix()
        for name in filenames:
            if (name.lower().endswith(SUFFIX) and not name.startswith(".")
                    and not outside(real, os.path.join(dirpath, name))):
                yield name if rel_dir == "." else f"{rel_dir}/{name}"


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise SourceError(path, f"cannot read file ({err.strerror or err})") from None


def _zip_members(path: Path) -> list[tuple[str, bytes]]:
    """The .md members of a zip, read in memory (never extracted), in name order."""
    with open_zip(path) as archive:
        members = zip_members(archive, path, SUFFIX)
        if not members:
            raise SourceError(path, "zip holds no .md file; not a Roam Markdown export")
        return [(m.filename.replace("\\", "/"), archive.read(m)) for m in members]

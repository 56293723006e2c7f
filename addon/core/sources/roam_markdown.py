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
Nothing is ever written to the export. A folder read with a ``FolderCache`` (a long-lived
caller's) parses only the files that changed since the cache's last read, and gives the same
Graph (folder_cache.py); a zip is always read whole.
"""

from __future__ import annotations

import re
import unicodedata
import zipfile
from collections.abc import Iterator
from pathlib import Path

from ..model import Block, Graph, Page, SourceError, gc_paused, page_uids
from .exports import open_zip, read_member, zip_members
from .files import Budget, Found, decode, read_file, walk
from .folder_cache import (
    FolderCache,
    Parsed,
    assemble,
)
from .outline import parse_text, plain

SUFFIX = ".md"
_HEADING = re.compile(r"(#{1,3}) (?=\S)")
# Folders that mark a notes folder of another app, read by its own reader.
_OTHER_APPS = ("logseq", "pages", "journals", ".obsidian")


def looks_like(path: Path) -> bool:
    """A zip holding .md files, or a folder with .md files that is not a Logseq graph or an
    Obsidian vault. A folder that cannot be listed within the limits raises SourceError."""
    if path.is_file():
        if path.suffix.lower() != ".zip":
            return False
        try:
            with open_zip(path) as archive:
                return any(n.lower().endswith(SUFFIX) for n in archive.namelist())
        except SourceError:
            return False
    if not path.is_dir() or any((path / name).exists() for name in _OTHER_APPS):
        return False
    return next(_markdown_files(path), None) is not None


def read(path: str | Path, graph_name: str, cache: FolderCache | None = None) -> Graph:
    """Read the export at ``path``; with ``cache`` (a folder only: a zip is read whole),
    only the files that changed since the cache's last read are parsed (folder_cache.py),
    and the Graph is the same."""
    path = Path(path)
    if path.is_dir():
        budget = Budget(path)
        found = sorted(_markdown_files(path, budget), key=lambda f: f.rel)
        if not found:
            raise SourceError(path, "no .md files in this folder; not a Roam Markdown export")
        graph = Graph(source="roam", name=graph_name, root=str(path))
        if cache is not None:
            with gc_paused():
                _read_cached(graph, cache, found, budget)
        else:
            _read_pages(graph, ((file.rel, read_file(file.path, budget)) for file in found))
    elif path.suffix.lower() == ".zip":
        graph = Graph(source="roam", name=graph_name)
        with open_zip(path) as archive:
            _read_pages(graph, _zip_files(archive, path))
    elif not path.exists():
        raise SourceError(path, "no such file or folder")
    else:
        raise SourceError(path, "not a Roam Markdown export (expected a .zip or a folder)")
    return graph


def _read_pages(graph: Graph, files: Iterator[tuple[str, bytes]]) -> None:
    """Add a page per (path, bytes); each file's bytes are dropped once it is parsed."""
    with gc_paused():
        for rel, data in files:
            text, _ = decode(data)
            del data
            _add_page(graph, rel, text)


def _add_page(graph: Graph, rel: str, text: str) -> Page:
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
    return page


def _read_cached(graph: Graph, cache: FolderCache, found: list[Found], budget: Budget) -> None:
    session = cache.begin("roam-markdown", graph.root)
    read: list[tuple[str, Parsed]] = []
    for file in found:

        def parse(data: bytes, rel: str = file.rel) -> Parsed:
            text, _ = decode(data)
            scratch = Graph(source="roam", name=graph.name)
            return Parsed(_add_page(scratch, rel, text), scratch.blocks, text)

        read.append((file.rel, session.parsed(file.rel, file.path, budget, None, parse)))
    session.finish(assemble(graph, read, lambda rel, parsed: _add_page(graph, rel, parsed.text)))


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


def _markdown_files(folder: Path, budget: Budget | None = None) -> Iterator[Found]:
    """The folder's .md files (hidden files and folders, special files and symlinks out of the
    folder skipped: see ``files.walk``)."""
    return walk(folder, lambda name: name.lower().endswith(SUFFIX), budget)


def _zip_files(archive: zipfile.ZipFile, path: Path) -> Iterator[tuple[str, bytes]]:
    """The .md members of a zip, read in memory (never extracted), in name order."""
    members = zip_members(archive, path, SUFFIX)
    if not members:
        raise SourceError(path, "zip holds no .md file; not a Roam Markdown export")
    budget = Budget(path)
    for member in members:
        yield member.filename.replace("\\", "/"), read_member(archive, member, path, budget)

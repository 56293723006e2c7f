"""Pick the format of a source by its shape, and read it into a Graph.

Which formats there are, the URL or folder marks each claims and how each is read are
registry.py's; this module asks them in order and settles what no single format can (a
folder of Markdown notes, a folder of exports):

A source is a file, a zip, a folder, or a ``roam-api://GRAPH`` or ``roam-local://GRAPH`` URL:

| source                                              | reader         |
| --------------------------------------------------- | -------------- |
| ``roam-api://GRAPH``                                | roam_api       |
| ``roam-local://GRAPH[?type=offline]``               | roam_local     |
| ``.json``, or a zip holding one                     | roam_json      |
| ``.edn``, or a zip holding one                      | roam_edn       |
| a zip of ``.md`` files                              | roam_markdown  |
| a folder with ``pages/``/``journals/``/``logseq/``  | logseq         |
| a folder with ``.obsidian/``                        | obsidian       |
| a folder of ``.md`` notes that are not bullet lists | obsidian       |
| a folder of exports (``.json``/``.edn``/``.zip``)   | its newest one |
| any other folder of ``.md`` files                   | roam_markdown  |

A folder of exports (such as Downloads) is read through its newest Roam export of any format,
a zip of Markdown pages included: files that are plainly something else (a ``.json`` that is
not a list, a zip of photos, a zip holding a README.md among other files) are passed over, and
loose ``.md`` files there are never taken for a Markdown export. A folder with no export is
read as a folder of Markdown notes.

The graph name defaults to the source's own name (the file's stem, the folder's name, the
EDN export's ``:graph/name``, the API graph); give one explicitly to keep keys stable when the
export's file name changes from one export to the next.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from ..model import Graph, SourceError
from ..model import graph_name as model_graph_name
from . import roam_markdown
from .exports import newest_roam_export, open_zip
from .files import note_folders, open_regular
from .registry import EXPORTS, FORMATS, KINDS, Format, ReadOptions, api_format

EXPORT_SUFFIXES = (".json", ".edn", ".zip")
# The export formats a folder of exports may hold, for each kind ("auto": any).
_EXPORT_FORMATS = {"auto": tuple(f.export for f in EXPORTS),
                   **{f.kind: (f.export,) for f in EXPORTS}}
_EXPORT_STAMP = re.compile(r"(?i)^roam-export-\d+$")
# What browsers add to a file downloaded again: "my-graph (1).json", "my-graph(2).json".
_DOWNLOAD_COPY = re.compile(r"\s*\(\d{1,3}\)$")


def detect_kind(source: str | Path) -> str:
    """The reader a source calls for (one of registry.KINDS); SourceError if none fits."""
    api = api_format(source)
    if api is not None:
        return api.kind
    path = Path(source).expanduser()
    if path.is_dir():
        notes = _notes_kind(path)
        if notes is not None:
            return notes
        export = folder_export(path)
        if export is not None:
            return detect_kind(export)
        if roam_markdown.looks_like(path):
            return "roam-markdown"
        raise SourceError(path, "no export (.json, .edn, .zip) and no Markdown notes found here")
    if not path.exists():
        raise SourceError(path, "no such file or folder")
    suffix = path.suffix.lower()
    for fmt in EXPORTS:
        if fmt.export_file and suffix == f".{fmt.export}":
            return fmt.kind
    if suffix == ".zip":
        return _zip_kind(path)
    if suffix == ".md":
        raise SourceError(path, "a single Markdown file: give the folder that holds your notes")
    raise SourceError(path, f"unknown export format {path.suffix or '(no extension)'!r} "
                            "(known: .json, .edn, .zip, a notes folder, roam-api://GRAPH)")


def read_source(
    source: str | Path, graph_name: str = "", kind: str = "auto",
    options: ReadOptions | None = None,
) -> Graph:
    """Read ``source`` with the reader its kind (or, for ``auto``, its shape) calls for."""
    options = options or ReadOptions()
    if kind not in ("auto", *KINDS):
        raise SourceError(source, f"unknown source kind {kind!r} (known: auto, {', '.join(KINDS)})")
    fmt = FORMATS[detect_kind(source) if kind == "auto" else kind]
    target: Path | str = str(source)
    if not fmt.api:
        target = path = Path(source).expanduser()
        if path.is_dir() and fmt.export:
            export = folder_export(path, fmt.kind)
            if export is not None:
                target = export
            elif fmt.export_file:  # a folder of .md files is a Markdown export unzipped
                newest_roam_export(path, (fmt.export,))  # raises, saying what is missing
    name = _checked_name(source, graph_name or default_graph_name(source, fmt.kind))
    return fmt.read(target, name, options)


def is_api(source: str | Path) -> bool:
    """Whether the source is read through an API (``roam-api://``, ``roam-local://``)."""
    return api_format(source) is not None


def default_graph_name(source: str | Path, kind: str = "auto") -> str:
    """The source's own name: the API graph, the EDN export's ``:graph/name``, a folder's
    name, or the file's stem (for Roam's ``Roam-Export-<stamp>`` files, their folder's; a
    browser's "(1)" for a file downloaded again is not part of it)."""
    api = api_format(source)
    if api is not None and api.url_graph is not None:
        try:
            return api.url_graph(str(source))
        except ValueError:
            return "roam"
    path = Path(source).expanduser()
    target = (folder_export(path, kind) if kind in _EXPORT_FORMATS else None
              ) if path.is_dir() else path
    if target is not None:
        fmt = FORMATS.get(kind) if kind != "auto" else _export_file_format(target)
        own = fmt.own_name(target) if fmt and fmt.own_name and target.exists() else ""
        if own:
            return _clean(own)
    name = path.name if path.is_dir() else _DOWNLOAD_COPY.sub("", path.stem) or path.stem
    if _EXPORT_STAMP.match(name):
        # Roam-Export-<timestamp> changes every export: name the graph after the folder.
        name = path.resolve().parent.name
    return _clean(name) or "roam"


def is_notes_folder(source: str | Path) -> bool:
    if is_api(source):
        return False
    path = Path(source).expanduser()
    return path.is_dir() and folder_export(path) is None


def folder_export(folder: Path, kind: str = "auto") -> Path | None:
    """The export a folder source stands for (its newest Roam export of the formats ``kind``
    allows), or None for a notes folder. As in detect_kind, a Logseq graph or Obsidian vault
    is notes even with a .zip or .json in it (Obsidian puts attachments in the vault's root by
    default), and so is a folder of Markdown notes (see _notes_kind)."""
    if _notes_kind(folder) is not None:
        return None
    try:
        return newest_roam_export(folder, _EXPORT_FORMATS.get(kind, _EXPORT_FORMATS["auto"]))
    except SourceError:
        return None


# Internals --------------------------------------------------------------------------------


def _checked_name(source: str | Path, name: str) -> str:
    try:
        return model_graph_name(name)
    except ValueError as err:
        raise SourceError(source, str(err)) from None


def _clean(name: str) -> str:
    return unicodedata.normalize("NFC", name).replace(":", "-").strip()


def _export_file_format(path: Path) -> Format | None:
    """The format a single export file of this suffix is (none for a zip: it may hold any)."""
    suffix = path.suffix.lower()
    return next((f for f in EXPORTS if f.export_file and suffix == f".{f.export}"), None)


def _notes_kind(folder: Path) -> str | None:
    """The reader of a folder that is notes rather than exports, or None.

    A Logseq graph and an Obsidian vault say so (``pages/``, ``.obsidian/``…). A folder of
    Markdown notes without either is a vault copied without its settings, read as Obsidian
    reads Markdown, unless its notes are bullet outlines as Roam's Markdown export writes
    them; and it is a folder of exports with stray notes when it holds a ``Roam-Export-…``
    file or no more notes than exports.
    """
    for fmt in FORMATS.values():
        if fmt.marks is not None and fmt.marks(folder):
            return fmt.kind
    try:
        names = [entry.name for entry in os.scandir(folder)]
    except OSError:
        return None
    if any(_EXPORT_STAMP.match(name.rsplit(".", 1)[0]) for name in names):
        return None
    exports = sum(1 for name in names if name.lower().endswith(EXPORT_SUFFIXES))
    shapes = [_outline_shaped(note) for note in _sample_notes(folder, exports + 20)]
    if len(shapes) <= exports or not roam_markdown.looks_like(folder):
        return None  # a few notes beside exports are strays, not the source
    return "roam-markdown" if all(shapes) else "obsidian"


def _sample_notes(folder: Path, count: int = 20) -> Iterator[Path]:
    """Up to ``count`` of the folder's .md notes, outside dot-folders (bounded work)."""
    found = 0
    for directory in note_folders(folder):
        try:
            with os.scandir(directory) as entries:
                names = sorted(e.name for e in entries if e.is_file(follow_symlinks=False))
        except OSError:
            continue
        for name in names:
            if name.lower().endswith(".md") and not name.startswith("."):
                yield directory / name
                found += 1
                if found >= count:
                    return


def _outline_shaped(note: Path) -> bool:
    """Whether a note opens as Roam's Markdown export writes every page: with a bullet."""
    try:
        with open_regular(note) as handle:
            head = handle.read(4096).decode("utf-8", "replace")  # a sniff: may end mid-character
    except SourceError:
        return True  # unreadable: no evidence either way
    for line in head.splitlines():
        if line.strip():
            return line.lstrip(" \t\ufeff").startswith("- ") or line.strip() == "-"
    return True


def _zip_kind(path: Path) -> str:
    with open_zip(path) as archive:
        names = [n.lower() for n in archive.namelist() if not n.endswith("/")]
    for fmt in EXPORTS:
        if any(n.endswith(f".{fmt.export}") for n in names):
            return fmt.kind
    raise SourceError(path, "zip holds no Roam export (.json, .edn or .md files)")

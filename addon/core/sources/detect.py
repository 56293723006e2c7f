"""Pick the reader for a source and read it into a Graph.

A source is a file, a zip, a folder, or a ``roam-api://GRAPH`` URL:

| source                                              | reader         |
| --------------------------------------------------- | -------------- |
| ``roam-api://GRAPH``                                | roam_api       |
| ``.json``, or a zip holding one                     | roam_json      |
| ``.edn``, or a zip holding one                      | roam_edn       |
| a zip of ``.md`` files                              | roam_markdown  |
| a folder with ``pages/``/``journals/``/``logseq/``  | logseq         |
| a folder with ``.obsidian/``                        | obsidian       |
| a folder of exports (``.json``/``.edn``/``.zip``)   | its newest one |
| any other folder of ``.md`` files                   | roam_markdown  |

The graph name defaults to the source's own name (the file's stem, the folder's name, the
EDN export's ``:graph/name``, the API graph); give one explicitly to keep keys stable when the
export's file name changes from one export to the next.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..model import Graph, SourceError
from ..model import graph_name as model_graph_name
from . import logseq, obsidian, roam_api, roam_edn, roam_json, roam_markdown
from .exports import newest_export

KINDS = ("roam-json", "roam-edn", "roam-markdown", "logseq", "obsidian", "roam-api")
EXPORT_SUFFIXES = (".json", ".edn", ".zip")
NOTES_FOLDER_KINDS = ("roam-markdown", "logseq", "obsidian")
_EXPORT_STAMP = re.compile(r"(?i)^roam-export-\d+$")
# Folders a notes folder keeps for itself: never notes, never watched.
# Each export's last hash, by path, with the (size, modification time) it was taken at.
_digests: dict[str, tuple[tuple[int, int], str]] = {}
_SKIPPED_DIRS = frozenset({".git", ".obsidian", ".trash", "logseq", "node_modules"})


@dataclass(frozen=True)
class ReadOptions:
    """What some readers need besides a path: folder filters and the Roam API settings."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    api_token: str = ""
    api_base_url: str = roam_api.DEFAULT_BASE_URL
    progress: Callable[[int, int], None] | None = None


def detect_kind(source: str | Path) -> str:
    """The reader a source calls for (one of KINDS); SourceError if none fits."""
    if isinstance(source, str) and roam_api.is_url(source):
        return "roam-api"
    path = Path(source).expanduser()
    if path.is_dir():
        if logseq.looks_like(path):
            return "logseq"
        if obsidian.looks_like(path):
            return "obsidian"
        export = _newest_export_or_none(path)
        if export is not None:
            return detect_kind(export)
        if roam_markdown.looks_like(path):
            return "roam-markdown"
        raise SourceError(path, "no export (.json, .edn, .zip) and no Markdown notes found here")
    if not path.exists():
        raise SourceError(path, "no such file or folder")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "roam-json"
    if suffix == ".edn":
        return "roam-edn"
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
    kind = detect_kind(source) if kind == "auto" else kind
    if kind == "roam-api":
        try:
            graph = roam_api.parse_url(str(source))
        except ValueError as err:
            raise SourceError(source, str(err)) from None
        name = _checked_name(source, graph_name or graph)
        token = roam_api.token_from(options.api_token, graph)
        result = roam_api.read(graph, token, options.api_base_url or roam_api.DEFAULT_BASE_URL,
                               progress=options.progress)
        result.name = name
        return result
    path = Path(source).expanduser()
    if path.is_dir() and kind not in NOTES_FOLDER_KINDS:
        path = newest_export(path, EXPORT_SUFFIXES)
    name = _checked_name(source, graph_name or default_graph_name(source, kind))
    if kind == "roam-json":
        return roam_json.read(path, name)
    if kind == "roam-edn":
        return roam_edn.read(path, name)
    if kind == "roam-markdown":
        return roam_markdown.read(path, name)
    if kind == "logseq":
        return logseq.read(path, name)
    return obsidian.read(path, name, include=options.include, exclude=options.exclude)


def default_graph_name(source: str | Path, kind: str = "auto") -> str:
    """The source's own name: the API graph, the EDN export's ``:graph/name``, a folder's
    name, or the file's stem (for Roam's ``Roam-Export-<stamp>`` files, their folder's)."""
    if isinstance(source, str) and roam_api.is_url(source):
        try:
            return roam_api.parse_url(source)
        except ValueError:
            return "roam"
    path = Path(source).expanduser()
    if kind == "roam-edn" or (kind == "auto" and path.suffix.lower() == ".edn"):
        target = newest_export(path, EXPORT_SUFFIXES) if path.is_dir() else path
        name = roam_edn.graph_name_of(target) if target.exists() else ""
        if name:
            return _clean(name)
    name = path.name if path.is_dir() else path.stem
    if _EXPORT_STAMP.match(name):
        # Roam-Export-<timestamp> changes every export: name the graph after the folder.
        name = path.resolve().parent.name
    return _clean(name) or "roam"


def fingerprint(source: str | Path) -> str:
    """A short string that changes when the source's content may have changed.

    For an export: the file a sync would read (for a folder of exports, its newest), its size,
    modification time and a hash of its bytes (so a save that changes nothing is recognised as
    unchanged). For a notes folder: every note's path, size and modification time. An API
    source has no fingerprint (it is not watched): "".
    """
    if isinstance(source, str) and roam_api.is_url(source):
        return ""
    path = Path(source).expanduser()
    try:
        if path.is_dir() and _folder_export(path) is None:
            return _folder_print(path)
        target = newest_export(path, EXPORT_SUFFIXES) if path.is_dir() else path
        stat = target.stat()
        version = (stat.st_size, stat.st_mtime_ns)
        known = _digests.get(str(target))
        if known is not None and known[0] == version:
            digest = known[1]
        else:  # hashed once per version of the file, however often it is polled
            digest = hashlib.blake2b(target.read_bytes(), digest_size=12).hexdigest()
            _digests[str(target)] = (version, digest)
    except (OSError, SourceError):
        return "missing"
    return f"{target}|{stat.st_size}|{digest}"


def watch_paths(source: str | Path) -> set[str]:
    """Paths whose change events may mean the source changed (the watcher also polls notes
    folders, since a folder's events do not report a note rewritten in place)."""
    if isinstance(source, str) and roam_api.is_url(source):
        return set()
    path = Path(source).expanduser()
    paths = {str(path)}
    if path.is_dir():
        export = _folder_export(path)
        if export is not None:
            paths.add(str(export))
        else:
            paths.update(str(d) for d in _note_dirs(path))
    else:  # an atomic save replaces the file: its folder sees the rename
        paths.add(str(path.parent))
    return {p for p in paths if os.path.exists(p)}


def is_notes_folder(source: str | Path) -> bool:
    if isinstance(source, str) and roam_api.is_url(source):
        return False
    path = Path(source).expanduser()
    return path.is_dir() and _folder_export(path) is None


# Internals --------------------------------------------------------------------------------


def _checked_name(source: str | Path, name: str) -> str:
    try:
        return model_graph_name(name)
    except ValueError as err:
        raise SourceError(source, str(err)) from None


def _clean(name: str) -> str:
    return unicodedata.normalize("NFC", name).replace(":", "-").strip()


def _newest_export_or_none(folder: Path) -> Path | None:
    try:
        return newest_export(folder, EXPORT_SUFFIXES)
    except SourceError:
        return None


def _folder_export(folder: Path) -> Path | None:
    """The export a folder source stands for, or None for a notes folder. As in detect_kind,
    a Logseq graph or Obsidian vault is notes even with a .zip or .json in it (Obsidian puts
    attachments in the vault's root by default)."""
    if logseq.looks_like(folder) or obsidian.looks_like(folder):
        return None
    return _newest_export_or_none(folder)


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n.lower() for n in archive.namelist() if not n.endswith("/")]
    except (zipfile.BadZipFile, OSError) as err:
        raise SourceError(path, f"not a valid zip file ({err})") from None
    for suffix, kind in ((".json", "roam-json"), (".edn", "roam-edn"), (".md", "roam-markdown")):
        if any(n.endswith(suffix) for n in names):
            return kind
    raise SourceError(path, "zip holds no Roam export (.json, .edn or .md files)")


def _note_dirs(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, _ in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIPPED_DIRS and not d.startswith(".")]
        yield Path(dirpath)


def _folder_print(root: Path) -> str:
    digest = hashlib.blake2b(digest_size=12)
    for folder in _note_dirs(root):
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.name.lower().endswith(".md") and entry.is_file():
                    stat = entry.stat()
                    digest.update(f"{entry.path}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return f"{root}|{digest.hexdigest()}"

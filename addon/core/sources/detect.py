"""Pick the reader for a source and read it into a Graph.

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

import hashlib
import os
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..limits import MAX_FOLDER_DEPTH
from ..model import Graph, SourceError
from ..model import graph_name as model_graph_name
from . import logseq, obsidian, roam_api, roam_edn, roam_json, roam_local, roam_markdown
from .exports import newest_roam_export, open_zip
from .files import open_regular
from .folder_cache import FolderCache

KINDS = ("roam-json", "roam-edn", "roam-markdown", "logseq", "obsidian", "roam-api",
         "roam-local")
# Sources read through an API, which incremental pulls keep in step (live.py).
API_KINDS = ("roam-api", "roam-local")
EXPORT_SUFFIXES = (".json", ".edn", ".zip")
NOTES_FOLDER_KINDS = ("roam-markdown", "logseq", "obsidian")
# The export formats a folder of exports may hold, for each kind ("auto": any).
_EXPORT_FORMATS = {"auto": ("json", "edn", "md"), "roam-json": ("json",),
                   "roam-edn": ("edn",), "roam-markdown": ("md",)}
_KIND_OF_FORMAT = {"json": "roam-json", "edn": "roam-edn", "md": "roam-markdown"}
_EXPORT_STAMP = re.compile(r"(?i)^roam-export-\d+$")
# What browsers add to a file downloaded again: "my-graph (1).json", "my-graph(2).json".
_DOWNLOAD_COPY = re.compile(r"\s*\(\d{1,3}\)$")
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
    progress: Callable[[int, int], None] | None = None  # the API's pages read, of all
    notice: Callable[[str], None] | None = None  # the API reader's waits, as they begin
    # Roam desktop tokens by graph (``GRAPH`` or ``GRAPH?type=offline``); else $ROAM_API_TOKEN.
    local_tokens: Mapping[str, str] = field(default_factory=dict)
    # Seconds a request to Roam desktop may wait (an encrypted graph waits for its password).
    local_timeout: float = roam_local.DEFAULT_TIMEOUT
    # A notes folder's parsed pages, kept by a long-lived caller (folder_cache.py).
    folder_cache: FolderCache | None = None


def detect_kind(source: str | Path) -> str:
    """The reader a source calls for (one of KINDS); SourceError if none fits."""
    if isinstance(source, str) and roam_api.is_url(source):
        return "roam-api"
    if isinstance(source, str) and roam_local.is_url(source):
        return "roam-local"
    path = Path(source).expanduser()
    if path.is_dir():
        notes = _notes_kind(path)
        if notes is not None:
            return notes
        export = _folder_export(path)
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
                               progress=options.progress, notice=options.notice)
        result.name = name
        return result
    if kind == "roam-local":
        target = local_target(source)
        name = _checked_name(source, graph_name or target.graph)
        token = roam_local.token_for(target, dict(options.local_tokens))
        result = roam_local.read(target, token, timeout=options.local_timeout,
                                 progress=options.progress)
        result.name = name
        return result
    path = Path(source).expanduser()
    if path.is_dir() and kind in _EXPORT_FORMATS:
        export = _folder_export(path, kind)
        if export is not None:
            path = export
        elif kind != "roam-markdown":  # a folder of .md files is a Markdown export unzipped
            newest_roam_export(path, _EXPORT_FORMATS[kind])  # raises, saying what is missing
    name = _checked_name(source, graph_name or default_graph_name(source, kind))
    if kind == "roam-json":
        return roam_json.read(path, name)
    if kind == "roam-edn":
        return roam_edn.read(path, name)
    if kind == "roam-markdown":
        return roam_markdown.read(path, name, options.folder_cache)
    if kind == "logseq":
        return logseq.read(path, name, options.folder_cache)
    return obsidian.read(path, name, include=options.include, exclude=options.exclude,
                         cache=options.folder_cache)


def local_target(source: str | Path) -> roam_local.Target:
    try:
        return roam_local.parse_url(str(source))
    except ValueError as err:
        raise SourceError(source, str(err)) from None


def is_api(source: str | Path) -> bool:
    """Whether the source is read through an API (``roam-api://``, ``roam-local://``)."""
    return isinstance(source, str) and (roam_api.is_url(source) or roam_local.is_url(source))


def default_graph_name(source: str | Path, kind: str = "auto") -> str:
    """The source's own name: the API graph, the EDN export's ``:graph/name``, a folder's
    name, or the file's stem (for Roam's ``Roam-Export-<stamp>`` files, their folder's; a
    browser's "(1)" for a file downloaded again is not part of it)."""
    if isinstance(source, str) and roam_api.is_url(source):
        try:
            return roam_api.parse_url(source)
        except ValueError:
            return "roam"
    if isinstance(source, str) and roam_local.is_url(source):
        try:
            return roam_local.parse_url(source).graph
        except ValueError:
            return "roam"
    path = Path(source).expanduser()
    target = (_folder_export(path, kind) if kind in _EXPORT_FORMATS else None
              ) if path.is_dir() else path
    if target is not None and (kind == "roam-edn" or (
            kind == "auto" and target.suffix.lower() == ".edn")):
        name = roam_edn.graph_name_of(target) if target.exists() else ""
        if name:
            return _clean(name)
    name = path.name if path.is_dir() else _DOWNLOAD_COPY.sub("", path.stem) or path.stem
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
        target = _folder_export(path) if path.is_dir() else path
        if target is None:
            return _folder_print(path)
        stat = target.stat()
        version = (stat.st_size, stat.st_mtime_ns)
        known = _digests.get(str(target))
        if known is not None and known[0] == version:
            digest = known[1]
        else:  # hashed once per version of the file, however often it is polled
            digest = _hash_file(target)
            _digests[str(target)] = (version, digest)
    except (OSError, SourceError):
        return "missing"
    return f"{target}|{stat.st_size}|{digest}"


def watch_paths(source: str | Path) -> set[str]:
    """Paths whose change events may mean the source changed (the watcher also polls notes
    folders, since a folder's events do not report a note rewritten in place)."""
    if is_api(source):
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
    if is_api(source):
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


def _folder_export(folder: Path, kind: str = "auto") -> Path | None:
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


def _notes_kind(folder: Path) -> str | None:
    """The reader of a folder that is notes rather than exports, or None.

    A Logseq graph and an Obsidian vault say so (``pages/``, ``.obsidian/``…). A folder of
    Markdown notes without either is a vault copied without its settings, read as Obsidian
    reads Markdown, unless its notes are bullet outlines as Roam's Markdown export writes
    them; and it is a folder of exports with stray notes when it holds a ``Roam-Export-…``
    file or no more notes than exports.
    """
    if logseq.looks_like(folder):
        return "logseq"
    if obsidian.looks_like(folder):
        return "obsidian"
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
    for directory in _note_dirs(folder):
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
            head = handle.read(4096).decode("utf-8", "replace")
    except SourceError:
        return True  # unreadable: no evidence either way
    for line in head.splitlines():
        if line.strip():
            return line.lstrip(" \t\ufeff").startswith("- ") or line.strip() == "-"
    return True


def _zip_kind(path: Path) -> str:
    with open_zip(path) as archive:
        names = [n.lower() for n in archive.namelist() if not n.endswith("/")]
    for suffix, kind in ((".json", "roam-json"), (".edn", "roam-edn"), (".md", "roam-markdown")):
        if any(n.endswith(suffix) for n in names):
            return kind
    raise SourceError(path, "zip holds no Roam export (.json, .edn or .md files)")


def _hash_file(path: Path) -> str:
    """A digest of the file's bytes, read in chunks (an export may be large)."""
    digest = hashlib.blake2b(digest_size=12)
    with open_regular(path) as handle:
        while chunk := handle.read(1024**2):
            digest.update(chunk)
    return digest.hexdigest()


def _note_dirs(root: Path) -> Iterator[Path]:
    """The folders of a notes folder that may hold notes, without recursion; deeper than
    ``MAX_FOLDER_DEPTH`` is not looked into (reading such a folder fails and says so)."""
    pending = [(str(root), 0)]
    while pending:
        folder, depth = pending.pop()
        yield Path(folder)
        if depth >= MAX_FOLDER_DEPTH:
            continue
        try:
            with os.scandir(folder) as entries:
                pending.extend(
                    (entry.path, depth + 1) for entry in entries
                    if entry.name not in _SKIPPED_DIRS and not entry.name.startswith(".")
                    and entry.is_dir(follow_symlinks=False)
                )
        except OSError:
            continue


def _folder_print(root: Path) -> str:
    digest = hashlib.blake2b(digest_size=12)
    for folder in _note_dirs(root):
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.name.lower().endswith(".md") and entry.is_file():
                stat = entry.stat()
                # fsencode: a name need not be valid UTF-8 (see files.display_name).
                digest.update(os.fsencode(entry.path))
                digest.update(f"|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return f"{root}|{digest.hexdigest()}"

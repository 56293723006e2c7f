"""Pick the reader for a source path and read it into a Graph.

A source is a file, a zip, or a folder. The graph name defaults to the source's own name
(the file's stem or the folder's name); give one explicitly to keep keys stable when the
export's file name changes from one export to the next.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

from ..model import Graph, SourceError
from ..model import graph_name as model_graph_name
from . import roam_json
from .exports import newest_export

_EXPORT_STAMP = re.compile(r"(?i)^roam-export-\d+$")


def default_graph_name(path: str | Path) -> str:
    path = Path(path).expanduser()
    name = path.name if path.is_dir() else path.stem
    if _EXPORT_STAMP.match(name):
        # Roam-Export-<timestamp> changes every export: name the graph after the folder.
        name = path.resolve().parent.name
    return unicodedata.normalize("NFC", name).replace(":", "-").strip() or "roam"


def fingerprint(path: str | Path) -> str:
    """A short string that changes when the source's content may have changed: the export a
    sync would read (for a folder, its newest export), its size and modification time, and
    a hash of its bytes (so a save that changes nothing is recognised as unchanged)."""
    path = Path(path).expanduser()
    try:
        target = newest_export(path, roam_json.SUFFIXES) if path.is_dir() else path
        stat = target.stat()
        digest = hashlib.blake2b(target.read_bytes(), digest_size=12).hexdigest()
    except (OSError, SourceError):
        return "missing"
    return f"{target}|{stat.st_size}|{digest}"


def read_source(path: str | Path, graph_name: str = "", kind: str = "auto") -> Graph:
    """Read ``path`` with the reader its kind (or its shape, for ``auto``) calls for."""
    path = Path(path).expanduser()
    graph_name = graph_name or default_graph_name(path)
    try:
        graph_name = model_graph_name(graph_name)
    except ValueError as err:
        raise SourceError(path, str(err)) from None
    if kind not in ("auto", "roam-json"):
        raise SourceError(path, f"unknown source kind {kind!r} (known: auto, roam-json)")
    if path.is_dir() or path.suffix.lower() in roam_json.SUFFIXES:
        return roam_json.read(path, graph_name)
    if not path.exists():
        raise SourceError(path, "no such file or folder")
    raise SourceError(path, f"unknown export format {path.suffix or '(no extension)'!r}")

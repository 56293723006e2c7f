"""Every source format, one entry each: the one place the rest of the add-on asks about one.

A ``Format`` says what the format is called (its ``kind``, the name config.json, the CLI's
``--kind`` and the settings dialog use), how a source of it is recognised (an URL it claims, a
folder that marks itself as its, or the Roam export it is), how it is read, which app its
notes belong to (apps.py: the link, the app's name, the Markdown dialect), and what may be
done with it besides reading: written back into, given ``id::`` lines, read through an API.
detect.py picks a format by the source's shape; a format of its own is one reader module and
one entry in ``FORMATS``.

Guarantees: ``KINDS`` lists every format once, in one fixed order (the CLI's and the settings
dialog's); every reader is called as ``read(source, name, options)`` with the graph's checked
name; nothing here reads or writes anything at import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..model import Graph, SourceError
from . import logseq, obsidian, roam_api, roam_edn, roam_json, roam_local, roam_markdown
from .folder_cache import FolderCache


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


class Client(Protocol):
    """An API connection that write-back writes blocks through (roam_api's and roam_local's
    clients are)."""

    @property
    def label(self) -> str: ...

    def q(self, query: str, args: list[Any]) -> tuple[Any, float]: ...

    def update_block(self, uid: str, text: str) -> None: ...


# (the source: a Path for files and folders, the URL for an API; the graph's name; options)
Reader = Callable[[Path | str, str, ReadOptions], Graph]


@dataclass(frozen=True)
class Format:
    """One source format; see the module doc. Only ``kind``, the labels, ``app`` and ``read``
    are needed by every format; the rest says what else it is and can do."""

    kind: str
    label: str  # for the settings dialog: "Roam JSON export"
    help: str  # the dialog's line under a source of this kind
    app: str  # apps.APPS key, also Graph.source of what ``read`` gives
    read: Reader
    # An API source: whether a URL is this format's, and the graph it names (ValueError if
    # it names none).
    url: Callable[[str], bool] | None = None
    url_graph: Callable[[str], str] | None = None
    # A notes folder that says it is this format's (Logseq's pages/, Obsidian's .obsidian/).
    marks: Callable[[Path], bool] | None = None
    # A Roam export: its format as exports.newest_roam_export names it ("json", "edn", "md"),
    # whether a single file with that suffix is one, and the graph name it holds, if any.
    export: str = ""
    export_file: bool = False
    own_name: Callable[[Path], str] | None = None
    # Where Anki edits go back: into the folder's note files, or through the API client
    # ``connect`` makes (source, graph name, options); neither for an export (a copy).
    writes_files: bool = False
    connect: Callable[[str, str, ReadOptions], Client] | None = None
    # Per-source settings (config.json keys) that apply to this kind only, besides
    # ``write_back`` for every writable kind.
    settings: frozenset[str] = frozenset()

    @property
    def writable(self) -> bool:
        return self.writes_files or self.connect is not None

    @property
    def writes_ids(self) -> bool:
        """Whether ``write_ids`` may give its card blocks ``id::`` lines (id_writes.py)."""
        return "write_ids" in self.settings

    @property
    def api(self) -> bool:
        return self.url is not None

    def applies(self, setting: str) -> bool:
        """Whether a per-source setting that not every kind has applies to this kind."""
        return setting in self.settings or (setting == "write_back" and self.writable)


# Readers ----------------------------------------------------------------------------------


def local_target(source: str | Path) -> roam_local.Target:
    try:
        return roam_local.parse_url(str(source))
    except ValueError as err:
        raise SourceError(source, str(err)) from None


def _api_graph(source: str | Path) -> str:
    try:
        return roam_api.parse_url(str(source))
    except ValueError as err:
        raise SourceError(source, str(err)) from None


def _read_api(source: Path | str, name: str, options: ReadOptions) -> Graph:
    graph = _api_graph(source)
    token = roam_api.token_from(options.api_token, graph)
    result = roam_api.read(graph, token, options.api_base_url or roam_api.DEFAULT_BASE_URL,
                           progress=options.progress, notice=options.notice)
    result.name = name
    return result


def _connect_api(source: str, graph: str, options: ReadOptions) -> Client:
    return roam_api.connect(graph, roam_api.token_from(options.api_token, graph),
                            options.api_base_url, notice=options.notice)


def _read_local(source: Path | str, name: str, options: ReadOptions) -> Graph:
    target = local_target(source)
    token = roam_local.token_for(target, dict(options.local_tokens))
    result = roam_local.read(target, token, timeout=options.local_timeout,
                             progress=options.progress)
    result.name = name
    return result


def _connect_local(source: str, graph: str, options: ReadOptions) -> Client:
    target = roam_local.parse_url(source)
    return roam_local.connect(target, roam_local.token_for(target, dict(options.local_tokens)),
                              timeout=options.local_timeout)


def _read_obsidian(source: Path | str, name: str, options: ReadOptions) -> Graph:
    return obsidian.read(source, name, include=options.include, exclude=options.exclude,
                         cache=options.folder_cache)


def _read_logseq(source: Path | str, name: str, options: ReadOptions) -> Graph:
    return logseq.read(source, name, options.folder_cache)


def _read_roam_markdown(source: Path | str, name: str, options: ReadOptions) -> Graph:
    return roam_markdown.read(source, name, options.folder_cache)


def _path_reader(read: Callable[[Path | str, str], Graph]) -> Reader:
    return lambda source, name, options: read(source, name)


_EXPORT_HELP = "A Roam export: nothing else to set."

FORMATS: dict[str, Format] = {f.kind: f for f in (
    Format("roam-json", "Roam JSON export", _EXPORT_HELP, "roam", _path_reader(roam_json.read),
           export="json", export_file=True),
    Format("roam-edn", "Roam EDN export", _EXPORT_HELP, "roam", _path_reader(roam_edn.read),
           export="edn", export_file=True, own_name=roam_edn.graph_name_of),
    Format("roam-markdown", "Roam Markdown export", _EXPORT_HELP, "roam",
           _read_roam_markdown, export="md"),
    Format("logseq", "Logseq graph",
           "A Logseq graph: with 'Write id::', each card block gets a stable id:: line, so "
           "editing its text keeps the same note.", "logseq", _read_logseq,
           marks=logseq.looks_like, writes_files=True, settings=frozenset({"write_ids"})),
    Format("obsidian", "Obsidian vault",
           "An Obsidian vault: Include and Exclude choose its notes.", "obsidian",
           _read_obsidian, marks=obsidian.looks_like, writes_files=True,
           settings=frozenset({"include", "exclude"})),
    Format("roam-api", "Roam graph through the API",
           "A Roam graph read through the backend API: it needs the graph's API token.",
           "roam", _read_api, url=roam_api.is_url, url_graph=roam_api.parse_url,
           connect=_connect_api,
           settings=frozenset({"roam_api_token", "roam_api_base_url"})),
    Format("roam-local", "Roam desktop (Local API)",
           "A graph open in Roam desktop, read through its Local API: \"Connect to Roam "
           "desktop…\" gets its token.", "roam", _read_local, url=roam_local.is_url,
           url_graph=lambda url: roam_local.parse_url(url).graph, connect=_connect_local),
)}
KINDS: tuple[str, ...] = tuple(FORMATS)
EXPORTS: tuple[Format, ...] = tuple(f for f in FORMATS.values() if f.export)


def api_format(source: str | Path) -> Format | None:
    """The API format whose URL ``source`` is, if any."""
    if not isinstance(source, str):
        return None
    return next((f for f in FORMATS.values() if f.url is not None and f.url(source)), None)

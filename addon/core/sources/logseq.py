"""Logseq graph folder (``pages/``, ``journals/``, ``logseq/config.edn``) -> Graph with source
"logseq". The folder is only read (id_writes.py writes ``id::`` lines, when asked to).

- Blocks are ``- `` bullets nested by tabs (or spaces); a block's further lines are indented to
  its text; code fences stay verbatim.
- ``key:: value`` lines right after a block's first line are its properties. ``id::`` is the
  block's uid (key ``logseq:<graph>:<uuid>``); a block without one (or repeating an id already
  seen) gets a synthetic uid from its page and text, as in a Roam Markdown export. ``heading::``
  sets the heading; ``collapsed::``, the built-in flashcards' ``card-*`` scheduling and other
  Logseq bookkeeping are dropped; every other property becomes a ``key:: value`` attribute child,
  placed first among the block's children, which is how the engine reads attributes.
- Page properties (the lines before the first bullet, or a first bullet holding only
  properties) become top-level ``key:: value`` blocks; ``title::`` names the page.
- Page titles come from file names: ``___`` (and, in the legacy file-name format, ``%2F`` or
  ``.``) is a namespace ``/``; journals ``journals/2024_01_15.md`` are titled with the graph's
  ``:journal/page-title-format`` (Logseq's default gives "Jan 15th, 2024").
- ``.org`` files, whiteboards and ``logseq/bak`` are not read.
- With a ``FolderCache`` (a long-lived caller's), only the files that changed since its last
  read are parsed; the Graph is the same (folder_cache.py).

"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

from ..model import Block, Graph, Page, PageUids, SourceError, gc_paused, page_uids
from .files import Budget, Found, decode, read_file, walk
from .folder_cache import (
    FolderCache,
    Parsed,
    assemble,
)
from .outline import FENCE, digest, parse, plain, split_lines, within

SUFFIX = ".md"
# A property line: a plain key (no spaces), '::', then a space or the end of the line.
_PROPERTY = re.compile(r"([A-Za-z0-9_][\w\-.?!*+/<>=]*)::(?:[ \t]+(.*)|[ \t]*)\Z")
_HEADING = re.compile(r"(#{1,6}) (?=\S)")
_DRAWER = re.compile(
    r"^[ \t]*:(LOGBOOK|PROPERTIES):[ \t]*\n.*?^[ \t]*:END:[ \t]*(\n|\Z)", re.M | re.S
)
# Properties Logseq keeps for itself: never shown, never attributes.
_INTERNAL = frozenset({
    "id", "collapsed", "heading", "title", "filters", "background-color", "ls-type",
    "hl-type", "hl-page", "hl-stamp", "hl-color", "query-table", "query-properties",
    "query-sort-by", "query-sort-desc", "card-last-interval", "card-repeats",
    "card-ease-factor", "card-next-schedule", "card-last-reviewed", "card-last-score",
})
_DEFAULT_TITLE_FORMAT = "MMM do, yyyy"
_DEFAULT_FILE_FORMAT = "yyyy_MM_dd"


def looks_like(path: Path) -> bool:
    return path.is_dir() and (
        (path / "pages").is_dir() or (path / "journals").is_dir()
        or (path / "logseq" / "config.edn").is_file()
    )


def read(path: str | Path, graph_name: str, cache: FolderCache | None = None) -> Graph:
    """Read the graph at ``path``; with ``cache``, only the files that changed since the
    cache's last read are parsed (folder_cache.py), and the Graph is the same."""
    path = Path(path)
    if not path.exists():
        raise SourceError(path, "no such file or folder")
    if not looks_like(path):
        raise SourceError(path, "not a Logseq graph (no pages/ or journals/ folder)")
    config = _Config.load(path)
    budget = Budget(path)
    files = list(config.page_files(path, budget))
    if not files:
        raise SourceError(path, "the graph holds no .md pages")
    graph = Graph(source="logseq", name=graph_name, root=str(path))
    if cache is not None:
        with gc_paused():
            _read_cached(graph, cache, config, files, budget)
        return graph
    with gc_paused():
        for file, journal in files:
            rel = file.rel
            data = read_file(file.path, budget)
            graph.file_digests[rel] = digest(data)
            text, _ = decode(data)
            lines = split_lines(text)
            build_page(graph, rel, lines, config.title(rel, journal), plain=plain(text))
    return graph


def _read_cached(graph: Graph, cache: FolderCache, config: _Config,
                 files: list[tuple[Found, bool]], budget: Budget) -> None:
    session = cache.begin("logseq", graph.root)
    read: list[tuple[str, Parsed]] = []
    titles: dict[str, str] = {}
    for file, journal in files:
        rel = file.rel
        title = titles[rel] = config.title(rel, journal)

        def parse(data: bytes, rel: str = rel, title: str = title) -> Parsed:
            text, _ = decode(data)
            scratch = Graph(source="logseq", name=graph.name)
            page = build_page(scratch, rel, split_lines(text), title, plain=plain(text))
            return Parsed(page, scratch.blocks, text)

        parsed = session.parsed(rel, file.path, budget, title, parse)
        graph.file_digests[rel] = parsed.digest
        read.append((rel, parsed))

    def reparse(rel: str, parsed: Parsed) -> Page:
        return build_page(graph, rel, split_lines(parsed.text), titles[rel],
                          plain=plain(parsed.text))

    session.finish(assemble(graph, read, reparse))


# Building pages --------------------------------------------------------------------------


def build_page(
    graph: Graph, rel: str, lines: list[str], file_title: str,
    record: list[tuple[Block, int, str, str]] | None = None, plain: bool = False,
) -> Page:
    """Add the page in file ``rel`` (its ``lines``) to ``graph``. With ``record``, also list
    each block made from a bullet with that bullet's line index, indentation and text as
    written (write-back edits those lines). ``plain``: the file's text passed
    ``outline.plain`` (the uids' fast path)."""
    page = Page(title=file_title, path=rel)
    # Bullet lines are listed for write-back, and for a page that opens with text: the
    # bullets indented below that text are its children.
    positions: list[tuple[int, str]] | None = (
        [] if record is not None or _opens_with_text(lines) else None)
    outline = parse(lines, True, page, positions)
    made = outline.blocks
    page_props: list[tuple[str, str]] = []
    lead: list[str] = []
    for line in outline.preamble:
        match = _PROPERTY.match(line.strip()) if "::" in line else None
        if match and not lead:
            page_props.append((match.group(1), (match.group(2) or "").strip()))
        elif line.strip() or lead:
            lead.append(line)
    if not page_props and not lead and made:
        first = made[0]
        body, props = _split_properties(first.string)
        if props and not body.strip():
            # The first bullet holds the page's properties; what it holds moves up a level.
            page_props = props
            for child in first.children:
                child.parent = None
            page.children[0:1] = first.children
            del made[0]
            if positions:
                del positions[0]
    for key, value in page_props:
        if key.lower() == "title" and value:
            page.title = unicodedata.normalize("NFC", value)
            break
    graph.add_page(page)
    uid_of = page_uids(page.title)
    head = [
        _new(graph, uid_of, page, None, _attribute(key, value))
        for key, value in page_props if key.lower() not in _INTERNAL
    ]
    if lead:
        # Text before the first bullet is one block, as Logseq shows it; it has no bullet line,
        # so write-back leaves it alone (not recorded).
        head.append(_lead_block(graph, uid_of, page, lead, made, positions))
    if head:
        page.children[0:0] = head
    if record is not None and positions is not None:
        record.extend(
            (block, line, indent, block.string)
            for block, (line, indent) in zip(made, positions, strict=True)
        )
    blocks = graph.blocks
    for block in made:
        text = block.string
        if ":" in text or text[:1] == "#":
            _read_block(graph, uid_of, block, text)
        else:  # plain text, no properties
            block.uid = uid = uid_of(text, blocks, plain)
            blocks[uid] = block
    return page


def _read_block(graph: Graph, uid_of: PageUids, block: Block, text: str) -> None:
    """Read a bullet's text that may carry properties, a heading or a drawer into its block."""
    if "::" not in text:
        props: list[tuple[str, str]] = []
    else:
        text, props = _split_properties(text)
    if ":END:" in text:
        text = _DRAWER.sub("", text).strip("\n")
    uid = heading = None
    attributes: list[str] = []
    for key, value in props:
        lowered = key.lower()
        if lowered == "id":
            uid = uid or value.strip()
        elif lowered == "heading":
            heading = _heading_level(value)
        elif lowered not in _INTERNAL and not lowered.startswith("logseq."):
            attributes.append(_attribute(key, value))
    level = 0
    if text[:1] == "#":
        match = _HEADING.match(text)
        if match:
            level = len(match.group(1))
            text = text[match.end():]
    if heading is not None:
        level = heading or level
    siblings: list[str] = []
    if not text.strip() and attributes:
        # A bullet holding only properties: Roam-style attribute blocks, where it stands.
        text = attributes.pop(0)
        siblings, attributes = attributes, []
    if uid is not None and (uid in graph.blocks or not uid.isprintable()):
        # A copied block repeating an id (the first keeps it), or an id with a control
        # character, which Anki would drop from the stored key: a synthetic uid instead.
        uid = None
    block.string = text
    block.heading = level
    block.uid = uid = uid or uid_of(text, graph.blocks)
    graph.blocks[uid] = block
    page = block.page
    if attributes:  # first among the block's children, which is where attributes are read
        block.children[0:0] = [_new(graph, uid_of, page, block, a) for a in attributes]
    if siblings:
        parent = block.parent
        into = page.children if parent is None else parent.children
        at = into.index(block) + 1
        into[at:at] = [_new(graph, uid_of, page, parent, a) for a in siblings]


def _opens_with_text(lines: list[str]) -> bool:
    """Whether the file's first line with text is neither a bullet nor a property."""
    for line in lines:
        stripped = line.strip()
        if stripped:
            return not stripped.startswith("-") and not (
                "::" in stripped and _PROPERTY.match(stripped))
    return False


def _lead_block(
    graph: Graph, uid_of: PageUids, page: Page, lead: list[str], made: list[Block],
    positions: list[tuple[int, str]] | None,
) -> Block:
    """The block of the text before a page's first bullet: a heading if it opens with one
    (``## Heading #card``), and the parent of the bullets indented below it."""
    text = "\n".join(lead).strip("\n")
    level = 0
    match = _HEADING.match(text) if text[:1] == "#" else None
    if match:
        level = len(match.group(1))
        text = text[match.end():]
    lead_block = _new(graph, uid_of, page, None, text)
    lead_block.heading = level
    if positions:
        children = []
        for block, (_, indent) in zip(made, positions, strict=False):
            if block.parent is not None:
                continue
            if not indent:
                break
            children.append(block)
        if children:
            for child in children:
                child.parent = lead_block
            lead_block.children = children
            page.children[: len(children)] = []
    return lead_block


def _new(graph: Graph, uid_of: PageUids, page: Page, parent: Block | None, text: str) -> Block:
    """A block made from a property (not from a bullet), listed in ``graph``; the caller puts
    it among its parent's children."""
    uid = uid_of(text, graph.blocks)
    block = graph.blocks[uid] = Block(uid, text, page, parent, [], 0)
    return block


def _split_properties(text: str) -> tuple[str, list[tuple[str, str]]]:
    """A block's text without its property lines, and the properties in order.

    Properties are the lines right after the first one, or after the code fence the block
    opens with (or, for a block made of properties, from the first line on); a ``key:: value``
    line further down is ordinary text.
    """
    lines = text.split("\n")
    start = 0 if _PROPERTY.match(lines[0]) else title_lines(lines)
    props: list[tuple[str, str]] = []
    end = start
    while end < len(lines):
        match = _PROPERTY.match(lines[end]) if "::" in lines[end] else None
        if match is None:
            break
        props.append((match.group(1), (match.group(2) or "").strip()))
        end += 1
    if not props:
        return text, props
    return "\n".join(lines[:start] + lines[end:]), props


def title_lines(lines: list[str]) -> int:
    """How many of a block's lines come before its properties: one, or a whole code fence."""
    if lines[0].count(FENCE) % 2 == 0:
        return 1
    for index in range(1, len(lines)):
        if lines[index].count(FENCE) % 2 == 1:
            return index + 1
    return len(lines)


def _attribute(key: str, value: str) -> str:
    return f"{key}:: {value}" if value else f"{key}::"


def _heading_level(value: str) -> int:
    value = value.strip().lower()
    if value.isdigit():
        return min(int(value), 6)
    return 2 if value == "true" else 0


# Titles and the graph's config -----------------------------------------------------------


class _Config:
    """What ``logseq/config.edn`` says about file names and journal titles (defaults if absent)."""

    def __init__(self, text: str | None) -> None:
        text = re.sub(r";.*", "", text or "")
        # Graphs made before Logseq 0.8.9 use the legacy file-name format unless converted.
        self.legacy = text != "" and not re.search(r":file/name-format\s+:triple-lowbar", text)
        self.title_format = _edn_string(text, "journal/page-title-format", _DEFAULT_TITLE_FORMAT)
        file_format = _edn_string(text, "journal/file-name-format", _DEFAULT_FILE_FORMAT)
        self.journal_name = _date_pattern(file_format)
        self.pages_dir = _edn_string(text, "pages-directory", "pages")
        self.journals_dir = _edn_string(text, "journals-directory", "journals")

    @classmethod
    def load(cls, root: Path) -> _Config:
        config = root / "logseq" / "config.edn"
        try:
            return cls(decode(read_file(config))[0]) if config.is_file() else cls(None)
        except SourceError:
            return cls(None)

    def page_files(self, root: Path, budget: Budget | None = None
                   ) -> Iterator[tuple[Found, bool]]:
        """(file, is a journal) for every page file, sorted by path; ``Found.rel`` is the
        posix path relative to ``root``. Special files and symlinks out of ``root`` are
        skipped (see ``files.walk``)."""
        real = os.path.realpath(root)
        for folder, journal in ((self.pages_dir, False), (self.journals_dir, True)):
            base = root / folder
            if not base.is_dir() or not within(real, os.path.realpath(base)):
                continue
            top = base.relative_to(root).as_posix()
            found = walk(root, lambda name: name.lower().endswith(SUFFIX), budget, top)
            for file in sorted(found, key=lambda f: f.rel):
                yield file, journal

    def title(self, rel: str, journal: bool) -> str:
        stem = rel.rsplit("/", 1)[-1][: -len(SUFFIX)]
        if journal:
            match = self.journal_name.fullmatch(stem)
            if match:
                with contextlib.suppress(ValueError):
                    date = dt.date(int(match["y"]), int(match["m"]), int(match["d"]))
                    return format_date(date, self.title_format)
        if self.legacy and "%" not in stem and "___" not in stem:
            stem = stem.replace(".", "/")
        stem = stem.replace("___", "/")
        if "%" in stem:
            stem = unquote(stem)
        return unicodedata.normalize("NFC", stem)


def _edn_string(text: str, key: str, default: str) -> str:
    match = re.search(r":" + re.escape(key) + r'\s+"([^"]*)"', text)
    return match.group(1) if match and match.group(1) else default


_DATE_TOKEN = re.compile(r"yyyy|yy|MMMM|MMM|MM|M|do|dd|d|EEEE|EEE|E")


def _date_pattern(file_format: str) -> re.Pattern[str]:
    """A regex for journal file names written with ``file_format`` (year, month, day tokens)."""
    groups = {"yyyy": r"(?P<y>\d{4})", "MM": r"(?P<m>\d{2})", "M": r"(?P<m>\d{1,2})",
              "dd": r"(?P<d>\d{2})", "d": r"(?P<d>\d{1,2})"}
    parts, pos = [], 0
    for match in _DATE_TOKEN.finditer(file_format):
        parts.append(re.escape(file_format[pos:match.start()]))
        parts.append(groups.get(match.group(), re.escape(match.group())))
        pos = match.end()
    parts.append(re.escape(file_format[pos:]))
    try:
        pattern = re.compile("".join(parts))
    except re.error:  # a token used twice: fall back to Logseq's default
        return _date_pattern(_DEFAULT_FILE_FORMAT)
    if not {"y", "m", "d"} <= set(pattern.groupindex):
        return _date_pattern(_DEFAULT_FILE_FORMAT)
    return pattern


def format_date(date: dt.date, fmt: str) -> str:
    """``date`` in a Logseq (date-fns style) format such as "MMM do, yyyy" -> "Jan 15th, 2024"."""

    def token(match: re.Match[str]) -> str:
        name = match.group()
        day = date.day
        return {
            "yyyy": f"{date.year:04d}", "yy": f"{date.year % 100:02d}",
            "MMMM": date.strftime("%B"), "MMM": date.strftime("%b"),
            "MM": f"{date.month:02d}", "M": str(date.month),
            "do": f"{day}{_ordinal(day)}", "dd": f"{day:02d}", "d": str(day),
            "EEEE": date.strftime("%A"), "EEE": date.strftime("%a"), "E": date.strftime("%a"),
        }[name]

    return _DATE_TOKEN.sub(token, fmt)


def _ordinal(day: int) -> str:
    if 11 <= day % 100 <= 13:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")

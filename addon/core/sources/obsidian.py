"""Obsidian vault (a folder of Markdown notes) -> Graph.

Every ``.md`` note is a page, titled by its file name without ``.md`` (Obsidian links notes
by name). Structure inside a note:
- a heading opens a block; what follows it, up to the next heading of the same or a higher
  level, is its children (nesting follows the real level; ``Block.heading`` is capped at 3);
- list items nest by indentation (tabs or spaces, a tab counting 4 columns); text indented
  under an item, or following it directly, belongs to that item;
- a paragraph is one block, its lines joined with ``\\n``; blank lines separate blocks;
- a fenced code block stays whole inside one block: the item it is indented under, or the
  paragraph it directly follows (no blank line), else a block of its own;
- ``^block-id`` at the end of a block, or alone on the line after it, is the block's uid and
  is removed from its text. Blocks without one get a synthetic uid (page title + text); so
  does a block whose id another block already took (the first in path order keeps it);
- YAML front matter becomes page attributes: top-level ``Key:: value`` blocks, first on the
  page (``tags`` / ``tag`` give ``Tags:: a, b``). Only plain scalars and lists are read;
  nested maps and multi-line scalars are skipped. Inline ``key:: value`` lines stay blocks;
- ``- [ ]`` / ``- [x]`` tasks read as Roam's ``{{[[TODO]]}}`` / ``{{[[DONE]]}}``;
- ``%%comments%%`` are dropped; ``![[image.png]]`` becomes ``![image.png](</path in vault>)``
  (from the vault's root) when the vault holds the file (looked up by path, then by name
  anywhere, as Obsidian does), and so does ``![alt](image.png)`` when no file of that path is
  beside the note but one of that name is elsewhere in the vault;
  ``![[Note#^id]]`` becomes the block ref ``((uid))`` when the block exists, and any other
  note embed ``![[Note…]]`` a plain ``[[Note…]]`` link. Links are kept as written.

Two notes with the same name in different folders are both kept: the one nearest the vault
root (then first in path order) is titled by its name, the others by their vault-relative
path without ``.md`` (``folder/Note``), which is also how Obsidian links to them.

Skipped: dot-folders and dot-files (``.obsidian/``, ``.trash/``, ``.git/``…), and every file
that is not ``.md`` (attachments are only looked up, for images). ``include`` / ``exclude``
are glob patterns on the vault-relative posix path: ``*`` and ``?`` stay within one folder,
``**`` spans folders, and a pattern that matches a folder covers everything in it.

Guarantees: the vault is only read, never written (no file, no timestamp). With a
``FolderCache`` (a long-lived caller's), only the notes that changed since its last read are
parsed, and the Graph is the same (folder_cache.py). Text is decoded as every folder reader
decodes it (``files.decode``: UTF-8, a BOM ignored, else Windows-1252); CRLF/CR line ends
become LF.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

from ..model import (
    RARE_SPACES,
    Block,
    Graph,
    Page,
    SourceError,
    gc_paused,
    page_uids,
    parse_attribute,
)
from .files import Budget, decode, read_file, walk
from .folder_cache import (
    FolderCache,
    Parsed,
    assemble,
    with_texts,
)
from .outline import digest

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".bmp", ".avif", ".tif", ".tiff"}
)
TAB_WIDTH = 4  # Obsidian's default; only matters when a note mixes tabs and spaces

_BLOCK_ID = re.compile(r"(?:^|\s)\^([A-Za-z0-9-]+)[ \t]*\Z")
_ID = re.compile(r"[A-Za-z0-9-]+\Z")
_ID_LINE = re.compile(r"\^([A-Za-z0-9-]+)[ \t]*\Z")
_ORDERED = re.compile(r"\d{1,9}[.)](?:[ \t]|\Z)")
_HEADING = re.compile(r"(#{1,6})(?:[ \t]+|\Z)(.*?)(?:[ \t]+#+)?[ \t]*\Z")
_RULE = re.compile(r"(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})\Z")
_SETEXT = re.compile(r"(?:=+|-{2,})[ \t]*\Z")
_TASK = re.compile(r"\[([ xX])\](?:[ \t]+|\Z)")
_EMBED = re.compile(r"!\[\[([^\[\]\n]+?)\]\]")
_MD_IMAGE = re.compile(r"!\[([^\[\]\n]*)\]\((?:<([^<>\n]+)>|([^()\s<>]+))\)")
_CODE_SPAN = re.compile(r"```.*?```|`[^`\n]*`", re.S)
_FM_KEY = re.compile(r"([^\s#:\-\[{'\"][^:]*?|\"[^\"]*\"|'[^']*'):(?:[ \t]+(.*)|[ \t]*)\Z")
_PLAIN_TAG = re.compile(r"[\w\-/]+\Z")
_FM_ITEM = re.compile(r"[ \t]*-(?:[ \t]+(.*)|[ \t]*)\Z")

# Notes that are drawings, saved as .md by the Excalidraw plugin.
_DRAWINGS = (".excalidraw.md",)

def looks_like(path: Path) -> bool:
    """True for a folder Obsidian has opened as a vault (it holds ``.obsidian/``)."""
    return path.is_dir() and (path / ".obsidian").is_dir()


def read(
    path: str | Path,
    graph_name: str,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    cache: FolderCache | None = None,
) -> Graph:
    """Read the vault at ``path`` into a Graph named ``graph_name``; see the module doc.
    With ``cache``, only the notes that changed since the cache's last read are parsed
    (folder_cache.py), and the Graph is the same."""
    root = Path(path)
    if not root.exists():
        raise SourceError(root, "no such folder")
    if not root.is_dir():
        raise SourceError(root, "not a folder (an Obsidian vault is a folder of .md notes)")
    budget = Budget(root)
    files, attachments = _scan(root, budget)
    wanted = _Globs(include)
    unwanted = _Globs(exclude)
    notes = [n for n in files if (wanted.empty or wanted.match(n)) and not unwanted.match(n)]
    if not notes:
        filtered = " matching the include/exclude patterns" if include or exclude else ""
        raise SourceError(root, f"no Markdown notes{filtered} in this folder")
    try:
        graph = Graph(source="obsidian", name=graph_name, root=str(root))
    except ValueError as err:
        raise SourceError(root, str(err)) from None
    vault = _Vault(graph, attachments)
    if cache is not None:
        with gc_paused():
            _read_cached(vault, cache, files, _titles(notes), budget)
        return graph
    with gc_paused():
        for rel, title in _titles(notes):
            page = graph.add_page(Page(title=title, path=rel))
            vault.by_path[rel.lower()] = page
            data = read_file(files[rel], budget)
            graph.file_digests[rel] = digest(data)  # a write-back refuses a changed file
            text = _decode(data)
            _parse_note(vault, page, text)
        vault.resolve_embeds()
    return graph


def _read_cached(vault: _Vault, cache: FolderCache, files: dict[str, str],
                 titles: list[tuple[str, str]], budget: Budget) -> None:
    graph = vault.graph
    session = cache.begin("obsidian", graph.root)
    read: list[tuple[str, Parsed]] = []
    title_of = dict(titles)
    for rel, title in titles:

        def parse(data: bytes, rel: str = rel, title: str = title) -> Parsed:
            text = _decode(data)
            scratch = _Vault(Graph(source="obsidian", name=graph.name), vault.attachments)
            page = scratch.graph.add_page(Page(title=title, path=rel))
            _parse_note(scratch, page, text)
            return Parsed(page, scratch.graph.blocks, text,
                          data=(scratch.ids[rel], [(b, b.string) for b in scratch.embeds]))

        parsed = session.parsed(rel, files[rel], budget, title, parse)
        graph.file_digests[rel] = parsed.digest
        read.append((rel, parsed))
    embeds: dict[str, list[Block]] = {}

    def kept(rel: str, parsed: Parsed, page: Page) -> None:
        vault.by_path[rel.lower()] = page
        ids, raw = parsed.data
        vault.ids[rel] = ids
        for block, text in raw:
            block.string = text  # as parsed: resolved below against this graph
        embeds[rel] = [block for block, _ in raw]
        vault.embeds.extend(embeds[rel])

    def reparse(rel: str, parsed: Parsed) -> Page:
        page = graph.add_page(Page(title=title_of[rel], path=rel))
        vault.by_path[rel.lower()] = page
        first = len(vault.embeds)
        _parse_note(vault, page, parsed.text)
        embeds[rel] = vault.embeds[first:]
        return page

    shown = assemble(graph, read, reparse, kept)
    vault.resolve_embeds()
    for rel, blocks in embeds.items():
        if blocks:
            with_texts(shown[rel], tuple(block.string for block in blocks))
    session.finish(shown)


# The folder -------------------------------------------------------------------------------


def _scan(root: Path, budget: Budget) -> tuple[dict[str, str], _Attachments]:
    """The notes, sorted (vault-relative posix path -> the path to open), and the attachments.

    Dot-entries are skipped without descending; directory symlinks are not followed (a link
    back up the tree would loop), nor file symlinks out of the vault; only regular files are
    listed (see ``files.walk``).
    """
    notes: dict[str, str] = {}
    others: list[str] = []
    for file in walk(root, lambda name: True, budget):
        rel = file.rel
        lowered = rel[-14:].lower()
        if lowered.endswith(_DRAWINGS):
            continue  # Excalidraw drawings: a drawing's JSON, not notes
        if lowered[-3:] == ".md":
            notes[rel] = file.path
        else:
            others.append(rel)
    return dict(sorted(notes.items())), _Attachments(others)


class _Attachments:
    """Non-note files, found by vault-relative path or, as Obsidian does, by name anywhere
    (the copy nearest the vault root, then first in path order, wins)."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = set(paths)
        self.by_name: dict[str, str] = {}
        for rel in sorted(paths, key=lambda r: (r.count("/"), r)):
            self.by_name.setdefault(rel.rsplit("/", 1)[-1], rel)

    def find(self, name: str) -> str:
        name = name.strip().lstrip("/")
        if name in self.paths:
            return name
        return self.by_name.get(name.rsplit("/", 1)[-1], "")


def _titles(notes: list[str]) -> list[tuple[str, str]]:
    """``(path, title)`` in path order; clashing names resolved as the module doc says."""
    taken: set[str] = set()
    titles: dict[str, str] = {}
    for rel in sorted(notes, key=lambda r: (r.count("/"), r)):
        stem = rel.rsplit("/", 1)[-1][:-3]
        title = stem if stem not in taken else rel[:-3]
        taken.add(title)
        titles[rel] = title
    return [(rel, titles[rel]) for rel in notes]


def _decode(data: bytes) -> str:
    """A note's text, with the LF line ends the parser reads."""
    text, _ = decode(data)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


class _Globs:
    """Glob patterns on vault-relative posix paths; see the module doc for the syntax."""

    def __init__(self, patterns: Sequence[str]) -> None:
        parts = [_glob_regex(p.strip().strip("/")) for p in patterns if p.strip().strip("/")]
        # A pattern that matches a folder covers the folder's contents.
        self._regex = re.compile(f"(?:{'|'.join(parts)})(?:/.*)?\\Z", re.S) if parts else None

    @property
    def empty(self) -> bool:
        return self._regex is None

    def match(self, rel: str) -> bool:
        return self._regex is not None and self._regex.match(rel) is not None


def _glob_regex(pattern: str) -> str:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and (end := pattern.find("]", i + 2)) > 0:
            body = pattern[i + 1 : end]
            negate = body.startswith("!")
            body = re.escape(body[1:] if negate else body).replace("\\-", "-")
            out.append(f"[{'^' if negate else ''}{body}]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


# One note ---------------------------------------------------------------------------------


class _Vault:
    """What the notes share while they are read: the graph, the attachments, the block ids."""

    def __init__(self, graph: Graph, attachments: _Attachments) -> None:
        self.graph = graph
        self.attachments = attachments
        self.by_path: dict[str, Page] = {}
        # page path -> ^id -> block, including blocks whose id an earlier block took.
        self.ids: dict[str, dict[str, Block]] = {}
        self.embeds: list[Block] = []

    def resolve_embeds(self) -> None:
        for block in self.embeds:
            block.string = _outside_code(block.string, partial(self._resolve, page=block.page))

    def _resolve(self, text: str, page: Page) -> str:
        if "![[" in text:
            text = _EMBED.sub(lambda m: self._embed(m.group(1), page), text)
        if "](" in text:
            text = _MD_IMAGE.sub(lambda m: self._image(m, page), text)
        return text

    def _image(self, m: re.Match[str], page: Page) -> str:
        """``![alt](src)``: as written when src is a URL or names a file from the note's
        folder; else the file of that name anywhere in the vault, as Obsidian finds it (its
        default "shortest path" links name attachments so)."""
        src = m.group(2) or m.group(3)
        if "://" in src or src.startswith(("//", "data:", "/")):
            return m.group(0)
        name = unquote(src)
        here = posixpath.normpath(posixpath.join(posixpath.dirname(page.path), name))
        if here in self.attachments.paths:
            return m.group(0)
        found = self.attachments.find(posixpath.basename(name))
        if not found or "<" in found or ">" in found:
            return m.group(0)
        return f"![{m.group(1)}](</{found}>)"

    def _embed(self, inner: str, page: Page) -> str:
        target = inner.split("|", 1)[0].strip()
        name, _, subpath = target.partition("#")
        suffix = PurePosixPath(name).suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            found = self.attachments.find(name)
            if found and "<" not in found and ">" not in found:
                # From the vault's root (a leading "/"): the note may be in a subfolder.
                return f"![{PurePosixPath(found).name}](</{found}>)"
            return f"![[{inner}]]"
        if suffix and suffix != ".md":
            return f"![[{inner}]]"  # a PDF, audio… : nothing we can show
        if subpath.startswith("^"):
            note = self._page(name) if name else page
            block = self.ids.get(note.path, {}).get(subpath[1:].strip()) if note else None
            if block is not None:
                return f"(({block.uid}))"
        return f"[[{inner}]]"

    def _page(self, name: str) -> Page | None:
        name = name.strip().removesuffix(".md")
        page = self.graph.pages.get(name)
        return page or self.by_path.get(f"{name.lstrip('/')}.md".lower())


def _outside_code(text: str, rewrite: Callable[[str], str]) -> str:
    """``rewrite`` applied to the parts of ``text`` that are not code."""
    if "`" not in text:
        return rewrite(text)
    pieces, cursor = [], 0
    for m in _CODE_SPAN.finditer(text):
        pieces.append(rewrite(text[cursor : m.start()]))
        pieces.append(m.group(0))
        cursor = m.end()
    pieces.append(rewrite(text[cursor:]))
    return "".join(pieces)


def _parse_note(vault: _Vault, page: Page, text: str) -> None:
    """Read one note into blocks under ``page``, step by step: its front matter becomes
    attribute blocks (``_front_matter``), its lines become blocks (``_Lines``), then each
    block's id, uid and final text are settled in one pass over the note's blocks in
    document order (``_settle``), so ``graph.blocks`` stays in document order too."""
    if "%%" in text:
        text = _strip_comments(text)
    lines = text.split("\n")
    made: list[Block] = []  # the note's blocks, in document order
    start = _front_matter(lines, page, made)
    front = len(made)  # the front matter's attribute blocks
    note = _Lines(page, made)
    note.read(lines[start:] if start else lines)
    _settle(vault, page, made, note.gathered, note.given, front, text)


class _Lines:
    """A note's lines -> its blocks. A block is made when its first line is read; its later
    lines gather in a list until the next block starts (``gathered``; ``_settle`` joins
    them). Only the usual one-line item's ``^id`` is taken as its line is read."""

    __slots__ = (
        "blank",
        "current",
        "fence",
        "fence_cut",
        "gathered",
        "given",
        "headings",
        "items",
        "kind",
        "made",
        "more",
        "page",
        "top",
        "undo",
    )

    def __init__(self, page: Page, made: list[Block]) -> None:
        self.page = page
        self.top = page.children
        self.made = made
        self.gathered: dict[int, list[str]] = {}  # block index -> its lines, when several
        self.given: dict[int, str] = {}  # block index -> id from a "^id" line after a blank
        self.headings: list[tuple[int, Block]] = []  # open sections, outermost first
        self.items: list[tuple[int, Block]] = []  # open list items: (marker column, block)
        self.current: Block | None = None  # the block whose lines are being read
        self.more: list[str] | None = None  # its lines, once it has more than one
        self.undo = ""  # the current block's text before its "^id" was taken off
        self.kind = ""  # of the current block: "paragraph", "item" or "heading"
        self.fence = ""  # the closing fence, inside a fenced code block
        self.fence_cut = 0  # columns of indentation the code lines lose
        self.blank = False  # a blank line came since the last text

    def read(self, lines: list[str]) -> None:
        columns_of = _COLUMNS.get
        item, items = self._item, self.items
        for line in lines:
            if self.fence:
                self._code(line)
                continue
            stripped = line.lstrip(" \t")
            if not stripped:
                self.blank = True
                continue
            indent = len(line) - len(stripped)
            if indent:
                prefix = line[:indent]
                indent = columns_of(prefix) or _columns(prefix)
            first = stripped[0]
            if (first in "-*+" or first.isdigit()) and item(stripped, first, indent):
                continue
            if first in "-*_=" and indent < 4 and self._rule(stripped, first):
                continue
            in_item = bool(items) and indent > items[-1][0]
            if first == "#" and not in_item and self._heading(stripped):
                continue
            if self.blank and self.current is not None and self._id_line(stripped):
                continue
            self._text(stripped, first, indent, in_item)

    def _lines(self) -> list[str]:
        """The current block's lines, from its first (see ``_reopen``)."""
        if self.more is None:
            assert self.current is not None
            self.more = self.gathered[len(self.made) - 1] = _reopen(self.current, self.undo)
        return self.more

    def _code(self, line: str) -> None:
        """A line inside a fenced code block: kept as written, in the block it is in."""
        self._lines().append(_dedent(line, self.fence_cut) if self.fence_cut else line)
        stripped = line.strip()
        if stripped.startswith(self.fence) and not stripped.strip(self.fence[0]):
            self.fence = ""

    def _item(self, stripped: str, first: str, indent: int) -> bool:
        """A list item ("- ", "* ", "+ ", "1. ", "1) ") opens a block: True if the line is one."""
        if first in "-*+":
            if stripped[1:2] not in " \t":  # also "" (a bare marker)
                return False
            marker = 1
            content = stripped[2:]
            lead = content[:1]
            if lead == " " or lead == "\t":
                content = content.lstrip(" \t")
                lead = content[:1]
            if lead == first != "+" and _RULE.match(stripped):
                return False  # "- - -", "* * *": a rule
        elif m := _ORDERED.match(stripped):
            marker = m.end() - 1
            content = stripped[marker:].lstrip(" \t")
            lead = content[:1]
        else:
            return False
        items = self.items
        while items and items[-1][0] >= indent:
            items.pop()
        parent = items[-1][1] if items else self.headings[-1][1] if self.headings else None
        # The usual "text ^id" is taken while the line is at hand (the rarer shapes are left
        # to _settle). It holds only if no further line joins the item: the id ends a
        # block's last line, so _reopen puts it back then.
        head, caret, tail = content.rpartition(" ^")
        special = lead != "" and lead in "[#`~"
        if caret and tail.isascii() and not special and (
            tail.isalnum() or tail.replace("-", "").isalnum()
        ):
            block = Block(tail, head, self.page, parent, [], 0)
            self.undo = content
        else:
            block = Block("", content, self.page, parent, [], 0)
        (parent.children if parent is not None else self.top).append(block)
        self.made.append(block)
        self.current, self.more, self.kind, self.blank = block, None, "item", False
        items.append((indent, block))
        if special:
            if content[0] == "[" and (m := _TASK.match(content)):
                done = m.group(1) != " "
                block.string = ("{{[[DONE]]}} " if done else "{{[[TODO]]}} ") + \
                    content[m.end():]
            elif content[0] == "#" and (m := _HEADING.match(content)):
                # A heading in an item is one line, like any heading.
                block.string, block.heading = m.group(2), min(len(m.group(1)), 3)
                self.kind = "heading"
            else:
                self.fence, self.fence_cut = _fence_open(content), indent + marker + 1
        return True

    def _rule(self, stripped: str, first: str) -> bool:
        """A setext underline (turning the paragraph above into a heading) or a rule (closing
        the open list): True if the line is one."""
        current = self.current
        if not self.blank and self.kind == "paragraph" and not self.items and (
                _SETEXT.match(stripped)):
            assert current is not None
            title = " ".join(self.more) if self.more is not None else current.string
            self.gathered.pop(len(self.made) - 1, None)
            (current.parent.children if current.parent else self.top).pop()
            level = 1 if first == "=" else 2
            headings = self.headings
            while headings and headings[-1][0] >= level:
                headings.pop()
            parent = headings[-1][1] if headings else None
            current.parent, current.string = parent, title
            current.heading = level
            (parent.children if parent is not None else self.top).append(current)
            headings.append((level, current))
            self.more, self.kind = None, "heading"
            return True
        if first != "=" and _RULE.match(stripped):
            self.items.clear()
            self.current, self.more, self.kind, self.blank = None, None, "", True
            return True
        return False

    def _heading(self, stripped: str) -> bool:
        """An ATX heading opens a section: True if the line is one."""
        m = _HEADING.match(stripped)
        if m is None:
            return False
        level = len(m.group(1))
        self.items.clear()
        headings = self.headings
        while headings and headings[-1][0] >= level:
            headings.pop()
        parent = headings[-1][1] if headings else None
        block = Block("", m.group(2), self.page, parent, [], min(level, 3))
        (parent.children if parent is not None else self.top).append(block)
        self.made.append(block)
        headings.append((level, block))
        self.current, self.more, self.kind, self.blank = block, None, "heading", False
        return True

    def _id_line(self, stripped: str) -> bool:
        """A "^id" line after a blank line, naming the block above: True if taken so."""
        m = _ID_LINE.match(stripped)
        current = self.current
        if m is None or current is None:
            return False
        last = self.more[-1] if self.more is not None else current.string
        index = len(self.made) - 1
        if index in self.given or current.uid or _BLOCK_ID.search(last):
            return False
        self.given[index] = m.group(1)
        return True

    def _text(self, stripped: str, first: str, indent: int, in_item: bool) -> None:
        """Any other line: it continues the current block, or starts a paragraph."""
        opens = _fence_open(stripped) if first in "`~" else ""
        kind = self.kind
        if not self.blank and (kind == "paragraph" or (
                kind == "item" and not (opens and not in_item))):
            self._lines().append(stripped)  # continuation, lazy or indented
        else:
            items = self.items
            while items and items[-1][0] >= indent:
                items.pop()
            if kind == "item" and items and items[-1][1] is self.current:
                self._lines().extend(("", stripped))  # a further paragraph of the same item
            else:
                headings = self.headings
                parent = items[-1][1] if items else headings[-1][1] if headings else None
                block = Block("", stripped, self.page, parent, [], 0)
                (parent.children if parent is not None else self.top).append(block)
                self.made.append(block)
                self.current, self.more, self.kind = block, None, "paragraph"
        self.blank = False
        if opens:
            self.fence, self.fence_cut = opens, indent


def _settle(
    vault: _Vault, page: Page, made: list[Block], gathered: dict[int, list[str]],
    given: dict[int, str], front: int, note: str,
) -> None:
    """Give each block its final text and uid, and add it to the graph.

    ``note`` is the note's text, checked once for what no block can hold without it; the first
    ``front`` blocks come from its front matter, where a YAML escape can make anything.
    """
    # page_uids may skip its whitespace test on a block of a note with no rare space (known
    # once a block needs a synthetic uid). Front matter values come from YAML: never plain.
    plain: bool | None = None
    attributes = set(made[:front])
    blocks = vault.graph.blocks
    embeds = vault.embeds
    ids: dict[str, Block] = {}
    vault.ids[page.path] = ids
    uid_of = page_uids(page.title)
    for index, lines in gathered.items():
        made[index].string = "\n".join(lines)
    given_to = {made[index]: uid for index, uid in given.items()}
    embeds_here = "![" in note or any("![" in block.string for block in made[:front])
    for block in made:
        text = block.string
        # An item's one line may have given its uid already (see _parse_note).
        uid = block.uid or (given_to.get(block, "") if given_to else "")
        # A trailing "^id" after white space.
        if not uid and (caret := text.rfind("^")) >= 0 and (
            caret == 0 or text[caret - 1] in " \t\n"
        ):
            tail = text[caret + 1 :].rstrip(" \t")
            if (tail.isascii() and (tail.isalnum() or tail.replace("-", "").isalnum())) or (
                _ID.match(tail)
            ):
                uid = tail
                text = text[:caret]
        block.string = text = text.strip()
        if uid:
            if uid not in ids:
                ids[uid] = block
            if blocks.setdefault(uid, block) is not block:
                uid = ""  # taken by an earlier block
        if not uid:
            if attributes and block in attributes:
                uid = uid_of(text, blocks)
            else:
                if plain is None:
                    plain = not any(c in note for c in RARE_SPACES)
                uid = uid_of(text, blocks, plain)
            blocks[uid] = block
        block.uid = uid
        if embeds_here and "![" in text:
            embeds.append(block)


def _reopen(block: Block, undo: str) -> list[str]:
    """The first of ``block``'s lines, when a second one joins it.

    An id taken off the end of the first line goes back: the block's id ends its last line.
    """
    if block.uid:
        block.string, block.uid = undo, ""
    return [block.string]


def _front_matter(lines: list[str], page: Page, made: list[Block]) -> int:
    """Turn front matter into page attribute blocks; returns the first body line."""
    if not lines or lines[0].rstrip() != "---":
        return 0
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "...")), 0)
    if not end:
        return 0  # never closed: Obsidian shows it as text, and so do we
    for key, value in _front_matter_attributes(lines[1:end]):
        text = f"{key}:: {value}"
        if parse_attribute(text) is None:
            continue  # a key the engine could not read back as an attribute
        block = Block("", text, page)
        page.children.append(block)
        made.append(block)
    return end + 1


def _front_matter_attributes(lines: list[str]) -> list[tuple[str, str]]:
    """``(key, value)`` for the plain scalars and lists of a front matter block."""
    found: list[tuple[str, str]] = []
    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        i += 1
        if not line.strip() or line[0] in " \t#" or not (m := _FM_KEY.match(line.rstrip())):
            continue
        key = _scalar(m.group(1)) or ""
        raw = (m.group(2) or "").strip()
        values: list[str] | None
        single = bool(raw) and raw[0] != "["
        if raw:
            values = _inline_value(raw)
        else:
            values = []
            while i < n and (item := _FM_ITEM.match(lines[i])):
                if item.group(1) is not None:
                    value = _scalar(item.group(1))
                    if value is None:
                        values = None
                    elif values is not None:
                        values.append(value)
                i += 1
        while i < n and lines[i][:1] in (" ", "\t"):
            i += 1  # the rest of a shape we do not read (nested map, multi-line scalar)
        if not values or not key.strip():
            continue
        key = key.strip()
        if key.lower() in ("tags", "tag"):
            # Written as tags, so the page's attributes show them as tags; a tag has no
            # spaces in Obsidian, so a single string is a list separated by commas or spaces.
            key = "Tags"
            names = [t for v in values for t in (re.split(r"[,\s]+", v) if single else [v])]
            values = [_tag(t.strip().lstrip("#")) for t in names if t.strip().lstrip("#")]
        found.append((key, ", ".join(v for v in values if v)))
    return found


def _tag(name: str) -> str:
    return f"#{name}" if _PLAIN_TAG.match(name) else f"#[[{name}]]"


def _inline_value(raw: str) -> list[str] | None:
    if raw[0] in "|>&*!{":
        return None  # block scalar, anchor, alias, tag or map: not read
    if raw[0] == "[":
        if not raw.endswith("]"):
            return None
        items = _split_flow(raw[1:-1])
        if items is None:
            return None
        values = [_scalar(item) for item in items if item.strip()]
        return None if any(v is None for v in values) else [v for v in values if v is not None]
    value = _scalar(raw)
    return None if value is None else [value]


def _split_flow(body: str) -> list[str] | None:
    """Split a flow list's body on the commas outside quotes; None if a quote never closes."""
    if not any(c in body for c in "\"'[{"):
        return body.split(",")
    items: list[str] = []
    quote, start, i = "", 0, 0
    while i < len(body):
        c = body[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c in "[{":
            return None
        elif c == ",":
            items.append(body[start:i])
            start = i + 1
        i += 1
    if quote:
        return None
    items.append(body[start:])
    return items


_COMMENT = re.compile(r"[ \t]#")
_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "\\": "\\",
            "/": "/", "0": "\0", " ": " "}


def _scalar(raw: str) -> str | None:
    """A YAML scalar's text: quoted (with the usual escapes) or plain. None if unreadable."""
    raw = raw.strip()
    if raw[:1] == "'":
        if len(raw) < 2 or not raw.endswith("'"):
            return None
        return raw[1:-1].replace("''", "'")
    if raw[:1] == '"':
        if len(raw) < 2 or not raw.endswith('"'):
            return None
        body = raw[1:-1]
        if "\\" not in body:
            return body
        out, i = [], 0
        while i < len(body):
            c = body[i]
            if c == "\\" and i + 1 < len(body):
                nxt = body[i + 1]
                if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2 : i + 6]):
                    out.append(chr(int(body[i + 2 : i + 6], 16)))
                    i += 6
                    continue
                out.append(_ESCAPES.get(nxt, "\\" + nxt))
                i += 2
                continue
            out.append(c)
            i += 1
        text = "".join(out)
        if "\\u" in body and _SURROGATE.search(text):
            # "\\ud83d\\ude00" is one character written as a UTF-16 pair; a lone half could
            # never be encoded, so it becomes U+FFFD.
            text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        return text
    if raw[:1] in ("|", ">", "&", "*", "!", "{", "["):
        return None
    comment = _COMMENT.search(raw)
    value = raw[: comment.start()] if comment else raw
    value = value.strip()
    return "" if value in ("~", "null", "Null", "NULL") else value


# Small helpers ----------------------------------------------------------------------------


def _fence_open(text: str) -> str:
    """The closing fence if ``text`` opens a fenced code block (not closed on the same line)."""
    if text[:3] not in ("```", "~~~"):
        return ""
    char = text[0]
    width = len(text) - len(text.lstrip(char))
    fence = char * width
    if char == "`" and "`" in text[width:]:
        return ""  # inline code, or a fence that opens and closes on one line
    return fence


def _columns(whitespace: str) -> int:
    col = 0
    for c in whitespace:
        col = col + TAB_WIDTH - col % TAB_WIDTH if c == "\t" else col + 1
    if len(_COLUMNS) < 1000:
        _COLUMNS[whitespace] = col
    return col


# Indentation -> its width in columns; a note has only a few distinct indentations.
_COLUMNS: dict[str, int] = {}


def _dedent(line: str, columns: int) -> str:
    """``line`` without up to ``columns`` columns of leading whitespace."""
    col = i = 0
    while i < len(line) and col < columns and line[i] in " \t":
        col = col + TAB_WIDTH - col % TAB_WIDTH if line[i] == "\t" else col + 1
        i += 1
    return line[i:]


def _strip_comments(text: str) -> str:
    """``text`` without ``%%…%%`` comments (which may span lines), except inside code.

    A line left blank only because a comment filled it is dropped, so a comment between two
    list items does not split the list.
    """
    out: list[str] = []
    in_comment = False
    fence = ""
    for line in text.split("\n"):
        commented = in_comment
        if fence and not in_comment:
            out.append(line)
            # A fence opened in a quote or a list item closes there too ("> ```").
            stripped = line.lstrip(" \t>-*+").strip()
            if stripped.startswith(fence) and not stripped.strip(fence[0]):
                fence = ""
            continue
        if not in_comment and "%%" not in line:
            out.append(line)
            fence = _fence_open(line.lstrip(" \t>-*+")) or fence
            continue
        kept: list[str] = []
        i = 0
        while i < len(line):
            if in_comment:
                end = line.find("%%", i)
                if end < 0:
                    i = len(line)
                else:
                    in_comment = False
                    i = end + 2
                continue
            start = line.find("%%", i)
            tick = line.find("`", i)
            if 0 <= tick < (start if start >= 0 else len(line)):
                close = line.find("`", tick + 1)
                stop = len(line) if close < 0 else close + 1
                kept.append(line[i:stop])
                i = stop
                continue
            if start < 0:
                kept.append(line[i:])
                break
            kept.append(line[i:start])
            in_comment = True
            i = start + 2
        joined = "".join(kept)
        if joined.strip() or not (line.strip() or commented):
            out.append(joined.rstrip() if joined.strip() else joined)
    return "\n".join(out)

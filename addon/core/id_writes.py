"""Opt-in: give Logseq card blocks that have no ``id::`` a stable one, in the notes files.

A block without ``id::`` is keyed by a hash of its page and text, so every edit changes its
key and sync has to re-match it by similarity. Written once, the id makes its identity exact.
It runs only when a source's ``write_ids`` is on and its format takes ids
(``registry.Format.writes_ids``). Per file:
- the file must still hold exactly the bytes the graph was read from, else it is skipped with
  a warning (the user or Logseq changed it since);
- an ``id::`` line goes under each card block's first line (or its opening code fence), with
  the block's indentation; no other line changes, a BOM and the file's line ends stay;
- a file that is not UTF-8, or is a symlink, is left as it is;
- the new file replaces the old atomically (block_writes.replace_atomically), never if it
  changed while it was written.
The note whose key was the hash moves to the new key on the same run, by sync's re-matching.
"""

from __future__ import annotations

import codecs
import re
import uuid
from collections.abc import Iterable
from pathlib import Path

from .block_writes import FileChanged, replace_atomically
from .cards import collect
from .config import CardOptions
from .model import Block, Graph, SourceError, is_synthetic
from .sources.files import decode, read_file
from .sources.logseq import build_page, title_lines
from .sources.outline import digest

# The apps whose blocks take an ``id::`` line (their reader reads it back as the uid).
APPS = frozenset({"logseq"})
_LINE_END = re.compile(r"(\r\n|\r|\n)")


def write_ids(graph: Graph, card_tags: Iterable[str]) -> list[str]:
    """Write ``id::`` into the graph's card blocks that lack one; returns warnings (files
    skipped because they changed, or cannot be rewritten). A graph of another app: none."""
    if graph.source not in APPS:
        return []
    specs = collect(graph, CardOptions(card_tags=tuple(card_tags)))
    blocks = [spec.block for spec in specs if is_synthetic(spec.uid)]
    if not blocks:
        return []
    _, warnings = write_back_ids(graph, blocks)
    return warnings


def write_back_ids(graph: Graph, blocks: Iterable[Block]) -> tuple[dict[str, str], list[str]]:
    """Give each listed block that lacks an ``id::`` a new uuid, written into its file (see
    the module doc). Returns (old uid -> new uid, warnings); ``graph`` is updated to the new
    uids, so the caller plans against what the folder now says.
    """
    by_file: dict[str, list[Block]] = {}
    for block in blocks:
        if is_synthetic(block.uid) and graph.blocks.get(block.uid) is block and block.page.path:
            by_file.setdefault(block.page.path, []).append(block)
    mapping: dict[str, str] = {}
    warnings: list[str] = []
    for rel, targets in by_file.items():
        written = _write_file(graph, rel, targets, warnings)
        for block, new in written.items():
            mapping[block.uid] = new
            block.uid = new
    if mapping:
        graph.blocks = {
            mapping.get(uid, uid): block for uid, block in graph.blocks.items()
        }
    return mapping, warnings


def _write_file(
    graph: Graph, rel: str, targets: list[Block], warnings: list[str]
) -> dict[Block, str]:
    path = Path(graph.root) / rel
    if path.is_symlink():
        # os.replace would put a plain file where the link was, forking the page from its target.
        warnings.append(f"{path}: a symlink; ids not written (write them in its target)")
        return {}
    try:
        data = read_file(path)
    except SourceError as err:
        warnings.append(f"{err}; ids not written")
        return {}
    if digest(data) != graph.file_digests.get(rel):
        warnings.append(f"{path}: changed since it was read; ids not written (next sync)")
        return {}
    text, utf8 = decode(data)
    if not utf8:
        warnings.append(f"{path}: not UTF-8; ids not written, to keep the file as it is")
        return {}
    parts = _LINE_END.split(text)
    lines, ends = parts[0::2], [*parts[1::2], ""]
    # Rebuild the page from the same bytes, so its blocks get the same uids as in the graph.
    record: list[tuple[Block, int, str, str]] = []
    scratch = Graph(source=graph.source, name=graph.name)
    title = targets[0].page.title
    build_page(scratch, rel, lines, title, record)
    bullets = {block.uid: (line, indent, raw) for block, line, indent, raw in record}
    inserts: dict[int, list[str]] = {}
    written: dict[Block, str] = {}
    for block in targets:
        bullet = bullets.get(block.uid)
        if bullet is None:
            warnings.append(f"{path}: block {block.uid} has no bullet of its own; id not written")
            continue
        line, indent, raw = bullet
        new = str(uuid.uuid4())
        after = line + title_lines(raw.split("\n")) - 1
        inserts.setdefault(after, []).append(f"{indent}  id:: {new}")
        written[block] = new
    if not written:
        return {}
    newline = ends[0] or "\n"
    out: list[str] = []
    for index, (text, end) in enumerate(zip(lines, ends, strict=True)):
        out.append(text)
        for extra in inserts.get(index, ()):
            out.append(end or newline)
            out.append(extra)
        out.append(end)
    new_data = "".join(out).encode()
    if data.startswith(codecs.BOM_UTF8):
        new_data = codecs.BOM_UTF8 + new_data
    try:
        replace_atomically(path, new_data, data)
    except FileChanged:
        warnings.append(f"{path}: changed while ids were written; ids not written (next sync)")
        return {}
    except OSError as err:
        warnings.append(f"{path}: cannot write file ({err.strerror or err}); ids not written")
        return {}
    graph.file_digests[rel] = digest(new_data)
    return written

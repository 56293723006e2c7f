"""Bullet outlines (``- text`` lines nested by indentation) -> a tree of Nodes, plus file decoding.

Shared by the Roam Markdown export and Logseq readers; they differ only in how a block's
continuation lines are written, given as ``indented``:
- Roam Markdown (``indented=False``): continuation lines start at column 0 and are kept as they are;
- Logseq (``indented=True``): continuation lines are indented to the bullet's text (its indent plus
  two spaces), and that indent is removed.

Guarantees: nesting follows indentation (tabs or any number of spaces, consistently or not: a
bullet deeper than the previous one is its child, otherwise it closes blocks until one is at most
as deep); inside a code fence every line belongs to the block, even one that looks like a
bullet; a Node knows the file lines it came from, so a writer can edit the file in place.
A line that merely looks like a bullet in the middle of a block's text (outside a fence) starts a
new block: the formats themselves do not tell the two apart.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..model import RARE_SPACES

FENCE = "```"
_RARE_IN_LINES = RARE_SPACES.replace("\r", "")


@dataclass(slots=True)
class Node:
    """One bullet: its text (first line and continuation lines, joined by newlines)."""

    text: str
    line: int  # index of the bullet's line in the file's lines
    end: int  # index just past the block's own last text line (trailing blank lines excluded)
    indent: str  # the bullet's leading whitespace, as written
    depth: int  # 0 for a top-level bullet; a node's parent is the nearest earlier node one less


@dataclass(slots=True)
class Outline:
    """A file's bullets in document order (a flat preorder list: building a tree of nodes only
    to walk it again cost a fifth of the reading time)."""

    preamble: list[str]  # lines before the first bullet (Logseq page properties live here)
    nodes: list[Node]


def split_lines(text: str) -> list[str]:
    """Lines of ``text`` (LF, CRLF or CR endings), without their line ends."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.split("\n")


def plain(text: str) -> bool:
    """Whether a file's text holds none of ``model.RARE_SPACES``, so ``page_uids`` may take its
    fast path for every block of it. Line ends do not count: they never reach a block's text."""
    return not any(char in text for char in _RARE_IN_LINES)


def decode(data: bytes) -> tuple[str, bool]:
    """File bytes -> (text, whether they were valid UTF-8). A UTF-8 BOM is dropped.

    Anything else is read as Windows-1252 (the usual non-UTF-8 encoding of notes written on
    Windows), so one odd file never stops a sync; undefined bytes become U+FFFD.
    """
    try:
        return data.decode("utf-8-sig"), True
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), False


def digest(data: bytes) -> str:
    """A fingerprint of a file's bytes, to tell later whether the file changed."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def parse_text(text: str, indented: bool) -> Outline:
    """``parse`` of a whole file's text (any line ends)."""
    return parse(split_lines(text), indented)


def parse(lines: list[str], indented: bool) -> Outline:
    """The outline of a file given as ``lines`` (see the module docstring for the two styles)."""
    preamble: list[str] = []
    nodes: list[Node] = []
    widths: list[int] = []  # indentation widths of the open blocks, outermost first
    known: dict[str, tuple[int, str]] = {}  # indent -> (its width, its continuation prefix)
    current: Node | None = None
    more: list[str] = []  # the current block's continuation lines
    in_fence = False
    prefix = ""
    for index, line in enumerate(lines):
        if not in_fence:
            # One partition both finds a bullet and splits it: the first "- " of a bullet line
            # ends its indentation, as no tab or space is a "-".
            indent, bullet, text = line.partition("- ")
            if not bullet or indent.strip(" \t"):
                is_bullet = line.lstrip(" \t") == "-"
                indent, text = line[:-1], ""
            else:
                is_bullet = True
            if is_bullet:
                if more:
                    _finish(current, more)  # type: ignore[arg-type]
                    more = []
                entry = known.get(indent)
                if entry is None:
                    entry = known[indent] = (len(indent.expandtabs(4)), indent + "  ")
                width, prefix = entry
                while widths and widths[-1] >= width:
                    widths.pop()
                current = Node(text, index, index + 1, indent, len(widths))
                nodes.append(current)
                widths.append(width)
                if FENCE in text:
                    in_fence = text.count(FENCE) % 2 == 1
                continue
        if current is None:
            preamble.append(line)
            continue
        if indented:
            if line.startswith(prefix):
                line = line[len(prefix):]
            elif not line.strip():
                line = ""
            else:
                line = _dedent(line, current.indent) if in_fence else line.lstrip(" \t")
        more.append(line)
        if FENCE in line and line.count(FENCE) % 2 == 1:
            in_fence = not in_fence
    if more:
        _finish(current, more)  # type: ignore[arg-type]
    while preamble and not preamble[-1].strip():
        preamble.pop()
    return Outline(preamble, nodes)


def _finish(node: Node, more: list[str]) -> None:
    """Attach continuation lines to ``node``; trailing blank lines separate, they are not text."""
    while more and not more[-1].strip():
        more.pop()
    if more:
        node.text = "\n".join((node.text, *more))
        node.end = node.line + 1 + len(more)


def _dedent(line: str, indent: str) -> str:
    """A code line written with less than the usual indentation: drop what indentation it has
    of the bullet's, and at most two more spaces, keeping the rest (code indentation matters)."""
    if line.startswith(indent):
        line = line[len(indent):]
    for _ in range(2):
        if line.startswith(" "):
            line = line[1:]
    return line

"""Bullet outlines (``- text`` lines nested by indentation) -> a tree of Blocks.

Shared by the Roam Markdown export and Logseq readers; they differ only in how a block's
continuation lines are written, given as ``indented``:
- Roam Markdown (``indented=False``): continuation lines start at column 0 and are kept as they are;
- Logseq (``indented=True``): continuation lines are indented to the bullet's text (its indent plus
  two spaces), and that indent is removed.

Guarantees: nesting follows indentation (tabs or any number of spaces, consistently or not: a
bullet deeper than the previous one is its child, otherwise it closes blocks until one is at most
as deep); inside a code fence every line belongs to the block, even one that looks like a
bullet (in Logseq a fence starts a line, so a ``` in the middle of a line is text; Roam opens
one anywhere); on request the parser lists the line of each bullet, so a writer can edit the
file in place.
A line that merely looks like a bullet in the middle of a block's text (outside a fence) starts a
new block: the formats themselves do not tell the two apart.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from ..model import RARE_SPACES, Block, Page

FENCE = "```"
_RARE_IN_LINES = RARE_SPACES.replace("\r", "")


@dataclass(slots=True)
class Outline:
    """A file's bullets, already Blocks of their page: linked to their parent (or the page) in
    file order, each with its text as written and no uid yet (the reader gives uids, headings
    and any other reading of the text, in one pass over ``blocks``)."""

    preamble: list[str]  # lines before the first bullet (Logseq page properties live here)
    blocks: list[Block]  # every bullet's block in document order (a flat preorder list)


def split_lines(text: str) -> list[str]:
    """Lines of ``text`` (LF, CRLF or CR endings), without their line ends."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.split("\n")


def plain(text: str) -> bool:
    """Whether a file's text holds none of ``model.RARE_SPACES``, so ``page_uids`` may take its
    fast path for every block of it. Line ends do not count: they never reach a block's text."""
    return not any(char in text for char in _RARE_IN_LINES)


def within(root: str, target: str) -> bool:
    """Whether the real path ``target`` is ``root`` or inside it (both from ``realpath``)."""
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


def digest(data: bytes) -> str:
    """A fingerprint of a file's bytes, to tell later whether the file changed (kept in memory
    only)."""
    return hashlib.sha256(data).hexdigest()


def parse_text(
    text: str, indented: bool, page: Page, positions: list[tuple[int, str]] | None = None
) -> Outline:
    """``parse`` of a whole file's text (any line ends)."""
    return parse(split_lines(text), indented, page, positions)


def parse(
    lines: list[str], indented: bool, page: Page,
    positions: list[tuple[int, str]] | None = None,
) -> Outline:
    """The outline of a file given as ``lines`` (see the module docstring for the two styles),
    its bullets made Blocks of ``page``. With ``positions``, also list each bullet's (line
    index, indentation as written), in the order of ``Outline.blocks``, for a writer."""
    preamble: list[str] = []
    made: list[Block] = []
    top = page.children
    widths: list[int] = []  # indentation widths of the open blocks, outermost first
    open_blocks: list[Block] = []  # the open blocks themselves
    known: dict[str, tuple[int, str]] = {}  # indent -> (its width, its continuation prefix)
    current: Block | None = None
    current_indent = ""
    more: list[str] = []  # the current block's continuation lines
    in_fence = False
    prefix = ""
    for index, line in enumerate(lines):
        if not in_fence:
            # The first "- " of a bullet line ends its indentation: no tab or space is a "-".
            indent, bullet, text = line.partition("- ")
            if not bullet or indent.strip(" \t"):
                is_bullet = line.lstrip(" \t") == "-"
                indent, text = line[:-1], ""
            else:
                is_bullet = True
            if is_bullet:
                if more:
                    assert current is not None  # lines before the first bullet are preamble
                    _finish(current, more)
                    more = []
                entry = known.get(indent)
                if entry is None:
                    entry = known[indent] = (len(indent.expandtabs(4)), indent + "  ")
                width, prefix = entry
                while widths and widths[-1] >= width:
                    widths.pop()
                    open_blocks.pop()
                if open_blocks:
                    parent = open_blocks[-1]
                    current = Block("", text, page, parent, [], 0)
                    parent.children.append(current)
                else:
                    current = Block("", text, page, None, [], 0)
                    top.append(current)
                made.append(current)
                widths.append(width)
                open_blocks.append(current)
                current_indent = indent
                if positions is not None:
                    positions.append((index, indent))
                if FENCE in text and (not indented or text.lstrip().startswith(FENCE)):
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
                line = _dedent(line, current_indent) if in_fence else line.lstrip(" \t")
        more.append(line)
        if FENCE in line and line.count(FENCE) % 2 == 1 and (
                not indented or line.lstrip().startswith(FENCE)):
            in_fence = not in_fence
    if more:
        assert current is not None
        _finish(current, more)
    while preamble and not preamble[-1].strip():
        preamble.pop()
    return Outline(preamble, made)


def _finish(block: Block, more: list[str]) -> None:
    """Attach continuation lines to ``block``; trailing blank lines separate, they are not
    text."""
    while more and not more[-1].strip():
        more.pop()
    if more:
        block.string = "\n".join((block.string, *more))


def _dedent(line: str, indent: str) -> str:
    """A code line written with less than the usual indentation: drop what indentation it has
    of the bullet's, and at most two more spaces, keeping the rest (code indentation matters)."""
    if line.startswith(indent):
        line = line[len(indent):]
    for _ in range(2):
        if line.startswith(" "):
            line = line[1:]
    return line

"""Roam JSON pages -> a Roam Markdown export: a folder of ``<title>.md`` files.

Written as Roam writes it: ``- `` bullets nested by four spaces, a block's further lines at
column 0, ``#``…``###`` for headings, a ``/`` in a title as a subfolder. Uids are not written
(the export has none), so ``((uid))`` references stay as they are and cannot be resolved.

``python -m tools.formats.roam_markdown EXPORT.json DEST`` writes the folder DEST.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any


def write(pages: list[dict[str, Any]], dest: Path, graph_name: str) -> Path:
    """Write ``pages`` as a Roam Markdown export into the folder ``dest`` (replaced if it
    exists) and return it. ``graph_name`` is unused: the export does not name its graph."""
    del graph_name
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for page in pages:
        target = dest / (safe_relative_path(page["title"]) + ".md")
        target.parent.mkdir(parents=True, exist_ok=True)
        lines: list[str] = []
        _write_blocks(page.get("children") or [], 0, lines)
        target.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return dest


def safe_relative_path(title: str) -> str:
    """The title as a relative path: ``/`` separates folders; empty, ``.`` and ``..`` parts
    (which would name no file or leave the folder) are spelled with ``_``."""
    parts = title.split("/")
    return "/".join(p if p not in ("", ".", "..") else p.replace(".", "_") or "_" for p in parts)


def _write_blocks(blocks: list[dict[str, Any]], depth: int, lines: list[str]) -> None:
    # Iterative: generated graphs may nest deeper than Python's recursion limit.
    stack = [(depth, iter(blocks))]
    while stack:
        level, items = stack[-1]
        for raw in items:
            text = raw.get("string", "")
            heading = raw.get("heading") or 0
            if heading:
                text = "#" * heading + " " + text
            first, *rest = text.split("\n")
            lines.append("    " * level + ("- " + first if first else "-"))
            lines.extend(rest)
            if raw.get("children"):
                stack.append((level + 1, iter(raw["children"])))
                break
        else:
            stack.pop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("export", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--graph", default="")
    args = parser.parse_args()
    pages = json.loads(args.export.read_text(encoding="utf-8"))
    write(pages, args.dest, args.graph or args.export.stem)


if __name__ == "__main__":
    main()

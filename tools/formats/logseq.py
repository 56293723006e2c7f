"""Roam JSON pages -> a Logseq graph folder (``pages/``, ``journals/``, ``logseq/config.edn``).

Written as Logseq writes it: tab-indented ``- `` bullets, a block's further lines indented to its
text, ``key:: value`` properties. What changes on the way:
- the attributes a page opens with become page properties, and a block's attribute children
  (without children of their own) become its properties, with Logseq-style keys
  (``Anki Tag`` -> ``anki-tag``);
- Roam daily pages ("June 28th, 2021") become journals (``journals/2021_06_28.md``);
- a ``/`` in a title is written ``___`` (the ``:triple-lowbar`` file-name format), and the
  characters file names cannot hold as ``%XX``;
- blocks that a ``((uid))`` points at get an ``id::`` (a uuid derived from the Roam uid and the
  graph name, so the same input always gives the same files) and the reference follows it;
  other blocks get no id, as in a graph nobody referenced into.

``python -m tools.formats.logseq EXPORT.json DEST`` writes the folder DEST.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from addon.core.model import parse_attribute

CONFIG = ';; Written by tools/formats/logseq.py\n{:file/name-format :triple-lowbar}\n'
_REF = re.compile(r"\(\(([\w-]{5,})\)\)")
_DAILY = re.compile(
    r"(January|February|March|April|May|June|July|August|September|October|November|December)"
    r" (\d{1,2})(?:st|nd|rd|th), (\d{4})"
)
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
# Characters Logseq escapes in file names (besides '/', written '___').
_ESCAPED = '%<>:"\\|?*#'


def write(pages: list[dict[str, Any]], dest: Path, graph_name: str) -> Path:
    """Write ``pages`` as a Logseq graph into the folder ``dest`` (replaced if it exists) and
    return it."""
    if dest.exists():
        shutil.rmtree(dest)
    for folder in ("pages", "journals", "logseq"):
        (dest / folder).mkdir(parents=True)
    (dest / "logseq" / "config.edn").write_text(CONFIG, encoding="utf-8")
    referenced = {m for page in pages for raw in _walk(page) for m in _REF.findall(raw["string"])}
    ids = {uid: str(uuid.uuid5(uuid.NAMESPACE_URL, f"roam-bridge:{graph_name}:{uid}"))
           for uid in referenced}
    for page in pages:
        lines: list[str] = []
        children = list(page.get("children") or [])
        while children and _is_property(children[0]):
            key, value = parse_attribute(children.pop(0)["string"]) or ("", "")
            lines.append(f"{property_key(key)}:: {value}".rstrip())
        if lines:
            lines.append("")
        _write_blocks(children, lines, ids)
        (dest / file_path(page["title"])).write_text(
            "".join(f"{line}\n" for line in lines), encoding="utf-8"
        )
    return dest


def file_path(title: str) -> str:
    """Where Logseq keeps the page ``title``: a journal for a Roam daily page, else a page."""
    daily = _DAILY.fullmatch(title)
    if daily:
        month = _MONTHS.index(daily.group(1)) + 1
        return f"journals/{daily.group(3)}_{month:02d}_{int(daily.group(2)):02d}.md"
    name = "".join(f"%{ord(c):02X}" if c in _ESCAPED else c for c in title)
    name = name.replace("/", "___")
    if name.startswith("."):
        name = "%2E" + name[1:]
    return f"pages/{name}.md"


def property_key(key: str) -> str:
    """A Roam attribute name as a Logseq property key: lower case, words joined by '-'."""
    return re.sub(r"[^\w.\-]+", "-", key.strip().lower()).strip("-") or "property"


def _is_property(raw: dict[str, Any]) -> bool:
    return (not raw.get("children") and not raw.get("heading") and "\n" not in raw["string"]
            and parse_attribute(raw["string"]) is not None)


def _write_blocks(blocks: list[dict[str, Any]], lines: list[str], ids: dict[str, str]) -> None:
    stack = [(0, iter(blocks))]
    while stack:
        level, items = stack[-1]
        for raw in items:
            indent = "\t" * level
            text = _REF.sub(lambda m: f"(({ids.get(m.group(1), m.group(1))}))", raw["string"])
            if raw.get("heading"):
                text = "#" * raw["heading"] + " " + text
            first, *rest = text.split("\n")
            lines.append(f"{indent}- {first}" if first else f"{indent}-")
            body = [f"{indent}  {line}" if line else "" for line in rest]
            children = list(raw.get("children") or [])
            props = []
            while children and _is_property(children[0]):
                key, value = parse_attribute(children.pop(0)["string"]) or ("", "")
                props.append(f"{indent}  {property_key(key)}:: {value}".rstrip())
            if raw.get("uid") in ids:
                props.append(f"{indent}  id:: {ids[raw['uid']]}")
            lines.extend(props)  # properties come right after the first line
            lines.extend(body)
            if children:
                stack.append((level + 1, iter(children)))
                break
        else:
            stack.pop()


def _walk(page: dict[str, Any]):
    stack = list(page.get("children") or [])
    while stack:
        raw = stack.pop()
        yield raw
        stack.extend(raw.get("children") or [])


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

"""Roam JSON pages -> an Obsidian vault, as an Obsidian user would have written the notes.

``write(pages, dest, graph_name)`` creates the vault folder ``dest/graph_name`` (Obsidian
names a vault after its folder, so ``obsidian://open?vault=<graph_name>`` finds it) with a
``.obsidian/`` folder and one note per page:
- the page title is the file name; a ``/`` in it makes folders, as Obsidian's own Roam importer
  does, and characters a file name cannot hold become ``-`` (a clash gets `` (2)``);
- the leading ``Key:: value`` blocks of a page become YAML front matter (``Tags::`` as a
  ``tags`` list);
- top-level heading blocks become Markdown headings, every other block a list item nested by
  tabs; a heading on a nested block stays inside its item (``- ## text``);
- every block carries its uid as ``^id`` (made Obsidian-safe and unique), or with
  ``block_ids="cards"`` only the cards (marked with a default card tag) and the targets of
  ``((refs))``, as in most real vaults, where the reader gives the rest synthetic uids (the
  seed vault is written so); ``((uid))`` becomes ``![[Note#^id]]``;
- ``{{[[TODO]]}}`` / ``{{[[DONE]]}}`` become ``- [ ]`` / ``- [x]``; all other text is kept.

Not kept: a top-level block that follows a heading without being one reads back as part of
that heading's section (Markdown has no way to close a section), and block times and authors.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from addon.core.cards import tag_names
from addon.core.config import DEFAULT_CARD_TAGS
from addon.core.model import attribute_key, parse_attribute

_UNSAFE_NAME = re.compile(r'[\\:*?"<>|#^\[\]\x00-\x1f]')
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9-]")
_REF = re.compile(r"\(\(([\w-]+)\)\)")
_CARD = re.compile(
    r"(?i)(?:#\[\[|\[\[|(?<![\w#/])#)(?:" + "|".join(DEFAULT_CARD_TAGS) + r")(?![\w\-/])"
)
_PLAIN_YAML = re.compile(r"[A-Za-z0-9_(][^:#\[\]{}\"'\n,]*\Z")


def write(
    pages: list[dict[str, Any]], dest: Path, graph_name: str, *, block_ids: str = "all"
) -> Path:
    """Write the vault and return its folder; refuses a folder that already holds notes.

    ``block_ids="all"`` keeps every block's uid as its ``^id`` (a lossless conversion: no
    block needs a synthetic uid); ``"cards"`` writes ids only on cards and ref targets.
    """
    if block_ids not in ("all", "cards"):
        raise ValueError(f"block_ids must be 'all' or 'cards', not {block_ids!r}")
    vault = Path(dest) / graph_name
    if vault.exists() and any(p.suffix == ".md" for p in vault.rglob("*")):
        raise FileExistsError(f"{vault} already holds notes; remove it first")
    (vault / ".obsidian").mkdir(parents=True, exist_ok=True)
    (vault / ".obsidian" / "app.json").write_text("{}\n", encoding="utf-8")
    files = _file_names(pages)
    link_names = _link_names(files)
    ids = _block_ids(pages, every=block_ids == "all")
    targets = {uid: (link_names[index], bid) for uid, (index, bid) in ids.items()}
    own_ids = {uid: bid for uid, (_, bid) in ids.items()}
    for index, page in enumerate(pages):
        note = vault / files[index]
        note.parent.mkdir(parents=True, exist_ok=True)
        note.write_text(_note(page, own_ids, targets), encoding="utf-8")
    return vault


# File names ---------------------------------------------------------------------------------


def _file_names(pages: list[dict[str, Any]]) -> list[str]:
    """Each page's vault-relative path, unique even on a case-insensitive file system."""
    taken: set[str] = set()
    names = []
    for page in pages:
        parts = [_safe_part(p) for p in str(page.get("title", "")).split("/")]
        parts = [p for p in parts if p] or ["Untitled"]
        base = "/".join(parts)
        name, n = base, 1
        while f"{name}.md".lower() in taken:
            n += 1
            name = f"{base} ({n})"
        taken.add(f"{name}.md".lower())
        names.append(f"{name}.md")
    return names


def _safe_part(part: str) -> str:
    part = _UNSAFE_NAME.sub("-", part).strip().strip(".").strip()
    return part


def _link_names(files: list[str]) -> list[str]:
    """How other notes link to each file: its name, or its path when the name is not unique."""
    stems = [f.rsplit("/", 1)[-1][:-3] for f in files]
    counts: dict[str, int] = {}
    for stem in stems:
        counts[stem] = counts.get(stem, 0) + 1
    return [stem if counts[stem] == 1 else f[:-3] for stem, f in zip(stems, files, strict=True)]


# Block ids --------------------------------------------------------------------------------


def _block_ids(pages: list[dict[str, Any]], every: bool) -> dict[str, tuple[int, str]]:
    """uid -> (page index, ^id) for the blocks that get an id: all, or cards and ref targets.

    A uid that occurs twice (exports have such slips) gets its id on the first occurrence.
    """
    referenced: set[str] = set()
    wanted: list[tuple[int, str]] = []
    for index, page in enumerate(pages):
        for raw in _walk(page.get("children") or []):
            text = raw.get("string", "")
            if "((" in text:
                referenced.update(_REF.findall(text))
            if every or _CARD.search(text):
                wanted.append((index, raw.get("uid", "")))
    for index, page in enumerate(pages):
        for raw in _walk(page.get("children") or []):
            if raw.get("uid") in referenced:
                wanted.append((index, raw["uid"]))
    ids: dict[str, tuple[int, str]] = {}
    taken: set[str] = set()
    for index, uid in wanted:
        if not uid or uid in ids:
            continue
        base = _UNSAFE_ID.sub("-", uid)
        bid, n = base, 1
        while bid in taken:
            n += 1
            bid = f"{base}-{n}"
        taken.add(bid)
        ids[uid] = (index, bid)
    return ids


def _walk(blocks: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    stack = list(reversed(blocks))
    while stack:
        raw = stack.pop()
        yield raw
        stack.extend(reversed(raw.get("children") or []))


# One note ---------------------------------------------------------------------------------


class _Writer:
    def __init__(self, ids: dict[str, str], targets: dict[str, tuple[str, str]]) -> None:
        self.ids = ids
        self.targets = targets
        self.written: set[str] = set()  # uids whose ^id is already in the vault
        self.lines: list[str] = []

    def text(self, raw: dict[str, Any]) -> tuple[list[str], str]:
        """The block's lines, and its ``^id`` ("" for none)."""
        text = str(raw.get("string", ""))
        if "((" in text:
            text = _REF.sub(self._ref, text)
        if text.startswith("{{[[TODO]]}}"):
            text = "[ ] " + text[len("{{[[TODO]]}}"):].lstrip()
        elif text.startswith("{{[[DONE]]}}"):
            text = "[x] " + text[len("{{[[DONE]]}}"):].lstrip()
        uid = raw.get("uid", "")
        bid = ""
        if uid in self.ids and uid not in self.written:
            self.written.add(uid)
            bid = self.ids[uid]
        return text.rstrip().split("\n"), bid

    def _ref(self, m: re.Match[str]) -> str:
        target = self.targets.get(m.group(1))
        return f"![[{target[0]}#^{target[1]}]]" if target else m.group(0)

    def heading(self, raw: dict[str, Any], level: int) -> None:
        lines, bid = self.text(raw)
        if self.lines and self.lines[-1]:
            self.lines.append("")
        line = f"{'#' * level} {' '.join(s.strip() for s in lines)}".rstrip()
        self.lines.append(f"{line} ^{bid}" if bid else line)

    def item(self, raw: dict[str, Any], depth: int) -> None:
        lines, bid = self.text(raw)
        indent = "\t" * depth
        heading = raw.get("heading")
        prefix = f"{'#' * heading} " if isinstance(heading, int) and 0 < heading <= 6 else ""
        out = [f"{indent}- {prefix}{lines[0]}".rstrip()]
        out.extend(f"{indent}  {line}" if line.strip() else "" for line in lines[1:])
        if bid:
            if out[-1].lstrip().startswith(("```", "~~~")):
                out.extend(["", f"{indent}  ^{bid}"])  # an id after a fence needs its own line
            else:
                out[-1] = f"{out[-1]} ^{bid}"
        self.lines.extend(out)
        for child in raw.get("children") or []:
            self.item(child, depth + 1)


def _note(
    page: dict[str, Any], ids: dict[str, str], targets: dict[str, tuple[str, str]]
) -> str:
    children = list(page.get("children") or [])
    front, children = _front_matter(children)
    writer = _Writer(ids, targets)
    if front:
        writer.lines.extend(["---", *front, "---"])
    for raw in children:
        heading = raw.get("heading")
        if isinstance(heading, int) and 0 < heading <= 6:
            writer.heading(raw, heading)
            for child in raw.get("children") or []:
                writer.item(child, 0)
        else:
            writer.item(raw, 0)
    return "\n".join(writer.lines) + "\n" if writer.lines else ""


def _front_matter(children: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """YAML lines for the leading childless ``Key:: value`` blocks, and the blocks left."""
    lines: list[str] = []
    seen: set[str] = set()
    count = 0
    for raw in children:
        attr = parse_attribute(str(raw.get("string", "")))
        if attr is None or raw.get("children") or "\n" in attr[1]:
            break
        key, value = attr
        norm = attribute_key(key)
        if norm in seen or not re.fullmatch(r"[A-Za-z0-9_][\w \-]*", key):
            break
        seen.add(norm)
        count += 1
        if norm in ("tags", "tag"):
            tags = tag_names(value) or [t.strip() for t in value.split(",") if t.strip()]
            lines.append(f"tags: [{', '.join(_yaml(t) for t in tags)}]")
        else:
            lines.append(f"{key}: {_yaml(value)}")
    return lines, children[count:]


def _yaml(value: str) -> str:
    """A YAML scalar for ``value``: plain when that reads back the same, else double-quoted."""
    if (_PLAIN_YAML.match(value) and value == value.strip() and " #" not in value
            and value not in ("~", "null", "Null", "NULL")):
        return value
    return json.dumps(value, ensure_ascii=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path, help="a Roam JSON export")
    parser.add_argument("dest", type=Path, help="the folder to create the vault in")
    parser.add_argument("name", help="the vault's name (its folder)")
    parser.add_argument("--block-ids", choices=("all", "cards"), default="all")
    args = parser.parse_args()
    pages = json.loads(args.export.read_text(encoding="utf-8"))
    print(write(pages, args.dest, args.name, block_ids=args.block_ids))


if __name__ == "__main__":
    main()

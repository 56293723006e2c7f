"""Writing edits made in Anki back into the notes, and the journal that can undo them.

This module's public interface is ``BlockEdit``, the writers (``FolderWriter`` for Logseq
and Obsidian folders, ``RoamWriter`` for Roam's backend API and Roam desktop's Local API)
and ``Journal``. Sync decides what to write (write_back.py finds the exact text); a writer
only writes, and says what it could not.

Guarantees of ``FolderWriter``:
- only the card block's own lines change: its text, not its bullet or indentation, not its
  properties (``id::``…), its ``^block-id``, its children or any other line; every other byte
  of the file stays as it was;
- a file that changed since the graph was read is not touched (the edit then stays in Anki
  and is reported as a conflict), nor is one whose block text is not found exactly once;
- each file is replaced atomically (a temporary file beside it, then a rename), and never
  through a symlink. ``replace_atomically`` is the one "replace if unchanged" of every writer
  of notes files (id_writes.py uses it too).

Guarantees of ``RoamWriter``: a block whose text in Roam is no longer what the sync read is
not touched (Roam has no compare-and-set, so the writer asks first, one query for all the
blocks); a refused token stops the writing at once, with Roam's reason.

Every edit written is appended to the journal first (JSON lines, beside the collection), with
what it replaced: Roam's API has no undo, and "Revert last write-back" (the CLI's
``revert-write-back``) puts the text back wherever the notes still say what was written.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from .model import SourceError
from .sources.files import decode, read_file
from .sources.outline import digest
from .sources.registry import Client


@dataclass(frozen=True)
class BlockEdit:
    """One block's new text. ``file`` is the page's path in a notes folder ("" elsewhere)."""

    key: str
    uid: str
    before: str
    after: str
    file: str = ""


@dataclass
class Written:
    """What a writer did: the edits written, and why the others were not (by key)."""

    written: list[BlockEdit] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


class BlockWriter(Protocol):
    where: str  # the source, for the journal and messages

    def write(self, edits: Sequence[BlockEdit]) -> Written: ...


_STRINGS = "[:find ?u ?s :in $ [?u ...] :where [?b :block/uid ?u] [?b :block/string ?s]]"


class RoamWriter:
    """Writes block texts through one of Roam's APIs."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.where = client.label

    def write(self, edits: Sequence[BlockEdit]) -> Written:
        done = Written()
        if not edits:
            return done
        try:
            rows, _ = self.client.q(_STRINGS, [sorted({e.uid for e in edits})])
        except SourceError as err:
            done.failed = {e.key: err.message for e in edits}
            return done
        now = {str(row[0]): row[1] for row in rows or () if isinstance(row, list | tuple)
               and len(row) == 2}
        for at, edit in enumerate(edits):
            if now.get(edit.uid) != edit.before:
                done.failed[edit.key] = "the block changed in Roam since it was read"
                continue
            try:
                self.client.update_block(edit.uid, edit.after)
            except SourceError as err:
                # Refused or unreachable: the next ones would be too.
                done.failed.update((e.key, err.message) for e in edits[at:])
                break
            done.written.append(edit)
        return done


class FolderWriter:
    """Writes block texts into the pages of a Logseq graph or Obsidian vault."""

    def __init__(self, root: str, file_digests: dict[str, str]) -> None:
        self.where = root
        self.root = Path(root)
        self.file_digests = dict(file_digests)

    def write(self, edits: Sequence[BlockEdit]) -> Written:
        done = Written()
        by_file: dict[str, list[BlockEdit]] = {}
        for edit in edits:
            by_file.setdefault(edit.file, []).append(edit)
        for rel, file_edits in by_file.items():
            problem = self._write_file(rel, file_edits) if rel else "the block has no file"
            if problem:
                done.failed.update((e.key, problem) for e in file_edits)
            else:
                done.written.extend(file_edits)
        return done

    def _write_file(self, rel: str, edits: list[BlockEdit]) -> str:
        path = self.root / rel
        if path.is_symlink():
            return f"{path}: a symlink (edit its target in your notes app)"
        try:
            data = read_file(path)
        except OSError as err:
            return f"{path}: cannot read it ({err.strerror or err})"
        except SourceError as err:
            return err.message
        if digest(data) != self.file_digests.get(rel):
            return f"{path}: changed since it was read"
        text, utf8 = decode(data)
        if not utf8:
            return f"{path}: not UTF-8, so it is left as it is"
        for edit in edits:
            if edit.before.count("\n") != edit.after.count("\n"):
                return (f"{path}: the edit changes how many lines the block has, which is "
                        "left to your notes app")
            replaced = replace_block_text(text, edit.before, edit.after)
            if replaced is None:
                return f"{path}: the block's text is not found there exactly once"
            text = replaced
        new_data = text.encode()
        if data.startswith(codecs.BOM_UTF8):
            new_data = codecs.BOM_UTF8 + new_data
        try:
            replace_atomically(path, new_data, data)
        except FileChanged:
            return f"{path}: changed while it was written"
        except OSError as err:
            return f"{path}: cannot write it ({err.strerror or err})"
        self.file_digests[rel] = digest(new_data)
        return ""


def replace_block_text(text: str, before: str, after: str) -> str | None:
    """``text`` (a page file) with the block whose text is ``before`` saying ``after``.

    A block's text is its lines without their bullet, indentation or list marker before, and
    without a trailing ``^block-id`` after: those stay. The block must be found exactly once,
    and ``after`` must have as many lines (each line keeps the prefix it had)."""
    old_lines, new_lines = before.split("\n"), after.split("\n")
    if len(old_lines) != len(new_lines) or not before.strip():
        return None
    lines = text.split("\n")
    found: list[int] = []
    for start in range(len(lines) - len(old_lines) + 1):
        if all(_holds(lines[start + k], old) for k, old in enumerate(old_lines)):
            found.append(start)
            if len(found) > 1:
                return None
    if len(found) != 1:
        return None
    start = found[0]
    for k, (old, new) in enumerate(zip(old_lines, new_lines, strict=True)):
        line = lines[start + k]
        at = _content_at(line, old)
        lines[start + k] = line[:at] + new + line[at + len(old):]
    return "\n".join(lines)


def _holds(line: str, content: str) -> bool:
    return _content_at(line, content) >= 0


def _content_at(line: str, content: str) -> int:
    """Where ``content`` starts in ``line`` when the line is a prefix (indentation, bullet,
    list number, quote or heading marks, a carriage return's absence aside), the content,
    and at most a ``^block-id`` after it; else -1."""
    body = line.rstrip("\r")
    at = body.find(content)
    if at < 0:
        return -1
    prefix, suffix = body[:at], body[at + len(content):]
    if prefix.strip(" \t-*+>#0123456789.)[]xX") or (suffix.strip() and not _block_id(suffix)):
        return -1
    return at


def _block_id(suffix: str) -> bool:
    word = suffix.strip()
    return word.startswith("^") and word[1:].replace("-", "").isalnum()


class FileChanged(Exception):
    """The file no longer holds the bytes a replace expected: someone else wrote it."""


def replace_atomically(path: Path, new_data: bytes, expected: bytes) -> None:
    """Write ``new_data`` to a temporary file beside ``path``, then swap it in, unless the
    file no longer holds ``expected`` (FileChanged; checked last, to keep the window for a
    lost edit tiny). The file keeps its permissions."""
    mode = path.stat().st_mode & 0o7777
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(new_data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        if read_file(path) != expected:
            raise FileChanged
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


class Journal:
    """The write-backs made, one JSON line per sync that wrote some, newest last."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, where: str, edits: Iterable[BlockEdit]) -> None:
        entry = {"at": int(time.time()), "where": where, "edits": [asdict(e) for e in edits]}
        if not entry["edits"]:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def last(self) -> tuple[str, list[BlockEdit]] | None:
        """The newest batch: where it was written and its edits."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return None
        for line in reversed(lines):
            try:
                entry = json.loads(line)
                return entry["where"], [BlockEdit(**e) for e in entry["edits"]]
            except (ValueError, KeyError, TypeError):
                continue
        return None

    def drop_last(self) -> None:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return
        self.path.write_text("".join(f"{line}\n" for line in lines[:-1]), encoding="utf-8")


def reverted(edits: Sequence[BlockEdit]) -> list[BlockEdit]:
    """The edits that put back what ``edits`` replaced."""
    return [BlockEdit(e.key, e.uid, e.after, e.before, e.file) for e in edits]

"""Reading a source's files within the limits: regular files only, bounded bytes, any name.

- ``read_file`` opens a path without blocking (a FIFO named ``x.md`` must not hang a sync),
  refuses anything that is not a regular file (pipes, devices, sockets, folders), and reads at
  most ``limits.MAX_FILE_BYTES``, also when the file grows while it is read;
- a ``Budget`` counts what one read of a source takes in across its files: bytes against
  ``limits.MAX_TOTAL_BYTES``, files against ``limits.MAX_FILES``;
- ``walk`` lists a notes folder without recursion, at most ``limits.MAX_FOLDER_DEPTH`` levels
  deep, and yields only regular files: dot-entries are left out, folder symlinks are not
  followed, file symlinks that lead out of the folder (or nowhere) are skipped;
- ``decode`` is the one way every folder and zip reader turns a file's bytes into text:
  UTF-8 (a BOM dropped), else Windows-1252, so a file one reader reads no other refuses;
- ``note_folders`` lists the folders of a notes folder that may hold notes (for detection and
  the watcher), without recursion and within ``limits.MAX_FOLDER_DEPTH``;
- ``display_name`` turns a name the file system gives that is not valid Unicode (bytes that
  are not UTF-8, on Linux) into readable text for titles and messages, as ``decode`` reads
  bytes; the file is still opened by its real name.

Every failure is a SourceError naming the file and, past a limit, the limit.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..limits import MAX_FILE_BYTES, MAX_FILES, MAX_FOLDER_DEPTH, MAX_TOTAL_BYTES
from ..model import SourceError
from .outline import within

# A FIFO opened for reading blocks until a writer comes; without O_NONBLOCK the open itself
# would hang before fstat could tell it is no file. (Windows has no FIFOs and no flag.)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
_CHUNK = 1024**2
# Folders a notes folder keeps for itself: never notes, never watched.
_SKIPPED_DIRS = frozenset({".git", ".obsidian", ".trash", "logseq", "node_modules"})


def size_text(n: int) -> str:
    """A byte count for messages: ``1 GiB``, ``20 MiB``, ``512 bytes``."""
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


class Budget:
    """What one read of a source has taken in so far: bytes and files, against the totals."""

    def __init__(self, source: str | os.PathLike[str]) -> None:
        self.source = source
        self.bytes = 0
        self.files = 0

    def count_file(self) -> None:
        self.files += 1
        if self.files > MAX_FILES:
            raise SourceError(self.source, f"holds more than {MAX_FILES:,} files (the limit "
                                           "for one source); not read")

    def take(self, size: int) -> None:
        self.bytes += size
        if self.bytes > MAX_TOTAL_BYTES:
            raise SourceError(self.source, f"its files hold more than "
                                           f"{size_text(MAX_TOTAL_BYTES)} together (the limit "
                                           "for one source); not read")


def open_regular(path: str | os.PathLike[str], buffering: int = -1) -> BinaryIO:
    """``path`` opened for reading if it is (or links to) a regular file; SourceError for
    anything else or when it cannot be opened. Never blocks on a FIFO."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as err:
        raise SourceError(path, f"cannot read file ({err.strerror or err})") from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as err:
        os.close(fd)
        raise SourceError(path, f"cannot read file ({err.strerror or err})") from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise SourceError(path, f"{_kind(mode)}, not a file; not read")
    return open(fd, "rb", buffering=buffering)


def read_file(path: str | os.PathLike[str], budget: Budget | None = None,
              limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file at ``path``; SourceError if it is anything else, cannot
    be read, or holds more than ``limit`` bytes (or would pass the ``budget``)."""
    with open_regular(path, buffering=0) as handle:
        try:
            size = os.fstat(handle.fileno()).st_size
            if size > limit:
                raise SourceError(path, too_large(limit, size))
            if budget is not None:
                budget.take(size)
            parts: list[bytes] = []
            total = 0
            # One byte more than its size, to see the end; a file that grows while it is
            # read is read on in chunks, up to the limit.
            want = size + 1
            while chunk := handle.read(want):
                total += len(chunk)
                if total > limit:
                    raise SourceError(path, too_large(limit))
                parts.append(chunk)
                want = max(_CHUNK, size + 1 - total)
        except OSError as err:
            raise SourceError(path, f"cannot read file ({err.strerror or err})") from None
    if budget is not None and total > size:
        budget.take(total - size)
    return parts[0] if len(parts) == 1 else b"".join(parts)


@dataclass(frozen=True, slots=True)
class Found:
    """A file ``walk`` found: ``rel`` is its posix path below the root, as text (names made
    readable by ``display_name``), ``path`` the path to open it by."""

    rel: str
    path: str


def walk(
    root: str | os.PathLike[str],
    keep_file: Callable[[str], bool],
    budget: Budget | None = None,
    top: str = "",
) -> Iterator[Found]:
    """The regular files below ``root`` (or below its subfolder ``top``) whose readable name
    ``keep_file`` accepts. Dot-entries are never listed. Folders are listed in no particular
    order; each entry listed counts against the ``budget``'s files."""
    base = os.fspath(root)
    real_root = os.path.realpath(base)
    start = os.path.join(base, top) if top else base
    pending: list[tuple[str, str, int]] = [(start, top, 0)]
    while pending:
        folder, rel_folder, depth = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError as err:
            raise SourceError(folder, f"cannot list folder ({err.strerror or err})") from None
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            if budget is not None:
                budget.count_file()
            shown = display_name(name)
            rel = f"{rel_folder}/{shown}" if rel_folder else shown
            try:
                if entry.is_dir(follow_symlinks=False):
                    if depth + 1 > MAX_FOLDER_DEPTH:
                        where = rel if len(rel) <= 80 else f"{rel[:38]}…{rel[-38:]}"
                        raise SourceError(base, f"folders nested more than "
                                                f"{MAX_FOLDER_DEPTH} levels deep ({where}); "
                                                "not read")
                    pending.append((entry.path, rel, depth + 1))
                    continue
                if not keep_file(shown) or not entry.is_file():
                    continue  # a pipe, device, socket, or a link to a folder or to nothing
                if entry.is_symlink() and not within(real_root, os.path.realpath(entry.path)):
                    continue
            except OSError:
                continue  # gone while listed, or a link that cannot be followed
            yield Found(rel, entry.path)


def decode(data: bytes) -> tuple[str, bool]:
    """File bytes -> (text, whether they were valid UTF-8). A UTF-8 BOM is dropped.

    Anything else is read as Windows-1252 (the usual non-UTF-8 encoding of notes written on
    Windows), so one odd file never stops a sync; undefined bytes become U+FFFD. Writers keep
    to the UTF-8 ones (they would not write the rest back as it was).
    """
    try:
        return data.decode("utf-8-sig"), True
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), False


def note_folders(root: Path) -> Iterator[Path]:
    """The folders of a notes folder that may hold notes, ``root`` first, without recursion;
    dot-folders and the apps' own (``logseq/``, ``.obsidian/``…) are left out, and so is
    anything deeper than ``MAX_FOLDER_DEPTH`` (reading such a folder fails and says so)."""
    pending = [(str(root), 0)]
    while pending:
        folder, depth = pending.pop()
        yield Path(folder)
        if depth >= MAX_FOLDER_DEPTH:
            continue
        try:
            with os.scandir(folder) as entries:
                pending.extend(
                    (entry.path, depth + 1) for entry in entries
                    if entry.name not in _SKIPPED_DIRS and not entry.name.startswith(".")
                    and entry.is_dir(follow_symlinks=False)
                )
        except OSError:
            continue


def display_name(name: str) -> str:
    """``name`` as readable text: itself when it is valid Unicode; otherwise its bytes read as
    UTF-8 or, failing that, as Windows-1252 (as ``decode`` reads files); a name with halves of
    UTF-16 pairs (Windows) keeps the rest, with U+FFFD for each half."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        pass
    try:
        raw = os.fsencode(name)
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in name)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def too_large(limit: int, size: int | None = None) -> str:
    """The message for a file (or zip member) past ``limit`` bytes."""
    held = f"{size_text(size)}, more than" if size is not None else "more than"
    return f"holds {held} the {size_text(limit)} one file may hold; not read"

"""Finding and opening export files: a plain file, a .zip holding one, or a folder of exports.

Guarantees:
- nothing is ever extracted to disk (zip members are read in memory, so a member named
  ``../../x`` cannot write anywhere, and such a zip is refused as malformed);
- only regular files are opened (a FIFO named ``x.zip`` cannot hang a sync), and every read
  stays within the limits (``limits``): bytes per file and per zip member, members per zip
  (counted before the zip's directory is loaded), bytes of all members together. A member is
  read in a stream and stopped at its limit, whatever its header claims;
- a broken zip, a member that fails to decompress, an encrypted member or a compression method
  Python cannot read are each a SourceError naming the zip and the member;
- a folder yields its newest file (by modification time; ties to the last name, which for
  Roam's ``Roam-Export-<timestamp>`` names is also the newest) that looks like a Roam export
  of the formats asked for (``newest_roam_export``).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ..limits import MAX_FILE_BYTES, MAX_FILES, MAX_TOTAL_BYTES
from ..model import SourceError
from .files import Budget, open_regular, read_file, size_text, too_large

_CHUNK = 1024**2
# The end of a zip's central directory (and zip64's), where its number of entries is written.
_END = b"PK\x05\x06"
_END64_LOCATOR = b"PK\x06\x07"
_END64 = b"PK\x06\x06"
# How many of a folder's newest candidates newest_roam_export opens to find an export.
_SNIFFED = 50
UNREADABLE = "?"


def newest_roam_export(folder: Path, kinds: Iterable[str] = ("json", "edn", "md")) -> Path:
    """The newest file in ``folder`` that is a Roam export of one of ``kinds``: a ``.json``
    that opens a list, an ``.edn`` that opens a map, or a zip of such a file or (``md``) of
    Markdown pages only. Other files (a ``package.json``, a zip of photos, a zip that holds a
    README.md among other files: what a Downloads folder holds) are passed over. A file that
    cannot be opened or read as a zip is taken, not passed over: it may be the newest export,
    broken, and reading it says so, where an older export would silently go back in time."""
    kinds = tuple(kinds)
    suffixes = [f".{k}" for k in kinds if k != "md"] + [".zip"]
    candidates = _candidates(folder, suffixes)
    for candidate in candidates[:_SNIFFED]:
        kind = export_kind(candidate)
        if kind in kinds or kind == UNREADABLE:
            return candidate
    names = {"json": ".json", "edn": ".edn", "md": "Markdown"}
    looked = ", ".join(names[k] for k in kinds)
    more = f" among its {_SNIFFED} newest candidates" if len(candidates) > _SNIFFED else ""
    raise SourceError(folder, f"no Roam export ({looked}, or a .zip of one) found in this "
                              f"folder{more}")


def export_kind(path: Path) -> str:
    """``json``, ``edn`` or ``md`` for a file that looks like a Roam export of that format
    (see ``newest_roam_export``), UNREADABLE for one that cannot be opened or unzipped, else
    ""; never raises."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".json", ".edn"):
            head = _head(path).lstrip(b"\xef\xbb\xbf \t\r\n")
            if suffix == ".json":
                return "json" if head.startswith(b"[") else ""
            return "edn" if head.startswith((b"#datascript/DB", b"{")) else ""
        if suffix == ".zip":
            with open_zip(path) as archive:
                return zip_export_kind(archive, path)
    except (SourceError, OSError):
        return UNREADABLE
    return ""


def zip_export_kind(archive: zipfile.ZipFile, path: Path) -> str:
    """What a zip from a folder of exports holds: ``json`` or ``edn`` (one such file), ``md``
    (Markdown pages and nothing else), or ""."""
    files = [i.filename.lower() for i in archive.infolist() if not i.is_dir()
             and not any(p.startswith(".") for p in PurePosixPath(i.filename).parts)]
    for kind in ("json", "edn"):
        if sum(1 for name in files if name.endswith(f".{kind}")) == 1:
            return kind
    if files and all(name.endswith(".md") for name in files):
        return "md"
    return ""


def read_export_bytes(path: Path, suffix: str) -> tuple[bytes, str]:
    """The bytes of the one ``suffix`` file at ``path``, which may be that file or a zip.

    Returns the bytes and a name for messages (``export.zip!graph.json``).
    """
    if path.suffix.lower() == ".zip":
        return _read_zip_member(path, suffix)
    return read_file(path), str(path)


def _read_zip_member(path: Path, suffix: str) -> tuple[bytes, str]:
    with open_zip(path) as archive:
        members = zip_members(archive, path, suffix)
        if not members:
            raise SourceError(path, f"zip holds no {suffix} file")
        if len(members) > 1:
            names = ", ".join(m.filename for m in members[:3])
            raise SourceError(path, f"zip holds more than one {suffix} file ({names})")
        member = members[0]
        return read_member(archive, member, path), f"{path}!{member.filename}"


@contextmanager
def open_zip(path: Path) -> Iterator[zipfile.ZipFile]:
    """The zip at ``path``; a broken or unreadable one, one that is not a regular file, or one
    with more than ``limits.MAX_FILES`` members raises SourceError."""
    with open_regular(path) as handle:
        try:
            entries = _entry_count(handle)
            if entries is not None and entries > MAX_FILES:
                raise SourceError(path, f"zip holds {entries:,} files, more than the "
                                        f"{MAX_FILES:,} one source may hold; not read")
            handle.seek(0)
            archive = zipfile.ZipFile(handle)
        except zipfile.BadZipFile as err:
            raise SourceError(path, f"not a valid zip file ({err})") from None
        except OSError as err:
            raise SourceError(path, f"cannot read file ({err.strerror or err})") from None
        except (ValueError, EOFError, OverflowError, NotImplementedError) as err:
            raise SourceError(path, f"not a valid zip file ({type(err).__name__})") from None
        with archive:
            yield archive


def zip_members(archive: zipfile.ZipFile, path: Path, suffix: str) -> list[zipfile.ZipInfo]:
    """The zip's ``suffix`` files in name order, hidden ones (any part starting with ".")
    left out. A member whose name could point outside the zip refuses the whole zip, and so
    do members that together would pass ``limits.MAX_TOTAL_BYTES``."""
    infos = archive.infolist()
    if len(infos) > MAX_FILES:
        raise SourceError(path, f"zip holds {len(infos):,} files, more than the "
                                f"{MAX_FILES:,} one source may hold; not read")
    for info in infos:
        if _unsafe_member(info.filename):
            raise SourceError(path, f"unsafe file name in zip: {info.filename!r}")
    members = sorted(
        (i for i in infos if not i.is_dir() and i.filename.lower().endswith(suffix)
         and not any(part.startswith(".") for part in PurePosixPath(i.filename).parts)),
        key=lambda i: i.filename,
    )
    declared = sum(m.file_size for m in members)
    if declared > MAX_TOTAL_BYTES:
        raise SourceError(path, f"its {suffix} files hold {size_text(declared)} unpacked, more "
                                f"than the {size_text(MAX_TOTAL_BYTES)} one source may hold; "
                                "not read")
    return members


def read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, path: Path,
                budget: Budget | None = None) -> bytes:
    """One member's bytes, read in a stream and stopped at ``limits.MAX_FILE_BYTES`` (or at
    the ``budget``) whatever the member's header says."""
    where = f"{path}!{member.filename}"
    if member.flag_bits & 0x1:
        raise SourceError(where, "the file is encrypted; export again without a password")
    if member.file_size > MAX_FILE_BYTES:
        raise SourceError(where, too_large(MAX_FILE_BYTES, member.file_size))
    parts: list[bytes] = []
    total = 0
    try:
        with archive.open(member) as stream:
            while chunk := stream.read(_CHUNK):
                total += len(chunk)
                if total > MAX_FILE_BYTES:
                    raise SourceError(where, too_large(MAX_FILE_BYTES))
                if budget is not None:
                    budget.take(len(chunk))
                parts.append(chunk)
    except SourceError:
        raise
    except NotImplementedError:
        raise SourceError(where, "compressed in a way Python cannot read; export it again "
                                 "or zip it with Deflate") from None
    except Exception as err:  # zlib, bz2 and lzma each fail in their own way on bad data
        raise SourceError(where, f"the zip's data is corrupt ({_reason(err)})") from None
    return b"".join(parts)


def _candidates(folder: Path, suffixes: Iterable[str]) -> list[Path]:
    """The folder's regular, non-hidden files with one of ``suffixes``, newest first."""
    wanted = {s.lower() for s in suffixes}
    try:
        with os.scandir(folder) as listing:
            entries = list(listing)
    except OSError as err:
        raise SourceError(folder, f"cannot list folder ({err.strerror or err})") from None
    found: list[tuple[float, str, Path]] = []
    for entry in entries:
        name = entry.name
        if name.startswith(".") or Path(name).suffix.lower() not in wanted:
            continue
        try:
            if entry.is_file():
                found.append((entry.stat().st_mtime, name, Path(entry.path)))
        except OSError:
            continue
    found.sort(reverse=True)
    return [path for _, _, path in found]


def _head(path: Path, size: int = 64) -> bytes:
    with open_regular(path, buffering=0) as handle:
        return handle.read(size)


def _entry_count(handle: BinaryIO) -> int | None:
    """The number of entries a zip's end record gives, read before zipfile loads the whole
    directory (which costs about half a kilobyte of memory per entry); None if not found (then
    zipfile decides what the file is)."""
    size = handle.seek(0, os.SEEK_END)
    tail_size = min(size, 22 + 0xFFFF)
    handle.seek(size - tail_size)
    tail = handle.read(tail_size)
    at = tail.rfind(_END)
    if at < 0 or len(tail) - at < 22:
        return None
    entries = int.from_bytes(tail[at + 10:at + 12], "little")
    locator = at - 20
    if entries != 0xFFFF or locator < 0 or tail[locator:locator + 4] != _END64_LOCATOR:
        return entries
    handle.seek(int.from_bytes(tail[locator + 8:locator + 16], "little"))
    record = handle.read(56)
    if len(record) < 40 or record[:4] != _END64:
        return None
    return int.from_bytes(record[32:40], "little")


def _reason(err: Exception) -> str:
    text = " ".join(str(err).split())[:80]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _unsafe_member(name: str) -> bool:
    posix = PurePosixPath(name.replace("\\", "/"))
    return posix.is_absolute() or ".." in posix.parts or (len(name) > 1 and name[1] == ":")

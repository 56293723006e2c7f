"""Finding and opening export files: a plain file, a .zip holding one, or a folder of exports.

Guarantees: nothing is ever extracted to disk (zip members are read in memory, so a member
named ``../../x`` cannot write anywhere, and such a zip is refused as malformed); a folder
yields its newest export by modification time.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from ..model import SourceError

MAX_MEMBER_BYTES = 2 * 1024**3


def newest_export(folder: Path, suffixes: Iterable[str]) -> Path:
    """The most recently modified file in ``folder`` whose suffix is one of ``suffixes``.

    Ties (a fresh checkout gives every file the same mtime) go to the last name in sort order,
    which for Roam's ``Roam-Export-<timestamp>`` names is also the newest.
    """
    wanted = {s.lower() for s in suffixes}
    candidates = [
        p for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in wanted and not p.name.startswith(".")
    ]
    if not candidates:
        listed = ", ".join(sorted(wanted))
        raise SourceError(folder, f"no export found in this folder (looked for {listed})")
    return max(candidates, key=lambda p: (p.stat().st_mtime, p.name))


def read_export_bytes(path: Path, suffix: str) -> tuple[bytes, str]:
    """The bytes of the one ``suffix`` file at ``path``, which may be that file or a zip.

    Returns the bytes and a name for messages (``export.zip!graph.json``).
    """
    if path.suffix.lower() == ".zip":
        return _read_zip_member(path, suffix)
    try:
        return path.read_bytes(), str(path)
    except OSError as err:
        raise SourceError(path, f"cannot read file ({err.strerror or err})") from None


def _read_zip_member(path: Path, suffix: str) -> tuple[bytes, str]:
    with open_zip(path) as archive:
        members = zip_members(archive, path, suffix)
        if not members:
            raise SourceError(path, f"zip holds no {suffix} file")
        if len(members) > 1:
            names = ", ".join(m.filename for m in members[:3])
            raise SourceError(path, f"zip holds more than one {suffix} file ({names})")
        member = members[0]
        if member.file_size > MAX_MEMBER_BYTES:
            raise SourceError(path, f"{member.filename} is too large to read")
        return archive.read(member), f"{path}!{member.filename}"


@contextmanager
def open_zip(path: Path) -> Iterator[zipfile.ZipFile]:
    """The zip at ``path``; a broken or unreadable one raises SourceError."""
    try:
        with zipfile.ZipFile(path) as archive:
            yield archive
    except zipfile.BadZipFile as err:
        raise SourceError(path, f"not a valid zip file ({err})") from None
    except OSError as err:
        raise SourceError(path, f"cannot read file ({err.strerror or err})") from None


def zip_members(archive: zipfile.ZipFile, path: Path, suffix: str) -> list[zipfile.ZipInfo]:
    """The zip's ``suffix`` files in name order, hidden ones (any part starting with ".")
    left out. A member whose name could point outside the zip refuses the whole zip."""
    infos = archive.infolist()
    for info in infos:
        if _unsafe_member(info.filename):
            raise SourceError(path, f"unsafe file name in zip: {info.filename!r}")
    return sorted(
        (i for i in infos if not i.is_dir() and i.filename.lower().endswith(suffix)
         and not any(part.startswith(".") for part in PurePosixPath(i.filename).parts)),
        key=lambda i: i.filename,
    )


def _unsafe_member(name: str) -> bool:
    posix = PurePosixPath(name.replace("\\", "/"))
    return posix.is_absolute() or ".." in posix.parts or (len(name) > 1 and name[1] == ":")

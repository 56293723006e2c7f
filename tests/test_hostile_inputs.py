"""Broken and hostile inputs, per reader, through the CLI as a user runs it.

Every input is generated here (nothing large is committed: big files are sparse, big zip
members only declare their size). Each run is a real ``python -m tools.bridge`` child with an
address-space limit and a timeout that only catches hangs, and ends in one of two ways:
- bad input: exit 2, exactly one line on stderr naming the file and what is wrong, no
  traceback, and the collection byte for byte and mtime as it was;
- one bad part: exit 0, nothing on stderr, the good card synced, one warning per bad block.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from anki.collection import Collection

from addon.core import limits

ROOT = Path(__file__).resolve().parent.parent
MEMORY_LIMIT = 1024**3  # address space of each run: far below what a runaway read needs
HANG = 60  # seconds: only a hang gets anywhere near this
GOOD_JSON = {"string": "Good card #card", "uid": "good", "children": [
    {"string": "its answer", "uid": "good-answer"}]}
GOOD_MD = "- Good card #card\n    - its answer\n"
GOOD_LOGSEQ = "- Good card #card\n\t- its answer\n"


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def bridge(*args: str | Path, env: dict[str, str] | None = None,
           timeout: float = HANG) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process, within the memory limit."""
    return subprocess.run(
        [sys.executable, "-m", "tools.bridge", "sync", *map(str, args)],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, preexec_fn=_limit_memory,
    )


def state(collection: Path) -> tuple[bytes, int]:
    return collection.read_bytes(), collection.stat().st_mtime_ns


def assert_bad_input(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    """Exit 2 with exactly one plain line on stderr, holding each of ``expected``."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert result.returncode == 2, result.stderr
    assert line.startswith("roam-bridge: ") and line.isprintable()
    for text in expected:
        assert text in line, line
    return line


# --- building inputs ----------------------------------------------------------------------


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def export(*pages: dict) -> str:
    return json.dumps([*pages, {"title": "Fine", "children": [GOOD_JSON]}])


def nested_json(depth: int) -> str:
    """A chain of ``depth`` blocks as JSON text, written out without recursion."""
    head = "".join(f'{{"string":"level {i}","uid":"level-{i}","children":[' for i in range(depth))
    return head + '{"string":"bottom","uid":"bottom"}' + "]}" * depth


def sparse(path: Path, size: int) -> Path:
    """A file that says it holds ``size`` bytes and takes no room on disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def unix_socket(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
    return path


_DEEP: list[Path] = []  # the roots of deep_folders' chains, removed after each test


def deep_folders(root: Path, depth: int, leaf: str, text: str) -> None:
    """``depth`` nested folders ``d/d/…`` under ``root``, a note at the bottom."""
    here = os.getcwd()
    root.mkdir(parents=True, exist_ok=True)
    _DEEP.append(root)
    os.chdir(root)
    try:
        for _ in range(depth):
            os.mkdir("d")
            os.chdir("d")
        Path(leaf).write_text(text)
    finally:
        os.chdir(here)


def remove_deep_folders(root: Path) -> None:
    """Remove a chain deep_folders made, from the bottom up. pytest's own clean-up of old
    temporary folders uses shutil.rmtree, which recurses (before Python 3.12) and would fail
    on it in every later session on the machine."""
    here = os.getcwd()
    os.chdir(root)
    depth = 0
    try:
        while os.path.isdir("d"):
            os.chdir("d")
            depth += 1
        for _ in range(depth):
            for name in os.listdir("."):
                os.unlink(name)
            os.chdir("..")
            os.rmdir("d")
    finally:
        os.chdir(here)


@pytest.fixture(autouse=True)
def _no_deep_folders_left() -> Iterator[None]:
    yield
    while _DEEP:
        remove_deep_folders(_DEEP.pop())


def zipped(path: Path, members: dict[str, str | bytes],
           compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def patch_central(path: Path, field: str, value: int, member: int | None = None) -> Path:
    """Rewrite one field of the central directory entry of each member (or of one): what a
    hostile zip's header claims. Fields: flags, method, file_size."""
    offsets = {"flags": (8, "<H"), "method": (10, "<H"), "file_size": (24, "<I")}
    at, fmt = offsets[field]
    data = bytearray(path.read_bytes())
    start = 0
    index = 0
    while (start := data.find(b"PK\x01\x02", start)) >= 0:
        if member is None or member == index:
            struct.pack_into(fmt, data, start + at, value)
        index += 1
        start += 4
    if field == "method":  # the local header too, which zipfile compares
        start = 0
        while (start := data.find(b"PK\x03\x04", start)) >= 0:
            struct.pack_into("<H", data, start + 8, value)
            start += 4
    path.write_bytes(bytes(data))
    return path


def claim_entries(path: Path, entries: int) -> Path:
    """Make the zip's end records (zip64's included) say it holds ``entries`` files."""
    data = path.read_bytes()
    end = data.rfind(b"PK\x05\x06")
    cd_size, cd_offset = struct.unpack_from("<II", data, end + 12)
    zip64 = struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries,
                        cd_size, cd_offset)
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, end, 1)
    record = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, cd_size,
                         cd_offset, 0)
    path.write_bytes(data[:end] + zip64 + locator + record)
    return path


def corrupt_data(path: Path) -> Path:
    data = bytearray(path.read_bytes())
    start = data.find(b"PK\x03\x04")
    name_length, extra_length = struct.unpack_from("<HH", data, start + 26)
    body = start + 30 + name_length + extra_length
    data[body + 2:body + 40] = b"\xff" * 38
    path.write_bytes(bytes(data))
    return path


def logseq_graph(root: Path) -> Path:
    write(root / "pages" / "Fine.md", GOOD_LOGSEQ)
    return root


def obsidian_vault(root: Path) -> Path:
    (root / ".obsidian").mkdir(parents=True)
    write(root / "Fine.md", "- Good card #card\n    - its answer\n")
    return root


def md_folder(root: Path) -> Path:
    write(root / "Fine.md", GOOD_MD)
    return root


def chain_md(levels: int, indent: str) -> str:
    return "".join(f"{indent * i}- level {i} #card\n" for i in range(levels))


def edn(*datoms: str) -> str:
    return "#datascript/DB {:schema {} :datoms [" + " ".join(datoms) + "]}"


GOOD_EDN = ('[1 :node/title "Fine" 536870913] [1 :block/children 2 536870913] '
            '[2 :block/string "Good card #card" 536870913] [2 :block/uid "good" 536870913] '
            '[2 :block/order 0 536870913]')


# --- the table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One hostile input: ``make`` builds it under a folder and returns the source to sync.
    ``bad``: exit 2 with a line holding ``expect`` (and the name ``names`` of the file);
    otherwise exit 0, notes with exactly the ``fronts`` made, ``warnings`` warnings holding
    ``expect``, and ``context`` (if given) shown on a card."""

    make: Callable[[Path], Path]
    expect: str
    bad: bool = True
    names: str = ""
    fronts: tuple[str, ...] = ("Good card",)
    warnings: int = 0
    context: str = ""
    args: tuple[str, ...] = ()


def _zip_bomb(tmp: Path) -> Path:
    """A few hundred bytes that say they unpack to 1.5 GiB (a real bomb's ratio)."""
    return patch_central(zipped(tmp / "bomb.zip", {"Page.md": GOOD_MD}), "file_size",
                         3 * limits.GiB // 2)


def _fifo_in(folder: Callable[[Path], Path], name: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        root = folder(tmp / "notes")
        fifo(root / name)
        return root
    return make


def _socket_in(folder: Callable[[Path], Path], name: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        root = folder(tmp / "notes")
        unix_socket(root / name)
        return root
    return make


def _odd_name_in(folder: Callable[[Path], Path], sub: str, text: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        root = folder(tmp / "notes")
        target = root / sub if sub else root
        target.mkdir(parents=True, exist_ok=True)
        # Latin-1 bytes, as an old Linux disk names a file: not UTF-8, so not a valid str.
        with open(os.path.join(os.fsencode(target), b"Caf\xe9 \xff.md"), "w") as handle:
            handle.write(text)
        return root
    return make


def _deep_in(folder: Callable[[Path], Path], sub: str, text: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        root = folder(tmp / "notes")
        deep_folders(root / sub if sub else root, 1000, "deep.md", text)
        return root
    return make


def _with(folder: Callable[[Path], Path], rel: str, data: str | bytes
          ) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        root = folder(tmp / "notes")
        write(root / rel, data)
        return root
    return make


def _downloads(tmp: Path) -> Path:
    """A Downloads folder: stray notes, an old JSON export, and the newest export a zip of
    Markdown pages; then a newer zip of photos and a package.json, which are no exports."""
    folder = tmp / "Downloads"
    write(folder / "README.md", "- Stray #card\n")
    old = write(folder / "Roam-Export-1000.json", export())
    zipped(folder / "Roam-Export-2000.zip", {"Fine.md": GOOD_MD, "Other.md": "- x\n"})
    photos = zipped(folder / "photos.zip", {"a.jpg": b"\xff\xd8\xff", "notes.md": "- y"})
    package = write(folder / "package.json", '{"name": "x"}')
    for age, path in ((300, old), (200, folder / "Roam-Export-2000.zip"), (100, photos),
                      (0, package)):
        stamp = 2_000_000_000 - age
        os.utime(path, (stamp, stamp))
    return folder


CASES: dict[str, Case] = {
    # Roam JSON
    "json-truncated": Case(lambda t: write(t / "cut.json", export()[:-40]), "not valid JSON",
                           names="cut.json"),
    "json-not-a-list": Case(lambda t: write(t / "obj.json", '{"pages": []}'),
                            "expected a list of pages"),
    "json-not-utf8": Case(lambda t: write(t / "latin.json", b'[{"title": "Caf\xe9"}]'),
                          "not valid JSON"),
    "json-empty-file": Case(lambda t: write(t / "empty.json", b""), "not valid JSON"),
    "json-nested-2000": Case(
        lambda t: write(t / "deep.json", '[{"title":"D","children":[' + nested_json(2000)
                        + "]}]"), "blocks nested deeper than the JSON reader can read"),
    "json-card-500-levels": Case(
        lambda t: write(t / "tall.json", '[{"title":"Tall","children":[{"string":"Top '
                        '#card","uid":"top","children":[' + nested_json(500) + "]}]},"
                        + export()[1:]),
        f"the blocks below it are nested more than {limits.MAX_DEPTH} levels deep",
        bad=False, warnings=1),
    "json-deck-300-levels": Case(
        lambda t: write(t / "decks.json", export({"title": "Decks", "children": [
            {"string": "Deep #card", "uid": "deep", "children": [{
                "string": "deck:: " + "::".join(f"d{i}" for i in range(300)), "uid": "dk"}]},
        ]})), "has 300 levels; Anki creates at most 11", bad=False, warnings=1),
    "json-block-1.2M-chars": Case(
        lambda t: write(t / "long.json", export({"title": "Long", "children": [
            {"string": "{{" * 600_000 + " #card", "uid": "long"}]})),
        f"(the limit is {limits.MAX_BLOCK_CHARS:,})", bad=False, warnings=1),
    "json-1.5-GiB-sparse": Case(lambda t: sparse(t / "huge.json", 3 * limits.GiB // 2),
                                "holds 1.5 GiB, more than the 1 GiB one file may hold"),
    "json-fifo": Case(lambda t: fifo(t / "pipe.json"), "a named pipe, not a file"),
    "json-device": Case(lambda t: _symlink(t / "zero.json", "/dev/zero"),
                        "a device, not a file"),
    "json-socket": Case(lambda t: unix_socket(t / "sock.json"), "cannot read file"),
    # zips
    "zip-truncated": Case(lambda t: write(t / "cut.zip", zipped(
        t / "whole.zip", {"g.json": export()}).read_bytes()[:-30]), "not a valid zip file"),
    "zip-corrupt-data": Case(lambda t: corrupt_data(zipped(
        t / "bad.zip", {"g.json": export() * 20})), "the zip's data is corrupt",
        names="bad.zip!g.json"),
    "zip-encrypted": Case(lambda t: patch_central(zipped(t / "locked.zip", {"g.json": export()}),
                                                  "flags", 0x1), "encrypted"),
    "zip-unknown-method": Case(lambda t: patch_central(zipped(
        t / "aes.zip", {"g.json": export()}), "method", 99), "compressed in a way"),
    "zip-lying-header": Case(lambda t: patch_central(zipped(
        t / "liar.zip", {"g.json": export()}), "file_size", 10), "corrupt"),
    "zip-bomb-1.5-GiB": Case(_zip_bomb, "holds 1.5 GiB, more than the 1 GiB one file may hold",
                             names="bomb.zip!Page.md"),
    "zip-members-2.6-GiB": Case(lambda t: patch_central(zipped(
        t / "many.zip", {f"P{i}.md": GOOD_MD for i in range(3)}), "file_size", 900 * 1024**2),
        "hold 2.64 GiB unpacked, more than the 2 GiB"),
    "zip-400k-entries": Case(lambda t: claim_entries(zipped(t / "wide.zip", {"g.json": export()}),
                                                     400_000),
                             "zip holds 400,000 files, more than the 300,000"),
    "zip-slip": Case(lambda t: zipped(t / "slip.zip", {"../up.md": GOOD_MD}),
                     "unsafe file name in zip"),
    "zip-fifo": Case(lambda t: fifo(t / "pipe.zip"), "a named pipe, not a file"),
    # Roam EDN
    "edn-truncated": Case(lambda t: write(t / "cut.edn", edn(GOOD_EDN)[:-30]), "ends early"),
    "edn-garbage": Case(lambda t: write(t / "junk.edn", os.urandom(2000)), "not a Roam EDN"),
    "edn-5000-digit-order": Case(lambda t: write(t / "bigorder.edn", edn(
        GOOD_EDN, '[1 :block/children 3 536870913] [3 :block/string "x" 536870913] '
        '[3 :block/order ' + "9" * 5000 + " 536870913]")), "", bad=False),
    "edn-5000-digit-entity": Case(lambda t: write(t / "bigid.edn", edn(
        GOOD_EDN, "[" + "7" * 5000 + ' :block/string "x" 536870913]')), "bad datom"),
    "edn-nested-2000": Case(lambda t: write(t / "vectors.edn", edn(
        "[" * 2000 + "]" * 2000)), "not a Roam EDN export"),
    "edn-blocks-2000-deep": Case(lambda t: write(t / "tall.edn", edn(
        GOOD_EDN, '[9 :node/title "Tall" 536870913] [9 :block/children 10 536870913]',
        *(f'[{10 + i} :block/string "level {i} #card" 536870913] '
          f'[{10 + i} :block/uid "l{i}" 536870913] [{10 + i} :block/children {11 + i} 536870913]'
          for i in range(2000)))), "levels deep", bad=False, warnings=2000),
    # Roam Markdown folder
    "md-fifo": Case(_fifo_in(md_folder, "pipe.md"), "", bad=False),
    "md-socket": Case(_socket_in(md_folder, "sock.md"), "", bad=False),
    "md-device-link": Case(lambda t: (_symlink(md_folder(t / "notes") / "zero.md", "/dev/zero"),
                                      t / "notes")[1], "", bad=False),
    "md-non-utf8-name": Case(_odd_name_in(md_folder, "", "- Odd name #card\n"), "", bad=False,
                             fronts=("Good card", "Odd name"), context="Café ÿ"),
    "md-folders-1000-deep": Case(_deep_in(md_folder, "", "- deep #card\n"),
                                 "folders nested more than 64 levels deep"),
    "md-1200-indents": Case(_with(md_folder, "Tall.md", chain_md(1200, "\t")), "levels deep",
                            bad=False, warnings=1200),
    "md-1.5-GiB-note": Case(lambda t: (sparse(md_folder(t / "notes") / "Huge.md",
                                              3 * limits.GiB // 2), t / "notes")[1],
                            "holds 1.5 GiB", names="Huge.md"),
    # Logseq
    "logseq-fifo": Case(_fifo_in(logseq_graph, "pages/pipe.md"), "", bad=False),
    "logseq-non-utf8-name": Case(_odd_name_in(logseq_graph, "pages", "- Odd #card\n"), "",
                                 bad=False, fronts=("Good card", "Odd"), context="Café ÿ"),
    "logseq-folders-1000-deep": Case(_deep_in(logseq_graph, "pages", "- deep #card\n"),
                                     "folders nested more than 64 levels deep"),
    "logseq-1200-indents": Case(_with(logseq_graph, "pages/Tall.md", chain_md(1200, "\t")),
                                "levels deep", bad=False, warnings=1200),
    # Obsidian
    "obsidian-fifo": Case(_fifo_in(obsidian_vault, "pipe.md"), "", bad=False),
    "obsidian-non-utf8-name": Case(_odd_name_in(obsidian_vault, "sub", "Odd #card\n"), "",
                                   bad=False, fronts=("Good card", "Odd"), context="Café ÿ"),
    "obsidian-folders-1000-deep": Case(_deep_in(obsidian_vault, "", "deep #card\n"),
                                       "folders nested more than 64 levels deep"),
    # Read as every folder reader reads such a file (files.decode: Windows-1252).
    "obsidian-not-utf8-text": Case(_with(obsidian_vault, "Latin.md", b"Caf\xe9 #card\n"),
                                   "", bad=False, fronts=("Good card", "Caf\xe9")),
    # A folder of exports
    "downloads-newest-is-markdown-zip": Case(_downloads, "", bad=False),
    "downloads-newest-is-edn": Case(lambda t: _exports(t, ("old.json", export(
        {"title": "Old", "children": [{"string": "Old card #card", "uid": "old"}]})),
        ("new.edn", edn(GOOD_EDN))), "", bad=False),
    "downloads-newest-json-asked-for": Case(lambda t: _exports(t, ("old.json", export()), (
        "new.edn", edn('[1 :node/title "E" 536870913] [1 :block/children 2 536870913] '
                       '[2 :block/string "EDN card #card" 536870913]'))), "", bad=False,
        args=("--kind", "roam-json")),
    "downloads-newest-zip-broken": Case(lambda t: _exports(t, ("old.json", export()), (
        "Roam-Export-2.zip", b"PK\x03\x04 half a download")), "not a valid zip file",
        names="Roam-Export-2.zip"),
}


def _exports(tmp: Path, *files: tuple[str, str | bytes]) -> Path:
    """A folder of exports, each file newer than the one before."""
    folder = tmp / "exports"
    for age, (name, data) in enumerate(reversed(files)):
        stamp = 2_000_000_000 - age * 100
        os.utime(write(folder / name, data), (stamp, stamp))
    return folder


def _symlink(path: Path, target: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)
    return path


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A collection that already holds another graph's note: what a failed run must leave
    exactly as it was."""
    folder = tmp_path_factory.mktemp("baseline")
    source = write(folder / "other.json", json.dumps([{"title": "Other", "children": [
        {"string": "Already here #card", "uid": "here"}]}]))
    collection = folder / "collection.anki2"
    result = bridge(source, "--collection", collection)
    assert result.returncode == 0, result.stderr
    return collection


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_hostile_input_ends_in_one_line_or_syncs_the_good_part(
    case: Case, baseline: Path, tmp_path: Path
) -> None:
    collection = tmp_path / "collection.anki2"
    shutil.copy(baseline, collection)
    before = state(collection)
    source = case.make(tmp_path)
    result = bridge(source, "--collection", collection, "--graph", "g", "--json", *case.args)
    if case.bad:
        assert_bad_input(result, case.expect, case.names or source.name)
        assert state(collection) == before
        return
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    counts = json.loads(result.stdout.splitlines()[-1])
    warnings = counts["warnings"]
    assert len(warnings) == case.warnings, warnings[:3]
    assert all(case.expect in w and "skipped" in w for w in warnings)
    col = Collection(str(collection))
    try:
        notes = [col.get_note(n) for n in col.find_notes('"SourceID:*:g:*"')]
        assert sorted(n["Front"] for n in notes) == sorted(case.fronts)
        assert counts["created"] == len(case.fronts)
        if case.context:
            assert any(case.context in n["Context"] for n in notes)
        assert col.find_notes('"SourceID:roam:other:here"'), "the other graph's note stays"
    finally:
        col.close()

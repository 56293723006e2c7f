"""``python -m tools.bridge watch``, run as a real process: an API source polled against the fake
Roam API (edit -> collection latency, request counts while idle), a watched export file, and
``--ankiweb`` against Anki's own sync server, where a second device sees the new card and a
review made there survives the next watch cycle, and ``--write-back`` into a Logseq folder."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anki.collection  # noqa: F401  (import first: anki 26.9 has an import cycle otherwise)
import pytest
from anki.collection import Collection

from tests.ankiweb import PASSWORD, Device, SyncServer, running_server
from tests.fake_roam_api import FakeRoamApi
from tests.roam import write_export
from tests.test_live import TOKEN, graph_pages
from tests.test_write_back import HOLA, LOGSEQ_PAGE, edit_note

ROOT = Path(__file__).resolve().parent.parent
# Generous: only catches a watch that hangs (speed is measured by make bench).
HANG = 60.0


class WatchProcess:
    """``tools.bridge watch … --json`` in a child process; its JSON lines, as they come."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        full_env = {**{k: v for k, v in os.environ.items()
                       if not k.startswith(("ROAM_", "ANKIWEB_", "HTTP", "HTTPS"))}, **env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tools.bridge", "watch", *args, "--json"], cwd=ROOT,
            env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.lines: queue.Queue[dict] = queue.Queue()
        self.errors: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_errors, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.lines.put(json.loads(line))

    def _read_errors(self) -> None:
        assert self.proc.stderr is not None
        self.errors.extend(self.proc.stderr)

    def next(self, timeout: float = HANG) -> dict:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no sync line within {timeout}s; stderr: "
                                 f"{''.join(self.errors)[-2000:]}") from None

    def quiet_for(self, seconds: float) -> bool:
        try:
            self.lines.get(timeout=seconds)
        except queue.Empty:
            return True
        return False

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


@pytest.fixture
def api() -> Iterator[FakeRoamApi]:
    with FakeRoamApi(graph_pages(), graph="bio", token=TOKEN) as fake:
        yield fake


def watch_api(api: FakeRoamApi, collection: Path, *more: str) -> WatchProcess:
    return WatchProcess(
        [f"roam-api://{api.graph}", "--collection", str(collection), "--interval", "1",
         "--api-base-url", api.base_url, "--no-images", *more],
        {"ROAM_API_TOKEN": TOKEN},
    )


def notes_of(collection: Path, query: str) -> list[int]:
    col = Collection(str(collection))
    try:
        return list(col.find_notes(query))
    finally:
        col.close()


def test_an_edit_in_roam_reaches_the_collection_through_watch(
    api: FakeRoamApi, tmp_path: Path
) -> None:
    collection = tmp_path / "collection.anki2"
    watch = watch_api(api, collection)
    try:
        first = watch.next()
        assert first["created"] == 4 and first["graph"] == "roam:bio"
        assert watch.quiet_for(2.5), "a quiet turn prints nothing"
        idle_start, idle_calls = time.monotonic(), len(api.calls)
        time.sleep(3)
        idle = [c for c in api.calls[idle_calls:] if c.server == "peer"]
        # One query a turn while nothing changes.
        assert len(idle) <= (time.monotonic() - idle_start) / 1.0 + 1
        assert all(not c.is_pull for c in idle)

        edited_at = time.monotonic()
        api.db.edit("atp", "What is ATP, really? #card")
        line = watch.next()
        latency = time.monotonic() - edited_at
        assert (line["updated"], line["created"], line["orphaned"]) == (1, 0, 0)
        assert line["requests"] == 3
        assert latency < HANG

        api.db.add("p-phys", "What is mass? #card", uid="mass")
        assert watch.next()["created"] == 1
        api.db.edit("inertia", "no longer a card")
        assert watch.next()["orphaned"] == 1
    finally:
        assert watch.stop() == 0
    assert notes_of(collection, '"SourceID:roam:bio:mass"')
    assert notes_of(collection, '"Front:*ATP, really*"')
    assert notes_of(collection, "tag:roam::orphaned") == notes_of(
        collection, '"SourceID:roam:bio:inertia"')


def test_watch_resyncs_an_export_file_when_it_changes(tmp_path: Path) -> None:
    pages = graph_pages()
    export = write_export(tmp_path / "bio.json", pages)
    collection = tmp_path / "collection.anki2"
    watch = WatchProcess([str(export), "--collection", str(collection), "--interval", "1",
                          "--no-images"], {})
    try:
        assert watch.next()["created"] == 4
        pages[1]["children"].append({"string": "What is mass? #card", "uid": "mass"})
        write_export(export, pages)
        line = watch.next()
        assert line["created"] == 1 and line["updated"] == 0
    finally:
        assert watch.stop() == 0


def test_a_source_that_cannot_be_read_is_reported_once_and_tried_again(
    tmp_path: Path
) -> None:
    missing = tmp_path / "later.json"
    collection = tmp_path / "collection.anki2"
    watch = WatchProcess([str(missing), "--collection", str(collection), "--interval", "1",
                          "--kind", "roam-json"], {})
    try:
        assert watch.quiet_for(2.5)
        write_export(missing, graph_pages())
        assert watch.next()["created"] == 4
    finally:
        assert watch.stop() == 0
    assert sum("no such file" in line for line in watch.errors) == 1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncServer]:
    with running_server(tmp_path_factory.mktemp("syncserver") / "base") as running:
        yield running


def test_watch_ankiweb_sends_new_cards_to_the_phone_and_keeps_its_reviews(
    api: FakeRoamApi, server: SyncServer, tmp_path: Path
) -> None:
    user = server.new_user()
    collection = tmp_path / "desktop" / "collection.anki2"
    watch = WatchProcess(
        [f"roam-api://{api.graph}", "--collection", str(collection), "--interval", "1",
         "--api-base-url", api.base_url, "--no-images", "--ankiweb",
         "--sync-url", server.endpoint],
        {"ROAM_API_TOKEN": TOKEN, "ANKIWEB_USERNAME": user, "ANKIWEB_PASSWORD": PASSWORD},
    )
    phone = None
    try:
        first = watch.next()
        # Creating the note types is a schema change: the server takes a full upload, made
        # right after the sync that pulled what it had.
        assert first["created"] == 4 and first["ankiweb"] in ("normal", "full upload")
        phone = Device(tmp_path / "phone" / "collection.anki2", server, user)
        phone.sync()
        nids = phone.col.find_notes('"SourceID:roam:bio:atp"')
        assert len(nids) == 1, "the phone sees the new card"
        card = phone.col.get_card(phone.col.card_ids_of_note(nids[0])[0])
        card.start_timer()
        phone.col.sched.answerCard(card, 3)
        reviewed = phone.col.get_card(card.id)
        phone.sync()

        assert not watch.errors, watch.errors
        api.db.edit("atp", "What is ATP (edited in Roam)? #card")
        line = watch.next()
        assert not watch.errors, watch.errors
        assert line["updated"] == 1 and line["ankiweb"] == "normal"
        phone.sync()
        note = phone.col.get_note(nids[0])
        assert "edited in Roam" in note["Front"]
        after = phone.col.get_card(card.id)
        assert (after.ivl, after.due, after.reps) == (reviewed.ivl, reviewed.due, reviewed.reps)
        assert phone.col.db.scalar("select count() from revlog where cid = ?", card.id) == 1
    finally:
        if phone is not None:
            phone.close()
        assert watch.stop() == 0, "".join(watch.errors)[-3000:]
    desktop = Collection(str(collection))
    try:
        assert desktop.db.scalar("select count() from revlog where cid = ?", card.id) == 1
        assert desktop.get_card(card.id).reps == reviewed.reps
    finally:
        desktop.close()


def test_watch_writes_an_anki_edit_back_into_a_logseq_folder(tmp_path: Path) -> None:
    root = tmp_path / "graph"
    (root / "pages").mkdir(parents=True)
    (root / "logseq").mkdir()
    page = root / "pages" / "Spanish.md"
    page.write_text(LOGSEQ_PAGE, encoding="utf-8")
    collection = tmp_path / "collection.anki2"
    args = [str(root), "--collection", str(collection), "--interval", "1", "--graph", "g",
            "--write-back"]
    watch = WatchProcess(args, {})
    try:
        assert watch.next()["created"] == 3
    finally:
        assert watch.stop() == 0
    col = Collection(str(collection))
    try:
        [nid] = col.find_notes(f'"SourceID:{HOLA}"')
        edit_note(col, nid, "Front", col.get_note(nid)["Front"].replace("mean?", "means?"))
    finally:
        col.close()

    watch = WatchProcess(args, {})
    try:
        line = watch.next()
        assert (line["written_back"], line["kept_anki_edits"], line["created"]) == (1, 0, 0)
        assert page.read_text(encoding="utf-8") == LOGSEQ_PAGE.replace(
            "**hola** mean? #card", "**hola** means? #card")
        assert watch.quiet_for(2.5), "the file it wrote is not read as a new change"
    finally:
        assert watch.stop() == 0
    assert notes_of(collection, f'"SourceID:{HOLA}"') == [nid]

"""A failed image download is remembered beside the collection and not tried again on every
sync; the report says so, with when it will be tried again. Against a real HTTP server on
127.0.0.1 and a real collection."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from anki.collection import Collection

from addon.core import limits, sync
from addon.core.config import SyncOptions
from addon.core.media import FAILURES_FILE, FailureMemory, MediaStore
from addon.core.sources.roam_json import build_graph
from tests.conftest import Syncer
from tests.http_server import LocalServer, Reply
from tests.roam import block, page
from tests.test_media import PNG
from tests.test_sync import edited

SECRET = "AbC-token-in-the-query"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


def pages_with(url: str, text: str = "What is this? #card") -> list[dict]:
    return [page("Pics", block(f"{text} ![a picture]({url})", uid="pic"))]


def memory_file(col: Collection) -> Path:
    return Path(col.media.dir()).parent / FAILURES_FILE


def test_a_refused_download_is_not_tried_again_on_the_next_syncs(
    syncer: Syncer, server: LocalServer
) -> None:
    url = server.add("/gone.png", Reply(404, b"no", "text/plain")) + f"?token={SECRET}"
    first = syncer(pages_with(url))
    assert first.created == 1 and server.hits["/gone.png"] == 1
    assert any("/gone.png: HTTP 404" in w for w in first.warnings)
    nid = syncer.note("pic").id
    for n in range(2):  # edits re-render the note, which asks for the image again
        report = syncer(pages_with(url, f"What is this, take {n}? #card"))
        assert report.updated == 1 and syncer.note("pic").id == nid
        [warning] = [w for w in report.warnings if "/gone.png" in w]
        assert "failed 0 min ago (HTTP 404); not tried again before " in warning
        assert "the card keeps the remote link" in warning
    assert server.hits["/gone.png"] == 1, "one request in three syncs"
    assert url in syncer.note("pic")["Front"]
    stored = memory_file(syncer.col).read_text()
    assert "gone.png" not in stored and SECRET not in stored, "the file holds no URL"


def test_an_unreachable_image_is_tried_again_after_an_hour_a_refused_one_after_a_day(
    tmp_path: Path,
) -> None:
    now = [1_000_000.0]
    memory = FailureMemory(tmp_path / FAILURES_FILE, clock=lambda: now[0])
    memory.failed("https://x/slow.png", "timed out", transient=True)
    memory.failed("https://x/gone.png", "HTTP 404", transient=False)
    memory.save()
    now[0] += limits.IMAGE_RETRY_HOURS_TRANSIENT * 3600 - 1
    later = FailureMemory(tmp_path / FAILURES_FILE, clock=lambda: now[0])
    assert later.recent("https://x/slow.png") is not None
    now[0] += 2
    assert later.recent("https://x/slow.png") is None
    assert later.recent("https://x/gone.png") is not None
    now[0] += limits.IMAGE_RETRY_HOURS * 3600
    assert later.recent("https://x/gone.png") is None


def test_once_the_time_is_up_the_image_is_downloaded_and_forgotten(
    syncer: Syncer, server: LocalServer
) -> None:
    busy = Reply(503, b"busy", "text/plain")
    url = server.add("/late.png", busy, busy, busy, Reply(body=PNG, content_type="image/png"))
    pages = pages_with(url)
    first = syncer(pages)  # three tries, all 503
    assert any("/late.png: HTTP 503 (3 tries)" in w for w in first.warnings)
    hits = server.hits["/late.png"]
    path = memory_file(syncer.col)
    record = json.loads(path.read_text())
    [(failed, until, reason)] = record.values()
    assert until - failed == pytest.approx(limits.IMAGE_RETRY_HOURS_TRANSIENT * 3600)
    path.write_text(json.dumps({key: [failed - 7200, failed - 1, reason] for key in record}))
    report = syncer(edited(pages, "pic", f"What is it now? #card ![a picture]({url})"))
    assert not report.warnings and server.hits["/late.png"] == hits + 1
    assert 'src="rb-' in syncer.note("pic")["Front"]
    assert json.loads(path.read_text()) == {}


def test_a_dry_run_reads_the_memory_but_writes_nothing(
    col: Collection, server: LocalServer
) -> None:
    url = server.add("/gone.png", Reply(404, b"no", "text/plain"))
    graph = build_graph(pages_with(url), "test")
    plan = sync.plan(graph, col, SyncOptions())
    assert any("/gone.png" in w for w in plan.warnings)
    assert not memory_file(col).exists(), "planning alone writes nothing"


def test_a_broken_memory_file_costs_only_a_retry(syncer: Syncer, server: LocalServer) -> None:
    url = server.add("/gone.png", Reply(404, b"no", "text/plain"))
    path = memory_file(syncer.col)
    path.write_bytes(b"\x00not json{")
    report = syncer(pages_with(url))
    assert report.created == 1 and server.hits["/gone.png"] == 1
    assert len(json.loads(path.read_text())) == 1


def test_a_memory_that_cannot_be_written_never_fails_the_sync(
    tmp_path: Path, server: LocalServer
) -> None:
    media = tmp_path / "collection.media"
    media.mkdir()
    (tmp_path / FAILURES_FILE).mkdir()  # a folder where the file should be: unwritable
    store = MediaStore(media, timeout=5, retries=0)
    url = server.add("/gone.png", Reply(404, b"no", "text/plain"))
    assert store.resolve(url, None) is None
    store.failures.save()
    assert (tmp_path / FAILURES_FILE).is_dir() and os.listdir(tmp_path / FAILURES_FILE) == []
    assert not [n for n in os.listdir(tmp_path) if n.startswith(f".{FAILURES_FILE}")]

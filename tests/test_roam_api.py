"""The Roam backend API reader, against a real HTTP server on 127.0.0.1 that behaves like the
API: a 308 to a peer on another port, X-Authorization, quotas, 429 / 503, slow answers."""

from __future__ import annotations

import json
import logging
import socket
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from anki.collection import Collection

from addon.core import sync
from addon.core.config import SyncOptions
from addon.core.model import Block, Graph, SourceError
from addon.core.note_state import strip_state
from addon.core.sources import roam_api, roam_json
from tests.conftest import FIXTURES
from tests.fake_roam_api import FakeRoamApi
from tests.roam import block, page
from tools.graphgen import generate

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "seeds" / "roam-bridge-demo.json"
BACKUP = FIXTURES / "roam-to-csv" / "backup.json"
TOKEN = "roam-graph-token-SECRET-t_OjqgIAH1JZphzP4"


def load(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture
def seed_api() -> Iterator[FakeRoamApi]:
    with FakeRoamApi(load(SEED), graph="demo", token=TOKEN) as api:
        yield api


def read(api: FakeRoamApi, session: requests.Session, **options) -> Graph:
    return roam_api.read(api.graph, options.pop("token", TOKEN), api.base_url,
                         session=session, **options)


def shape(graph: Graph) -> list[tuple]:
    """Everything a reader decides, page by page and block by block in document order."""
    rows: list[tuple] = [("graph", graph.source, graph.name, tuple(graph.blocks))]
    for title, pg in graph.pages.items():
        rows.append(("page", title, pg.uid, pg.path))
        stack: list[tuple[Block, int]] = [(b, 1) for b in reversed(pg.children)]
        while stack:
            blk, depth = stack.pop()
            parent = blk.parent.uid if blk.parent else None
            rows.append((depth, blk.uid, blk.string, blk.heading, parent, blk.page.title))
            stack.extend((kid, depth + 1) for kid in reversed(blk.children))
    return rows


# --- same graph as the export --------------------------------------------------------------------


@pytest.mark.parametrize("export", [SEED, BACKUP], ids=["seed", "roam-to-csv"])
def test_graph_read_through_the_api_equals_the_json_export_block_by_block(
    export: Path, session: requests.Session
) -> None:
    with FakeRoamApi(load(export), graph="demo", token=TOKEN) as api:
        through_api = read(api, session, chunk=1)
    from_json = roam_json.read(export, "demo")
    assert shape(through_api) == shape(from_json)
    assert len(shape(from_json)) > 5


def test_seed_synced_through_the_api_makes_the_same_notes_as_the_json_seed(
    seed_api: FakeRoamApi, session: requests.Session, col: Collection, tmp_path: Path
) -> None:
    via_api = sync.apply(sync.plan(read(seed_api, session), col, SyncOptions()), col)
    other = Collection(str(tmp_path / "from-json.anki2"))
    try:
        via_json = sync.apply(
            sync.plan(roam_json.read(SEED, "demo"), other, SyncOptions()), other
        )
        assert via_api.counts() == via_json.counts()
        assert via_api.counts()["created"] >= 8
        assert notes(col) == notes(other)
    finally:
        other.close()


def notes(col: Collection) -> dict[str, tuple]:
    found = {}
    for nid in col.find_notes(""):
        note = col.get_note(nid)
        decks = sorted(col.decks.name(card.did) for card in note.cards())
        # The Source field's hidden state holds when the note was written.
        fields = dict(note.items())
        fields["Source"] = strip_state(fields["Source"])
        found[note["SourceID"]] = (note.note_type()["name"], fields,
                                   sorted(note.tags), decks, note.guid)
    return found


def test_children_follow_block_order_however_the_server_lists_them(
    session: requests.Session,
) -> None:
    kids = [block(f"child {i}", uid=f"c{i:02d}") for i in range(25)]
    pages = [page("Many", block("parent", *kids, uid="par"), uid="pg-many")]
    with FakeRoamApi(pages, token=TOKEN, seed=3) as api:
        graph = read(api, session)
    assert [b.uid for b in graph.blocks["par"].children] == [f"c{i:02d}" for i in range(25)]


def test_pages_come_in_creation_order_whatever_order_the_query_returns(
    session: requests.Session,
) -> None:
    pages = [page(f"Page {n}", block(f"text {n}"), uid=f"p{n}") for n in (5, 1, 4, 2, 3)]
    with FakeRoamApi(pages, token=TOKEN, seed=11) as api:
        graph = read(api, session, chunk=2)
    assert [p.uid for p in graph.pages.values()] == ["p5", "p1", "p4", "p2", "p3"]


def test_deeply_nested_page_is_read_whole(session: requests.Session) -> None:
    depth = 200
    leaf: dict = block("leaf", uid="leaf")
    for level in reversed(range(depth)):
        leaf = block(f"level {level}", leaf, uid=f"u{level}")
    with FakeRoamApi([page("Deep", leaf, uid="deep")], token=TOKEN) as api:
        graph = read(api, session)
    assert len(graph.blocks["leaf"].ancestors()) == depth


# --- chunks -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def thirty_pages() -> list[dict]:
    pages = generate(blocks=3000, cards=60, seed=5)
    assert len(pages) == 30
    return pages


def test_pages_are_pulled_in_chunks_of_at_most_chunk_pages(
    thirty_pages: list[dict], session: requests.Session
) -> None:
    seen: list[tuple[int, int]] = []
    with FakeRoamApi(thirty_pages, token=TOKEN) as api:
        graph = read(api, session, chunk=8, progress=lambda done, total: seen.append((done, total)))
        pulls = api.pulls()
    assert pulls == [8, 8, 8, 6]
    assert shape(graph) == shape(roam_json.build_graph(thirty_pages, "demo"))
    assert seen == [(0, 30), (8, 30), (16, 30), (24, 30), (30, 30)]


def test_chunk_shrinks_when_the_server_says_the_query_took_too_long(
    thirty_pages: list[dict], session: requests.Session
) -> None:
    with FakeRoamApi(thirty_pages, token=TOKEN) as api:
        api.too_long_over = 3
        graph = read(api, session, chunk=8)
        assert api.pulls(500) == [8, 4], "a size that failed is not tried again"
        assert api.pulls() == [2] * 15
    assert shape(graph) == shape(roam_json.build_graph(thirty_pages, "demo"))


def test_a_page_too_large_to_pull_alone_is_a_clear_error(
    seed_api: FakeRoamApi, session: requests.Session
) -> None:
    seed_api.too_long_over = 0
    with pytest.raises(SourceError, match="too large to pull within the API's 20-second"):
        read(seed_api, session, chunk=4)
    assert seed_api.pulls(500) == [2, 1]


def test_chunk_halves_after_a_slow_answer(
    thirty_pages: list[dict], session: requests.Session
) -> None:
    with FakeRoamApi(thirty_pages, token=TOKEN) as api:
        api.sleep_next(0.8, only_pulls=True)  # over a quarter of the 2 s the client waits
        read(api, session, chunk=8, timeout=2)
        pulls = api.pulls()
    assert pulls[:2] == [8, 4]
    assert sum(pulls) == 30


# --- redirect and auth -------------------------------------------------------------------------


def test_the_308_is_followed_to_the_peer_with_the_token_in_x_authorization(
    seed_api: FakeRoamApi, session: requests.Session
) -> None:
    read(seed_api, session, chunk=1)
    front = [c for c in seed_api.calls if c.server == "front"]
    peer = [c for c in seed_api.calls if c.server == "peer"]
    assert len(front) == 1, "later calls go straight to the peer the API named"
    assert len(peer) == 3 and all(c.status == 200 for c in peer)
    assert all(c.x_authorization and not c.authorization for c in peer)


def test_the_peer_refuses_a_token_sent_only_as_authorization(
    seed_api: FakeRoamApi, session: requests.Session
) -> None:
    """Why X-Authorization: requests drops Authorization when a redirect changes host (as the
    real API's redirect to its peer-N host does), so the API reads X-Authorization."""
    body = {"query": "[:find ?t :where [?p :node/title ?t]]", "args": []}
    url = f"{seed_api.peer_url}/api/graph/demo/q"
    only_authorization = session.post(url, json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert only_authorization.status_code == 401
    x_authorization = session.post(url, json=body, headers={"X-Authorization": f"Bearer {TOKEN}"})
    assert x_authorization.status_code == 200
    assert [(c.authorization, c.x_authorization) for c in seed_api.calls
            if c.server == "peer"] == [(True, False), (False, True)]


def test_a_redirect_outside_the_api_host_is_not_followed(session: requests.Session) -> None:
    with FakeRoamApi(load(BACKUP), token=TOKEN, peer_host="localhost") as api:
        with pytest.raises(SourceError, match="not following it") as raised:
            read(api, session)
        assert api.statuses("peer") == []
    assert "localhost" in str(raised.value)


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_says_so_and_where_to_set_it(
    status: int, seed_api: FakeRoamApi, session: requests.Session
) -> None:
    token = TOKEN
    if status == 401:
        token = "roam-graph-token-WRONG-abcdef123"
    else:
        seed_api.forbid = True
    with pytest.raises(SourceError) as raised:
        read(seed_api, session, token=token)
    err = raised.value
    assert err.path == "roam-api://demo"
    assert f"refused the token (HTTP {status})" in err.message
    assert "roam_api_token" in err.message and "ROAM_API_TOKEN" in err.message
    assert token not in str(err)
    assert "\n" not in str(err)


# --- quota, retries, timeouts ------------------------------------------------------------------


def test_429_waits_for_retry_after_then_goes_on(
    seed_api: FakeRoamApi, session: requests.Session
) -> None:
    seed_api.fail_next(429, times=2, retry_after="0.3")
    started = time.monotonic()
    graph = read(seed_api, session, backoff=5.0)  # a back-off of 5 s would show in the time
    elapsed = time.monotonic() - started
    assert 0.6 <= elapsed < 3
    assert seed_api.statuses().count(429) == 2
    assert len(graph.blocks) == len(roam_json.read(SEED, "demo").blocks)


def test_429_without_end_gives_up_with_a_clear_error(
    seed_api: FakeRoamApi, session: requests.Session
) -> None:
    seed_api.fail_next(429, times=10, retry_after="0.01")
    with pytest.raises(SourceError, match=r"429 Too Many Requests after 3 tries"):
        read(seed_api, session, retries=2)
    assert seed_api.statuses() == [429, 429, 429]


def test_the_client_keeps_under_the_graph_quota(
    thirty_pages: list[dict], session: requests.Session
) -> None:
    with FakeRoamApi(thirty_pages, token=TOKEN) as api:
        api.quota = (3, 0.8)  # the server's 50 a minute, scaled down (with slack for latency)
        started = time.monotonic()
        read(api, session, chunk=8, limiter=roam_api.RateLimiter(3, 1.0))
        elapsed = time.monotonic() - started
        assert 429 not in api.statuses()
        assert len(api.calls) == 6  # one redirect, one listing, four pulls
    assert elapsed >= 1.0


def test_503_is_retried_with_back_off(seed_api: FakeRoamApi, session: requests.Session) -> None:
    seed_api.fail_next(503, times=2)
    started = time.monotonic()
    graph = read(seed_api, session, backoff=0.1)
    assert 0.3 <= time.monotonic() - started < 3  # 0.1 s, then 0.2 s
    assert seed_api.statuses()[:3] == [503, 503, 200]
    assert "June 28th, 2021" not in graph.pages and len(graph.pages) == 2


def test_503_that_lasts_gives_up_after_a_few_tries(
    seed_api: FakeRoamApi, session: requests.Session
) -> None:
    seed_api.fail_next(503, times=10)
    with pytest.raises(SourceError, match=r"not ready on the Roam API \(503 after 4 tries\)"):
        read(seed_api, session, retries=3, backoff=0.01)
    assert seed_api.statuses() == [503] * 4


def test_a_slow_answer_times_out_as_a_source_error(
    seed_api: FakeRoamApi, session: requests.Session
) -> None:
    seed_api.sleep_next(3.0)
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"no answer from .* at 127\.0\.0\.1 within 0\.5 s"):
        read(seed_api, session, timeout=0.5)
    assert time.monotonic() - started < 2.5


def test_an_unreachable_api_is_a_network_error(session: requests.Session) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SourceError, match=r"cannot reach the Roam API at 127\.0\.0\.1"):
        roam_api.read("demo", TOKEN, f"http://127.0.0.1:{port}", session=session)


def test_server_errors_are_reported_in_one_line(
    seed_api: FakeRoamApi, session: requests.Session
) -> None:
    seed_api.fail_next(400, message="Graph is encrypted;\nnot supported by the backend API")
    with pytest.raises(SourceError) as raised:
        read(seed_api, session)
    assert raised.value.message == (
        "the Roam API answered HTTP 400: Graph is encrypted; not supported by the backend API"
    )


# --- the token never leaks -----------------------------------------------------------------------


def test_the_token_never_appears_in_errors_or_logs(
    seed_api: FakeRoamApi, session: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # requests' and urllib3's debug logging too
    read(seed_api, session)
    scenarios = [
        (lambda: seed_api.fail_next(500, message=f"boom: bad header Bearer {TOKEN}"), {}),
        (lambda: seed_api.fail_next(429, retry_after="0.01"), {"retries": 0}),
        (lambda: seed_api.fail_next(503), {"retries": 0}),
        (lambda: seed_api.sleep_next(2.0), {"timeout": 0.3}),
        (lambda: None, {"token": TOKEN + "x"}),
    ]
    errors: list[SourceError] = []
    for schedule, options in scenarios:
        schedule()
        with pytest.raises(SourceError) as raised:
            read(seed_api, session, **options)
        errors.append(raised.value)
    assert "boom" in errors[0].message
    assert caplog.records, "the reader logs its requests"
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
    for err in errors:
        text = str(err) + repr(err) + "".join(traceback.format_exception(err))
        assert TOKEN not in text


@pytest.mark.parametrize(
    "bad", ["\u2019", "\u200b", "\n", " ", "\u00e9"],
    ids=["smart-quote", "zero-width-space", "newline", "inner-space", "latin-1"],
)
def test_a_token_pasted_with_a_stray_character_is_a_clear_error(
    bad: str, seed_api: FakeRoamApi, session: requests.Session
) -> None:
    token = TOKEN[:10] + bad + TOKEN[10:]
    with pytest.raises(SourceError) as raised:
        read(seed_api, session, token=token)
    err = raised.value
    assert "token" in err.message and "roam_api_token" in err.message
    assert "network" not in err.message
    assert seed_api.calls == []  # refused before anything was sent
    text = str(err) + repr(err) + "".join(traceback.format_exception(err))
    assert TOKEN[:10] not in text and TOKEN[10:] not in text


def test_a_token_echoed_where_the_message_is_cut_leaves_no_part_behind(
    seed_api: FakeRoamApi, session: requests.Session
) -> None:
    seed_api.fail_next(500, message="x" * 190 + " " + TOKEN)
    with pytest.raises(SourceError) as raised:
        read(seed_api, session, retries=0)
    assert TOKEN[:6] not in str(raised.value)


# --- source URL, token, limiter ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "graph"),
    [("roam-api://my-graph", "my-graph"), ("ROAM-API://Notes_2024/", "Notes_2024"),
     ("  roam-api://caf%C3%A9 ", "café")],
)
def test_parse_url_gives_the_graph(url: str, graph: str) -> None:
    assert roam_api.parse_url(url) == graph
    assert roam_api.is_url(url)


@pytest.mark.parametrize(
    ("url", "why"),
    [("roam-api://", "names no graph"), ("roam-api://a/b", "no '/'"),
     ("https://roamresearch.com/#/app/g", "not a Roam API source"), ("notes.json", "not a Roam")],
)
def test_parse_url_rejects_what_is_not_a_graph_url(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        roam_api.parse_url(url)


def test_token_comes_from_config_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROAM_API_TOKEN", " from-env ")
    assert roam_api.token_from("from-config") == "from-config"
    assert roam_api.token_from("") == "from-env"
    monkeypatch.delenv("ROAM_API_TOKEN")
    with pytest.raises(SourceError, match=r"roam_api_token .* ROAM_API_TOKEN") as raised:
        roam_api.token_from("  ", "demo")
    assert raised.value.path == "roam-api://demo"


def test_rate_limiter_allows_calls_per_period_in_a_sliding_window() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = roam_api.RateLimiter(50, 60.0, clock=lambda: now[0], sleep=sleep)
    for i in range(50):
        now[0] = i * 0.5  # 50 calls in the first 25 s
        assert limiter.wait() == 0
    now[0] = 30.0
    assert limiter.wait() == pytest.approx(30.0)  # the first call leaves the window at 60 s
    assert limiter.wait() == pytest.approx(0.5)
    assert slept == pytest.approx([30.0, 0.5])


def test_the_quota_is_shared_by_reads_of_the_same_graph() -> None:
    one = roam_api.limiter_for("https://api.roamresearch.com/", "g")
    assert one is roam_api.limiter_for("https://api.roamresearch.com", "g")
    assert one is not roam_api.limiter_for("https://api.roamresearch.com", "other")
    assert (one.calls, one.period) == (50, 60.0)


def test_old_unprefixed_keys_read_like_the_new_ones() -> None:
    old = {"node/title": "P", "block/uid": "p", "block/children": [
        {"block/string": "b", "block/uid": "b2", "block/order": 1},
        {"block/string": "a", "block/uid": "a1", "block/order": 0, "block/heading": 2},
    ]}
    assert roam_api._export_page(old, "x") == {"title": "P", "uid": "p", "children": [
        {"string": "a", "uid": "a1", "heading": 2}, {"string": "b", "uid": "b2"},
    ]}

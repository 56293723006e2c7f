"""The Roam desktop Local API source (roam-local://) against a fake of the app on 127.0.0.1:
the port file in a temporary HOME, the token request flow, scopes, offline graphs, a slow
encrypted graph, and a clear one-line error for every documented failure."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from anki.collection import Collection

from addon.core import sync
from addon.core.config import SyncOptions
from addon.core.live import LiveSource
from addon.core.model import SourceError
from addon.core.sources import roam_json, roam_local
from addon.core.sources.detect import ReadOptions, detect_kind, read_source
from tests.fake_roam_local import FakeRoamLocal
from tests.test_roam_api import SEED, load, shape

Target = roam_local.Target


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    monkeypatch.delenv("ROAM_API_TOKEN", raising=False)
    return folder


@pytest.fixture
def app(home: Path) -> Iterator[FakeRoamLocal]:
    graphs = {("demo", "hosted"): load(SEED), ("private", "offline"): load(SEED)}
    with FakeRoamLocal(home, graphs, ready_timeout=3.0) as fake:
        yield fake


def read(target: Target, token: str, session: requests.Session, **kw) -> object:
    return roam_local.read(target, token, session=session, **kw)


def test_a_graph_read_from_the_desktop_app_equals_its_json_export(
    app: FakeRoamLocal, session: requests.Session
) -> None:
    token = app.issue("demo")
    graph = read(Target("demo"), token, session)
    assert shape(graph) == shape(roam_json.read(SEED, "demo"))
    assert app.calls and all(c.authorization for c in app.calls)
    assert set(app.actions()) == {"data.q"}


def test_an_offline_graph_is_asked_for_with_type_offline(
    app: FakeRoamLocal, session: requests.Session
) -> None:
    token = app.issue("private", "offline")
    graph = read(roam_local.parse_url("roam-local://private?type=offline"), token, session)
    assert len(graph.blocks) == len(roam_json.read(SEED, "x").blocks)
    # The same token does not open the hosted graph of that name.
    with pytest.raises(SourceError, match="refused the token"):
        read(Target("private"), token, session)


def test_read_source_takes_the_token_of_the_graph_from_the_settings(
    app: FakeRoamLocal
) -> None:
    token = app.issue("demo")
    assert detect_kind("roam-local://demo") == "roam-local"
    graph = read_source("roam-local://demo", "my-demo", options=ReadOptions(
        local_tokens={"demo": token, "private?type=offline": "other"}))
    assert graph.name == "my-demo" and graph.source == "roam"


def test_the_cli_token_comes_from_roam_api_token(
    app: FakeRoamLocal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROAM_API_TOKEN", app.issue("demo"))
    assert read_source("roam-local://demo").blocks


def test_the_port_is_read_again_when_the_app_restarted_elsewhere(
    app: FakeRoamLocal, home: Path, session: requests.Session
) -> None:
    token = app.issue("demo")
    client = roam_local.connect(Target("demo"), token, session=session)
    client._port = 1  # the port of an earlier run: nothing listens there
    result, _ = client.q("[:find ?t :where [?p :node/title ?t]]", [])
    assert len(result) == 2 and client._port == app.port


@pytest.mark.parametrize("url, target", [
    ("roam-local://demo", Target("demo", "hosted")),
    ("roam-local://demo?type=offline", Target("demo", "offline")),
    ("ROAM-LOCAL://my%20graph?type=hosted".replace("%20", "-"), Target("my-graph", "hosted")),
])
def test_parse_url(url: str, target: Target) -> None:
    assert roam_local.parse_url(url) == target


@pytest.mark.parametrize("url", ["roam-local://", "roam-local://a/b", "roam-local://a?type=x",
                                 "roam-local://a?page=1", "roam-api://a"])
def test_parse_url_refuses_what_is_no_graph(url: str) -> None:
    with pytest.raises(ValueError):
        roam_local.parse_url(url)


# --- one clear line for each documented failure ---------------------------------------------


def one_line(err: pytest.ExceptionInfo[SourceError]) -> str:
    text = str(err.value)
    assert "\n" not in text and text.startswith("roam-local://")
    return text


def test_app_not_running_no_port_file(home: Path, session: requests.Session) -> None:
    with pytest.raises(SourceError) as err:
        read(Target("demo"), roam_local.TOKEN_PREFIX + "x" * 29, session)
    assert "Roam desktop is not running" in one_line(err) and ".roam-local-api.json" in str(
        err.value)


def test_app_not_running_nothing_listening(home: Path, session: requests.Session) -> None:
    (home / ".roam-local-api.json").write_text(json.dumps({"port": 1}))
    with pytest.raises(SourceError) as err:
        read(Target("demo"), roam_local.TOKEN_PREFIX + "x" * 29, session)
    assert "nothing answers on 127.0.0.1:1" in one_line(err)


def test_a_revoked_token_is_refused_and_never_shown(
    app: FakeRoamLocal, session: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    token = app.issue("demo")
    app.revoke(token)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SourceError) as err:
        read(Target("demo"), token, session)
    assert "refused the token" in one_line(err) and "Connect to Roam desktop" in str(err.value)
    assert token not in str(err.value) and token not in caplog.text
    assert token[len(roam_local.TOKEN_PREFIX):] not in repr(
        roam_local.connect(Target("demo"), token))


def test_a_cloud_token_is_named_as_such(app: FakeRoamLocal, session: requests.Session) -> None:
    with pytest.raises(SourceError) as err:
        read(Target("demo"), "roam-graph-token-abcdef", session)
    assert "cloud API token" in one_line(err)


def test_a_token_without_read_scope_is_too_low(
    app: FakeRoamLocal, session: requests.Session
) -> None:
    token = app.issue("demo", scopes={})
    with pytest.raises(SourceError) as err:
        read(Target("demo"), token, session)
    assert "scope is too low" in one_line(err) and "INSUFFICIENT_SCOPE" in str(err.value)


def test_no_token_at_all_says_how_to_connect(app: FakeRoamLocal) -> None:
    with pytest.raises(SourceError) as err:
        read_source("roam-local://demo")
    assert "Connect to Roam desktop" in one_line(err) and "ROAM_API_TOKEN" in str(err.value)


# --- the token request flow -----------------------------------------------------------------


def test_a_token_request_the_user_allows_gives_a_read_only_token(
    app: FakeRoamLocal, session: requests.Session
) -> None:
    grant = roam_local.request_token(Target("demo"), session=session)
    assert grant.token.startswith(roam_local.TOKEN_PREFIX) and grant.scopes["read"]
    assert app.token_requests == [{"graph": "demo", "description": roam_local.CLIENT_NAME,
                                   "accessLevel": "read-only", "graphType": "hosted"}]
    assert token_works(grant.token, session)
    assert grant.token not in repr(grant)


def token_works(token: str, session: requests.Session) -> bool:
    return bool(read(Target("demo"), token, session).blocks)


def test_a_token_request_for_an_offline_graph_says_so(
    app: FakeRoamLocal, session: requests.Session
) -> None:
    grant = roam_local.request_token(Target("private", "offline"), session=session)
    assert app.token_requests[-1]["graphType"] == "offline"
    assert read(Target("private", "offline"), grant.token, session).blocks


@pytest.mark.parametrize("decision, words", [
    ("reject", "was denied in Roam"),
    ("blocked", "Never Allow"),
    ("pending", "already waiting in Roam"),
    ("timeout", "within 5 minutes"),
])
def test_each_refused_token_request_is_one_clear_line(
    app: FakeRoamLocal, session: requests.Session, decision: str, words: str
) -> None:
    app.decision = decision
    with pytest.raises(SourceError) as err:
        roam_local.request_token(Target("demo"), session=session)
    assert words in one_line(err)


# --- an encrypted graph waits for its password ------------------------------------------------


def test_a_locked_graph_answers_once_unlocked(
    app: FakeRoamLocal, session: requests.Session
) -> None:
    token = app.issue("demo")
    app.lock("demo")
    threading.Timer(1.0, app.unlock, args=("demo",)).start()
    started = time.monotonic()
    graph = read(Target("demo"), token, session, timeout=30)
    assert graph.blocks and time.monotonic() - started >= 0.9


def test_a_graph_that_stays_locked_is_a_clear_error(
    app: FakeRoamLocal, session: requests.Session
) -> None:
    token = app.issue("demo")
    app.lock("demo")
    with pytest.raises(SourceError) as err:  # the app gives up first (504)
        read(Target("demo"), token, session, timeout=30)
    assert "did not open in Roam desktop in time" in one_line(err)
    with pytest.raises(SourceError) as err:  # we give up first
        read(Target("demo"), token, session, timeout=0.5)
    assert "no answer from Roam desktop within 0.5 s" in one_line(err)
    assert "password" in str(err.value)


# --- incremental pulls through the desktop app --------------------------------------------------


def test_an_edit_in_the_desktop_app_reaches_the_note_by_an_incremental_poll(
    app: FakeRoamLocal, col: Collection, session: requests.Session
) -> None:
    token = app.issue("demo")
    live = LiveSource("roam-local://demo", "", ReadOptions(local_tokens={"demo": token}),
                      session=session)
    first = live.pull()
    sync.apply(sync.plan(first.graph, col, SyncOptions(), scope=first.scope), col)
    card_uid = next(s.uid for s in sync.plan(first.graph, col, SyncOptions()).specs)
    nid = col.find_notes(f'"SourceID:roam:demo:{card_uid}"')[0]
    cards = col.card_ids_of_note(nid)
    quiet = live.pull()
    assert quiet.scope == set() and quiet.refresh.requests == 1
    app.db("demo").edit(card_uid, "Edited in Roam desktop #card")
    before = len(app.calls)
    pulled = live.pull()
    assert pulled.scope and card_uid in pulled.scope
    assert len(app.calls) - before == 3
    report = sync.apply(sync.plan(pulled.graph, col, SyncOptions(), scope=pulled.scope), col)
    assert report.updated == 1 and report.created == 0 and report.orphaned == 0
    assert "Edited in Roam desktop" in col.get_note(nid)["Front"]
    assert col.card_ids_of_note(nid) == cards


def test_open_block_shows_the_block_in_the_app(
    app: FakeRoamLocal, session: requests.Session
) -> None:
    client = roam_local.connect(Target("demo"), app.issue("demo"), session=session)
    roam_local.open_block(client, "0ftbxnZA8")
    assert app.opened == [("demo", "0ftbxnZA8")]


# --- whoever listens on the port: every answer is bounded ---------------------------------------


class _Dripping(BaseHTTPRequestHandler):
    """Answers 200 and then a byte every 0.1 s, for ever (or a large body at once)."""

    size = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        try:
            if self.size:
                self.wfile.write(b" " * self.size)
                return
            for _ in range(600):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def dripping_app(home: Path, size: int = 0) -> Iterator[None]:
    handler = type("Handler", (_Dripping,), {"size": size})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    (home / ".roam-local-api.json").write_text(json.dumps({"port": server.server_address[1]}))
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def test_an_answer_dripping_a_byte_at_a_time_ends_at_the_timeout(
    home: Path, session: requests.Session
) -> None:
    with dripping_app(home):
        started = time.monotonic()
        with pytest.raises(SourceError) as err:
            read(Target("demo"), roam_local.TOKEN_PREFIX + "x" * 29, session, timeout=1.0)
        assert time.monotonic() - started < 10
    assert "no answer from Roam desktop within 1 s" in one_line(err)


def test_an_answer_too_large_is_not_read(
    home: Path, session: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(roam_local, "MAX_ANSWER_BYTES", 100_000)
    with dripping_app(home, size=1_000_000), pytest.raises(SourceError) as err:
        read(Target("demo"), roam_local.TOKEN_PREFIX + "x" * 29, session)
    assert "larger than" in one_line(err)

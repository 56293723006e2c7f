"""The Roam API reader against a hostile server on 127.0.0.1: slow, huge, endless, echoing the
token, sending terminal escapes, redirecting elsewhere, asking to wait for a day. Each ends in
one SourceError line in bounded time and memory, and the token never shows."""

from __future__ import annotations

import html
import json
import os
import signal
import subprocess
import sys
import time
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
import requests

from addon.core import limits
from addon.core.model import SourceError
from addon.core.sources import roam_api
from tests.fake_roam_api import FakeRoamApi
from tests.http_server import LocalServer, Reply
from tests.roam import block, page
from tests.test_hostile_inputs import ROOT, _limit_memory, assert_bad_input, bridge
from tools.bridge import _deferred_interrupt

TOKEN = "roam-graph-token-Hx7Qp2vLk9Zt4Wm8Rb3N"
Q = "/api/graph/demo/q"
LISTING = json.dumps({"result": [[1, "p1"], [2, "p2"]]}).encode()
MiB = 1024**2


def pull(*uids: str) -> bytes:
    return json.dumps({"result": [[{":node/title": f"Page {u}", ":block/uid": u,
                                    ":block/children": [{":block/string": f"Q {u} #card",
                                                         ":block/uid": f"b-{u}",
                                                         ":block/order": 0}]}]
                                  for u in uids]}).encode()


def json_reply(body: bytes, status: int = 200, **options) -> Reply:
    return Reply(status, body, "application/json", **options)


def message(text: str) -> bytes:
    return json.dumps({"message": text}).encode()


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


def read(server: LocalServer, session: requests.Session, **options) -> object:
    options.setdefault("limiter", roam_api.RateLimiter(1000, 1.0))
    return roam_api.read("demo", TOKEN, server.base, session=session, **options)


def failure(server: LocalServer, session: requests.Session, **options) -> tuple[str, float]:
    """The one-line message a read fails with, and the seconds it took."""
    started = time.monotonic()
    with pytest.raises(SourceError) as raised:
        read(server, session, **options)
    text = str(raised.value)
    assert "\n" not in text and text.isprintable() and TOKEN not in text
    return text, time.monotonic() - started


def pages_asked(server: LocalServer) -> list[int]:
    """How many pages each request asked for (0 for the listing), in order."""
    return [len(json.loads(b)["args"][0]) if json.loads(b)["args"] else 0
            for b in server.bodies]


# --- slow, huge, endless -------------------------------------------------------------------


def test_a_server_that_drips_its_answer_is_cut_off_at_the_answer_deadline(
    server: LocalServer, session: requests.Session
) -> None:
    server.add(Q, json_reply(LISTING, drip=0.05))  # ~2 s for the whole listing
    text, took = failure(server, session, answer_seconds=0.5)
    assert "sent its answer too slowly" in text
    assert took < 10
    assert server.sent[Q] < len(LISTING)


def test_an_endless_answer_stops_at_the_byte_limit(
    server: LocalServer, session: requests.Session
) -> None:
    server.add(Q, json_reply(b"[" * 65536, endless=True))
    text, _ = failure(server, session, answer_bytes=MiB)
    assert "could not list the graph's pages (its answer holds more than 1 MiB)" in text
    assert server.sent[Q] < 64 * MiB, "the client stopped reading soon after the limit"


def test_an_answer_declared_too_large_is_not_read_at_all(
    server: LocalServer, session: requests.Session
) -> None:
    server.add(Q, json_reply(b"[" * 65536, repeat=32 * 1024))  # says 2 GiB
    text, _ = failure(server, session, answer_bytes=MiB)
    assert "its answer holds more than 1 MiB" in text
    assert server.sent[Q] < 64 * MiB


def test_a_pull_whose_answer_is_too_large_asks_for_fewer_pages(
    server: LocalServer, session: requests.Session
) -> None:
    server.add(Q, json_reply(LISTING), json_reply(b"[" * 65536, endless=True),
               json_reply(pull("p1")), json_reply(pull("p2")))
    graph = read(server, session, answer_bytes=MiB)
    assert list(graph.pages) == ["Page p1", "Page p2"]
    assert pages_asked(server) == [0, 2, 1, 1]


def test_a_single_page_too_large_to_pull_is_named(
    server: LocalServer, session: requests.Session
) -> None:
    server.add(Q, json_reply(LISTING), json_reply(b"[" * 65536, endless=True))
    text, _ = failure(server, session, answer_bytes=MiB)
    assert "page p1 is too large to pull through the API (its answer holds more than 1 MiB)" \
        in text
    assert pages_asked(server) == [0, 2, 1]


def test_the_whole_read_ends_at_its_deadline_waits_included(session: requests.Session) -> None:
    pages = [page(f"P{i}", block(f"Q{i} #card")) for i in range(4)]
    with FakeRoamApi(pages, token=TOKEN) as api:
        started = time.monotonic()
        with pytest.raises(SourceError, match="takes more than 2 seconds") as raised:
            roam_api.read(api.graph, TOKEN, api.base_url, session=session, chunk=1,
                          limiter=roam_api.RateLimiter(3, 60.0), read_seconds=2)
        assert time.monotonic() - started < 10, "a wait past the deadline is not begun"
    assert "sync from an export instead" in str(raised.value)


def test_waits_are_announced_and_pages_counted(session: requests.Session) -> None:
    pages = [page(f"P{i}", block(f"Q{i} #card")) for i in range(3)]
    heard: list[str] = []
    done: list[tuple[int, int]] = []
    with FakeRoamApi(pages, token=TOKEN) as api:
        roam_api.read(api.graph, TOKEN, api.base_url, session=session, chunk=1,
                      limiter=roam_api.RateLimiter(3, 0.3), notice=heard.append,
                      progress=lambda d, t: done.append((d, t)))
    assert done == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert heard and all("for the API's quota of 50 requests a minute" in h for h in heard)


# --- waiting, and what the server says ---------------------------------------------------------


@pytest.mark.parametrize("retry_after", ["100000", "Wed, 21 Oct 2099 07:28:00 GMT"])
def test_a_retry_after_of_more_than_a_minute_ends_the_read_saying_when(
    server: LocalServer, session: requests.Session, retry_after: str
) -> None:
    server.add(Q, json_reply(message("slow down"), 429, headers={"Retry-After": retry_after}))
    text, took = failure(server, session)
    assert "the Roam API asks to wait" in text and "try again after" in text
    assert ("28 hours" in text) if retry_after.isdigit() else ("days" in text)
    assert took < 10 and server.hits[Q] == 1


def test_took_too_long_on_the_page_listing_is_one_line(
    server: LocalServer, session: requests.Session
) -> None:
    server.add(Q, json_reply(message("Query took too long to run (20 s limit)."), 500))
    text, _ = failure(server, session)
    assert text == ("roam-api://demo: the Roam API could not list the graph's pages (the query "
                    "took longer than the API's 20-second limit); the graph is too large for "
                    "the API: sync from an export instead")


def _spaced(token: str) -> str:
    return " ".join(token)


SPELLINGS: dict[str, Callable[[str], str]] = {
    "as-sent": lambda t: t,
    "upper-case": str.upper,
    "letter-spaced": _spaced,
    "dotted-and-dashed": lambda t: "-.".join(t.replace("-", "")),
    "percent-encoded": lambda t: "".join(f"%{ord(c):02X}" for c in t),
    "url-quoted": lambda t: quote(f"Bearer {t}", safe=""),
    "html-entities": lambda t: "".join(f"&#{ord(c)};" for c in t),
    "html-hex-entities": lambda t: "".join(f"&#x{ord(c):x};" for c in t),
    "backslash-u": lambda t: "".join(f"\\u{ord(c):04x}" for c in t),
    "fullwidth": lambda t: "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in t),
    "zero-width-joined": "\u200b".join,
    "escape-separated": "\x1b".join,
    "last-twelve-only": lambda t: t[-12:],
    "lower-case-no-dashes": lambda t: t.lower().replace("-", ""),
}


def leaked(text: str) -> bool:
    """Whether any ten letters and digits of the token in a row can be read back from
    ``text``, undoing every escape a server may use (an independent check of the scrubber)."""
    plain = unquote(html.unescape(text))
    plain = plain.encode("ascii", "backslashreplace").decode("unicode_escape", "ignore")
    letters = "".join(c for c in unicodedata.normalize("NFKC", plain).casefold() if c.isalnum())
    secret = "".join(c for c in TOKEN.casefold() if c.isalnum())
    return any(secret[i:i + 10] in letters for i in range(len(secret) - 9))


@pytest.mark.parametrize("spell", SPELLINGS.values(), ids=SPELLINGS.keys())
def test_a_token_the_server_echoes_is_scrubbed_in_every_spelling(
    server: LocalServer, session: requests.Session, spell: Callable[[str], str]
) -> None:
    def echo(headers: dict[str, str]) -> bytes:
        sent = headers["X-Authorization"].removeprefix("Bearer ")
        assert sent == TOKEN
        return message(f"invalid header: {spell(sent)} (rejected)")

    server.add(Q, Reply(500, content_type="application/json", echo=echo))
    text, _ = failure(server, session, retries=0)
    assert "the Roam API answered HTTP 500: invalid header: " in text
    assert "[token]" in text and "(rejected)" in text
    assert not leaked(text), text


def test_a_token_in_a_plain_text_answer_is_scrubbed_too(
    server: LocalServer, session: requests.Session
) -> None:
    server.add(Q, Reply(502, f"<h1>Bad gateway</h1> Bearer {TOKEN.upper()}".encode(),
                        "text/html"))
    text, _ = failure(server, session)
    assert "[token]" in text and not leaked(text)


def test_server_messages_reach_the_terminal_as_plain_text(
    server: LocalServer, session: requests.Session
) -> None:
    hostile = "\x1b]0;owned\x07\x1b[2J\x1b[31mred\x9b1m\u202eevil\r\nsecond line\x00"
    server.add(Q, json_reply(message(hostile), 400))
    text, _ = failure(server, session)
    assert text.startswith("roam-api://demo: the Roam API answered HTTP 400: ")
    assert all(c.isprintable() for c in text)
    assert "red" in text and "second line" in text


# --- redirects -------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["other-port", "other-host", "other-scheme"])
def test_a_redirect_away_from_the_api_is_not_followed_with_the_token(
    server: LocalServer, session: requests.Session, where: str
) -> None:
    with LocalServer() as elsewhere:
        port = elsewhere.base.rsplit(":", 1)[1]
        location = {"other-port": f"http://127.0.0.1:{port}{Q}",
                    "other-host": f"http://localhost:{server.base.rsplit(':', 1)[1]}{Q}",
                    "other-scheme": f"https://127.0.0.1:{server.base.rsplit(':', 1)[1]}{Q}"}
        server.add(Q, Reply(307, b"", headers={"Location": location[where]}))
        elsewhere.add(Q, json_reply(LISTING))
        text, _ = failure(server, session)
        assert "not following it (the token was not sent there)" in text
        assert elsewhere.requests == []
    assert server.hits[Q] == 1


@pytest.mark.parametrize(
    ("target", "trusted"),
    [
        ("https://peer-24.api.roamresearch.com:3001/api/graph/g/q", True),
        ("https://api.roamresearch.com/other/path", True),
        ("https://api.roamresearch.com:443/api/graph/g/q", True),
        ("https://api.roamresearch.com:8443/api/graph/g/q", False),
        ("http://peer-24.api.roamresearch.com/api/graph/g/q", False),
        ("https://evil.api.roamresearch.com/api/graph/g/q", False),
        ("https://peer-1.evil.com/api/graph/g/q", False),
        ("https://api.roamresearch.com.evil.com/api/graph/g/q", False),
        ("https://api.roamresearch.com@evil.com/api/graph/g/q", False),
        ("https://api.roamresearch.com:99999/x", False),
        ("ftp://api.roamresearch.com/x", False),
    ],
)
def test_redirects_are_trusted_only_to_the_api_and_its_peers(target: str, trusted: bool) -> None:
    assert roam_api._trusted("https://api.roamresearch.com", target) is trusted


# --- through the CLI -----------------------------------------------------------------------------


def api_bridge(server: LocalServer, collection: Path) -> subprocess.CompletedProcess[str]:
    return bridge("roam-api://demo", "--collection", collection, "--api-base-url", server.base,
                  env={"ROAM_API_TOKEN": TOKEN})


def test_the_cli_stops_an_endless_answer_within_its_memory_limit(
    server: LocalServer, tmp_path: Path
) -> None:
    server.add(Q, json_reply(b"[" * 65536, endless=True))
    result = api_bridge(server, tmp_path / "c.anki2")
    size = f"{limits.HTTP_ANSWER_BYTES // MiB} MiB"
    assert_bad_input(result, "roam-api://demo", f"its answer holds more than {size}")
    assert not (tmp_path / "c.anki2").exists()


def test_the_cli_shows_an_echoed_token_and_escapes_as_plain_text(
    server: LocalServer, tmp_path: Path
) -> None:
    server.add(Q, Reply(403, content_type="application/json", echo=lambda h: message(
        f"\x1b[2J\x1b]0;x\x07token {h['X-Authorization'].upper()} has no access")))
    result = api_bridge(server, tmp_path / "c.anki2")
    line = assert_bad_input(result, "refused the token (HTTP 403)")
    assert not leaked(line) and "\x1b" not in result.stderr


def test_the_cli_ends_a_day_long_retry_after_at_once(server: LocalServer, tmp_path: Path) -> None:
    server.add(Q, json_reply(message("busy"), 503, headers={"Retry-After": "86400"}))
    result = api_bridge(server, tmp_path / "c.anki2")
    assert_bad_input(result, "asks to wait 24 hours", "try again after")


def test_ctrl_c_ends_the_cli_with_one_line_and_nothing_written(
    server: LocalServer, tmp_path: Path
) -> None:
    server.add(Q, json_reply(LISTING, drip=1.0))
    collection = tmp_path / "c.anki2"
    child = subprocess.Popen(
        [sys.executable, "-m", "tools.bridge", "sync", "roam-api://demo", "--collection",
         str(collection), "--api-base-url", server.base],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "ROAM_API_TOKEN": TOKEN},
        preexec_fn=_at_a_terminal,
    )
    try:
        deadline = time.monotonic() + 30
        while server.sent[Q] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.sent[Q] >= 2, "the CLI is reading the answer"
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 1
    assert stderr.splitlines() == [
        "roam-bridge: interrupted (Ctrl-C); no note was added or changed"
    ]
    assert not collection.exists()


def _at_a_terminal() -> None:
    """A child as a shell's foreground job starts it: within the memory limit, and with
    Ctrl-C live (a background job, as CI may run us, starts with SIGINT ignored)."""
    _limit_memory()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def ctrl_c_live() -> Iterator[None]:
    """Python's own Ctrl-C handler, whatever the job this test runs in inherited."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("ctrl_c_live")
def test_ctrl_c_while_the_collection_is_written_waits_for_the_write() -> None:
    with _deferred_interrupt() as interrupted:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # a KeyboardInterrupt would have been raised by now
        finished = True
    assert finished and interrupted == [True]
    with pytest.raises(KeyboardInterrupt):  # and Ctrl-C works as before afterwards
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)


def test_an_ignored_ctrl_c_stays_ignored_while_the_collection_is_written() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as under nohup
    try:
        with _deferred_interrupt() as interrupted:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
        assert interrupted == []
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)

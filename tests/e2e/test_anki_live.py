"""Real Anki desktop with a roam-local:// source against the fake Roam desktop app on
127.0.0.1 (its port file in a temporary HOME): the add-on polls it, an edit made in "Roam"
reaches the card with no user action, a quiet poll writes nothing, and "Open in Roam" shows
the block in the desktop app."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.e2e.test_anki_desktop import GUI, now, stamp_reports, start_anki
from tests.e2e.test_anki_desktop import wait_for_report as next_report
from tests.fake_roam_local import FakeRoamLocal
from tests.test_roam_api import SEED, load

pytestmark = pytest.mark.e2e
GRAPH = "demo"
CARD = "0ftbxnZA8"  # a block of the seed that the test turns into a card


@pytest.fixture(scope="module")
def desktop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    tmp = tmp_path_factory.mktemp("live")
    home = tmp / "home"
    home.mkdir()
    with FakeRoamLocal(home, {(GRAPH, "hosted"): load(SEED)}) as app:
        token = app.issue(GRAPH)
        config = {"sources": [{"path": f"roam-local://{GRAPH}", "kind": "auto", "graph": "",
                               "deck": ""}],
                  "roam_local_tokens": {GRAPH: token}, "sync_on_startup": True,
                  "poll_interval": 5}
        with start_anki(tmp, config, env={"HOME": str(home)}) as anki:
            yield anki, app, token


def notes(anki, query: str) -> list[int]:
    return anki.driver.eval(f"list(mw.col.find_notes({query!r}))")


def test_the_connected_graph_syncs_at_startup_and_is_polled(desktop) -> None:
    anki, _, token = desktop
    deadline = time.monotonic() + 90
    while not notes(anki, f'"SourceID:roam:{GRAPH}:*"') and time.monotonic() < deadline:
        time.sleep(0.3)
    assert notes(anki, f'"SourceID:roam:{GRAPH}:*"')
    assert anki.driver.eval(f"{GUI}.POLLER.active")
    # The token lives in the profile, never in the add-on's config.
    assert token not in anki.driver.eval("repr(mw.addonManager.getConfig('roam_bridge'))")


def test_an_edit_in_roam_desktop_updates_the_card_with_no_user_action(desktop) -> None:
    anki, app, _ = desktop
    stamp_reports(anki)
    start = now(anki)
    mod = anki.driver.eval("mw.col.mod")
    app.db(GRAPH).edit(CARD, "Who wrote it? #card")
    deadline = time.monotonic() + 60
    while not notes(anki, f'"SourceID:roam:{GRAPH}:{CARD}"') and time.monotonic() < deadline:
        time.sleep(0.3)
    nids = notes(anki, f'"SourceID:roam:{GRAPH}:{CARD}"')
    assert len(nids) == 1, anki.log_text()[-3000:]
    report = next_report(anki, start, timeout=30)
    assert report["manual"] is False and report["created"] == 1
    assert anki.driver.eval("mw.col.mod") > mod

    app.db(GRAPH).edit(CARD, "Who wrote the conversation? #card")
    deadline = time.monotonic() + 60
    while "conversation" not in anki.driver.eval(f"mw.col.get_note({nids[0]})['Front']") and (
        time.monotonic() < deadline
    ):
        time.sleep(0.3)
    assert "conversation" in anki.driver.eval(f"mw.col.get_note({nids[0]})['Front']")
    assert notes(anki, f'"SourceID:roam:{GRAPH}:{CARD}"') == nids


def test_a_quiet_poll_writes_nothing(desktop) -> None:
    anki, app, _ = desktop
    anki.driver.wait_until(f"not {GUI}.CONTROLLER.running", timeout=30)
    mod = anki.driver.eval("mw.col.mod")
    polls = len(app.actions())
    time.sleep(12)  # two polls at least
    assert len(app.actions()) > polls
    assert anki.driver.eval("mw.col.mod") == mod


def test_open_in_roam_shows_the_block_in_the_desktop_app(desktop) -> None:
    anki, app, _ = desktop
    url = f"https://roamresearch.com/#/app/{GRAPH}/page/{CARD}"
    anki.driver.exec(f"{GUI}.PANEL.opener({url!r})\nresult = True")
    deadline = time.monotonic() + 30
    while (GRAPH, CARD) not in app.opened and time.monotonic() < deadline:
        time.sleep(0.2)
    assert (GRAPH, CARD) in app.opened


def test_connect_to_roam_desktop_gets_a_token_through_the_permission_dialog(desktop) -> None:
    anki, app, _ = desktop
    app.decision = "read-only"  # the user presses Allow in Roam's dialog
    before = len(app.token_requests)
    anki.driver.exec(
        "from roam_bridge.gui.live import connect_desktop\n"
        "from roam_bridge.core.sources.roam_local import Target\n"
        "import builtins\n"
        "builtins._rb_connected = []\n"
        "connect_desktop(mw, Target('demo'), builtins._rb_connected.append,\n"
        "                lambda message: builtins._rb_connected.append('failed: ' + message))\n"
        "result = True")
    anki.driver.wait_until("bool(__import__('builtins')._rb_connected)", timeout=30)
    token = anki.driver.eval("__import__('builtins')._rb_connected[0]")
    assert token in app.tokens and app.tokens[token][:2] == (GRAPH, "hosted")
    assert app.token_requests[before]["accessLevel"] == "read-only"
    assert token not in anki.log_text()

    app.decision = "blocked"
    anki.driver.exec("__import__('builtins')._rb_connected.clear()\n"
                     "connect_desktop(mw, Target('demo'), builtins._rb_connected.append,\n"
                     "                lambda m: builtins._rb_connected.append('failed: ' + m))\n"
                     "result = True")
    anki.driver.wait_until("bool(__import__('builtins')._rb_connected)", timeout=30)
    assert "Never Allow" in anki.driver.eval("__import__('builtins')._rb_connected[0]")

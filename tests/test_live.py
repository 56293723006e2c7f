"""Incremental pulls (live.py, roam_mirror.py) against the fake Roam API on 127.0.0.1: blocks
edited, added, deleted, untagged, moved and renamed between polls reach the collection, with
the notes' ids, cards and reviews kept, in a handful of requests, and a quiet poll writes
nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from anki.collection import Collection

from addon.core import sync
from addon.core.config import SyncOptions
from addon.core.live import LivePull, LiveSource
from addon.core.model import SourceError
from addon.core.sources.detect import ReadOptions
from tests.fake_roam_api import FakeRoamApi
from tests.roam import block, page

TOKEN = "roam-graph-token-LIVE-0123456789abcdef"


def graph_pages() -> list[dict]:
    return [
        page("Biology", block("Tags:: #[[science]]", uid="bio-tags"),
             block("What is ATP? #card", block("The cell's energy currency", uid="atp-back"),
                   uid="atp"),
             block("Mitochondria", block("What do they make? #card", block("ATP", uid="mk-a"),
                                         uid="mito"), uid="mito-parent"),
             uid="p-bio"),
        page("Physics", block("What is {{c1::inertia}}? #card", uid="inertia"),
             block("See ((atp-back)) #card", uid="seeref"),
             block("Not a card", uid="plain"), uid="p-phys"),
    ]


class Live:
    """One API source synced into one collection, poll after poll."""

    def __init__(self, api: FakeRoamApi, col: Collection, session: requests.Session) -> None:
        self.api, self.col = api, col
        self.source = LiveSource(
            f"roam-api://{api.graph}", "", ReadOptions(api_token=TOKEN, api_base_url=api.base_url),
            session=session,
        )
        self.last: LivePull | None = None

    def poll(self, sweep: bool = False) -> sync.Report:
        before = len(self.api.calls)
        self.last = self.source.pull(sweep=sweep)
        self.requests = sum(1 for c in self.api.calls[before:] if c.server == "peer")
        if not self.last.changed:
            return sync.Report()
        plan = sync.plan(self.last.graph, self.col, SyncOptions(download_images=False),
                         scope=self.last.scope)
        return sync.apply(plan, self.col)

    def note(self, uid: str):
        nids = self.col.find_notes(f'"SourceID:roam:{self.api.graph}:{uid}"')
        assert len(nids) == 1, (uid, nids)
        return self.col.get_note(nids[0])


@pytest.fixture
def live(col: Collection, session: requests.Session) -> Iterator[Live]:
    with FakeRoamApi(graph_pages(), graph="bio", token=TOKEN) as api:
        runner = Live(api, col, session)
        first = runner.poll()
        assert first.created == 4 and runner.last is not None and runner.last.scope is None
        yield runner


def test_a_quiet_poll_asks_once_and_writes_nothing(live: Live) -> None:
    mod = live.col.mod
    report = live.poll()
    assert live.last is not None and live.last.scope == set()
    assert live.requests == 1
    assert (report.created, report.updated, report.orphaned) == (0, 0, 0)
    assert live.col.mod == mod


def test_an_edited_card_block_updates_its_note_in_place(live: Live) -> None:
    note = live.note("atp")
    cards = sorted(note.card_ids())
    live.api.db.edit("atp", "What is adenosine triphosphate? #card")
    report = live.poll()
    assert (report.created, report.updated, report.orphaned, report.unchanged) == (0, 1, 0, 3)
    assert live.requests == 3  # what changed, on which pages, the page itself
    after = live.note("atp")
    assert after.id == note.id and sorted(after.card_ids()) == cards
    assert "adenosine triphosphate" in after["Front"]
    # The same edit is not news on the next poll, though it is inside the overlap.
    assert live.poll().updated == 0 and live.requests == 1


def test_a_review_survives_an_edit_pulled_incrementally(live: Live) -> None:
    card = live.col.get_card(live.note("inertia").card_ids()[0])
    card.start_timer()
    live.col.sched.answerCard(card, 3)
    live.api.db.edit("inertia", "What is {{c1::inertia}} in physics? #card")
    assert live.poll().updated == 1
    note = live.note("inertia")
    assert note.card_ids() == [card.id]
    assert live.col.db.scalar("select count() from revlog where cid = ?", card.id) == 1


def test_an_edited_answer_reaches_the_back(live: Live) -> None:
    live.api.db.edit("mk-a", "ATP, from glucose")
    assert live.poll().updated == 1
    assert "from glucose" in live.note("mito")["Back"]


def test_a_new_card_block_is_created(live: Live) -> None:
    live.api.db.add("p-phys", "What is mass? #card", uid="mass")
    report = live.poll()
    assert report.created == 1 and report.orphaned == 0
    assert "mass" in live.note("mass")["Front"]


def test_an_untagged_block_is_orphaned_at_the_next_poll(live: Live) -> None:
    live.api.db.edit("inertia", "What is inertia? (no longer a card)")
    report = live.poll()
    assert report.orphaned == 1 and report.updated == 0
    assert "roam::orphaned" in live.note("inertia").tags


def test_a_deleted_card_block_is_found_by_the_sweep(live: Live) -> None:
    live.api.db.delete("mito-parent")  # no entity left to carry an :edit/time
    assert live.poll().orphaned == 0, "a poll cannot see a deletion"
    report = live.poll(sweep=True)
    assert report.orphaned == 1
    assert "roam::orphaned" in live.note("mito").tags
    assert "roam::orphaned" not in live.note("atp").tags


def test_a_renamed_page_reaches_every_card_on_it(live: Live) -> None:
    live.api.db.rename("p-bio", "Cell biology")
    report = live.poll()
    assert report.updated == 2
    assert "Cell biology" in live.note("atp")["Context"]
    assert "Cell biology" in live.note("mito")["Context"]


def test_a_block_moved_to_another_page_keeps_its_note(live: Live) -> None:
    note = live.note("mito")
    live.api.db.move("mito", "p-phys")
    report = live.poll()
    assert report.updated == 1 and report.moved == 1 and report.created == 0
    assert live.note("mito").id == note.id
    assert "Physics" in live.note("mito")["Context"]
    assert live.last is not None
    assert live.last.graph.blocks["mito"].page.title == "Physics"
    assert "mito" not in [b.uid for b in live.last.graph.pages["Biology"].children[2].children]


def test_an_edited_block_shown_through_a_ref_updates_the_card_showing_it(live: Live) -> None:
    live.api.db.edit("atp-back", "The energy currency of every cell")
    report = live.poll()
    assert report.updated == 2  # the card whose child it is, and the one on another page
    assert "energy currency of every cell" in live.note("seeref")["Front"]


def test_the_cursor_is_roams_clock_not_ours(live: Live) -> None:
    # The fake Roam's clock runs an hour behind this machine's: a poll that asked for
    # changes since its own clock's "now" would find nothing.
    assert live.source.mirror.cursor < live.api.db.now()
    live.api.db.edit("atp", "Why ATP? #card")
    assert live.poll().updated == 1


def test_many_edits_in_one_poll_are_pulled_page_by_page(live: Live) -> None:
    live.api.db.edit("atp", "ATP? #card")
    live.api.db.edit("mk-a", "ATP again")
    live.api.db.add("p-bio", "What is a cell? #card", uid="cell")
    report = live.poll()
    assert (report.created, report.updated) == (1, 2)
    pulls = live.api.pulls()
    assert pulls[-1] == 1, "one page pulled, not the graph"


def test_a_scoped_plan_never_orphans_notes_outside_its_scope(live: Live) -> None:
    assert live.last is not None
    graph = live.last.graph
    plan = sync.plan(graph, live.col, SyncOptions(download_images=False), scope={"plain"})
    assert not plan.orphans and not plan.creates and not plan.updates
    assert plan.unchanged == 4 and plan.scoped


def test_idle_polling_stays_far_within_the_cloud_quota(
    col: Collection, session: requests.Session
) -> None:
    """Ten idle minutes of checks every 20 s, the add-on's default, on a simulated clock:
    one query per check and one sweep every five minutes, never a pull."""
    now = [0.0]
    with FakeRoamApi(graph_pages(), graph="bio", token=TOKEN) as api:
        source = LiveSource(f"roam-api://{api.graph}", "",
                            ReadOptions(api_token=TOKEN, api_base_url=api.base_url),
                            session=session, clock=lambda: now[0])
        source.pull()
        start = len(api.calls)
        for _ in range(30):
            now[0] += 20
            assert not source.pull().changed
        idle = [c for c in api.calls[start:] if c.server == "peer"]
    assert len(idle) == 30 + 2  # 3.2 requests a minute; the quota is 50
    assert not any(c.is_pull for c in idle)


def test_a_failed_poll_changes_nothing_and_the_next_one_catches_up(live: Live) -> None:
    live.api.db.edit("atp", "What is ATP? (second try) #card")
    live.api.fail_next(500, times=1, message="the graph is busy", only_pulls=True)
    with pytest.raises(SourceError, match="busy"):
        live.poll()
    assert "second try" not in live.note("atp")["Front"]
    assert live.poll().updated == 1
    assert "second try" in live.note("atp")["Front"]


def test_too_many_changes_at_once_read_the_graph_whole(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    from addon.core.sources import roam_mirror

    monkeypatch.setattr(roam_mirror, "MAX_CHANGED", 2)
    for uid in ("atp", "mito", "inertia"):
        live.api.db.edit(uid, f"Edited {uid} #card")
    report = live.poll()
    assert live.last is not None and live.last.scope is None and live.last.refresh.full
    assert report.updated == 3 and report.orphaned == 0

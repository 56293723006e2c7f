"""Real Anki desktop, headless, with the add-on installed from the built .ankiaddon.

One Anki process per test module section, driven through a small test-only add-on (see
harness.py): startup sync, Sync now, watching the export, Edit > Undo, the reviewer, a
main-thread heartbeat during a large background sync, and a clean exit.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import (
    START_HEARTBEAT,
    AnkiProcess,
    create_base,
    install_ankiaddon,
    install_driver_addon,
    launch_anki,
)
from tools.graphgen import generate
from tools.package import build

ROOT = Path(__file__).resolve().parents[2]
PROFILE = "e2e"
GRAPH = "roam-bridge-demo"
GUI = "__import__('sys').modules['roam_bridge.gui']"
SEED_CARDS = 9

pytestmark = pytest.mark.e2e


@contextlib.contextmanager
def start_anki(tmp: Path, config: dict, env: dict[str, str] | None = None
               ) -> Iterator[AnkiProcess]:
    package = build(tmp / "roam_bridge.ankiaddon")
    base = create_base(tmp / "base", PROFILE)
    install_driver_addon(base)
    folder = install_ankiaddon(base, package)
    defaults = json.loads((ROOT / "addon" / "config.json").read_text(encoding="utf-8"))
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    meta["config"] = {**defaults, **config}
    (folder / "meta.json").write_text(json.dumps(meta))
    with launch_anki(base, PROFILE, log_path=tmp / "anki.log", extra_env=env) as anki:
        anki.driver.wait_for_collection(timeout=90)
        yield anki
        if anki.proc.poll() is None:
            anki.driver.quit()
            anki.assert_clean_exit(timeout=60)


def wait_for_report(anki: AnkiProcess, after: float, timeout: float = 60) -> dict:
    """The controller's next report finished after ``after`` (a driver-side clock value)."""
    driver = anki.driver
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = driver.eval(f"({GUI}.CONTROLLER.running, {GUI}.CONTROLLER.last_report, "
                            "__import__('time').time())")
        running, report, _ = state
        if not running and report and report.get("_at", 0) > after:
            return report
        time.sleep(0.1)
    raise AssertionError(f"no sync report within {timeout}s; log:\n{anki.log_text()[-3000:]}")


def stamp_reports(anki: AnkiProcess) -> None:
    """Tag each report with the time it arrived, so a test can wait for the next one."""
    anki.driver.exec(
        f"import time\n"
        f"c = {GUI}.CONTROLLER\n"
        "c.on_report.append(lambda r: r.__setitem__('_at', time.time()))\n"
        "result = True"
    )


def now(anki: AnkiProcess) -> float:
    return anki.driver.eval("__import__('time').time()")


@contextlib.contextmanager
def anki_on_seeds(tmp: Path, folder: str) -> Iterator[tuple[AnkiProcess, Path]]:
    """Anki whose one source is a copy of seeds/ in ``tmp/folder``, synced at startup and
    watched."""
    seeds = tmp / folder
    shutil.copytree(ROOT / "seeds", seeds)
    config = {"sources": [{"path": str(seeds), "kind": "auto", "graph": GRAPH, "deck": ""}],
              "sync_on_startup": True, "watch": True}
    with start_anki(tmp, config) as anki:
        yield anki, seeds


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AnkiProcess, Path]]:
    with anki_on_seeds(tmp_path_factory.mktemp("desktop"), "seeds") as started:
        yield started


def managed_count(anki: AnkiProcess) -> int:
    return anki.driver.eval(f"len(mw.col.find_notes('\"SourceID:roam:{GRAPH}:*\"'))")


def test_startup_sync_creates_the_notes_without_any_dialog(seeded) -> None:
    anki, _ = seeded
    deadline = time.monotonic() + 60
    while managed_count(anki) < SEED_CARDS and time.monotonic() < deadline:
        time.sleep(0.2)
    assert managed_count(anki) == SEED_CARDS
    anki.driver.wait_until(f"not {GUI}.CONTROLLER.running", timeout=30)
    assert anki.driver.eval("mw.app.activeModalWidget() is None")
    visible = anki.driver.eval(
        "[w.windowTitle() for w in mw.app.topLevelWidgets() "
        "if w.isVisible() and w is not mw and w.isWindow() and w.windowTitle()]"
    )
    assert visible == [], f"startup showed windows: {visible}"
    stamp_reports(anki)


def test_sync_now_is_idempotent(seeded) -> None:
    anki, _ = seeded
    mod_before = anki.driver.eval("mw.col.mod")
    start = now(anki)
    anki.driver.trigger_action("Sync now", menu="Tools")
    report = wait_for_report(anki, start)
    assert report["manual"] is True
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 0, SEED_CARDS)
    assert anki.driver.eval("mw.col.mod") == mod_before


def test_a_background_sync_of_unchanged_notes_does_not_read_them(seeded) -> None:
    anki, _ = seeded
    # Sync now settled the source and recorded it: a background sync only looks at its
    # files, so a reader that fails shows only when Sync now (which always reads) runs.
    pipeline = "__import__('sys').modules['roam_bridge.core.pipeline']"
    anki.driver.exec(
        f"m = {pipeline}\n"
        "from roam_bridge.core.model import SourceError\n"
        "def _not_read(source, *args, **kwargs):\n"
        "    raise SourceError(source.path, 'was read')\n"
        "m._e2e_read, m.read = m.read, _not_read\n"
        "result = True"
    )
    try:
        start = now(anki)
        anki.driver.exec(f"{GUI}.CONTROLLER.request(manual=False)\nresult = True")
        report = wait_for_report(anki, start)
        assert report["errors"] == [], report
        assert (report["created"], report["updated"], report["unchanged"]) == (
            0, 0, SEED_CARDS)
        start = now(anki)
        anki.driver.trigger_action("Sync now", menu="Tools")
        report = wait_for_report(anki, start)
        assert any("was read" in e for e in report["errors"]), report
    finally:
        anki.driver.exec(f"m = {pipeline}\nm.read = m._e2e_read\nresult = True")


def test_an_edited_export_is_synced_by_the_watcher_and_undo_reverts_it(seeded) -> None:
    anki, seeds = seeded
    export = seeds / "roam-bridge-demo.json"
    pages = json.loads(export.read_text(encoding="utf-8"))
    target = _first_card_block(pages)
    old_text = target["string"]
    target["string"] = "Edited in the export: what is knowledge distillation? #card"
    start = now(anki)
    temp = export.with_suffix(".tmp")
    temp.write_text(json.dumps(pages), encoding="utf-8")
    temp.replace(export)  # an atomic save, as editors and browsers do it
    report = wait_for_report(anki, start, timeout=60)
    assert report["manual"] is False and report["updated"] == 1
    key = f"roam:{GRAPH}:{target['uid']}"
    front = f"mw.col.get_note(mw.col.find_notes('\"SourceID:{key}\"')[0])['Front']"
    assert anki.driver.eval(front).startswith("Edited in the export")
    undo_text = anki.driver.eval("mw.form.actionUndo.text()")
    assert "Roam Bridge sync" in undo_text
    anki.driver.trigger_action(undo_text, menu="Edit")
    anki.driver.wait_until(f"not {front}.startswith('Edited')", timeout=30)
    assert "knowledge distillation" in anki.driver.eval(front)
    assert old_text.startswith("What is")


def test_the_reviewer_shows_where_the_card_comes_from(seeded) -> None:
    anki, seeds = seeded
    driver = anki.driver
    deck = driver.eval("mw.col.decks.id_for_name('Roam')")
    driver.open_reviewer(deck_id=deck)
    driver.show_answer()
    html = driver.wait_for_web_text('id="rb-panel"', web="reviewer", timeout=30)
    key = driver.eval("mw.reviewer.card.note()['SourceID']")
    uid = key.rsplit(":", 1)[1]
    pages = json.loads((seeds / "roam-bridge-demo.json").read_text(encoding="utf-8"))
    chain = _chain(pages, uid)
    assert pages[0]["title"].split(" – ")[0].replace("&", "&amp;") in html, "the page title"
    parent_words = _plain(chain[-2]["string"])[:25]
    assert parent_words in html, f"the parent block {parent_words!r}"
    assert "Dwarkesh Patel" in html and "rb-attr-key" in html, "the Author attribute"
    assert f"https://roamresearch.com/#/app/{GRAPH}/page/{uid}" in html, "the deep link"
    assert html.count('id="rb-panel"') == 1
    twice = driver.eval(f"{GUI}.PANEL.card_will_show({GUI}.PANEL.card_will_show('x', "
                        "mw.reviewer.card, 'reviewAnswer'), mw.reviewer.card, 'reviewAnswer')")
    assert twice.count('id="rb-panel"') == 1, "hooks firing twice add one panel"

    panel_module = "__import__('sys').modules['roam_bridge.gui.context_panel']"
    driver.exec(f"mw._opened = []\nmodule = {panel_module}\nmw._open_link = module.openLink\n"
                "module.openLink = mw._opened.append\n"
                "mw.reviewer.web.eval(\"document.querySelector('.rb-crumbs a').click()\")\n"
                "result = True")
    opened = driver.wait_until("mw._opened", timeout=10)
    driver.exec(f"{panel_module}.openLink = mw._open_link\nresult = True")
    assert opened[0].startswith(f"https://roamresearch.com/#/app/{GRAPH}/page/"), opened

    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    driver.screenshot(artifacts / "reviewer.png")
    assert _distinct_colours(artifacts / "reviewer.png") > 20, "the screenshot is blank"

    driver.exec("from PyQt6.QtTest import QTest\nfrom aqt.qt import Qt\n"
                "QTest.keyClick(mw.reviewer.web, Qt.Key.Key_C)\nresult = True")
    driver.wait_until(f"mw.pm.profile.get({GUI}.PANEL.PROFILE_KEY) is True", timeout=10)
    collapsed = driver.wait_for_web_text("rb-panel rb-collapsed", web="reviewer", timeout=10)
    assert "rb-collapsed" in collapsed
    assert "rb-collapsed" in driver.eval(
        f"{GUI}.PANEL.card_will_show('', mw.reviewer.card, 'reviewAnswer')"
    ), "the next card remembers the collapsed panel"
    driver.exec("from PyQt6.QtTest import QTest\nfrom aqt.qt import Qt\n"
                "QTest.keyClick(mw.reviewer.web, Qt.Key.Key_C)\nresult = True")
    driver.wait_until(f"mw.pm.profile.get({GUI}.PANEL.PROFILE_KEY) is False", timeout=10)
    driver.exec("mw.moveToState('deckBrowser'); result = True")


def _chain(pages: list[dict], uid: str) -> list[dict]:
    """The block with ``uid`` and its ancestors, top first."""
    def walk(blocks: list[dict], path: list[dict]) -> list[dict] | None:
        for raw in blocks:
            if raw["uid"] == uid:
                return [*path, raw]
            found = walk(raw.get("children", []), [*path, raw])
            if found:
                return found
        return None

    for p in pages:
        found = walk(p.get("children", []), [])
        if found:
            return found
    raise AssertionError(f"{uid} not in the seeds")


def _plain(text: str) -> str:
    return text.replace("[[", "").replace("]]", "").replace("#", "")


def _distinct_colours(path: Path) -> int:
    from PyQt6.QtGui import QImage

    image = QImage(str(path))
    assert not image.isNull()
    return len({image.pixel(x, y) for x in range(0, image.width(), 5)
                for y in range(0, image.height(), 5)})


def test_anki_exits_cleanly(seeded) -> None:
    anki, _ = seeded
    anki.driver.quit()
    anki.assert_clean_exit(timeout=60)


@contextlib.contextmanager
def anki_on_big_export(tmp: Path) -> Iterator[AnkiProcess]:
    """Anki whose one source (graph "big") is a 40k-block export with 10k cards; it syncs
    only when the test asks."""
    export = tmp / "big" / "graph.json"
    export.parent.mkdir()
    export.write_text(json.dumps(generate(blocks=40_000, cards=10_000, seed=11)))
    config = {"sources": [{"path": str(export), "kind": "auto", "graph": "big", "deck": ""}],
              "sync_on_startup": False, "watch": False}
    with start_anki(tmp, config) as anki:
        yield anki


def test_a_large_background_sync_never_stalls_the_main_thread(tmp_path: Path) -> None:
    with anki_on_big_export(tmp_path) as anki:
        stamp_reports(anki)
        anki.driver.exec(START_HEARTBEAT)
        time.sleep(0.5)
        start = now(anki)
        anki.driver.exec("mw._heartbeat[1]['worst'] = 0.0\n"
                         f"{GUI}.CONTROLLER.request(manual=False)\nresult = True")
        report = wait_for_report(anki, start, timeout=180)
        worst = anki.driver.exec("timer, hb = mw._heartbeat\ntimer.stop()\n"
                                 "result = hb['worst']")
        print(f"worst main-thread gap: {worst * 1000:.0f} ms")
        assert report["created"] == 10_000, report
        assert anki.driver.eval("mw.col.note_count()") == 10_000
        assert worst < 0.100, f"main thread stalled {worst * 1000:.0f} ms"


def _first_card_block(pages: list[dict]) -> dict:
    stack = [b for p in pages for b in p.get("children", [])]
    while stack:
        raw = stack.pop(0)
        if raw["string"].startswith("What is [[knowledge distillation]]"):
            return raw
        stack.extend(raw.get("children", []))
    raise AssertionError("seed card not found")

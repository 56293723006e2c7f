"""Real Anki desktop: what starts a sync, what a background sync may not do, and profile
close during a sync. Companion of test_anki_desktop.py (same harness and helpers)."""

from __future__ import annotations

import json
import os
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import AnkiProcess
from tests.e2e.test_anki_desktop import (
    GRAPH,
    GUI,
    ROOT,
    SEED_CARDS,
    anki_on_big_export,
    anki_on_seeds,
    managed_count,
    now,
    stamp_reports,
    wait_for_report,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AnkiProcess, Path]]:
    with anki_on_seeds(tmp_path_factory.mktemp("triggers"), "Downloads") as (anki, folder):
        anki.driver.wait_until(f"len(mw.col.find_notes('\"SourceID:roam:{GRAPH}:*\"')) == "
                               f"{SEED_CARDS} and not {GUI}.CONTROLLER.running", timeout=60)
        stamp_reports(anki)
        anki.driver.exec(f"mw._reports = []\n{GUI}.CONTROLLER.on_report.append("
                         "mw._reports.append)\nresult = True")
        yield anki, folder


def seed_pages() -> list[dict]:
    return json.loads((ROOT / "seeds" / "roam-bridge-demo.json").read_text(encoding="utf-8"))


def drop_export(folder: Path, pages: list[dict], stamp: int) -> Path:
    """A new Roam-Export-<stamp>.zip landing in the folder, as a browser saves it."""
    target = folder / f"Roam-Export-{stamp}.zip"
    partial = folder / f"Roam-Export-{stamp}.zip.part"
    with zipfile.ZipFile(partial, "w") as archive:
        archive.writestr("roam-bridge-demo.json", json.dumps(pages))
    os.replace(partial, target)
    os.utime(target, (time.time() + stamp % 100, time.time() + stamp % 100))
    return target


def find(pages: list[dict], prefix: str) -> dict:
    stack = [b for p in pages for b in p.get("children", [])]
    while stack:
        raw = stack.pop(0)
        if raw["string"].startswith(prefix):
            return raw
        stack.extend(raw.get("children", []))
    raise AssertionError(prefix)


def test_triggers_during_a_sync_queue_a_single_rerun(watched) -> None:
    anki, _ = watched
    driver = anki.driver
    driver.exec("mw._reports.clear()\n"
                f"c = {GUI}.CONTROLLER\n"
                "c.request(manual=False)\n"
                "c.request(manual=False)\nc.request(manual=False)\nc.request(manual=False)\n"
                "result = (c.running, c.queued)")
    driver.wait_until(f"not {GUI}.CONTROLLER.running and {GUI}.CONTROLLER.queued is None "
                      "and len(mw._reports) >= 2", timeout=60)
    time.sleep(1.0)
    assert driver.eval("len(mw._reports)") == 2, "one sync and one queued rerun"


def test_a_new_export_zip_in_the_folder_is_picked_up(watched) -> None:
    anki, folder = watched
    pages = seed_pages()
    card = find(pages, "What is [[knowledge distillation]]")
    card["string"] = "What is [[knowledge distillation]], in one line? #card"
    start = now(anki)
    drop_export(folder, pages, 1_800_000_000_001)
    report = wait_for_report(anki, start, timeout=60)
    assert report["manual"] is False and report["updated"] == 1
    front = anki.driver.eval(
        f"mw.col.get_note(mw.col.find_notes('\"SourceID:roam:{GRAPH}:{card['uid']}\"')[0])"
        "['Front']")
    assert "in one line" in front


def test_a_save_that_changes_nothing_starts_no_sync(watched) -> None:
    anki, folder = watched
    newest = max(folder.glob("Roam-Export-*.zip"), key=lambda p: p.stat().st_mtime)
    count = anki.driver.eval("len(mw._reports)")
    data = newest.read_bytes()
    newest.write_bytes(data)  # the same bytes, a new modification time
    time.sleep(5)
    assert anki.driver.eval("len(mw._reports)") == count
    assert not anki.driver.eval(f"{GUI}.CONTROLLER.running")


def note_of(anki: AnkiProcess, uid: str, expr: str) -> object:
    return anki.driver.eval(
        f"mw.col.get_note(mw.col.find_notes('\"SourceID:roam:{GRAPH}:{uid}\"')[0]){expr}")


def restore_seeds(anki: AnkiProcess, folder: Path, stamp: int) -> None:
    """Land the full seed export again and wait for its background sync."""
    start = now(anki)
    drop_export(folder, seed_pages(), stamp)
    wait_for_report(anki, start, timeout=60)


def test_a_background_sync_defers_kind_changes(watched) -> None:
    anki, folder = watched
    pages = seed_pages()
    keep = find(pages, "What is [[knowledge distillation]]")
    keep["string"] = "{c1:Knowledge distillation} moves knowledge to a smaller model #card"
    start = now(anki)
    drop_export(folder, pages, 1_800_000_000_002)
    report = wait_for_report(anki, start, timeout=60)
    assert "deferred to the next manual sync" in " ".join(report["warnings"])
    assert note_of(anki, keep["uid"], ".note_type()['name']") == "Roam Bridge Basic"
    assert "{c1:" not in note_of(anki, keep["uid"], "['Front']")
    assert anki.driver.eval("mw.app.activeModalWidget() is None")
    restore_seeds(anki, folder, 1_800_000_000_003)


def test_a_background_sync_the_guard_refuses_writes_nothing(watched) -> None:
    anki, folder = watched
    pages = seed_pages()
    keep = find(pages, "What is [[knowledge distillation]]")
    keep["string"] = "Edited in a suspect export: what is knowledge distillation? #card"
    pages[0]["children"] = [b for b in pages[0]["children"]
                            if "::" in b["string"] or keep in _flatten(b)]
    mod_before = anki.driver.eval("mw.col.mod")
    front_before = note_of(anki, keep["uid"], "['Front']")
    start = now(anki)
    drop_export(folder, pages, 1_800_000_000_004)
    report = wait_for_report(anki, start, timeout=60)
    assert report["refused"] is True
    assert "nothing was written" in " ".join(report["warnings"])
    shown = anki.driver.eval("__import__('roam_bridge.gui.report_dialog').gui.report_dialog"
                             f".report_html({GUI}.CONTROLLER.last_report)")
    assert "held back: nothing was written" in shown and "would orphan" in shown
    assert anki.driver.eval("mw.col.mod") == mod_before, "not a single write"
    assert note_of(anki, keep["uid"], "['Front']") == front_before, "not even the edit"
    assert managed_count(anki) == SEED_CARDS
    assert anki.driver.eval(
        f"len(mw.col.find_notes('\"SourceID:roam:{GRAPH}:*\" tag:roam::orphaned'))") == 0
    assert anki.driver.eval("mw.app.activeModalWidget() is None"), "a background sync asks nothing"
    restore_seeds(anki, folder, 1_800_000_000_005)


def _flatten(raw: dict) -> list[dict]:
    out = [raw]
    for child in raw.get("children", []):
        out.extend(_flatten(child))
    return out


def test_closing_the_profile_during_a_sync_never_leaves_it_half_done(tmp_path: Path) -> None:
    with anki_on_big_export(tmp_path) as anki:
        driver = anki.driver
        driver.exec(
            f"c = {GUI}.CONTROLLER\n"
            "original = c._apply\n"
            "def closing_apply(col, batch, progress):\n"
            "    mw.taskman.run_on_main(mw.unloadProfileAndShowProfileManager)\n"
            "    return original(col, batch, progress)\n"
            "c._apply = closing_apply\n"
            "c.request(manual=False)\n"
            "result = True"
        )
        driver.wait_until("mw.col is None", timeout=120)
        driver.exec(f"{GUI}.CONTROLLER._apply = original\n"
                    "mw.pm.load('e2e')\nmw.onOpenProfile()\nresult = True")
        driver.wait_for_collection(timeout=60)
        count = driver.eval("len(mw.col.find_notes('\"SourceID:roam:big:*\"'))")
        assert count == 10_000, f"a sync cut in half left {count} notes"
        driver.wait_until(f"not {GUI}.CONTROLLER.running", timeout=30)


def test_settings_are_validated_saved_and_applied(watched) -> None:
    anki, _ = watched
    driver = anki.driver
    gui = GUI
    start = now(anki)
    warned = driver.exec(
        "import roam_bridge.gui.settings_dialog as module\n"
        "shown, original = [], module.showWarning\n"
        "module.showWarning = lambda text, **kw: shown.append(text)\n"
        f"dialog = module.SettingsDialog(mw, {gui}.CONTROLLER.raw_config(), {gui}.save_settings)\n"
        "dialog.card_tags.setText('')\n"
        "dialog._accept()\n"
        "module.showWarning = original\n"
        "dialog.close()\n"
        "result = shown"
    )
    assert warned and "card_tags" in warned[0]
    assert driver.eval(f"{gui}.CONTROLLER.raw_config()['card_tags']") == [
        "card", "flashcard", "anki"], "an invalid value writes nothing"
    shown = driver.exec(
        f"from roam_bridge.gui.settings_dialog import SettingsDialog\n"
        f"dialog = SettingsDialog(mw, {gui}.CONTROLLER.raw_config(), {gui}.save_settings)\n"
        "dialog.card_tags.setText('card, flashcard, anki, srs')\n"
        "dialog.depth_box.setCurrentIndex(1)\n"
        "dialog._accept()\n"
        f"result = {gui}.CONTROLLER._window is not None"
    )
    assert shown, "the sync that OK starts shows its progress"
    config = driver.eval(f"{gui}.CONTROLLER.raw_config()")
    assert config["card_tags"] == ["card", "flashcard", "anki", "srs"]
    assert config["context_depth"] == 0
    report = wait_for_report(anki, start, timeout=60)
    assert report["manual"] is True
    assert report["updated"] >= 1, "a new breadcrumb depth updates the cards"
    page_only = driver.eval(
        f"len(mw.col.find_notes('\"SourceID:roam:{GRAPH}:*\" Context:*rb-more*'))")
    assert page_only == report["updated"]


def test_per_source_options_are_edited_in_the_dialog(watched) -> None:
    anki, _ = watched
    driver = anki.driver
    edit = (
        f"from roam_bridge.gui.settings_dialog import SettingsDialog\n"
        f"dialog = SettingsDialog(mw, {GUI}.CONTROLLER.raw_config(), {GUI}.save_settings)\n"
        "dialog.source_list.setCurrentRow(0)\n"
        "dialog.include.setText({include!r})\n"
        "dialog.include.textEdited.emit(dialog.include.text())\n"
        "dialog.write_ids.setChecked({write_ids})\n"
        "dialog._accept()\n"
        "result = True"
    )
    driver.exec(edit.format(include="Study/**, Notes/*.md", write_ids=True))
    source = driver.eval(f"{GUI}.CONTROLLER.raw_config()['sources'][0]")
    assert source["include"] == ["Study/**", "Notes/*.md"] and source["write_ids"] is True
    driver.exec(edit.format(include="", write_ids=False))
    source = driver.eval(f"{GUI}.CONTROLLER.raw_config()['sources'][0]")
    assert "include" not in source and "write_ids" not in source
    driver.wait_until(f"not {GUI}.CONTROLLER.running", timeout=60)


def test_a_manual_sync_can_be_cancelled_before_it_writes(watched) -> None:
    anki, folder = watched
    driver = anki.driver
    driver.exec(f"{GUI}.WATCHER.stop()\nresult = True")
    pages = seed_pages()
    card = find(pages, "What is [[adaptive compute]]")
    card["string"] = "Cancelled edit: what is [[adaptive compute]]? #card"
    drop_export(folder, pages, 1_800_000_000_006)
    mod_before = driver.eval("mw.col.mod")
    reports_before = driver.eval("len(mw._reports)")
    driver.exec(f"{GUI}.CONTROLLER.request(manual=True)\n"
                f"{GUI}.CONTROLLER._window.reject()\n"  # Cancel, Escape or closing the window
                "result = True")
    driver.wait_until(f"not {GUI}.CONTROLLER.running", timeout=60)
    assert driver.eval("mw.col.mod") == mod_before
    assert driver.eval("len(mw._reports)") == reports_before
    front = (f"mw.col.get_note(mw.col.find_notes('\"SourceID:roam:{GRAPH}:{card['uid']}\"')"
             "[0])['Front']")
    assert "Cancelled edit" not in driver.eval(front)
    start = now(anki)
    driver.exec(f"{GUI}.WATCHER.watch([{str(folder)!r}])\n{GUI}.CONTROLLER.request(manual=False)"
                "\nresult = True")
    wait_for_report(anki, start, timeout=60)
    assert "Cancelled edit" in driver.eval(front), "the next sync applies it"


def test_the_last_sync_report_lists_counts_and_browses_the_changed_notes(watched) -> None:
    anki, _ = watched
    driver = anki.driver
    html = driver.exec(
        "import roam_bridge.gui.report_dialog as module\n"
        f"dialog = module.ReportDialog(mw, {GUI}.CONTROLLER.last_report)\n"
        "dialog.show()\n"
        "text = dialog.findChild(module.QTextBrowser).toHtml()\n"
        "buttons = [b for b in dialog.findChildren(__import__('aqt').qt.QPushButton)"
        " if b.text() == 'Browse changed notes']\n"
        "buttons[0].click()\n"
        "dialog.close()\n"
        "result = text"
    )
    assert "updated" in html and "Last background sync" in html
    browser = driver.wait_until(
        "[w for w in mw.app.topLevelWidgets() if type(w).__name__ == 'Browser' "
        "and w.isVisible()]", timeout=20)
    assert browser
    search = driver.eval("__import__('aqt').dialogs._dialogs['Browser'][1].current_search()")
    assert search.startswith("nid:")
    driver.exec("__import__('aqt').dialogs._dialogs['Browser'][1].close()\nresult = True")

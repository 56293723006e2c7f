"""Real Anki desktop: looking at a note never edits it, and sources belong to a profile.

- Every synced note (the seeds, and a corpus of every piece of syntax the renderer knows) is
  opened in the Browser's editor and left: no note gets a new modification time, and the undo
  history still ends with the sync.
- A config from before sources were per profile moves to the first profile that opens; a
  second profile starts with no sources and gets no cards.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import (
    AnkiProcess,
    create_base,
    install_ankiaddon,
    install_driver_addon,
    launch_anki,
    write_prefs_db,
)
from tools.package import build

ROOT = Path(__file__).resolve().parents[2]
GUI = "__import__('sys').modules['roam_bridge.gui']"

pytestmark = pytest.mark.e2e


def _corpus_export(folder: Path) -> Path:
    """The seeds and the syntax corpus in one export, every top-level corpus block a card."""
    seeds = json.loads((ROOT / "seeds" / "roam-bridge-demo.json").read_text(encoding="utf-8"))
    corpus = json.loads((ROOT / "tests" / "render_corpus" / "syntax.json").read_text(
        encoding="utf-8"))
    for page in corpus:
        for raw in page.get("children", []):
            if "::" not in raw["string"] and "#card" not in raw["string"]:
                raw["string"] += " #card"
    export = folder / "corpus.json"
    export.write_text(json.dumps(seeds + corpus), encoding="utf-8")
    return export


@contextlib.contextmanager
def anki(tmp: Path, profile: str, config: dict | None = None,
         profiles: tuple[str, ...] = ()) -> Iterator[AnkiProcess]:
    base = tmp / "base"
    if not base.exists():
        create_base(base, profile)
        if profiles:
            write_prefs_db(base, [profile, *profiles], last_profile=profile)
        install_driver_addon(base)
        folder = install_ankiaddon(base, build(tmp / "roam_bridge.ankiaddon"))
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        defaults = json.loads((ROOT / "addon" / "config.json").read_text(encoding="utf-8"))
        meta["config"] = {**defaults, **(config or {})}
        (folder / "meta.json").write_text(json.dumps(meta))
    (base / profile).mkdir(exist_ok=True)
    with launch_anki(base, profile, log_path=tmp / f"anki-{profile}.log") as process:
        process.driver.wait_for_collection(timeout=90)
        yield process
        if process.proc.poll() is None:
            process.driver.quit()
            process.assert_clean_exit(timeout=60)


def _wait_synced(process: AnkiProcess, at_least: int) -> list[int]:
    driver = process.driver
    driver.wait_until(f"len(mw.col.find_notes('SourceID:roam*')) >= {at_least}", timeout=90)
    driver.wait_until(f"not {GUI}.CONTROLLER.running", timeout=60)
    return driver.eval("sorted(mw.col.find_notes('SourceID:roam*'))")


def test_opening_every_synced_note_in_the_editor_leaves_it_unmodified(tmp_path: Path) -> None:
    export = _corpus_export(tmp_path)
    config = {"sources": [{"path": str(export), "graph": "corpus"}], "watch": False}
    with anki(tmp_path, "looking", config) as process:
        driver = process.driver
        nids = _wait_synced(process, at_least=20)
        before = {nid: driver.eval(f"(mw.col.get_note({nid}).mod, "
                                   f"mw.col.get_note({nid}).fields)") for nid in nids}
        time.sleep(1.1)  # a rewrite would show as a later modification time
        driver.exec("import aqt\nbrowser = aqt.dialogs.open('Browser', mw)\nresult = True")
        for nid in nids:
            driver.exec(f"browser.search_for('nid:{nid}')\nresult = True")
            driver.wait_until(f"browser.editor.note is not None and browser.editor.note.id == "
                              f"{nid}", timeout=20)
            time.sleep(0.6)  # the editor's web view loads and serialises the fields
        driver.exec("browser.close()\nresult = True")
        time.sleep(1.5)
        after = {nid: driver.eval(f"(mw.col.get_note({nid}).mod, "
                                  f"mw.col.get_note({nid}).fields)") for nid in nids}
        changed = {nid: after[nid][1] for nid in nids if after[nid] != before[nid]}
        assert changed == {}
        assert driver.eval("mw.col.undo_status().undo") == "Roam Bridge sync"


def test_sources_belong_to_the_profile_they_were_set_up_in(tmp_path: Path) -> None:
    export = tmp_path / "notes.json"
    export.write_text(json.dumps(json.loads(
        (ROOT / "seeds" / "roam-bridge-demo.json").read_text(encoding="utf-8"))),
        encoding="utf-8")
    legacy = {"sources": [{"path": str(export), "graph": "roam-bridge-demo"}],
              "roam_api_token": "secret-token-of-profile-one", "watch": False}
    with anki(tmp_path, "one", legacy, profiles=("two",)) as first:
        notes = _wait_synced(first, at_least=9)
        assert len(notes) == 9
        config = first.driver.eval(f"{GUI}.CONTROLLER.raw_config()")
        assert [s["path"] for s in config["sources"]] == [str(export)]
        stored = first.driver.eval(f"mw.addonManager.getConfig({GUI}.ADDON)")
        assert "sources" not in stored and "roam_api_token" not in stored
        assert first.driver.eval("mw.pm.profile['roamBridge']['roam_api_token']") == (
            "secret-token-of-profile-one")
    addon_config = tmp_path / "base" / "addons21" / "roam_bridge" / "meta.json"
    assert "secret-token-of-profile-one" not in addon_config.read_text(encoding="utf-8")
    with anki(tmp_path, "two") as second:
        driver = second.driver
        time.sleep(3)  # a startup sync would have begun by now
        assert driver.eval(f"{GUI}.CONTROLLER.raw_config()['sources']") == []
        assert driver.eval("len(mw.col.find_notes('SourceID:roam*'))") == 0
        assert driver.eval(f"{GUI}.CONTROLLER.last_report") is None
    with anki(tmp_path, "one") as again:
        assert again.driver.eval(f"[s['path'] for s in {GUI}.CONTROLLER.raw_config()"
                                 "['sources']]") == [str(export)]
        assert again.driver.eval(f"{GUI}.CONTROLLER.last_report['created']") == 9

"""Real Anki desktop: an edit typed into the Browser's editor reaches the Logseq file with
Sync now; Edit > Undo takes the sync back out of the collection and nothing is lost; Revert
last write-back puts the file back, and the card follows it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.e2e.test_anki_desktop import GUI, now, stamp_reports, start_anki, wait_for_report
from tests.test_write_back import HOLA, LOGSEQ_PAGE

pytestmark = pytest.mark.e2e

# Types into the Browser's editor as a user does: the field's editable area gets the new
# HTML and an input event, and the editor saves the note itself.
TYPE_INTO_FRONT = """
(() => {
  const editable = document.querySelector('.rich-text-editable')
    .shadowRoot.querySelector('anki-editable');
  editable.focus();
  editable.innerHTML = %s;
  editable.dispatchEvent(new InputEvent('input', {bubbles: true}));
  editable.blur();
  return editable.innerHTML;
})()
"""


def test_an_edit_in_the_editor_is_written_back_undone_and_reverted(tmp_path: Path) -> None:
    graph = tmp_path / "graph"
    (graph / "pages").mkdir(parents=True)
    (graph / "logseq").mkdir()
    page = graph / "pages" / "Spanish.md"
    page.write_text(LOGSEQ_PAGE, encoding="utf-8")
    config = {"sources": [{"path": str(graph), "kind": "logseq", "graph": "g",
                           "write_back": True}], "watch": False}
    with start_anki(tmp_path, config) as anki:
        driver = anki.driver
        driver.wait_until(f"len(mw.col.find_notes('\"SourceID:{HOLA}\"')) == 1", timeout=90)
        driver.wait_until(f"not {GUI}.CONTROLLER.running", timeout=60)
        stamp_reports(anki)
        nid = driver.eval(f"mw.col.find_notes('\"SourceID:{HOLA}\"')[0]")
        cards = driver.eval(f"sorted(mw.col.card_ids_of_note({nid}))")
        front = f"mw.col.get_note({nid})['Front']"
        time.sleep(1.1)  # Anki times edits to the second: this one comes after the sync

        edited = "What does <b>hola</b> mean in English?"
        driver.exec("import aqt\nbrowser = aqt.dialogs.open('Browser', mw)\n"
                    f"browser.search_for('nid:{nid}')\nresult = True")
        driver.wait_until(f"browser.editor.note is not None and browser.editor.note.id == {nid}",
                          timeout=30)
        time.sleep(1.0)  # the editor's web view loads the fields
        driver.exec(f"browser.editor.web.eval({TYPE_INTO_FRONT % json.dumps(edited)!r})\n"
                    "result = True")
        driver.wait_until(f"'in English' in {front}", timeout=30)
        driver.exec("browser.close()\nresult = True")

        start = now(anki)
        driver.trigger_action("Sync now", menu="Tools")
        report = wait_for_report(anki, start)
        assert (report["written_back"], report["conflicts"]) == (1, 0), report
        assert page.read_text(encoding="utf-8") == LOGSEQ_PAGE.replace(
            "What does **hola** mean? #card", "What does **hola** mean in English? #card")
        assert driver.eval(front) == "What does <strong>hola</strong> mean in English?"
        assert driver.eval(f"sorted(mw.col.card_ids_of_note({nid}))") == cards

        # Undo takes the sync out of the collection; the notes keep the edit, and the next
        # sync finds both sides saying the same: no conflict, nothing lost.
        undo = driver.eval("mw.form.actionUndo.text()")
        assert "Roam Bridge sync" in undo
        driver.trigger_action(undo, menu="Edit")
        driver.wait_until(f"{front} == {edited!r}", timeout=30)
        start = now(anki)
        driver.trigger_action("Sync now", menu="Tools")
        report = wait_for_report(anki, start)
        assert (report["conflicts"], report["kept_anki_edits"], report["written_back"]) == (
            0, 0, 0), report
        assert driver.eval(front) == "What does <strong>hola</strong> mean in English?"

        # Revert last write-back: the file says what it said, and the card follows.
        start = now(anki)
        driver.exec(f"{GUI}.CONTROLLER.revert_last_write_back()\nresult = True")
        report = wait_for_report(anki, start)
        assert page.read_text(encoding="utf-8") == LOGSEQ_PAGE
        assert report["updated"] == 1
        assert driver.eval(front) == "What does <strong>hola</strong> mean?"
        assert driver.eval(f"sorted(mw.col.card_ids_of_note({nid}))") == cards

"""Real Anki desktop, headless, as a user meets the add-on: the way back to the block from
the reviewer, the Browser and the editor; the preview, the guard's question and Cancel; undo
that stays the user's; the settings; screenshots of what a user sees.

One Anki on a copy of the seed export (synced at startup, not watched) serves the tests in
order; each leaves the export as it found it. The progress and Cancel tests use a large
export in an Anki of their own. Screenshots go to test-artifacts/ (gitignored).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import AnkiProcess
from tests.e2e.test_anki_desktop import (
    GRAPH,
    GUI,
    ROOT,
    SEED_CARDS,
    _distinct_colours,
    anki_on_big_export,
    now,
    stamp_reports,
    start_anki,
    wait_for_report,
)
from tests.roam import find_block

pytestmark = pytest.mark.e2e
ARTIFACTS = ROOT / "test-artifacts"
MODULE = "__import__('sys').modules['roam_bridge.gui.{}']"
LINKS = MODULE.format("source_links")
KNOWLEDGE = "n-sta8Uww"  # What is [[knowledge distillation]]? #card
ADAPTIVE = "_v_SX8vG6"  # What is [[adaptive compute]] …? #[[card]]
SECTION = "JJ3AqEwnA"  # [[superposition]] and secret communication, their parent
UNDER_SECTION = {"jllGU-S77", KNOWLEDGE, "3xxmkjseh", ADAPTIVE}
PAGE_TITLE = ("Roam Research Notes on Dwarkesh Patel Conversation with Sholto Douglas & "
              "Trenton Bricken – How to Build & Understand GPT-7’s Mind")


def seed_pages() -> list[dict]:
    return json.loads((ROOT / "seeds" / "roam-bridge-demo.json").read_text(encoding="utf-8"))


class Notes:
    """The export Anki syncs from, and how the test edits it (atomically, as editors do)."""

    def __init__(self, anki: AnkiProcess, export: Path) -> None:
        self.anki = anki
        self.export = export

    def write(self, pages: list[dict]) -> None:
        temp = self.export.with_suffix(".tmp")
        temp.write_text(json.dumps(pages), encoding="utf-8")
        temp.replace(self.export)

    def restore(self) -> dict:
        """The seeds again, synced in the background; returns that sync's report."""
        self.write(seed_pages())
        return self.sync(manual=False)

    def sync(self, manual: bool = True, preview: bool = False) -> dict:
        start = now(self.anki)
        self.anki.driver.exec(f"{GUI}.CONTROLLER.request(manual={manual}, preview={preview})"
                              "\nresult = True")
        return wait_for_report(self.anki, start, timeout=90)

    def note(self, uid: str, expr: str = "") -> object:
        return self.anki.driver.eval(
            f"mw.col.get_note(mw.col.find_notes('\"SourceID:roam:{GRAPH}:{uid}\"')[0]){expr}")

    def nid(self, uid: str) -> int:
        return self.anki.driver.eval(f"mw.col.find_notes('\"SourceID:roam:{GRAPH}:{uid}\"')[0]")


@pytest.fixture(scope="module")
def notes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Notes]:
    tmp = tmp_path_factory.mktemp("gui")
    export = tmp / "notes" / "roam-bridge-demo.json"
    export.parent.mkdir()
    shutil.copy(ROOT / "seeds" / "roam-bridge-demo.json", export)
    config = {"sources": [{"path": str(export), "kind": "auto", "graph": GRAPH, "deck": ""}],
              "sync_on_startup": True, "watch": False}
    with start_anki(tmp, config) as anki:
        driver = anki.driver
        driver.wait_until(f"len(mw.col.find_notes('\"SourceID:roam:{GRAPH}:*\"')) == "
                          f"{SEED_CARDS} and not {GUI}.CONTROLLER.running", timeout=90)
        stamp_reports(anki)
        # Links are opened by the system's browser; here they are only recorded.
        driver.exec(
            "mw._opened = []\n"
            f"{LINKS}.openLink = mw._opened.append\n"
            f"{MODULE.format('context_panel')}.openLink = mw._opened.append\n"
            "result = True"
        )
        ARTIFACTS.mkdir(exist_ok=True)
        yield Notes(anki, export)


@pytest.fixture(autouse=True)
def seeds_again(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test leaves the export as it found it; one that failed half-way is put back
    here (and synced), so it fails alone instead of taking the tests after it along."""
    yield
    if "notes" not in request.fixturenames:
        return
    notes: Notes = request.getfixturevalue("notes")
    if json.loads(notes.export.read_text(encoding="utf-8")) != seed_pages():
        notes.write(seed_pages())
        notes.anki.driver.exec("mw.moveToState('deckBrowser')\nresult = True")
        notes.sync()


def opened(anki: AnkiProcess) -> list[str]:
    return anki.driver.wait_until("mw._opened and list(mw._opened)", timeout=10)


def forget_opened(anki: AnkiProcess) -> None:
    anki.driver.exec("mw._opened.clear()\nresult = True")


def block_url(uid: str) -> str:
    return f"https://roamresearch.com/#/app/{GRAPH}/page/{uid}"


def review_only(notes: Notes, uid: str, deck: str) -> None:
    """Put the note's cards in a deck of their own (as a user may) and open the reviewer
    there, on the answer side."""
    driver = notes.anki.driver
    driver.exec(
        f"did = mw.col.decks.id({deck!r})\n"
        f"mw.col.set_deck(mw.col.card_ids_of_note({notes.nid(uid)}), did)\n"
        "result = True"
    )
    driver.open_reviewer(deck_id=driver.eval(f"mw.col.decks.id_for_name({deck!r})"))
    driver.show_answer()


def press(anki: AnkiProcess, widget: str, key: str) -> None:
    anki.driver.exec("from PyQt6.QtTest import QTest\nfrom aqt.qt import Qt\n"
                     f"QTest.keyClick({widget}, Qt.Key.{key})\nresult = True")


def visible(anki: AnkiProcess, type_name: str) -> str:
    return (f"[w for w in mw.app.topLevelWidgets() if type(w).__name__ == {type_name!r} "
            "and w.isVisible()]")


# The reviewer -----------------------------------------------------------------------------


def test_the_reviewer_opens_the_block_with_g_and_from_its_context_menu(notes: Notes) -> None:
    anki = notes.anki
    review_only(notes, KNOWLEDGE, "Review::Knowledge")
    assert anki.driver.eval("mw.reviewer.card.note()['SourceID']").endswith(KNOWLEDGE)
    forget_opened(anki)
    press(anki, "mw.reviewer.web", "Key_G")
    assert opened(anki) == [block_url(KNOWLEDGE)]

    forget_opened(anki)
    anki.driver.exec("mw.reviewer.showContextMenu()\nresult = True")
    menu = visible(anki, "QMenu")
    labels = anki.driver.wait_until(f"[a.text() for m in {menu} for a in m.actions()]")
    assert "Open in Roam" in labels
    anki.driver.exec(f"m = {menu}[0]\n"
                     "[a for a in m.actions() if a.text() == 'Open in Roam'][0].trigger()\n"
                     "m.close()\nresult = True")
    assert opened(anki) == [block_url(KNOWLEDGE)]


def test_reviewer_screenshots_light_and_night_with_panel_links_that_look_like_links(
    notes: Notes,
) -> None:
    anki = notes.anki
    driver = anki.driver
    # The panel's own links (the ↗ to each block) and a text link as a block would render
    # one: both must be coloured unlike the panel's text, and a text link underlined.
    style = ("(() => { const body = document.querySelector('#rb-panel .rb-panel-body');"
             " const text = document.createElement('a'); text.href = 'https://example.com';"
             " text.textContent = 'a link'; body.appendChild(text);"
             " const go = getComputedStyle(document.querySelector('#rb-panel a.rb-go'));"
             " const s = getComputedStyle(text); const panel = getComputedStyle(body);"
             " const found = [s.color, s.textDecorationLine, panel.color, go.color,"
             " document.body.classList.contains('nightMode')]; text.remove(); return found;"
             " })()")
    seen = {}
    for theme in ("LIGHT", "DARK"):
        driver.exec(f"from aqt.theme import Theme\nmw.set_theme(Theme.{theme})\nresult = True")
        review_only(notes, KNOWLEDGE, "Review::Knowledge")
        driver.wait_for_web_text('id="rb-panel"', web="reviewer")
        link, decoration, text, arrow, night = driver.web_html("reviewer", js=style)
        assert night is (theme == "DARK")
        assert "underline" in decoration and link != text, "a link does not look like text"
        assert arrow == link, "the way to each block is coloured as a link"
        seen[theme] = link
        shot = ARTIFACTS / f"reviewer-{'night' if theme == 'DARK' else 'light'}.png"
        driver.screenshot(shot)
        assert _distinct_colours(shot) > 20, f"{shot.name} is blank"
    assert seen["LIGHT"] != seen["DARK"], "night mode has its own link colour"
    driver.exec("from aqt.theme import Theme\nmw.set_theme(Theme.LIGHT)\n"
                "mw.moveToState('deckBrowser')\nresult = True")


def test_the_panel_shows_what_the_note_holds_after_an_undo(notes: Notes) -> None:
    anki = notes.anki
    driver = anki.driver
    panel = (f"{GUI}.PANEL.card_will_show('', mw.col.get_card(mw.col.card_ids_of_note("
             f"{notes.nid(KNOWLEDGE)})[0]), 'reviewAnswer')")
    before = driver.eval(panel)
    assert "They suggest that" in before, "the block just before the card"
    pages = seed_pages()
    find_block(pages, SECTION)["string"] = (
        "[[superposition]], secret communication, and a heading "
        "long enough for the breadcrumb to shorten it")
    notes.write(pages)
    assert notes.sync()["updated"] == 4
    assert "long enough for the breadcrumb" in driver.eval(panel), "the shortened parent"
    undo = driver.eval("mw.form.actionUndo.text()")
    assert "Roam Bridge sync" in undo
    driver.trigger_action(undo, menu="Edit")
    driver.wait_until(
        f"'long enough' not in mw.col.get_note({notes.nid(KNOWLEDGE)})['Context']", timeout=30)
    after = driver.eval(panel)
    assert after == before, "after the undo the panel is the note's again"
    notes.write(seed_pages())


# The Browser and the editor ---------------------------------------------------------------


def open_browser(notes: Notes, search: str) -> None:
    notes.anki.driver.exec(
        "import aqt\n"
        f"b = aqt.dialogs.open('Browser', mw, search=({search!r},))\n"
        "result = True")
    notes.anki.driver.wait_until(visible(notes.anki, "Browser"))


BROWSER = "__import__('aqt').dialogs._dialogs['Browser'][1]"


def browser_rows(anki: AnkiProcess) -> list[int]:
    """The note ids the Browser lists, in its order (notes mode)."""
    return anki.driver.eval(f"list({BROWSER}.table._model._items)")


def test_the_browser_source_column_shows_sorts_and_searches(notes: Notes) -> None:
    anki = notes.anki
    driver = anki.driver
    open_browser(notes, f'"SourceID:roam:{GRAPH}:*"')
    driver.exec(f"b = {BROWSER}\n"
                "if not b.table.is_notes_mode(): b.on_table_state_changed(True)\n"
                "result = True")
    driver.wait_until(f"{BROWSER}.table.is_notes_mode()")
    driver.exec(f"b = {BROWSER}\n"
                "if 'roamBridgeSource' not in b.table._state.active_columns:\n"
                "    b.table._on_column_toggled(True, 'roamBridgeSource')\n"
                "result = True")
    driver.wait_until(f"'roamBridgeSource' in {BROWSER}.table._state.active_columns")
    column = driver.eval(f"{BROWSER}.table._state.active_columns.index('roamBridgeSource')")
    cell = (f"{BROWSER}.table._model.data({BROWSER}.table._model.index({{row}}, {column}), "
            "__import__('aqt').qt.Qt.ItemDataRole.DisplayRole)")
    texts = {}
    for row, nid in enumerate(browser_rows(anki)):
        texts[nid] = driver.eval(cell.format(row=row))
    knowledge = texts[notes.nid(KNOWLEDGE)]
    assert knowledge.startswith("Roam Research Notes on Dwarkesh Patel")
    assert knowledge.endswith("› superposition and secret communication (1:06:52 – 1:22:34)")

    driver.exec(f"b = {BROWSER}\n"
                f"b.table._on_sort_column_changed({column}, "
                "__import__('aqt').qt.Qt.SortOrder.AscendingOrder)\nresult = True")
    driver.wait_until(f"{BROWSER}.table._state.sort_column == 'roamBridgeSource'")
    order = browser_rows(anki)
    assert [texts[n].lower() for n in order] == sorted(t.lower() for t in texts.values())
    driver.exec(f"b = {BROWSER}\nb.resize(1500, 700)\n"
                f"b.table._view.scrollTo(b.table._model.index(0, {column}))\nresult = True")
    shot = ARTIFACTS / "browser.png"
    driver.screenshot(shot, widget_expr=BROWSER)
    assert _distinct_colours(shot) > 20, "the Browser screenshot is blank"

    def found(search: str) -> set[int]:
        driver.exec(f"{BROWSER}.search_for({search!r})\nresult = True")
        time.sleep(0.3)
        return set(browser_rows(anki))

    every = set(texts)
    assert found(f'roam-page:"{PAGE_TITLE}"') == every
    assert found('roam-page:"Roam Research Notes on*"') == every
    assert found('roam-page:"Roam Research Notes on"') == set(), "a page title, whole"
    under = {notes.nid(uid) for uid in UNDER_SECTION}
    assert found("roam-source:superposition") == under
    assert found("-roam-source:superposition") == every - under
    assert found(f'"SourceID:roam:{GRAPH}:*" roam-source:superposition '
                 f'"SourceID:*{KNOWLEDGE}"') == {notes.nid(KNOWLEDGE)}
    driver.exec(f"{BROWSER}.table._on_sort_column_changed(0, "
                "__import__('aqt').qt.Qt.SortOrder.AscendingOrder)\nresult = True")


def test_the_browser_sidebar_lists_graphs_and_pages(notes: Notes) -> None:
    driver = notes.anki.driver
    driver.exec(f"b = {BROWSER}\nb.sidebar.refresh()\nresult = True")
    tree = driver.wait_until(
        f"[(c.name, [(g.name, [p.name for p in g.children], "
        f"mw.col.build_search_string(g.search_node)) for g in c.children]) "
        f"for c in {BROWSER}.sidebar.model().root.children if c.name == 'Roam Bridge']",
        timeout=30)
    (_, graphs), = tree
    (graph, pages, search), = graphs
    assert graph == f"{GRAPH} (Roam)"
    assert pages == [PAGE_TITLE]
    assert search.strip('"') == f"SourceID:roam:{GRAPH}:*"
    page_search = driver.eval(
        f"mw.col.build_search_string([c for c in {BROWSER}.sidebar.model().root.children "
        "if c.name == 'Roam Bridge'][0].children[0].children[0].search_node)")
    driver.exec(f"{BROWSER}.search_for({page_search!r})\nresult = True")
    time.sleep(0.3)
    assert len(browser_rows(notes.anki)) == SEED_CARDS


def context_menu(anki: AnkiProcess) -> list[str]:
    """Open the table's context menu as a right-click does; returns its actions' texts."""
    anki.driver.exec("from aqt.qt import QTimer, QPoint\n"
                     f"QTimer.singleShot(0, lambda: {BROWSER}.table._on_context_menu(QPoint()))"
                     "\nresult = True")
    return anki.driver.wait_until(f"[a.text() for m in {visible(anki, 'QMenu')} "
                                  "for a in m.actions()]")


def choose(anki: AnkiProcess, label: str) -> None:
    anki.driver.exec(f"m = {visible(anki, 'QMenu')}[0]\n"
                     f"[a for a in m.actions() if a.text() == {label!r}][0].trigger()\n"
                     "m.close()\nresult = True")


def test_the_browser_context_menu_opens_syncs_and_pins(notes: Notes) -> None:
    anki = notes.anki
    driver = anki.driver
    nid = notes.nid(KNOWLEDGE)
    driver.exec(f"{BROWSER}.search_for('nid:{nid}')\n{BROWSER}.table.select_all()\n"
                "result = True")
    driver.wait_until(f"list({BROWSER}.selected_notes()) == [{nid}]", timeout=10)
    labels = context_menu(anki)
    assert {"Open in Roam", "Sync this note's source now",
            "Pin: your notes never overwrite it"} <= set(labels)
    forget_opened(anki)
    choose(anki, "Open in Roam")
    assert opened(anki) == [block_url(KNOWLEDGE)]

    start = now(anki)
    context_menu(anki)
    choose(anki, "Sync this note's source now")
    report = wait_for_report(anki, start)
    assert report["manual"] is True and report["unchanged"] == SEED_CARDS

    context_menu(anki)
    choose(anki, "Pin: your notes never overwrite it")
    driver.wait_until(f"'roam-bridge::pinned' in mw.col.get_note({nid}).tags", timeout=10)
    pages = seed_pages()
    find_block(pages, KNOWLEDGE)["string"] = (
        "Pinned, so never written: knowledge distillation #card")
    notes.write(pages)
    report = notes.sync()
    assert report["updated"] == 0
    assert "never written" not in notes.note(KNOWLEDGE, "['Front']")
    assert "Unpin: follow your notes again" in context_menu(anki)
    choose(anki, "Unpin: follow your notes again")
    driver.wait_until(f"'roam-bridge::pinned' not in mw.col.get_note({nid}).tags", timeout=10)
    assert notes.sync()["updated"] == 1, "unpinned, it follows the notes again"
    assert "never written" in notes.note(KNOWLEDGE, "['Front']")
    notes.write(seed_pages())
    notes.sync()



EDITOR_STATE = ("(() => { const b = document.getElementById('roam-bridge-open');"
                " return [b ? getComputedStyle(b).display : 'missing',"
                " document.querySelectorAll('.rb-field-hint').length,"
                " [...document.querySelectorAll('.rb-field-hint')].map(e => e.textContent)]; })()")


def editor_state(anki: AnkiProcess) -> list:
    return anki.driver.request("exec_async", timeout=20, timeout_s=15, code=(
        f"{BROWSER}.editor.web.evalWithCallback({EDITOR_STATE!r}, done)"))


def test_the_editor_opens_the_block_and_hints_at_the_fields_the_notes_own(notes: Notes) -> None:
    anki = notes.anki
    driver = anki.driver
    nid = notes.nid(KNOWLEDGE)
    driver.exec(f"{BROWSER}.search_for('nid:{nid}')\nresult = True")
    deadline = time.monotonic() + 30
    state = editor_state(anki)
    while state[1] == 0 and time.monotonic() < deadline:
        time.sleep(0.3)
        state = editor_state(anki)
    display, hints, texts = state
    assert display != "none" and display != "missing"
    fields = driver.eval(f"len(mw.col.get_note({nid}).keys())")
    assert hints == fields, texts
    assert " · from your notes: the block" in texts
    forget_opened(anki)
    driver.request("exec_async", timeout=20, timeout_s=15, code=(
        f"{BROWSER}.editor.web.evalWithCallback("
        "\"document.getElementById('roam-bridge-open').click()\", done)"))
    assert opened(anki) == [block_url(KNOWLEDGE)]

    other = driver.exec("n = mw.col.new_note(mw.col.models.by_name('Basic'))\n"
                        "n['Front'] = 'my own note'\n"
                        "mw.col.add_note(n, mw.col.decks.id('Default'))\nresult = n.id")
    driver.exec(f"{BROWSER}.search_for('nid:{other}')\nresult = True")
    deadline = time.monotonic() + 30
    while editor_state(anki)[1] and time.monotonic() < deadline:
        time.sleep(0.3)
    display, hints, _ = editor_state(anki)
    assert display == "none" and hints == 0, "a note of the user's own gets neither"
    driver.exec(f"{BROWSER}.close()\nresult = True")
    driver.wait_until(f"not {visible(anki, 'Browser')}", timeout=20)
    driver.exec(f"mw.col.remove_notes([{other}])\nresult = True")


# The user's say before a sync writes --------------------------------------------------------


def test_preview_lists_the_changes_and_leaves_out_an_unticked_note(notes: Notes) -> None:
    anki = notes.anki
    driver = anki.driver
    pages = seed_pages()
    find_block(pages, KNOWLEDGE)["string"] = "What is [[knowledge distillation]], briefly? #card"
    find_block(pages, ADAPTIVE)["string"] = "What is [[adaptive compute]]? #[[card]]"
    notes.write(pages)
    before = {uid: notes.note(uid, "['Front']") for uid in (KNOWLEDGE, ADAPTIVE)}
    mod = driver.eval("mw.col.mod")
    start = now(anki)
    driver.exec(f"{GUI}.CONTROLLER.request(manual=True, preview=True)\nresult = True")
    dialog = visible(anki, "PreviewDialog")
    driver.wait_until(dialog, timeout=60)
    rows = driver.eval(f"[(l.text(0), l.text(2)) for l in {dialog}[0].leaves()]")
    assert sorted(rows) == sorted([["updated", f"roam:{GRAPH}:{KNOWLEDGE}"],
                                   ["updated", f"roam:{GRAPH}:{ADAPTIVE}"]])
    assert "2 updated" in driver.eval(f"{dialog}[0].summary.text()")
    driver.exec(f"d = {dialog}[0]\n"
                f"leaf = [l for l in d.leaves() if l.text(2).endswith({ADAPTIVE!r})][0]\n"
                "d.tree.setCurrentItem(leaf)\n"
                "leaf.setCheckState(0, __import__('aqt').qt.Qt.CheckState.Unchecked)\n"
                "result = True")
    diff = driver.eval(f"{dialog}[0].details.toHtml()")
    assert "line-through" in diff or "<s" in diff, "the removed words are struck through"
    shot = ARTIFACTS / "preview.png"
    driver.screenshot(shot, widget_expr=f"{dialog}[0]")
    assert _distinct_colours(shot) > 20, "the preview screenshot is blank"
    assert driver.eval("mw.col.mod") == mod, "nothing is written while the preview is open"
    driver.exec(f"{dialog}[0].accept()\nresult = True")
    report = wait_for_report(anki, start)
    assert report["updated"] == 1 and report["updated_ids"] == [notes.nid(KNOWLEDGE)]
    assert notes.note(KNOWLEDGE, "['Front']") != before[KNOWLEDGE]
    assert notes.note(ADAPTIVE, "['Front']") == before[ADAPTIVE], "left out this time"
    assert notes.sync()["updated_ids"] == [notes.nid(ADAPTIVE)], "and planned again next time"
    notes.restore()


def test_the_guard_asks_and_escape_writes_nothing(notes: Notes) -> None:
    anki = notes.anki
    driver = anki.driver
    pages = seed_pages()
    knowledge = find_block(pages, KNOWLEDGE)
    knowledge["string"] = "Edited in a suspect export: knowledge distillation? #card"
    section = find_block(pages, SECTION)
    pages[0]["children"] = [b for b in pages[0]["children"] if "::" in b["string"]
                            or b is section]
    notes.write(pages)
    mod = driver.eval("mw.col.mod")
    front = notes.note(KNOWLEDGE, "['Front']")
    driver.exec(f"{GUI}.CONTROLLER.request(manual=True)\nresult = True")
    box = "mw.app.activeModalWidget()"
    driver.wait_until(f"type({box}).__name__ == 'QMessageBox'", timeout=60)
    buttons = driver.eval(f"[b.text() for b in {box}.buttons()]")
    assert set(buttons) == {"Cancel", "Sync without removing", "Remove"}
    assert driver.eval(f"{box}.defaultButton().text()") == "Cancel"
    assert "would remove 5 of the 9 cards" in driver.eval(f"{box}.text()")
    press(anki, box, "Key_Escape")
    driver.wait_until(f"not {GUI}.CONTROLLER.running and {box} is None", timeout=30)
    assert driver.eval("mw.col.mod") == mod, "Escape wrote nothing"
    assert notes.note(KNOWLEDGE, "['Front']") == front, "not even the edit"
    assert driver.eval("len(mw.col.find_notes('tag:roam::orphaned'))") == 0
    notes.write(seed_pages())


def test_a_background_sync_during_review_does_not_take_the_undo(notes: Notes) -> None:
    anki = notes.anki
    driver = anki.driver
    review_only(notes, ADAPTIVE, "Review::Adaptive")
    driver.exec("mw.reviewer._answerCard(3)\nresult = True")
    driver.wait_until("mw.col.undo_status().undo", timeout=10)
    answer_undo = driver.eval("mw.col.undo_status().undo")
    assert answer_undo != "Roam Bridge sync"
    pages = seed_pages()
    find_block(pages, KNOWLEDGE)["string"] = (
        "What is [[knowledge distillation]], after review? #card")
    notes.write(pages)
    driver.exec(f"{GUI}.CONTROLLER.request(manual=False)\nresult = True")
    time.sleep(1.0)
    assert driver.eval(f"{GUI}.CONTROLLER.deferred") is True
    assert driver.eval("mw.col.undo_status().undo") == answer_undo, "Ctrl+Z is the answer's"
    assert "after review" not in notes.note(KNOWLEDGE, "['Front']")
    start = now(anki)
    driver.exec("mw.moveToState('deckBrowser')\nresult = True")
    report = wait_for_report(anki, start)
    assert report["manual"] is False and report["updated"] == 1
    assert "after review" in notes.note(KNOWLEDGE, "['Front']")
    assert driver.eval("mw.col.undo_status().undo") == "Roam Bridge sync"
    driver.exec("mw.undo()\nresult = True")
    driver.wait_until(f"mw.col.undo_status().undo == {answer_undo!r}", timeout=20)
    notes.write(seed_pages())


# Settings -------------------------------------------------------------------------------------


def test_settings_round_trip_every_option(notes: Notes, tmp_path: Path) -> None:
    driver = notes.anki.driver
    vault = tmp_path / "vault"
    shutil.copytree(ROOT / "seeds" / "obsidian", vault)
    graph = tmp_path / "graph"
    shutil.copytree(ROOT / "seeds" / "logseq", graph)
    original = driver.eval(f"{GUI}.CONTROLLER.raw_config()")
    sources = [*original["sources"], {"path": str(vault), "kind": "auto", "graph": "vault"},
               {"path": str(graph), "kind": "logseq", "graph": "lsq"},
               {"path": "roam-api://team", "kind": "auto", "graph": "team"}]
    driver.exec(
        "import roam_bridge.gui.settings_dialog as module\n"
        "mw._warned = []\n"
        "module.showWarning = lambda text, **kw: mw._warned.append(text)\n"
        "mw._saved = []\n"
        f"raw = dict({GUI}.CONTROLLER.raw_config(), sources={sources!r})\n"
        "mw._dialog = module.SettingsDialog(mw, raw, mw._saved.append)\n"
        "result = True"
    )
    rows = ("[[n for n, w in (('include', d.include), ('write_ids', d.write_ids), "
            "('token', d.token)) if d.source_form.isRowVisible(w)] "
            "for i in range(len(d.sources)) if not d.source_list.setCurrentRow(i)]")
    assert driver.exec(f"d = mw._dialog\nresult = {rows}") == [
        [], ["include"], ["write_ids"], ["token"]], "each kind shows only its own fields"

    every = {
        "card_tags": ["card", "srs"], "default_deck": "Elsewhere", "highlight_cloze": True,
        "sync_on_startup": False, "watch": False, "push_to_ankiweb": True,
        "on_removed": "keep", "context_depth": 2, "show_nearby": False,
        "panel_collapsed": True, "download_images": False,
        "roam_api_token": "secret-token", "roam_api_base_url": "http://127.0.0.1:9",
    }
    source = {"path": str(vault), "kind": "obsidian", "graph": "my-vault", "deck": "Vault",
              "include": ["Study/**", "Notes/*.md"], "exclude": ["Archive/**"]}
    driver.exec(
        "from aqt.qt import Qt\n"
        "d = mw._dialog\n"
        "d.card_tags.setText('card, #srs')\n"
        "d.default_deck.setText('Elsewhere')\n"
        "d.highlight.setChecked(True)\n"
        "d.startup.setChecked(False)\n"
        "d.watch.setChecked(False)\n"
        "d.push.setChecked(True)\n"
        "d.on_removed.setCurrentIndex(d.on_removed.findData('keep'))\n"
        "d.depth_box.setCurrentIndex(d.depth_box.findData(2))\n"
        "d.nearby.setChecked(False)\n"
        "d.collapsed.setChecked(False)\nd.collapsed.setChecked(True)\n"
        "d.images.setChecked(False)\n"
        "d.base_url.setText('http://127.0.0.1:9')\n"
        "d._accept()\n"  # the API source has no token yet: refused
        "result = True"
    )
    assert driver.eval("mw._saved") == [], "an API source is not saved without its token"
    assert "needs its API token" in driver.eval("mw._warned[0]")
    driver.exec(
        "d = mw._dialog\n"
        "d.token.setText('secret-token')\n"
        "d.source_list.setCurrentRow(1)\n"
        "d.kind.setCurrentIndex(d.kind.findData('obsidian'))\n"
        "for field, text in ((d.graph, 'my-vault'), (d.deck, 'Vault'),\n"
        "                    (d.include, 'Study/**, Notes/*.md'), (d.exclude, 'Archive/**')):\n"
        "    field.setText(text)\n"
        "    field.textEdited.emit(text)\n"
        "d.source_list.setCurrentRow(2)\n"
        "d.write_ids.setChecked(True)\n"
        "d._accept()\n"
        "result = True"
    )
    (saved,) = driver.eval("mw._saved")
    assert {k: saved[k] for k in every} == every
    assert saved["sources"][1] == source
    assert saved["sources"][2]["write_ids"] is True
    assert "write_ids" not in saved["sources"][1] and "include" not in saved["sources"][2]
    # And back: a dialog opened on what was saved shows every value as it was set.
    again = driver.exec(
        "import roam_bridge.gui.settings_dialog as module\n"
        "d = module.SettingsDialog(mw, mw._saved[0], lambda raw: None)\n"
        "result = d.collected()\n"
        "d.close()\nmw._dialog.close()"
    )
    assert again == saved
    driver.exec("import aqt.utils\nimport roam_bridge.gui.settings_dialog as module\n"
                "module.showWarning = aqt.utils.showWarning\nresult = True")


def test_find_a_blocks_cards_from_a_copied_block_link(notes: Notes) -> None:
    anki = notes.anki
    driver = anki.driver
    driver.exec("from aqt.qt import QApplication, QTimer\n"
                f"QApplication.clipboard().setText({block_url(KNOWLEDGE)!r})\n"
                f"QTimer.singleShot(0, {LINKS}.find_block_cards)\nresult = True")
    dialog = "mw.app.activeModalWidget()"
    driver.wait_until(f"{dialog} is not None and {dialog}.findChild("
                      "__import__('aqt').qt.QLineEdit) is not None", timeout=20)
    prefilled = driver.eval(f"{dialog}.findChild(__import__('aqt').qt.QLineEdit).text()")
    assert prefilled == block_url(KNOWLEDGE), "the copied link is offered"
    driver.exec(f"{dialog}.accept()\nresult = True")
    driver.wait_until(visible(anki, "Browser"), timeout=20)
    driver.wait_until(f"len({BROWSER}.table._model._items) >= 1", timeout=20)
    search = driver.eval(f"{BROWSER}.current_search()")
    nids = driver.eval(f"list(mw.col.find_notes({search!r}))")
    assert nids == [notes.nid(KNOWLEDGE)]
    driver.exec(f"{BROWSER}.close()\nresult = True")


def test_a_sync_that_changed_cards_is_pushed_to_ankiweb_when_asked(notes: Notes) -> None:
    anki = notes.anki
    driver = anki.driver
    original = driver.eval(f"{GUI}.CONTROLLER.raw_config()")
    driver.exec(
        f"{GUI}.CONTROLLER.write_config(dict({GUI}.CONTROLLER.raw_config(), "
        "push_to_ankiweb=True))\n"
        # Logged in, as far as the add-on can tell; the Sync button's work is only recorded.
        "mw._pushes = []\n"
        "mw._real = (mw.pm.sync_auth, mw.on_sync_button_clicked)\n"
        "mw.pm.sync_auth = lambda: object()\n"
        "mw.on_sync_button_clicked = lambda: mw._pushes.append(True)\n"
        "result = True"
    )
    try:
        assert notes.sync()["created"] == 0
        time.sleep(0.5)
        assert driver.eval("mw._pushes") == [], "a sync that wrote nothing pushes nothing"
        pages = seed_pages()
        find_block(pages, KNOWLEDGE)["string"] = "What is [[knowledge distillation]], pushed? #card"
        notes.write(pages)
        assert notes.sync()["updated"] == 1
        driver.wait_until("mw._pushes == [True]", timeout=10)
        driver.exec("mw.pm.sync_auth = lambda: None\nresult = True")
        notes.write(seed_pages())
        notes.sync()
        driver.wait_until(f"any('log in to AnkiWeb' in w for w in "
                          f"{GUI}.CONTROLLER.last_report['warnings'])", timeout=10)
        assert driver.eval("mw._pushes") == [True], "without a login nothing is pushed"
    finally:
        driver.exec(f"mw.pm.sync_auth, mw.on_sync_button_clicked = mw._real\n"
                    f"{GUI}.CONTROLLER.write_config({original!r})\nresult = True")


def test_anki_exits_cleanly_after_all_of_it(notes: Notes) -> None:
    notes.anki.driver.quit()
    notes.anki.assert_clean_exit(timeout=60)


# Progress and Cancel, on a large export -----------------------------------------------------


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnkiProcess]:
    with anki_on_big_export(tmp_path_factory.mktemp("gui-big")) as anki:
        stamp_reports(anki)
        yield anki


WINDOW = f"{GUI}.CONTROLLER._window"


def test_cancel_during_planning_writes_nothing(big: AnkiProcess) -> None:
    driver = big.driver
    mod = driver.eval("mw.col.mod")
    driver.exec(f"{GUI}.CONTROLLER.request(manual=True)\nresult = True")
    label = driver.wait_until(
        f"{WINDOW} is not None and {WINDOW}.isVisible() and {WINDOW}.label.text()", timeout=60)
    assert not label.startswith("Writing")
    driver.exec(f"{WINDOW}.buttons.button(__import__('aqt').qt.QDialogButtonBox.StandardButton"
                ".Cancel).click()\nresult = True")
    assert driver.eval(f"{WINDOW} is None"), "Cancel closes the window at once"
    driver.wait_until(f"not {GUI}.CONTROLLER.running", timeout=120)
    assert driver.eval("mw.col.note_count()") == 0
    assert driver.eval("mw.col.mod") == mod, "nothing was written"


def test_a_manual_sync_shows_each_phase_with_its_counts(big: AnkiProcess) -> None:
    driver = big.driver
    start = now(big)
    driver.exec(
        "from aqt.qt import QTimer\n"
        f"module = {MODULE.format('progress_dialog')}\n"
        # Every phase the engine reports, and every line the window shows (it shows the
        # latest phase ten times a second, so a phase shorter than that may not appear).
        "mw._phases, mw._labels = [], []\n"
        "mw._report_phase = module.SyncProgress.__call__\n"
        "def reported(self, phase, done=0, total=0):\n"
        "    mw._phases.append((phase, total))\n"
        "    return mw._report_phase(self, phase, done, total)\n"
        "module.SyncProgress.__call__ = reported\n"
        "def record():\n"
        f"    w = {WINDOW}\n"
        "    if w is not None and w.isVisible() and w.label.text() not in mw._labels:\n"
        "        mw._labels.append(w.label.text())\n"
        "mw._recorder = QTimer(mw)\n"
        "mw._recorder.timeout.connect(record)\n"
        "mw._recorder.start(20)\n"
        f"{GUI}.CONTROLLER.request(manual=True)\n"
        "result = True"
    )
    report = wait_for_report(big, start, timeout=180)
    phases, labels = driver.exec(
        "mw._recorder.stop()\n"
        f"{MODULE.format('progress_dialog')}.SyncProgress.__call__ = mw._report_phase\n"
        "result = (mw._phases, mw._labels)")
    assert report["created"] == 10_000
    seen = {(phase, total) for phase, total in phases}
    assert {("reading", 0), ("planning", 10_000), ("rendering", 10_000),
            ("preparing the reviewer panel", 10_000), ("writing", 10_000)} <= seen, seen
    text = "\n".join(labels)
    assert "Preparing new notes: " in text and " of 10,000" in text, labels
    assert "Writing 10,000 notes" in text and "can no longer be cancelled" in text, labels

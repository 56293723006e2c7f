"""Edits made in Anki go back to the notes where the notes can be written, and are never lost
where they cannot: folders on disk, the Roam APIs (fakes on 127.0.0.1), exports, conflicts."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from anki.collection import Collection

from addon.core import pipeline, sync
from addon.core.block_writes import Journal
from addon.core.config import Config, OnConflict, SourceConfig
from addon.core.sources.detect import ReadOptions
from tests.fake_roam_api import FakeRoamApi
from tests.fake_roam_local import FakeRoamLocal
from tests.roam import block, page

LOGSEQ_PAGE = (
    "tags:: spanish\n"
    "\n"
    "- Greetings\n"
    "\t- What does **hola** mean? #card\n"
    "\t  id:: 6650a1b2-0000-4000-8000-000000000001\n"
    "\t\t- hello\n"
    "\t- adios means? #card\n"
    "\t  id:: 6650a1b2-0000-4000-8000-000000000002\n"
    "\t\t- goodbye\n"
    "\t\t- see you\n"
    "- The {{c1::Prado}} is in Madrid #card\n"
    "  id:: 6650a1b2-0000-4000-8000-000000000003\n"
)
HOLA = "logseq:g:6650a1b2-0000-4000-8000-000000000001"
ADIOS = "logseq:g:6650a1b2-0000-4000-8000-000000000002"
PRADO = "logseq:g:6650a1b2-0000-4000-8000-000000000003"


def later() -> None:
    """Wait for the next second: Anki times a note's change to the second, and an edit counts
    as made after a sync from the second after the sync's end (see write_times.py)."""
    time.sleep(1.01 - time.time() % 1)


def edit_note(col: Collection, nid: int, field: str, html: str) -> None:
    later()
    note = col.get_note(nid)
    note[field] = html
    col.update_note(note)


@dataclass
class Folder:
    root: Path
    col: Collection
    journal: Journal

    @property
    def page(self) -> Path:
        return self.root / "pages" / "Spanish.md"

    def sync(self, write_back: bool = True, on_conflict: OnConflict = "keep",
             resolutions: tuple[tuple[str, OnConflict], ...] = (), dry_run: bool = False,
             kind: str = "logseq") -> sync.Report:
        source = SourceConfig(path=str(self.root), kind=kind, graph="g", write_back=write_back)
        config = Config(sources=(source,), on_conflict=on_conflict)
        graph = pipeline.read(source, ReadOptions())
        options = pipeline.options_for(config, source, resolutions=resolutions)
        planned = pipeline.plan(source, graph, self.col, options, ReadOptions(),
                                dry_run=dry_run)
        if dry_run:
            return planned.plan.report()
        pipeline.write_back([planned], self.journal)
        return sync.apply(planned.plan, self.col)

    def note(self, key: str):
        [nid] = self.col.find_notes(f'"SourceID:{key}"')
        return self.col.get_note(nid)

    def edit(self, key: str, field: str, html: str) -> None:
        edit_note(self.col, self.note(key).id, field, html)


@pytest.fixture
def folder(tmp_path: Path, col: Collection) -> Folder:
    root = tmp_path / "graph"
    (root / "pages").mkdir(parents=True)
    (root / "logseq").mkdir()
    (root / "pages" / "Spanish.md").write_text(LOGSEQ_PAGE, encoding="utf-8")
    synced = Folder(root, col, Journal(tmp_path / "journal.jsonl"))
    first = synced.sync()
    assert first.created == 3
    return synced


def history(col: Collection, key: str) -> tuple[int, list[int], list[int]]:
    [nid] = col.find_notes(f'"SourceID:{key}"')
    cids = sorted(col.card_ids_of_note(nid))
    reviews = col.db.list(f"select id from revlog where cid in ({','.join(map(str, cids))})")
    return nid, cids, sorted(reviews)


def review(col: Collection, key: str) -> None:
    [nid] = col.find_notes(f'"SourceID:{key}"')
    card = col.get_card(col.card_ids_of_note(nid)[0])
    card.start_timer()
    col.sched.answerCard(card, 3)


def test_an_edit_of_the_front_reaches_the_logseq_file_and_nothing_else_changes(
    folder: Folder,
) -> None:
    review(folder.col, HOLA)
    before = history(folder.col, HOLA)
    note = folder.note(HOLA)
    folder.edit(HOLA, "Front", note["Front"].replace("mean?", "mean in English?"))
    report = folder.sync()
    assert (report.written_back, report.kept_anki_edits, report.conflicts) == (1, 0, 0)
    assert folder.page.read_text(encoding="utf-8") == LOGSEQ_PAGE.replace(
        "What does **hola** mean? #card", "What does **hola** mean in English? #card")
    assert history(folder.col, HOLA) == before, "note id, card ids and reviews kept"
    assert folder.note(HOLA)["Front"] == "What does <strong>hola</strong> mean in English?"
    again = folder.sync()
    assert (again.created, again.updated, again.written_back, again.kept_anki_edits) == (
        0, 0, 0, 0)
    assert again.unchanged == 3
    assert folder.journal.last() is not None


def test_the_editors_spelling_is_written_as_the_notes_markup(folder: Folder) -> None:
    folder.edit(HOLA, "Front", "What does <b>hola</b> really mean?")
    report = folder.sync()
    assert report.written_back == 1
    assert "- What does **hola** really mean? #card\n" in folder.page.read_text(
        encoding="utf-8")
    assert folder.note(HOLA)["Front"] == "What does <strong>hola</strong> really mean?"
    assert folder.sync().updated == 0


def test_a_back_of_one_block_and_a_cloze_text_go_back_too(folder: Folder) -> None:
    note = folder.note(HOLA)
    folder.edit(HOLA, "Back", note["Back"].replace("hello", "hello, hi"))
    cloze = folder.note(PRADO)
    folder.edit(PRADO, "Text", cloze["Text"].replace("Madrid", "{{c2::Madrid}}"))
    report = folder.sync()
    assert report.written_back == 2, report.write_back_problems
    text = folder.page.read_text(encoding="utf-8")
    assert "\t\t- hello, hi\n" in text
    assert "- The {{c1::Prado}} is in {{c2::Madrid}} #card\n" in text
    [nid] = folder.col.find_notes(f'"SourceID:{PRADO}"')
    assert sorted(c.ord for c in folder.col.get_note(nid).cards()) == [0, 1]
    assert folder.sync().updated == 0


def test_a_back_of_several_lines_is_one_way_and_the_edit_is_kept(folder: Folder) -> None:
    note = folder.note(ADIOS)
    edited = note["Back"].replace("goodbye", "farewell")
    folder.edit(ADIOS, "Back", edited)
    page_before = folder.page.read_bytes()
    for _ in range(2):  # kept, and listed again on the next run
        report = folder.sync()
        assert (report.written_back, report.kept_anki_edits) == (0, 1)
        assert "shows several blocks" in report.write_back_problems[ADIOS]
        assert folder.note(ADIOS)["Back"] == edited
        assert folder.page.read_bytes() == page_before


def test_a_file_changed_since_it_was_read_is_not_written_and_the_edit_is_kept(
    folder: Folder, monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder.edit(HOLA, "Front", "What does hola mean today?")
    real_write = pipeline.FolderWriter.write

    def user_saves_first(self, edits):  # the user saves the page between read and write
        with folder.page.open("a", encoding="utf-8") as handle:
            handle.write("- typed in Logseq meanwhile\n")
        return real_write(self, edits)

    monkeypatch.setattr(pipeline.FolderWriter, "write", user_saves_first)
    report = folder.sync()
    assert report.written_back == 0 and report.kept_anki_edits == 1
    assert "changed since it was read" in report.write_back_problems[HOLA]
    assert folder.note(HOLA)["Front"] == "What does hola mean today?"
    assert "mean today" not in folder.page.read_text(encoding="utf-8")
    monkeypatch.undo()
    assert folder.sync().written_back == 1  # the next run writes it


def test_without_write_back_an_anki_edit_is_kept_and_listed_never_overwritten(
    folder: Folder,
) -> None:
    folder.edit(HOLA, "Front", "My own wording")
    for _ in range(2):
        report = folder.sync(write_back=False)
        assert (report.written_back, report.kept_anki_edits) == (0, 1)
        [edit] = report.anki_edits
        assert edit.key == HOLA and edit.fields["Front"][1] == "My own wording"
    assert folder.note(HOLA)["Front"] == "My own wording"
    assert "My own wording" not in folder.page.read_text(encoding="utf-8")


def test_an_edit_on_both_sides_is_a_conflict_until_the_user_settles_it(folder: Folder) -> None:
    folder.edit(HOLA, "Front", "Anki's wording")
    folder.page.write_text(LOGSEQ_PAGE.replace("What does **hola** mean?", "Notes' wording"),
                           encoding="utf-8")
    page_now = folder.page.read_bytes()
    report = folder.sync()
    assert (report.conflicts, report.written_back) == (1, 0)
    note = folder.note(HOLA)
    assert note["Front"] == "Anki's wording" and "roam::conflict" in note.tags
    assert folder.page.read_bytes() == page_now, "neither side changed"
    assert folder.sync().conflicts == 1, "still listed"
    # Keep Anki: written back into the notes, the tag gone.
    settled = folder.sync(resolutions=((HOLA, "anki"),))
    assert (settled.conflicts, settled.written_back) == (0, 1)
    assert "- Anki's wording #card\n" in folder.page.read_text(encoding="utf-8")
    assert "roam::conflict" not in folder.note(HOLA).tags
    assert folder.sync().conflicts == 0


def test_keep_notes_settles_a_conflict_for_the_notes(folder: Folder) -> None:
    folder.edit(HOLA, "Front", "Anki's wording")
    folder.page.write_text(LOGSEQ_PAGE.replace("What does **hola** mean?", "Notes' wording"),
                           encoding="utf-8")
    assert folder.sync().conflicts == 1
    settled = folder.sync(resolutions=((HOLA, "notes"),))
    assert settled.conflicts == 0 and settled.updated == 1
    note = folder.note(HOLA)
    assert note["Front"] == "Notes' wording" and "roam::conflict" not in note.tags
    assert "Notes' wording" in folder.page.read_text(encoding="utf-8")


def test_a_dry_run_lists_what_it_would_write_and_writes_nothing(folder: Folder) -> None:
    folder.edit(HOLA, "Front", "What does hola mean, dry?")
    page_before = folder.page.read_bytes()
    report = folder.sync(dry_run=True)
    assert [e.after for e in report.to_write_back] == ["What does hola mean, dry? #card"]
    assert folder.page.read_bytes() == page_before
    assert folder.journal.last() is None


def test_a_run_that_stops_after_writing_the_notes_is_healed_by_the_next(
    folder: Folder,
) -> None:
    folder.edit(HOLA, "Front", "What does <b>hola</b> mean, healed?")
    source = SourceConfig(path=str(folder.root), kind="logseq", graph="g", write_back=True)
    config = Config(sources=(source,))
    planned = pipeline.plan(source, pipeline.read(source, ReadOptions()), folder.col,
                            pipeline.options_for(config, source), ReadOptions())
    pipeline.write_back([planned], folder.journal)  # the notes are written, then: a crash
    assert "mean, healed? #card" in folder.page.read_text(encoding="utf-8")
    report = folder.sync()
    assert (report.conflicts, report.kept_anki_edits, report.written_back) == (0, 0, 0)
    assert folder.note(HOLA)["Front"] == "What does <strong>hola</strong> mean, healed?"
    assert folder.sync().updated == 0


def test_revert_last_puts_the_notes_back(folder: Folder) -> None:
    folder.edit(HOLA, "Front", "What does hola mean, reverted?")
    assert folder.sync().written_back == 1
    undone, failed = pipeline.revert_last(folder.journal, ReadOptions())
    assert [e.key for e in undone] == [HOLA] and failed == {}
    assert folder.page.read_text(encoding="utf-8") == LOGSEQ_PAGE
    assert folder.journal.last() is None
    report = folder.sync()
    assert report.updated == 1 and report.conflicts == 0
    assert folder.note(HOLA)["Front"] == "What does <strong>hola</strong> mean?"


OBSIDIAN_NOTE = (
    "---\ntags: [spanish]\n---\n"
    "# Greetings\n"
    "- What does **hola** mean? #card ^hola-1\n"
    "  - hello\n"
    "\n"
    "Some prose that is no card.\r\n"
)


def test_an_edit_reaches_an_obsidian_note_byte_for_byte_elsewhere(tmp_path: Path,
                                                                  col: Collection) -> None:
    root = tmp_path / "vault"
    (root / ".obsidian").mkdir(parents=True)
    note_file = root / "Spanish.md"
    note_file.write_bytes(OBSIDIAN_NOTE.encode())
    vault = Folder(root, col, Journal(tmp_path / "journal.jsonl"))
    assert vault.sync(kind="obsidian").created == 1
    key = "obsidian:g:hola-1"
    note = vault.note(key)
    vault.edit(key, "Front", note["Front"].replace("mean?", "mean, in Obsidian?"))
    report = vault.sync(kind="obsidian")
    assert report.written_back == 1, report.write_back_problems
    assert note_file.read_bytes() == OBSIDIAN_NOTE.replace(
        "mean? #card ^hola-1", "mean, in Obsidian? #card ^hola-1").encode()
    assert vault.sync(kind="obsidian").updated == 0


# Exports and the Roam APIs ----------------------------------------------------------------

ROAM_PAGES = [page("Spanish", block("What does **hola** mean? #card", block("hello"),
                                    uid="hola-uid"), uid="pg-es")]


def test_an_export_cannot_be_written_and_the_edit_is_kept(tmp_path: Path,
                                                         col: Collection) -> None:
    export = tmp_path / "g.json"
    export.write_text(json.dumps(ROAM_PAGES), encoding="utf-8")
    source = SourceConfig(path=str(export), graph="g", write_back=True)
    config = Config(sources=(source,))

    def run() -> sync.Report:
        planned = pipeline.plan(source, pipeline.read(source, ReadOptions()), col,
                                pipeline.options_for(config, source), ReadOptions())
        pipeline.write_back([planned], Journal(tmp_path / "j.jsonl"))
        return sync.apply(planned.plan, col)

    assert run().created == 1
    [nid] = col.find_notes('"SourceID:roam:g:hola-uid"')
    edit_note(col, nid, "Front", "Edited in Anki")
    report = run()
    assert (report.kept_anki_edits, report.written_back) == (1, 0)
    assert any("an export cannot be written" in w for w in report.warnings)
    assert col.get_note(nid)["Front"] == "Edited in Anki"
    assert json.loads(export.read_text(encoding="utf-8")) == ROAM_PAGES


def _api_sync(col: Collection, api: FakeRoamApi, session: requests.Session, journal: Journal,
              token: str) -> sync.Report:
    source = SourceConfig(path=f"roam-api://{api.graph}", write_back=True)
    read_options = ReadOptions(api_token=token, api_base_url=api.base_url)
    planned = pipeline.plan(source, pipeline.read(source, read_options), col,
                            pipeline.options_for(Config(sources=(source,)), source),
                            read_options)
    pipeline.write_back([planned], journal)
    return sync.apply(planned.plan, col)


def test_an_edit_reaches_roam_through_the_backend_api(tmp_path: Path, col: Collection,
                                                     session: requests.Session) -> None:
    with FakeRoamApi(ROAM_PAGES, graph="g", token="roam-graph-token-rw") as api:
        journal = Journal(tmp_path / "j.jsonl")
        assert _api_sync(col, api, session, journal, api.token).created == 1
        [nid] = col.find_notes('"SourceID:roam:g:hola-uid"')
        edit_note(col, nid, "Front",
                  col.get_note(nid)["Front"].replace("mean?", "mean, via the API?"))
        report = _api_sync(col, api, session, journal, api.token)
        assert report.written_back == 1, report.write_back_problems
        assert api.writes == [("hola-uid", "What does **hola** mean, via the API? #card")]
        again = _api_sync(col, api, session, journal, api.token)
        assert (again.updated, again.written_back, again.kept_anki_edits) == (0, 0, 0)
        undone, failed = pipeline.revert_last(journal, ReadOptions(
            api_token=api.token, api_base_url=api.base_url))
        assert len(undone) == 1 and not failed
        assert api.writes[-1] == ("hola-uid", "What does **hola** mean? #card")


def test_a_read_only_token_gets_a_clear_message_and_the_edit_is_kept(
    tmp_path: Path, col: Collection, session: requests.Session,
) -> None:
    with FakeRoamApi(ROAM_PAGES, graph="g", token="roam-graph-token-ro") as api:
        journal = Journal(tmp_path / "j.jsonl")
        _api_sync(col, api, session, journal, api.token)
        api.read_only = True
        [nid] = col.find_notes('"SourceID:roam:g:hola-uid"')
        edit_note(col, nid, "Front", "Edited where the token may only read")
        report = _api_sync(col, api, session, journal, api.token)
        assert (report.written_back, report.kept_anki_edits) == (0, 1)
        assert "no edit access" in report.write_back_problems["roam:g:hola-uid"]
        assert col.get_note(nid)["Front"] == "Edited where the token may only read"
        assert api.writes == []
        assert journal.last() is None, "nothing written, nothing journaled"


def test_a_block_edited_in_roam_meanwhile_is_not_overwritten(
    tmp_path: Path, col: Collection, session: requests.Session,
) -> None:
    with FakeRoamApi(ROAM_PAGES, graph="g", token="roam-graph-token-rw") as api:
        journal = Journal(tmp_path / "j.jsonl")
        _api_sync(col, api, session, journal, api.token)
        [nid] = col.find_notes('"SourceID:roam:g:hola-uid"')
        edit_note(col, nid, "Front", "Anki's edit")
        source = SourceConfig(path="roam-api://g", write_back=True)
        read_options = ReadOptions(api_token=api.token, api_base_url=api.base_url)
        planned = pipeline.plan(source, pipeline.read(source, read_options), col,
                                pipeline.options_for(Config(sources=(source,)), source),
                                read_options)
        api.db.edit("hola-uid", "Roam's edit, just now #card")  # between read and write
        pipeline.write_back([planned], journal)
        report = sync.apply(planned.plan, col)
        assert report.written_back == 0
        assert "changed in Roam" in report.write_back_problems["roam:g:hola-uid"]
        assert api.writes == [] and col.get_note(nid)["Front"] == "Anki's edit"


def test_an_edit_reaches_roam_desktop_through_the_local_api(
    tmp_path: Path, col: Collection, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with FakeRoamLocal(tmp_path, {("g", "hosted"): ROAM_PAGES}) as app:
        full = app.issue("g", level="full")
        read_only = app.issue("g", level="read-only")
        source = SourceConfig(path="roam-local://g", write_back=True)

        def run(token: str) -> sync.Report:
            read_options = ReadOptions(local_tokens={"g": token})
            planned = pipeline.plan(source, pipeline.read(source, read_options), col,
                                    pipeline.options_for(Config(sources=(source,)), source),
                                    read_options)
            pipeline.write_back([planned], Journal(tmp_path / "j.jsonl"))
            return sync.apply(planned.plan, col)

        assert run(full).created == 1
        [nid] = col.find_notes('"SourceID:roam:g:hola-uid"')
        edit_note(col, nid, "Front", "Edited for Roam desktop")
        refused = run(read_only)
        assert refused.written_back == 0
        assert "may only read" in refused.write_back_problems["roam:g:hola-uid"]
        assert run(full).written_back == 1
        assert "data.block.update" in app.actions()
        assert app.db("g").entities[app.db("g").eid("hola-uid")][":block/string"] == (
            "Edited for Roam desktop #card")

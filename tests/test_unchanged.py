"""Skipping what did not change (unchanged.py): a run is skipped only when the source and the
collection are both as the last settled run left them, and every kind of change plans again.

Real collections, real exports and notes folders on disk; the multi-device case syncs through
Anki's own sync server (tests/ankiweb.py).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from anki.collection import Collection

from addon.core import sync, unchanged
from addon.core.config import CardOptions, SyncOptions
from addon.core.sources.detect import read_source
from tests.ankiweb import Device, running_server
from tests.roam import block, page, write_export

PAGES = [page("P", block("One #card", block("the back"), uid="one"),
              block("Two #card", uid="two"), block("Three {{c1::x}} #card", uid="three"))]
OPTIONS = SyncOptions()


@pytest.fixture
def col(tmp_path: Path) -> Iterator[Collection]:
    collection = Collection(str(tmp_path / "collection.anki2"))
    yield collection
    collection.close()


def run(source: Path, col: Collection, ledger: unchanged.Ledger,
        options: SyncOptions = OPTIONS) -> tuple[unchanged.Look, sync.Report]:
    """One run as the CLI makes it: look, skip or read + plan + apply, record."""
    look = ledger.look(str(source), options)
    if look.compare(col):
        return look, look.report()
    the_plan = sync.plan(read_source(source, "g"), col, options)
    with ledger.recording(col, [(look, the_plan)]):
        report = sync.apply(the_plan, col)
    return look, report


def synced(tmp_path: Path, col: Collection) -> tuple[Path, unchanged.Ledger]:
    export = write_export(tmp_path / "g.json", PAGES)
    ledger = unchanged.Ledger(tmp_path / "runs.json")
    look, report = run(export, col, ledger)
    assert report.created == 3 and not look.unchanged
    return export, ledger


def answer(col: Collection, nid: int) -> None:
    card = col.get_card(col.card_ids_of_note(nid)[0])
    card.start_timer()
    col.sched.answerCard(card, 3)


def unchanged_now(export: Path, col: Collection, ledger: unchanged.Ledger,
                  options: SyncOptions = OPTIONS) -> bool:
    return ledger.look(str(export), options).compare(col)


def test_a_run_on_an_unchanged_source_and_collection_is_skipped_with_the_right_counts(
        tmp_path: Path, col: Collection) -> None:
    export, ledger = synced(tmp_path, col)
    nids = sorted(col.find_notes(""))
    mod = col.mod
    look, report = run(export, col, ledger)
    assert look.unchanged and look.graph == "roam:g"
    assert (report.created, report.updated, report.unchanged, report.orphaned) == (0, 0, 3, 0)
    assert sorted(col.find_notes("")) == nids and col.mod == mod
    # What was skipped is what a plan finds: nothing to do.
    the_plan = sync.plan(read_source(export, "g"), col, OPTIONS)
    assert not the_plan.has_changes and the_plan.report().unchanged == 3


def test_orphans_count_as_unchanged_notes_of_the_graph(tmp_path: Path, col: Collection) -> None:
    export, ledger = synced(tmp_path, col)
    write_export(export, [page("P", block("One #card", block("the back"), uid="one"),
                               block("Two #card", uid="two"))])
    _, report = run(export, col, ledger)
    assert report.orphaned == 1
    look, again = run(export, col, ledger)
    assert look.unchanged and (again.unchanged, again.orphaned) == (3, 0)


@pytest.mark.parametrize("change", ["note edit", "tag", "review", "deletion", "db write",
                                    "undo of the sync", "another note added"])
def test_every_change_in_the_collection_plans_again(
        tmp_path: Path, col: Collection, change: str) -> None:
    export, ledger = synced(tmp_path, col)
    assert unchanged_now(export, col, ledger)
    nid = col.find_notes("SourceID:roam:g:one")[0]
    if change == "note edit":
        note = col.get_note(nid)
        note["Front"] = "edited in Anki"
        col.update_note(note)
    elif change == "tag":
        col.tags.bulk_add([nid], "mine")
    elif change == "review":
        answer(col, nid)
    elif change == "deletion":
        own = col.new_note(col.models.by_name("Basic"))
        own["Front"] = "mine"
        col.add_note(own, 1)
        # Settled with the user's note in it, then the user deletes it.
        run(export, col, ledger)
        assert unchanged_now(export, col, ledger)
        col.remove_notes([own.id])
    elif change == "db write":  # an add-on's raw write, in a transaction as Anki commits it
        col.db.transact(lambda: col.db.execute("update notes set tags = ' x ' where id = ?",
                                               nid))
    elif change == "undo of the sync":
        assert col.undo_status().undo == sync.UNDO_NAME
        col.undo()
    else:
        own = col.new_note(col.models.by_name("Basic"))
        own["Front"] = "mine"
        col.add_note(own, 1)
    assert not unchanged_now(export, col, ledger)
    look, _ = run(export, col, ledger)
    assert not look.unchanged
    assert unchanged_now(export, col, ledger)  # planned and recorded: the next one skips


def test_a_sync_from_another_device_plans_again(tmp_path: Path) -> None:
    with running_server(tmp_path / "server") as server:
        user = server.new_user()
        a = Device(tmp_path / "a" / "collection.anki2", server, user)
        b = Device(tmp_path / "b" / "collection.anki2", server, user)
        try:
            export = write_export(tmp_path / "g.json", PAGES)
            ledger = unchanged.Ledger(tmp_path / "a" / "runs.json")
            run(export, a.col, ledger)
            assert a.sync(full="upload") == "full upload"
            assert b.sync(full="download") == "full download"
            # The sync changed A's collection (its sync time): the next run plans once.
            assert not unchanged_now(export, a.col, ledger)
            run(export, a.col, ledger)
            assert unchanged_now(export, a.col, ledger)
            # Device B reviews a card and syncs; A pulls it.
            answer(b.col, b.col.find_notes("SourceID:roam:g:one")[0])
            assert b.sync() == "normal"
            assert a.sync() == "normal"
            assert a.col.db.scalar("select count() from revlog") == 1
            assert not unchanged_now(export, a.col, ledger)
        finally:
            a.close()
            b.close()


def test_an_edit_that_keeps_size_and_modification_time_is_still_seen(
        tmp_path: Path, col: Collection) -> None:
    export, ledger = synced(tmp_path, col)
    before = export.stat()
    text = export.read_text(encoding="utf-8").replace("Two #card", "Owt #card")
    export.write_text(text, encoding="utf-8")
    os.utime(export, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = export.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert not unchanged_now(export, col, ledger)
    _, report = run(export, col, ledger)
    assert report.updated == 1


def test_a_file_saved_again_with_the_same_bytes_is_unchanged(
        tmp_path: Path, col: Collection, monkeypatch: pytest.MonkeyPatch) -> None:
    export, ledger = synced(tmp_path, col)

    def recorded() -> list:
        return json.loads(ledger.path.read_text())["sources"][str(export)]["files"][""]

    # Just written: its times may still move within the clock's tick, so it is hashed again.
    assert recorded()[1] == -1
    export.write_bytes(export.read_bytes())
    assert ledger.look(str(export), OPTIONS).compare(col)
    monkeypatch.setattr(unchanged, "_RACY_NS", 0)  # as when the tick has long passed
    assert ledger.look(str(export), OPTIONS).compare(col)
    assert recorded()[1] == export.stat().st_mtime_ns  # trusted from now on, not re-read


def test_other_options_plan_again(tmp_path: Path, col: Collection) -> None:
    export, ledger = synced(tmp_path, col)
    for options in (SyncOptions(deck="Elsewhere"), SyncOptions(on_removed="keep"),
                    SyncOptions(cards=CardOptions(card_tags=("flashcard",)))):
        assert not unchanged_now(export, col, ledger, options)
    assert unchanged_now(export, col, ledger, SyncOptions(force=True))


def test_a_notes_folder_plans_again_when_a_note_or_the_graph_config_changes(
        tmp_path: Path, col: Collection) -> None:
    folder = tmp_path / "graph"
    (folder / "pages").mkdir(parents=True)
    (folder / "logseq").mkdir()
    (folder / "logseq" / "config.edn").write_text("{}", encoding="utf-8")
    (folder / "pages" / "a.md").write_text("- What is A? #card\n  - A\n", encoding="utf-8")
    ledger = unchanged.Ledger(tmp_path / "runs.json")
    _, report = run(folder, col, ledger)
    assert report.created == 1
    assert unchanged_now(folder, col, ledger)
    (folder / "pages" / "b.md").write_text("- What is B? #card\n", encoding="utf-8")
    assert not unchanged_now(folder, col, ledger)
    _, report = run(folder, col, ledger)
    assert report.created == 1 and unchanged_now(folder, col, ledger)
    (folder / "logseq" / "config.edn").write_text(
        '{:journal/page-title-format "yyyy-MM-dd"}', encoding="utf-8")
    assert not unchanged_now(folder, col, ledger)


def test_a_new_export_in_a_folder_of_exports_plans_again(tmp_path: Path,
                                                         col: Collection) -> None:
    folder = tmp_path / "Downloads"
    folder.mkdir()
    write_export(folder / "Roam-Export-1.json", PAGES)
    ledger = unchanged.Ledger(tmp_path / "runs.json")
    run(folder, col, ledger)
    assert unchanged_now(folder, col, ledger)
    write_export(folder / "Roam-Export-2.json", [*PAGES, page("Q", block("Four #card"))])
    assert not unchanged_now(folder, col, ledger)


def test_runs_that_leave_something_for_later_are_not_recorded(tmp_path: Path,
                                                              col: Collection) -> None:
    export, ledger = synced(tmp_path, col)
    # A removal the guard refuses, skipped as a background sync does.
    write_export(export, [page("P", block("One #card", block("the back"), uid="one"))])
    look = ledger.look(str(export), OPTIONS)
    look.compare(col)
    the_plan = sync.plan(read_source(export, "g"), col, OPTIONS)
    assert the_plan.refused
    the_plan.skip_removals()
    with ledger.recording(col, [(look, the_plan)]):
        sync.apply(the_plan, col)
    assert not unchanged_now(export, col, ledger)
    # A note left out of this run.
    write_export(export, [*PAGES, page("Q", block("Four #card", uid="four"))])
    look = ledger.look(str(export), OPTIONS)
    look.compare(col)
    the_plan = sync.plan(read_source(export, "g"), col, OPTIONS)
    assert the_plan.leave_out(["roam:g:four"]) == 1
    with ledger.recording(col, [(look, the_plan)]):
        sync.apply(the_plan, col)
    assert not unchanged_now(export, col, ledger)


def test_an_anki_edit_kept_is_reported_again_not_skipped(tmp_path: Path,
                                                         col: Collection) -> None:
    export, ledger = synced(tmp_path, col)
    nid = col.find_notes("SourceID:roam:g:one")[0]
    time.sleep(3.5)  # past the moment the bridge wrote it (owned._WRITE_SLACK)
    note = col.get_note(nid)
    note["Back"] = "my better answer"
    col.update_note(note)
    _, report = run(export, col, ledger)
    assert report.kept_anki_edits == 1
    look, again = run(export, col, ledger)
    assert not look.unchanged and again.kept_anki_edits == 1


def test_a_crash_between_writing_and_recording_plans_again(tmp_path: Path,
                                                           col: Collection) -> None:
    export, ledger = synced(tmp_path, col)
    write_export(export, [*PAGES, page("Q", block("Four #card", uid="four"))])
    look = ledger.look(str(export), OPTIONS)
    look.compare(col)
    the_plan = sync.plan(read_source(export, "g"), col, OPTIONS)
    with pytest.raises(KeyboardInterrupt), ledger.recording(col, [(look, the_plan)]):
        sync.apply(the_plan, col)
        raise KeyboardInterrupt  # killed after the write, before the record
    assert col.find_notes("SourceID:roam:g:four")
    assert not unchanged_now(export, col, ledger)
    _, report = run(export, col, ledger)
    assert (report.created, report.updated, report.unchanged) == (0, 0, 4)
    assert unchanged_now(export, col, ledger)


def test_a_collection_changed_between_looking_and_writing_is_not_recorded(
        tmp_path: Path, col: Collection) -> None:
    export, ledger = synced(tmp_path, col)
    write_export(export, [*PAGES, page("Q", block("Four #card", uid="four"))])
    look = ledger.look(str(export), OPTIONS)
    look.compare(col)
    the_plan = sync.plan(read_source(export, "g"), col, OPTIONS)
    col.tags.bulk_add(list(col.find_notes("")), "meanwhile")  # the user, between the two
    with ledger.recording(col, [(look, the_plan)]):
        sync.apply(the_plan, col)
    assert not unchanged_now(export, col, ledger)


def test_a_broken_ledger_means_plan(tmp_path: Path, col: Collection) -> None:
    export, ledger = synced(tmp_path, col)
    ledger.path.write_text("{not json", encoding="utf-8")
    look, report = run(export, col, ledger)
    assert not look.unchanged and report.unchanged == 3
    assert unchanged_now(export, col, ledger)


def test_api_sources_are_never_skipped(tmp_path: Path, col: Collection) -> None:
    ledger = unchanged.Ledger(tmp_path / "runs.json")
    look = ledger.look("roam-api://g", OPTIONS)
    assert look.files is None and not look.compare(col)


def test_the_cli_answers_an_unchanged_run_without_reading_the_source(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tools import bridge

    export = write_export(tmp_path / "g.json", PAGES)
    collection = tmp_path / "c.anki2"
    args = ["sync", str(export), "--collection", str(collection), "--json"]
    assert bridge.main(args) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["created"] == 3
    assert unchanged.beside(collection).exists()

    def not_read(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("an unchanged source was read")

    monkeypatch.setattr(bridge.pipeline, "read", not_read)
    assert bridge.main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Roam Bridge sync of roam:g"
    counts = json.loads(out[-1])
    assert (counts["created"], counts["updated"], counts["unchanged"]) == (0, 0, 3)
    monkeypatch.undo()
    write_export(export, [*PAGES, page("Q", block("Four #card", uid="four"))])
    assert bridge.main(args) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["created"] == 1

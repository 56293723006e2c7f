"""The private parts of Anki that core/anki_compat.py and gui/aqt_compat.py rely on are still
there, in the shape they are used: a new Anki release that changes one fails here, not in a
user's sync."""

from __future__ import annotations

import inspect

from anki.collection import Collection

from addon.core import anki_compat
from addon.core.identity import notetype_id


def _parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_the_engines_private_anki_calls_exist(col: Collection) -> None:
    backend = col._backend
    assert {"json", "preserve_usn_and_mtime", "skip_checks"} <= set(
        _parameters(backend.add_or_update_notetype))
    assert callable(col.models._remove_from_cache)
    assert callable(col.conf.set)


def test_the_package_importer_leaves_no_preference_behind(col: Collection) -> None:
    """New notes come in through Anki's package importer, which stores its dialog's options
    in the config (IMPORT_PREFERENCE_KEYS); the bridge puts them back as they were."""
    from tests.conftest import Syncer
    from tests.roam import block, page

    before = set(col.all_config())
    Syncer(col)([page("P", block("One #card", uid="one"))])
    added = set(col.all_config()) - before
    assert not added & set(anki_compat.IMPORT_PREFERENCE_KEYS)
    # Anki's own: the note type and position last used, and the scheduler's day rollover,
    # which a fresh collection writes on first use.
    anki_own = {"curModel", "nextPos", "activeDecks", "curDeck", "activeCols", "rollover"}
    assert all(key.startswith("roamBridge") or key in anki_own for key in added), added


def test_a_note_type_added_with_its_id_keeps_it_and_is_marked_for_sync(col: Collection) -> None:
    notetype = col.models.new("Pinned")
    col.models.add_field(notetype, col.models.new_field("Front"))
    template = col.models.new_template("Card 1")
    template["qfmt"], template["afmt"] = "{{Front}}", "{{Front}}"
    col.models.add_template(notetype, template)
    notetype["id"] = notetype_id("basic:pinned-test")
    anki_compat.add_notetype_with_id(col, notetype)
    stored = anki_compat.current_notetype(col, notetype["id"])
    assert stored["id"] == notetype["id"] and stored["usn"] == -1


def test_a_deck_added_with_its_id_keeps_it(col: Collection) -> None:
    anki_compat.add_deck_with_id(col, 1_234_567_890_123, "Pinned deck")
    assert col.decks.id_for_name("Pinned deck") == 1_234_567_890_123


def test_forgetting_the_undo_history_clears_it(col: Collection) -> None:
    note = col.new_note(col.models.by_name("Basic"))
    note["Front"] = "x"
    col.add_note(note, 1)
    assert col.undo_status().undo
    anki_compat.forget_undo_history(col)
    assert not col.undo_status().undo


def test_the_add_ons_private_aqt_parts_exist() -> None:
    from aqt.operations import CollectionOp, QueryOp
    from aqt.taskman import TaskManager

    from addon.gui import aqt_compat

    for op in (QueryOp, CollectionOp):
        assert _parameters(op._run) == ["self", "mw", "op", "on_done"]
    assert callable(TaskManager._on_closures_pending)
    assert _parameters(TaskManager.run_in_background)[:4] == ["self", "task", "on_done",
                                                             "args"]
    assert "uses_collection" in _parameters(TaskManager.run_in_background)
    assert issubclass(aqt_compat.TrackedQueryOp, QueryOp)

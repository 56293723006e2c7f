"""The few places where Roam Bridge needs more of Anki than its public API offers.

Each function here wraps one private or undocumented piece of Anki, says why no public one
serves, and is pinned by tests/test_anki_compat.py, so an Anki release that changes it fails
a test instead of a user's sync.
"""

from __future__ import annotations

import time
from typing import Any

from anki.collection import Collection
from anki.dbproxy import DBProxy
from anki.models import NotetypeDict, NotetypeId
from anki.utils import to_json_bytes

# What Anki's package importer writes into the collection's config as the defaults of its
# own import dialog. The bridge imports with fixed options and puts these back afterwards.
IMPORT_PREFERENCE_KEYS = (
    "mergeNotetypes", "withScheduling", "withDeckConfigs", "updateNotes", "updateNotetypes",
)


def db(col: Collection) -> DBProxy:
    """The collection's database. (``col.db`` is typed Optional, as it is None once the
    collection is closed; the engine only ever works on an open one.)"""
    assert col.db is not None, "the collection is closed"
    return col.db


def add_notetype_with_id(col: Collection, notetype: NotetypeDict) -> None:
    """Add a note type under the id it carries, marked for the next AnkiWeb sync.

    ``col.models.add_dict`` always hands out a new id; only the legacy add-or-update path
    keeps one (``models.update`` reaches it too, but also changes the user's current note
    type). Like every call without an undo step, it clears Anki's undo history.
    """
    notetype["usn"] = -1
    notetype["mod"] = int(time.time())
    col._backend.add_or_update_notetype(
        json=to_json_bytes(notetype), preserve_usn_and_mtime=True, skip_checks=False
    )
    col.models._remove_from_cache(notetype["id"])


def add_deck_with_id(col: Collection, deck_id: int, name: str) -> None:
    """Add a normal deck under ``deck_id``, marked for the next AnkiWeb sync.

    ``col.decks.id(name, create=True)`` always hands out a new id; ``decks.update`` with
    ``preserve_usn`` (public, meant for syncing) keeps the one given. Parents must exist.
    Like every call without an undo step, it clears Anki's undo history.
    """
    deck: dict[str, Any] = col.decks.new_deck_legacy(False)
    deck.update(id=deck_id, name=name, usn=-1, mod=int(time.time()))
    col.decks.update(deck, preserve_usn=True)


def forget_undo_history(col: Collection) -> None:
    """Clear Anki's undo and redo steps.

    After a sync's transaction is rolled back, its undo step still describes the changes
    that are gone, and Redo would make them again. Anki has no call that only clears the
    history; writing a config value without an undo step does (``col.conf.set``).
    """
    col.conf.set("roamBridgeRolledBack", int(time.time()))


def current_notetype(col: Collection, ntid: NotetypeId) -> NotetypeDict:
    """The note type as the collection holds it now. ``col.models`` caches note types, and a
    sync that replaced one leaves the cache stale until Anki desktop clears it."""
    col.models._remove_from_cache(ntid)
    notetype = col.models.get(ntid)
    assert notetype is not None
    return notetype

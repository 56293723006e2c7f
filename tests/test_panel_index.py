"""The reviewer's panel index: the panel shown is the one made for the version of the note
the collection holds, after an undo too, and a sync writing while the index is preloaded
is never hidden behind what the preload read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from addon.gui.context_panel import HISTORY, PanelIndex, with_history

KEY = "roam:g:abc"


def synced(index: PanelIndex, *versions: tuple[str, str]) -> None:
    """Sync the card under KEY once per (source hash, panel html), as the controller does."""
    for source_hash, html in versions:
        previous = index.read("roam:g:")
        index.write("roam:g:", with_history({KEY: {"d": html, "html": html}}, previous,
                                            {KEY: source_hash}))


def test_each_version_of_the_note_gets_the_panel_made_for_it(tmp_path: Path) -> None:
    index = PanelIndex(tmp_path)
    synced(index, ("h1", "first"), ("h2", "second"), ("h3", "third"))
    assert index.get(KEY, "h3") == "third"
    assert index.get(KEY, "h2") == "second", "one undo back"
    assert index.get(KEY, "h1") == "first", "two undos back"
    assert index.get(KEY, "h0") is None, "a version never synced shows no panel"
    assert index.get(KEY) == "third", "a note without a recorded version gets the newest"


def test_history_is_bounded_and_a_version_synced_again_is_current_once(tmp_path: Path) -> None:
    index = PanelIndex(tmp_path)
    versions = [(f"h{n}", f"panel {n}") for n in range(HISTORY + 3)]
    synced(index, *versions, ("h1", "panel 1 again"))
    entry = index.read("roam:g:")[KEY]
    assert entry["h"] == "h1" and entry["html"] == "panel 1 again"
    kept = [h for h, _html in entry["was"]]
    assert len(kept) == HISTORY and "h1" not in kept
    assert kept[0] == f"h{HISTORY + 2}", "the newest earlier version first"
    assert index.get(KEY, "h0") is None, "the oldest fell out"


def test_a_fresh_reader_sees_what_another_wrote(tmp_path: Path) -> None:
    writer, reader = PanelIndex(tmp_path), PanelIndex(tmp_path)
    synced(writer, ("h1", "first"))
    assert reader.get(KEY, "h1") == "first"
    synced(writer, ("h2", "second"))
    path = writer.path("roam:g:")
    later = path.stat().st_mtime_ns + 1_000_000
    os.utime(path, ns=(later, later))
    assert reader.get(KEY, "h2") == "second", "the file changed: read again"


def test_a_preload_racing_a_sync_leaves_the_synced_panels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = PanelIndex(tmp_path)
    synced(index, ("h1", "first"))
    path = index.path("roam:g:")
    index._loaded.clear()  # a profile just opened: nothing parsed yet
    real_read = Path.read_bytes

    def read_then_sync(self: Path) -> bytes:
        """The preload (on another thread) has the old bytes in hand when a sync lands."""
        data = real_read(self)
        if self == path:
            monkeypatch.setattr(Path, "read_bytes", real_read)
            synced(PanelIndex(tmp_path), ("h2", "second"))
            later = path.stat().st_mtime_ns + 1_000_000
            os.utime(path, ns=(later, later))
        return data

    monkeypatch.setattr(Path, "read_bytes", read_then_sync)
    index.preload()
    assert index.get(KEY, "h2") == "second", "the preload's stale copy is not kept"


def test_a_preload_after_a_sync_keeps_the_synced_index(tmp_path: Path) -> None:
    index = PanelIndex(tmp_path)
    synced(index, ("h1", "first"), ("h2", "second"))
    index.preload()
    assert index.get(KEY, "h2") == "second" and index.get(KEY, "h1") == "first"

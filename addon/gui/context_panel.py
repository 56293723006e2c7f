"""The context panel in the desktop reviewer, and its index in the profile's folder.

At sync time (on the worker thread) the controller stores each graph's panel HTML by card
key, in the open profile's folder (see profile_settings.py). At review time
``card_will_show`` only looks the key up and appends the stored HTML: no parsing, no
rendering. The panel's CSS and JS are served through setWebExports.

The panel always matches the collection, after an undo too: each entry is kept with the
source hash of the note it was made for (``with_history`` keeps the last few versions), and
the reviewer shows the version whose hash the note holds now, or no panel at all. Entries
of blocks no longer in the notes stay: their notes are still in the collection (orphaned,
or kept when the user declined a removal).

The panel is idempotent: hooks fire twice for one card after an operation, and a text that
already has the panel is returned as it is.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aqt import gui_hooks, mw
from aqt.reviewer import Reviewer
from aqt.utils import openLink
from aqt.webview import WebContent

from ..core.apps import LINK_SCHEMES
from ..core.fields import SOURCE_ID
from ..core.note_state import NoteState
from ..core.notetypes import MARKER

PANEL_ID = "rb-panel"
TOGGLE_KEY = "c"
MESSAGE = "roambridge:"
# Earlier versions of a panel kept besides the current one, for notes an undo took back.
HISTORY = 3


def with_history(
    index: dict[str, Any], previous: dict[str, Any], hashes: dict[str, str]
) -> dict[str, Any]:
    """``index`` (a fresh panel index, by key) with each entry marked with its note's source
    hash, the previous versions kept under ``was``, and the entries of keys that are not in
    ``index`` kept from ``previous``."""
    merged = dict(previous)
    for key, fresh in index.items():
        entry = {k: v for k, v in fresh.items() if k != "was"}
        entry["h"] = hashes.get(key, "")
        old = previous.get(key)
        history = [] if old is None else [*old.get("was", [])]
        if old is not None and old.get("h") and old.get("h") != entry["h"]:
            history.insert(0, [old["h"], old.get("html", "")])
        history = [h for h in history if h[0] != entry["h"]][:HISTORY]
        if history:
            entry["was"] = history
        merged[key] = entry
    return merged


def note_version(note: Any) -> str:
    """The source hash the note holds now: which version of its panel matches it."""
    state = NoteState.from_field(note["Source"]) if "Source" in note else None
    return state.source_hash if state else ""


class PanelIndex:
    """Panel HTML by card key, one JSON file per graph, reloaded when the file changes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._loaded: dict[str, tuple[float, dict[str, Any]]] = {}

    def path(self, prefix: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in prefix.rstrip(":"))
        return self.folder / f"{safe}.json"

    def get(self, key: str, version: str = "") -> str | None:
        """The panel for ``key`` made for the note's ``version`` (its source hash); None if
        no stored version matches. An entry without a hash (an older index) always does."""
        prefix = key.rsplit(":", 1)[0] + ":"
        path = self.path(prefix)
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return None
        cached = self._loaded.get(prefix)
        if cached is None or cached[0] != mtime:
            try:
                cached = (mtime, orjson.loads(path.read_bytes()))
            except (OSError, orjson.JSONDecodeError):
                return None
            self._loaded[prefix] = cached
        entry = cached[1].get(key)
        if not entry:
            return None
        if not version or entry.get("h", "") in ("", version):
            return entry.get("html")
        return next((html for h, html in entry.get("was", ()) if h == version), None)

    def read(self, prefix: str) -> dict[str, Any]:
        try:
            return orjson.loads(self.path(prefix).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}

    def write(self, prefix: str, index: dict[str, Any]) -> None:
        """Atomically: a reviewer never reads half a file."""
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.path(prefix)
        temp = target.with_suffix(".tmp")
        temp.write_bytes(orjson.dumps(index))
        os.replace(temp, target)
        # Keep what we just wrote, so the next review does not parse the file again.
        self._loaded[prefix] = (target.stat().st_mtime, index)

    def preload(self) -> None:
        """Parse every graph's index (worker thread), so the first review only looks up."""
        for path in self.folder.glob("*.json") if self.folder.is_dir() else ():
            try:
                # The time before the bytes: a sync writing meanwhile leaves a newer time,
                # and the next lookup reads the file again instead of keeping stale panels.
                mtime = path.stat().st_mtime
                index = orjson.loads(path.read_bytes())
                prefix = next(iter(index)).rsplit(":", 1)[0] + ":" if index else None
            except (OSError, orjson.JSONDecodeError):
                continue
            # A sync that wrote this graph meanwhile already left its index here.
            if prefix and self.path(prefix) == path and prefix not in self._loaded:
                self._loaded[prefix] = (mtime, index)


class ContextPanel:
    """Remembers per profile whether the user last left the panel open or collapsed; until
    they toggle it, the "panel collapsed by default" setting decides."""

    PROFILE_KEY = "roamBridgePanelCollapsed"

    def __init__(self, addon: str, index: PanelIndex | None, collapsed_by_default: bool) -> None:
        self.addon = addon
        self.index = index
        self.collapsed_by_default = collapsed_by_default
        # Opens a card's link in its app instead, if it can (live.open_in_desktop: a Roam
        # block in Roam desktop when connected); True when it did.
        self.opener: Callable[[str], bool] = lambda _url: False

    @property
    def collapsed(self) -> bool:
        profile = mw.pm.profile if mw and mw.pm else None
        if profile and self.PROFILE_KEY in profile:
            return bool(profile[self.PROFILE_KEY])
        return self.collapsed_by_default

    def register(self) -> None:
        mw.addonManager.setWebExports(self.addon, r"gui/web/.*\.(css|js)")
        gui_hooks.card_will_show.append(self.card_will_show)
        gui_hooks.webview_will_set_content.append(self.webview_will_set_content)
        gui_hooks.webview_did_receive_js_message.append(self.on_js_message)
        gui_hooks.state_shortcuts_will_change.append(self.add_shortcut)

    # Hooks ------------------------------------------------------------------------------

    def card_will_show(self, text: str, card: Any, kind: str) -> str:
        if kind != "reviewAnswer" or f'id="{PANEL_ID}"' in text:
            return text
        note = card.note()
        if not note.note_type().get(MARKER) or SOURCE_ID not in note:
            return text
        if self.index is None:
            return text
        panel = self.index.get(note[SOURCE_ID].strip(), note_version(note))
        if not panel:
            return text
        state = " rb-collapsed" if self.collapsed else ""
        return (
            f'{text}<div id="{PANEL_ID}" class="rb-panel{state}">'
            f'<div class="rb-panel-head" onclick="rbTogglePanel()">Around this card in your notes'
            f' <span class="rb-key">{TOGGLE_KEY.upper()}</span></div>'
            f'<div class="rb-panel-body">{panel}</div></div>'
        )

    def webview_will_set_content(self, content: WebContent, context: object | None) -> None:
        if isinstance(context, Reviewer):
            content.css.append(f"/_addons/{self.addon}/gui/web/panel.css")
            content.js.append(f"/_addons/{self.addon}/gui/web/panel.js")

    def add_shortcut(self, state: str, shortcuts: list[tuple[str, Any]]) -> None:
        if state == "review":
            shortcuts.append((TOGGLE_KEY, self.toggle))

    def on_js_message(self, handled: tuple[bool, Any], message: str, context: Any) -> tuple:
        if not message.startswith(MESSAGE):
            return handled
        command, _, argument = message[len(MESSAGE):].partition(":")
        if command == "open" and argument.startswith(LINK_SCHEMES) and not self.opener(argument):
            openLink(argument)
        elif command == "collapsed" and mw.pm.profile is not None:
            mw.pm.profile[self.PROFILE_KEY] = argument == "true"
        return (True, None)

    def toggle(self) -> None:
        if mw.reviewer and mw.reviewer.web:
            mw.reviewer.web.eval("rbTogglePanel();")



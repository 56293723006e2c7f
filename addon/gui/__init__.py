"""Everything that imports aqt: the menu, the dialogs, the background syncs on startup and on
change, the poller of API sources (live.py), and the way back to the source from the
reviewer, the Browser and the editor. Nothing touches the collection until a profile opens.

When Anki syncs with AnkiWeb as the profile opens, the startup sync waits for it (it runs
from ``sync_did_finish``), so a device that pulls notes made elsewhere matches them by key
instead of creating its own first."""

from __future__ import annotations

from pathlib import Path

from anki.collection import Collection
from aqt import gui_hooks, mw
from aqt.operations import CollectionOp, QueryOp
from aqt.qt import QAction, QKeySequence, QMenu, qconnect
from aqt.utils import askUser, tooltip

from ..core import graphs
from ..core.apps import SOURCES
from ..core.config import Config, ConfigError
from . import editor_source, source_links
from .browser_source import BrowserSource
from .conflicts_dialog import ConflictsDialog
from .context_panel import ContextPanel
from .controller import SyncController
from .live import ApiPoller, open_in_desktop
from .report_dialog import ReportDialog
from .settings_dialog import SettingsDialog
from .watcher import SourceWatcher

ADDON = __name__.split(".")[0]
SYNC_SHORTCUT = "Ctrl+Alt+R"
STARTUP_DELAY_MS = 1000
# Settings that change no card: saving only these starts no sync.
QUIET_SETTINGS = frozenset({"sync_on_startup", "watch", "panel_collapsed", "push_to_ankiweb"})

# The one controller of this Anki process (tests driving real Anki reach it here).
CONTROLLER: SyncController | None = None
WATCHER: SourceWatcher | None = None
PANEL: ContextPanel | None = None
BROWSER: BrowserSource | None = None
POLLER: ApiPoller | None = None


def setup() -> None:
    global CONTROLLER, WATCHER, PANEL, BROWSER, POLLER
    assert mw is not None
    CONTROLLER = SyncController(mw, ADDON)
    WATCHER = SourceWatcher(mw, on_change=lambda: _request(manual=False))
    POLLER = ApiPoller(mw, poll=lambda: CONTROLLER.request(manual=False, poll=True)
                       if CONTROLLER is not None else None)
    PANEL = ContextPanel(ADDON, None, collapsed_by_default=False)
    PANEL.opener = lambda url: open_in_desktop(mw, _config_or_none(), url)
    PANEL.register()
    BROWSER = BrowserSource(sync_sources=CONTROLLER.request_for_keys)
    BROWSER.register()
    editor_source.register()
    source_links.register_reviewer()
    _add_menu()
    mw.addonManager.setConfigAction(ADDON, open_settings)
    gui_hooks.profile_did_open.append(_profile_opened)
    gui_hooks.profile_will_close.append(_profile_closing)
    gui_hooks.sync_did_finish.append(_after_ankiweb_sync)
    gui_hooks.state_did_change.append(CONTROLLER.state_changed)


def _add_menu() -> None:
    menu = QMenu("Roam Bridge", mw)
    actions = (
        ("Sync now", lambda: _request(manual=True), SYNC_SHORTCUT),
        ("Preview sync…", lambda: _request(manual=True, preview=True), None),
        ("Settings…", open_settings, None),
        ("Last sync report", open_report, None),
        ("Conflicts and Anki edits…", open_conflicts, None),
        ("Revert last write-back", revert_write_back, None),
        ("Find a block's cards…", source_links.find_block_cards, None),
    )
    for label, handler, shortcut in actions:
        action = QAction(label, mw)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        qconnect(action.triggered, handler)
        menu.addAction(action)
    mw.form.menuTools.addMenu(menu)


def _request(manual: bool, preview: bool = False) -> None:
    if CONTROLLER is not None:
        CONTROLLER.request(manual, preview=preview)


def _config_or_none() -> Config | None:
    try:
        return CONTROLLER.config() if CONTROLLER is not None else None
    except ConfigError:
        return None


def _profile_opened() -> None:
    assert CONTROLLER is not None and WATCHER is not None and PANEL is not None
    assert POLLER is not None
    CONTROLLER.profile_opened()
    panels = PANEL.index = CONTROLLER.panels
    if panels is not None:
        QueryOp(parent=mw, op=lambda _col: panels.preload(), success=lambda _: None).failure(
            lambda _err: None
        ).without_collection().run_in_background()
    try:
        config = CONTROLLER.config()
    except ConfigError:
        return  # reported when a sync is asked for; never a dialog at startup
    PANEL.collapsed_by_default = config.panel_collapsed
    if config.watch:
        WATCHER.watch([s.path for s in config.sources])
    POLLER.configure(config)
    if mw.can_auto_sync():
        return  # Anki syncs with AnkiWeb first; sync_did_finish starts ours
    if config.sync_on_startup and config.sources:
        # Let the main window finish drawing first; the sync itself runs in the background.
        mw.progress.single_shot(STARTUP_DELAY_MS, lambda: _request(manual=False))


def _profile_closing() -> None:
    if POLLER is not None:
        POLLER.stop()
    if CONTROLLER is not None:
        CONTROLLER.profile_closing()
    if WATCHER is not None:
        WATCHER.stop()


def _after_ankiweb_sync() -> None:
    """Notes pulled from another device are matched by key, never duplicated: sync again."""
    if CONTROLLER is None:
        return
    try:
        if CONTROLLER.config().sync_on_startup:
            _request(manual=False)
    except ConfigError:
        pass


def save_settings(raw: dict) -> None:
    """Validate and write the settings, then bring watching, the panel and the notes up to
    date with them. Raises ConfigError, writing nothing, when a value is invalid.

    A source whose graph name changed is a renamed graph: its notes are re-keyed (after the
    user agrees), never duplicated under the new name; if the user declines, the source keeps
    its old name. A change that affects the cards starts a sync the user sees (progress,
    Cancel), since they just pressed OK: the first sync of a new source included."""
    assert CONTROLLER is not None
    before = CONTROLLER.raw_config()
    renames = _graph_renames(before, raw)
    if renames:
        _confirm_renames(raw, renames)
    CONTROLLER.write_config(raw)
    config = CONTROLLER.config()
    if WATCHER is not None:
        WATCHER.watch([s.path for s in config.sources] if config.watch else [])
    if PANEL is not None:
        PANEL.collapsed_by_default = config.panel_collapsed
    if POLLER is not None:
        POLLER.configure(config)
    changed = {k for k in set(raw) | set(before) if raw.get(k) != before.get(k)}
    if changed - QUIET_SETTINGS:
        CONTROLLER.request(manual=True)


def _graph_renames(before: dict, after: dict) -> list[tuple[int, str, str, dict[str, int]]]:
    """Sources (by index in ``after``) whose graph name changed from one their notes have:
    (index, old, new, notes by source kind)."""
    old_names = {s.get("path"): s.get("graph", "") for s in before.get("sources", [])}
    found = []
    for index, source in enumerate(after.get("sources", [])):
        old, new = old_names.get(source.get("path"), ""), source.get("graph", "")
        if old and new and old != new and mw.col is not None:
            counts = {kind: n for kind in SOURCES
                      if (n := graphs.names_in(mw.col, kind).get(old, 0))}
            if counts:
                found.append((index, old, new, counts))
    return found


def _confirm_renames(raw: dict, renames: list[tuple[int, str, str, dict[str, int]]]) -> None:
    for index, old, new, counts in renames:
        total = sum(counts.values())
        if askUser(f"Rename the graph {old!r} to {new!r}?\n\nRoam Bridge will re-key its "
                   f"{total} notes under the new name; their cards and review history stay.",
                   parent=mw, defaultno=True):
            _start_rename(old, new, tuple(counts))
        else:
            raw["sources"][index]["graph"] = old


def _start_rename(old: str, new: str, kinds: tuple[str, ...]) -> None:
    def done(renamed: graphs.Renamed) -> None:
        tooltip(f"Roam Bridge: graph {old!r} renamed to {new!r} ({renamed.count} notes)")

    CollectionOp(mw, lambda col: _rename(col, kinds, old, new)).success(
        done).run_in_background()


def _rename(col: Collection, kinds: tuple[str, ...], old: str, new: str) -> graphs.Renamed:
    total = graphs.Renamed()
    for kind in kinds:
        done = graphs.rename(col, kind, old, new)
        total.count += done.count
        total.changes = done.changes
    return total


def open_settings() -> None:
    assert CONTROLLER is not None
    help_file = Path(mw.addonManager.addonsFolder(ADDON)) / "config.md"
    SettingsDialog(mw, CONTROLLER.raw_config(), save_settings, help_file).exec()


def open_report() -> None:
    assert CONTROLLER is not None
    dialog = ReportDialog(mw, CONTROLLER.last_report)
    dialog.show()


def open_conflicts() -> None:
    assert CONTROLLER is not None
    dialog = ConflictsDialog(mw, CONTROLLER.last_report, resolve=CONTROLLER.request_for_keys)
    dialog.show()


def revert_write_back() -> None:
    assert CONTROLLER is not None
    if askUser("Put back the text the last write-back replaced in your notes?\n\nRoam Bridge "
               "then syncs, so your cards show the notes' old text again.", parent=mw,
               defaultno=True):
        CONTROLLER.revert_last_write_back()

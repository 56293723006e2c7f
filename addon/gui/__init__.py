"""Everything that imports aqt: the menu, the settings and report dialogs, the background
syncs on startup and on change. Nothing touches the collection until a profile opens."""

from __future__ import annotations

from aqt import gui_hooks, mw
from aqt.operations import QueryOp
from aqt.qt import QAction, QKeySequence, QMenu, qconnect

from ..core.config import ConfigError
from .context_panel import ContextPanel, PanelIndex, panel_folder
from .controller import SyncController
from .report_dialog import ReportDialog
from .settings_dialog import SettingsDialog
from .watcher import SourceWatcher

ADDON = __name__.split(".")[0]
SYNC_SHORTCUT = "Ctrl+Alt+R"
STARTUP_DELAY_MS = 1000

# The one controller of this Anki process (tests driving real Anki reach it here).
CONTROLLER: SyncController | None = None
WATCHER: SourceWatcher | None = None
PANEL: ContextPanel | None = None


def setup() -> None:
    global CONTROLLER, WATCHER, PANEL
    assert mw is not None
    CONTROLLER = SyncController(mw, ADDON)
    CONTROLLER.panels = PanelIndex(panel_folder(ADDON))
    WATCHER = SourceWatcher(mw, on_change=lambda: _request(manual=False))
    try:
        collapsed = CONTROLLER.config().panel_collapsed
    except ConfigError:
        collapsed = False
    PANEL = ContextPanel(ADDON, CONTROLLER.panels, collapsed)
    PANEL.register()
    _add_menu()
    mw.addonManager.setConfigAction(ADDON, open_settings)
    gui_hooks.profile_did_open.append(_profile_opened)
    gui_hooks.profile_will_close.append(_profile_closing)
    gui_hooks.sync_did_finish.append(_after_ankiweb_sync)


def _add_menu() -> None:
    menu = QMenu("Roam Bridge", mw)
    actions = (
        ("Sync now", lambda: _request(manual=True), SYNC_SHORTCUT),
        ("Settings…", open_settings, None),
        ("Last sync report", open_report, None),
    )
    for label, handler, shortcut in actions:
        action = QAction(label, mw)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        qconnect(action.triggered, handler)
        menu.addAction(action)
    mw.form.menuTools.addMenu(menu)


def _request(manual: bool) -> None:
    if CONTROLLER is not None:
        CONTROLLER.request(manual)


def _profile_opened() -> None:
    assert CONTROLLER is not None and WATCHER is not None
    CONTROLLER.profile_opened()
    panels = CONTROLLER.panels
    if panels is not None:
        QueryOp(parent=mw, op=lambda _col: panels.preload(), success=lambda _: None).failure(
            lambda _err: None
        ).without_collection().run_in_background()
    try:
        config = CONTROLLER.config()
    except ConfigError:
        return  # reported when a sync is asked for; never a dialog at startup
    if config.watch:
        WATCHER.watch([s.path for s in config.sources])
    if config.sync_on_startup and config.sources:
        # Let the main window finish drawing first; the sync itself runs in the background.
        mw.progress.single_shot(STARTUP_DELAY_MS, lambda: _request(manual=False))


def _profile_closing() -> None:
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
    date with them. Raises ConfigError, writing nothing, when a value is invalid."""
    assert CONTROLLER is not None
    before = CONTROLLER.raw_config()
    CONTROLLER.write_config(raw)
    config = CONTROLLER.config()
    if WATCHER is not None:
        WATCHER.watch([s.path for s in config.sources] if config.watch else [])
    if PANEL is not None:
        PANEL.collapsed_by_default = config.panel_collapsed
    if raw != before:
        # Card options and the panel's content depend on settings: sync in the background.
        _request(manual=False)


def open_settings() -> None:
    assert CONTROLLER is not None
    SettingsDialog(mw, CONTROLLER.raw_config(), save_settings).exec()


def open_report() -> None:
    assert CONTROLLER is not None
    dialog = ReportDialog(mw, CONTROLLER.last_report)
    dialog.show()

"""Roam, live, inside Anki: the poller of API sources, "Open in Roam" through the desktop app,
and "Connect to Roam desktop…".

- ``ApiPoller`` asks the controller for a poll every ``poll_interval`` seconds (default 20)
  while a profile with an API source is open; the controller syncs only the API sources,
  quietly, and drops the poll if a sync is running. It stops when the profile closes.
- ``open_in_desktop`` opens a Roam block link in Roam desktop (``ui.mainWindow.openBlock``)
  when a ``roam-local://`` source of that graph is connected, off the main thread, and falls
  back to the web link when the app does not answer.
- ``connect_desktop`` asks Roam desktop for a read-only token (Roam shows its permission
  dialog; the user has five minutes) off the main thread, and hands the token to a callback:
  it is never shown or logged.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote

from aqt.main import AnkiQt
from aqt.operations import QueryOp
from aqt.qt import QObject, QTimer, qconnect
from aqt.utils import openLink

from ..core.config import Config
from ..core.model import SourceError
from ..core.sources import roam_local
from ..core.sources.detect import is_api

# Seconds Roam desktop may take to show a block before the web link opens instead.
OPEN_TIMEOUT = 5.0
_ROAM_BLOCK = re.compile(r"^https://roamresearch\.com/#/app/([^/]+)/page/([\w-]+)$")


class ApiPoller(QObject):
    def __init__(self, mw: AnkiQt, poll: Callable[[], None]) -> None:
        super().__init__(mw)
        self._timer = QTimer(self)
        qconnect(self._timer.timeout, poll)

    def configure(self, config: Config) -> None:
        """Poll if any source is read through an API and polling is on; else stop."""
        if config.poll_interval and any(is_api(s.path) for s in config.sources):
            self._timer.setInterval(config.poll_interval * 1000)
            if not self._timer.isActive():
                self._timer.start()
        else:
            self._timer.stop()

    def stop(self) -> None:
        self._timer.stop()

    @property
    def active(self) -> bool:
        return self._timer.isActive()


def desktop_target(config: Config, url: str) -> tuple[roam_local.Target, str, str] | None:
    """For a Roam block link whose graph has a connected roam-local:// source: the graph's
    target in the app, its token and the block's uid."""
    match = _ROAM_BLOCK.match(url)
    if match is None:
        return None
    graph, uid = unquote(match.group(1)), match.group(2)
    for source in config.sources:
        if not roam_local.is_url(source.path):
            continue
        try:
            target = roam_local.parse_url(source.path)
        except ValueError:
            continue
        token = config.roam_local_tokens.get(target.key, "")
        if token and graph in (source.graph or target.graph, target.graph):
            return target, token, uid
    return None


def open_in_desktop(mw: AnkiQt, config: Config | None, url: str) -> bool:
    """Open a card's link to a Roam block in Roam desktop, if its graph is connected (the web
    link opens if the app does not answer). False when the link is not one for the app."""
    found = desktop_target(config, url) if config is not None else None
    if found is None:
        return False
    target, token, uid = found

    def show(_col: object) -> None:
        client = roam_local.connect(target, token, timeout=OPEN_TIMEOUT)
        try:
            roam_local.open_block(client, uid)
        finally:
            client.session.close()

    QueryOp(parent=mw, op=show, success=lambda _: None).failure(
        lambda _err: openLink(url)
    ).without_collection().run_in_background()
    return True


def connect_desktop(
    mw: AnkiQt, target: roam_local.Target, done: Callable[[str], None],
    failed: Callable[[str], None], editing: bool = False,
) -> None:
    """Ask Roam desktop for a token for ``target`` (its permission dialog opens in Roam):
    read-only, or with edit access (``editing``) to write Anki edits back."""

    def ask(_col: object) -> str:
        return roam_local.request_token(target, access="full" if editing else "read-only").token

    def refused(err: Exception) -> None:
        failed(err.message if isinstance(err, SourceError) else f"{type(err).__name__}")

    QueryOp(parent=mw, op=ask, success=done).failure(refused).with_progress(
        "Waiting for you to allow access in Roam desktop…"
    ).without_collection().run_in_background()

"""What belongs to one Anki profile: its sources, the Roam API tokens, its files.

Each profile has its own notes: its sources (with the graph name each one synced under), the
Roam API token and the Roam desktop tokens (one per graph, from "Connect to Roam desktop…")
are kept in the profile's own preferences (Anki's ``prefs21.db``, beside
the profile, never in the add-on's ``config.json``, which users paste when they ask for help).
The last sync report and the reviewer panel's index live in a ``roam_bridge`` folder inside the
profile's folder, so they follow the profile when it is renamed. Everything else in the
add-on's config (card tags, triggers…) is shared by all profiles.

A config from before sources were per profile moves to the first profile that opens: its
sources and token are taken into that profile and removed from the add-on's config.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from aqt.main import AnkiQt

PROFILE_KEY = "roamBridge"
# Keys of the add-on's config that are kept per profile instead.
PROFILE_KEYS = ("sources", "roam_api_token", "roam_local_tokens")
FOLDER = "roam_bridge"


class ProfileSettings:
    def __init__(self, mw: AnkiQt, addon: str) -> None:
        self.mw = mw
        self.addon = addon

    def read(self) -> dict[str, Any]:
        profile = self.mw.pm.profile if self.mw.pm is not None else None
        stored = profile.get(PROFILE_KEY) if profile is not None else None
        stored = stored if isinstance(stored, dict) else {}
        tokens = stored.get("roam_local_tokens")
        return {
            "sources": [dict(s) for s in stored.get("sources", []) if isinstance(s, dict)],
            "roam_api_token": str(stored.get("roam_api_token", "") or ""),
            "roam_local_tokens": {str(k): str(v) for k, v in tokens.items()}
            if isinstance(tokens, dict) else {},
        }

    def write(self, values: dict[str, Any]) -> None:
        profile = self.mw.pm.profile if self.mw.pm is not None else None
        if profile is None:
            return
        profile[PROFILE_KEY] = {key: values.get(key) for key in PROFILE_KEYS}
        self.mw.pm.save()  # a crash before the profile closes must not lose them

    def folder(self) -> Path:
        folder = Path(self.mw.pm.profileFolder()) / FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def adopt_global_config(self) -> bool:
        """Move sources and token of an add-on config from before they were per profile
        into this profile (if it has none yet), with the files kept under the add-on's
        ``user_files``. Returns whether anything moved."""
        raw = dict(self.mw.addonManager.getConfig(self.addon) or {})
        legacy = {key: raw.pop(key) for key in PROFILE_KEYS if key in raw}
        if not any(legacy.values()):
            if legacy:
                self.mw.addonManager.writeConfig(self.addon, raw)
            return False
        mine = self.read()
        if not any(mine.values()):
            self.write({"sources": legacy.get("sources") or [],
                        "roam_api_token": legacy.get("roam_api_token") or "",
                        "roam_local_tokens": legacy.get("roam_local_tokens") or {}})
            self._adopt_files()
        self.mw.addonManager.writeConfig(self.addon, raw)
        return True

    def _adopt_files(self) -> None:
        old = Path(self.mw.addonManager.addonsFolder(self.addon)) / "user_files"
        for name in ("last_report.json", "context"):
            source, target = old / name, self.folder() / name
            if source.exists() and not target.exists():
                shutil.move(str(source), str(target))

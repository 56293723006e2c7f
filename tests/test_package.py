"""The .ankiaddon is what Anki installs: the add-on at the zip's root, nothing else."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from tools.package import build


def test_package_root_holds_the_addon_and_its_metadata_only(tmp_path: Path) -> None:
    names = zipfile.ZipFile(build(tmp_path / "x.ankiaddon")).namelist()
    for required in ("__init__.py", "manifest.json", "config.json", "config.md",
                     "core/sync.py", "gui/__init__.py"):
        assert required in names
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")
                or n.endswith(".pyc")]


def test_manifest_names_the_package_and_the_anki_version_we_test() -> None:
    root = Path(__file__).resolve().parent.parent
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["package"] == "roam_bridge"
    assert manifest["min_point_version"] == 260903
    import anki.buildinfo

    year, month, point = (int(p) for p in anki.buildinfo.version.split("."))
    assert manifest["min_point_version"] == year * 10000 + month * 100 + point


def test_default_config_is_valid() -> None:
    from addon.core.config import load_config

    root = Path(__file__).resolve().parent.parent
    config = load_config(json.loads((root / "addon" / "config.json").read_text(
        encoding="utf-8")))
    assert config.cards.card_tags == ("card", "flashcard", "anki")
    assert config.on_removed == "suspend" and config.sync_on_startup and config.watch

"""``make package``: build dist/roam_bridge.ankiaddon.

The zip's root is the add-on folder Anki installs: ``__init__.py``, ``core/``, ``gui/``,
``manifest.json``, ``config.json`` and ``config.md``. No tests, caches or user files.
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADDON = ROOT / "addon"
METADATA = ("manifest.json",)  # beside addon/, which holds config.json and config.md
SKIP_PARTS = {"__pycache__", "user_files", "tests"}


def build(target: Path | None = None) -> Path:
    package = json.loads((ROOT / "manifest.json").read_text(encoding="utf-8"))["package"]
    target = target or ROOT / "dist" / f"{package}.ankiaddon"
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(ADDON.rglob("*")):
            relative = path.relative_to(ADDON)
            if path.is_file() and not SKIP_PARTS & set(relative.parts) and path.suffix != ".pyc":
                archive.write(path, relative.as_posix())
        for name in METADATA:
            archive.write(ROOT / name, name)
    return target


if __name__ == "__main__":
    built = build(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
    print(f"built {built.relative_to(ROOT) if built.is_relative_to(ROOT) else built}")

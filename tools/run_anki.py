"""``make anki``: real Anki desktop with the add-on, on an isolated demo profile.

Builds the package, installs it into .anki-demo/ (a separate Anki base folder, so your own
profiles are never touched), points the add-on at seeds/ and starts Anki. Needs a display.
Edit seeds/roam-bridge-demo.json while Anki runs and watch the cards follow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.harness import create_base, install_ankiaddon
from tools.package import build

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / ".anki-demo"
PROFILE = "Roam Bridge Demo"


def main() -> int:
    package = build()
    if not (BASE / "prefs21.db").exists():
        create_base(BASE, PROFILE)
    folder = install_ankiaddon(BASE, package)
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    config = json.loads((ROOT / "addon" / "config.json").read_text(encoding="utf-8"))
    # The seed writes a cloze with the {x} shorthand: turn it on for this source.
    config["sources"] = [{"path": str(ROOT / "seeds"), "kind": "auto",
                          "graph": "roam-bridge-demo", "deck": "", "brace_clozes": True}]
    meta["config"] = config
    (folder / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    print(f"Starting Anki on {BASE.relative_to(ROOT)} (profile {PROFILE!r})")
    launcher = "import sys; from aqt import run; sys.exit(run())"
    return subprocess.call([sys.executable, "-c", launcher, "-b", str(BASE), "-p", PROFILE],
                           env=os.environ.copy())


if __name__ == "__main__":
    sys.exit(main())

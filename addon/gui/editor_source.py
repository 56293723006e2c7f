"""The editor: an "Open source" button on our notes, and a plain hint on the fields the
notes own.

The button opens the note's block (see source_links.py); on a note that is not ours it is
hidden. Each field of our note types is written from the notes, so its label gets a short
hint, and a tooltip saying what happens to an edit made here. Nothing here writes the note.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from anki.errors import NotFoundError
from anki.notes import Note
from aqt import gui_hooks, mw

from ..core.fields import hints
from .source_links import app_name, block_link, is_ours, open_block

BUTTON_ID = "roam-bridge-open"
COMMAND = "roamBridgeOpenSource"
EDIT_NOTE = ("Roam Bridge writes this field from your notes. An edit made here is kept: with "
             "write-back on for the source it goes into the block, otherwise it stays and is "
             "listed in Tools > Roam Bridge > Conflicts and Anki edits… until you settle it.")
HINTS = hints()

# Runs in the editor's page; field labels render late, so it retries for a moment.
_SCRIPT = """
(function (spec) {
  const button = document.getElementById(%(button)s);
  if (button) { button.style.display = spec.link ? "" : "none"; button.title = spec.tip; }
  let tries = 0;
  function mark() {
    const labels = document.querySelectorAll(".field-container .label-name");
    if (labels.length < spec.names.length && tries++ < 40) { setTimeout(mark, 50); return; }
    document.querySelectorAll(".rb-field-hint").forEach((e) => e.remove());
    if (!spec.ours) return;
    document.querySelectorAll(".field-container").forEach((field) => {
      const hint = spec.hints[field.dataset.index];
      const label = field.querySelector(".label-name");
      if (!hint || !label) return;
      const span = document.createElement("span");
      span.className = "rb-field-hint";
      span.textContent = " · " + hint;
      span.title = spec.note;
      span.style.cssText = "opacity:.6;font-size:.85em;font-weight:normal";
      label.appendChild(span);
    });
  }
  mark();
})(%(spec)s);
"""


def register() -> None:
    gui_hooks.editor_did_init_buttons.append(_add_button)
    gui_hooks.editor_did_load_note.append(_note_loaded)


def _add_button(buttons: list[str], editor: Any) -> None:
    buttons.append(editor.addButton(
        icon=None, cmd=COMMAND, func=lambda ed: open_block(_note_of(ed)),
        tip="Open this note's block",
        label="Open source", id=BUTTON_ID, disables=False,
    ))


def _note_of(editor: Any) -> Note | None:
    """The editor's note: Anki's editor holds it, the newer (experimental) one its id."""
    note = getattr(editor, "note", None)
    if note is None and getattr(editor, "nid", None) and mw.col is not None:
        with contextlib.suppress(NotFoundError):
            note = mw.col.get_note(editor.nid)
    return note


def _note_loaded(editor: Any) -> None:
    note = _note_of(editor)
    ours = is_ours(note)
    names = list(note.keys()) if note is not None else []
    spec = {
        "ours": ours,
        "link": block_link(note) is not None,
        "tip": f"Open this note's block in {app_name(note)}",
        "names": names,
        "hints": {str(i): HINTS[name] for i, name in enumerate(names) if name in HINTS}
        if ours else {},
        "note": EDIT_NOTE,
    }
    editor.web.eval(_SCRIPT % {"button": json.dumps(BUTTON_ID), "spec": json.dumps(spec)})

"""What each side changed: an edit made in Anki, one made in the notes, or both.

The bridge remembers a digest of every field as it last wrote it (note_state.py). Comparing
that with what the note holds now and with what the notes render now tells, field by field:

- nobody changed it;
- the notes changed it (the note is updated, as always);
- Anki changed it (here, or on a device this collection synced from) and the notes did not:
  an **Anki edit**. It is written back to the notes where the source allows it, and otherwise
  kept: never overwritten;
- both changed it to different text: a **conflict**. Both sides stay as they are until the
  user settles it (or a policy does: ``on_conflict`` "notes" or "anki");
- both changed it to the same text (up to the spellings Anki's editor makes, such as ``<b>``
  for ``<strong>``): nothing to settle; the notes' spelling is written.

A note whose state holds no digests (written by an earlier version, or its state lost)
cannot tell; the notes win, as they always did, and the digests are written from then on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .note_state import NoteState, field_digest

CONFLICT_TAG = "roam::conflict"
_SPELLINGS = [(re.compile(p), r) for p, r in (
    (r"<b>", "<strong>"), (r"</b>", "</strong>"), (r"<i>", "<em>"), (r"</i>", "</em>"),
    (r"<(?:s|strike)>", "<del>"), (r"</(?:s|strike)>", "</del>"), (r"&nbsp;|\xa0", " "),
    (r"\s+", " "),
)]


@dataclass
class Sides:
    """The fields of one note, by who changed them since the bridge last wrote it."""

    # Field -> Anki's text, for fields only Anki changed.
    anki: dict[str, str] = field(default_factory=dict)
    # Field -> (the notes' text, Anki's text), for fields both changed differently.
    conflicts: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Anki edits the user chose to keep on a source that cannot be written (not reported).
    acknowledged: dict[str, str] = field(default_factory=dict)


def compare(state: NoteState | None, current: Mapping[str, str], rendered: Mapping[str, str]
            ) -> Sides:
    """``current``: the note's fields as they are (Source without the state span);
    ``rendered``: what the notes render now."""
    sides = Sides()
    written = state.field_digests() if state else {}
    kept = dict(state.kept) if state else {}
    for name, digest in written.items():
        if name not in current or name not in rendered:
            continue
        anki = current[name]
        anki_digest = field_digest(anki)
        if anki_digest == digest:
            continue  # Anki did not change it
        notes = rendered[name]
        if same(notes, anki):
            continue  # both say the same now
        if field_digest(notes) != digest:
            sides.conflicts[name] = (notes, anki)
        elif kept.get(name) == anki_digest:
            sides.acknowledged[name] = anki
        else:
            sides.anki[name] = anki
    return sides


def same(first: str, second: str) -> bool:
    """Whether two field texts say the same, whatever spelling Anki's editor chose."""
    return first == second or _spelled(first) == _spelled(second)


def _spelled(html: str) -> str:
    for pattern, replacement in _SPELLINGS:
        html = pattern.sub(replacement, html)
    return html.strip()

"""What a sync would do, note by note, in words: the GUI's preview and the CLI's ``--dry-run``.

``changes(plan)`` reads a SyncPlan and returns one Change per note the run would touch, in
the order new, updated, orphaned, deleted. It writes nothing and renders nothing that
planning did not render already. Texts are plain (no HTML), whitespace folded, and cut at
TEXT_LIMIT characters, so a hostile block cannot make a listing huge.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from .fields import names_with
from .render import plain_text
from .sync import ORPHAN_TAG, ExistingNote, SyncPlan, Update

Action = Literal["create", "update", "orphan", "delete"]
ACTIONS: tuple[Action, ...] = ("create", "update", "orphan", "delete")
TEXT_LIMIT = 2000
# The fields that say what a note says, by note type: the main one, then the back.
_MAIN = tuple(names_with({"main"}))
_BACK = tuple(names_with({"back"}))
_BLOCK_END = re.compile(r"<(?:br|/li|/div|/p|/h[1-6]|/tr|/td)\b[^>]*>", re.IGNORECASE)


@dataclass(frozen=True)
class Change:
    """One note's change. ``key`` is the block's key after the run; ``text`` what the note
    will say (``before``: what it says now, "" for a new note)."""

    action: Action
    key: str
    note_id: int | None
    text: str
    before: str = ""
    moved: bool = False
    kind: str = ""  # "basic → cloze" when the note changes type
    details: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        if self.action == "update":
            if self.kind:
                return self.kind
            return "moved" if self.moved else "updated"
        return {"create": "new", "orphan": "orphaned", "delete": "deleted"}[self.action]

    @property
    def text_changed(self) -> bool:
        return self.action == "update" and self.text != self.before

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["details"] = list(self.details)
        return data


def changes(plan: SyncPlan) -> list[Change]:
    found = [_created(spec.key, plan.rendered[spec.key].fields) for spec in plan.creates]
    found.extend(_updated(u) for u in plan.updates if u.visible)
    suspends = plan.options.on_removed == "suspend"
    found.extend(_removed("orphan", u.note, u.note.key, suspends) for u in plan.orphans)
    found.extend(_removed("delete", n, n.key, False) for n in plan.deletes)
    return found


def by_action(found: Iterable[Change]) -> dict[str, list[Change]]:
    grouped: dict[str, list[Change]] = {action: [] for action in ACTIONS}
    for change in found:
        grouped[change.action].append(change)
    return grouped


def note_text(fields: dict[str, str]) -> str:
    """What a note says, as one plain line: its main field, then its back after " — "."""
    main = _plain(next((fields[n] for n in _MAIN if n in fields), ""))
    back = _plain(next((fields[n] for n in _BACK if n in fields), ""))
    return _cut(f"{main} — {back}" if back else main)


def _created(key: str, fields: dict[str, str]) -> Change:
    return Change("create", key, None, note_text(fields))


def _updated(update: Update) -> Change:
    note = update.note
    before = note_text(note.fields)
    after = note_text(update.fields) if update.fields is not None else before
    details: list[str] = []
    if update.restored:
        details.append("restored: its block is back")
    if update.fields is not None and "Context" in update.fields and (
        _plain(update.fields["Context"]) != _plain(note.fields.get("Context", ""))
    ):
        details.append("new place: " + _cut(_plain(update.fields["Context"]), 200))
    if update.tags is not None:
        added = [t for t in update.tags if t not in note.tags]
        removed = [t for t in note.tags if t not in update.tags]
        details.extend([f"tag +{t}" for t in added] + [f"tag -{t}" for t in removed])
    if update.deck is not None:
        old = note.state.deck if note.state and note.state.deck else ""
        details.append(f"deck {old} → {update.deck}" if old else f"deck → {update.deck}")
    if update.suspend:
        details.append(f"{len(update.suspend)} card(s) suspended")
    if update.unsuspend:
        details.append(f"{len(update.unsuspend)} card(s) unsuspended")
    return Change(
        "update", update.new_key or note.key, note.id, after, before, moved=update.moved,
        kind=f"{note.kind} → {update.new_kind}" if update.new_kind else "",
        details=tuple(details),
    )


def _removed(action: Action, note: ExistingNote, key: str, suspends: bool) -> Change:
    text = note_text(note.fields)
    if action == "delete":
        detail = "the note and its cards are deleted"
    elif suspends:
        detail = f"suspended and tagged {ORPHAN_TAG}"
    else:
        detail = f"tagged {ORPHAN_TAG}"
    return Change(action, key, note.id, text, text, details=(detail,))


def _plain(html_text: str) -> str:
    # Where a block or list item ends, words of the next must not run into it.
    spaced = _BLOCK_END.sub(" ", html_text) if "<" in html_text else html_text
    return " ".join(plain_text(spaced).split())


def _cut(text: str, limit: int = TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

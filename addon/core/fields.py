"""The fields of Roam Bridge's note types, defined once.

Each field has a role, and the rest of the engine asks for a field by its role and the note's
kind rather than spelling its name: the renderer fills the fields by role (note_fields.py),
the note types are made from this list (notetypes.py), a change between basic and cloze maps
fields by role (sync.py), write-back knows which roles show a block (write_back.py), and the
editor's hints are here too. Renaming a field, or adding one, is a change to this list (and to
the templates in notetypes.py, which a test checks against it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["basic", "cloze"]
KINDS: tuple[Kind, ...] = ("basic", "cloze")
Role = Literal["main", "back", "context", "source", "reverse", "key"]


@dataclass(frozen=True)
class Field:
    name: str
    role: Role
    hint: str  # what the editor shows beside the field's name


_CONTEXT = Field("Context", "context", "from your notes: where the block sits")
_SOURCE = Field("Source", "source", "from your notes: the link to the block")
_KEY = Field("SourceID", "key", "the block's key: leave it as it is")

NOTE_FIELDS: dict[Kind, tuple[Field, ...]] = {
    "basic": (
        Field("Front", "main", "from your notes: the block"),
        Field("Back", "back", "from your notes: the block's children"),
        _CONTEXT,
        _SOURCE,
        Field("Add Reverse", "reverse", "from your notes: #reversed"),
        _KEY,
    ),
    "cloze": (
        Field("Text", "main", "from your notes: the block"),
        Field("Back Extra", "back", "from your notes: the block's children"),
        _CONTEXT,
        _SOURCE,
        _KEY,
    ),
}
SOURCE_ID = _KEY.name
CONTEXT = _CONTEXT.name
SOURCE = _SOURCE.name
# The roles Anki's card generation reads (the templates' conditions and cloze numbers).
CARD_ROLES: frozenset[Role] = frozenset({"main", "back", "reverse"})


def names(kind: Kind) -> tuple[str, ...]:
    """The note type's fields, in order."""
    return tuple(f.name for f in NOTE_FIELDS[kind])


def name(kind: Kind, role: Role) -> str:
    """The field of ``kind`` with ``role`` (KeyError when the kind has none)."""
    for f in NOTE_FIELDS[kind]:
        if f.role == role:
            return f.name
    raise KeyError(f"{kind} notes have no {role} field")


def role_of(field_name: str) -> Role | None:
    """The role of a field of either kind, by its name."""
    for fields in NOTE_FIELDS.values():
        for f in fields:
            if f.name == field_name:
                return f.role
    return None


def names_with(roles: frozenset[Role] | set[Role]) -> frozenset[str]:
    """Every field name, of either kind, whose role is one of ``roles``."""
    return frozenset(f.name for fields in NOTE_FIELDS.values() for f in fields
                     if f.role in roles)


def kind_change_map(old: Kind, new: Kind) -> dict[str, str]:
    """Field of ``new`` -> the field of ``old`` with the same role (a change of note type
    keeps what can be kept)."""
    by_role = {f.role: f.name for f in NOTE_FIELDS[old]}
    return {f.name: by_role[f.role] for f in NOTE_FIELDS[new] if f.role in by_role}


def hints() -> dict[str, str]:
    """Field name -> the editor's hint, for both kinds."""
    return {f.name: f.hint for fields in NOTE_FIELDS.values() for f in fields}

"""The note types Roam Bridge owns, created and upgraded idempotently.

We recognise our note types by a marker key stored in the note type itself (it syncs with
the collection), never by name: a user may rename them, and a user's own type that happens to
share the name is never touched. Templates and styling are upgraded only while they are still
exactly what we last wrote; a template the user edited is left alone and reported.

A note type is created in one call, under an id derived from its kind (identity.py), so two
devices that create it before they sync end up with one note type, not "Roam Bridge Basic" and
"Roam Bridge Basic+"; a crash can never leave half a note type behind. Copies that exist
anyway (made by earlier versions on two devices) are found by ``copies``; sync merges their
notes into ours, which Anki counts as a schema change.
"""

from __future__ import annotations

import hashlib
from typing import Any

from anki.collection import Collection
from anki.models import NotetypeDict, NotetypeId

from . import fields, identity
from .anki_compat import add_notetype_with_id, current_notetype
from .fields import KINDS, Kind

MARKER = "roamBridge"
VERSION = 3
NAMES: dict[Kind, str] = {"basic": "Roam Bridge Basic", "cloze": "Roam Bridge Cloze"}
FIELDS: dict[Kind, tuple[str, ...]] = {kind: fields.names(kind) for kind in KINDS}

_FOOTER = """
<div class="rb-footer">{{Context}}<div class="rb-source">{{Source}}</div></div>"""
_VERSION_COMMENT = f"<!-- roam-bridge template v{VERSION} -->"

TEMPLATES: dict[Kind, list[tuple[str, str, str]]] = {
    "basic": [
        ("Card 1", "{{Front}}", "{{FrontSide}}\n\n<hr id=answer>\n\n{{Back}}" + _FOOTER),
        (
            "Reverse",
            "{{#Add Reverse}}{{Back}}{{/Add Reverse}}",
            "{{FrontSide}}\n\n<hr id=answer>\n\n{{Front}}" + _FOOTER,
        ),
    ],
    "cloze": [
        ("Cloze", "{{cloze:Text}}", "{{cloze:Text}}\n\n<div class=\"rb-extra\">{{Back Extra}}</div>"
         + _FOOTER),
    ],
}

CSS = """\
.card { font-family: -apple-system, "Segoe UI", Roboto, sans-serif; font-size: 20px;
  text-align: left; line-height: 1.45; color: #1f2328; background: #fff; }
.nightMode.card, .night_mode .card { color: #e6edf3; background: #1e1e1e; }
.cloze { font-weight: bold; color: #0969da; }
.nightMode .cloze { color: #58a6ff; }
ul.rb-children { margin: .4em 0; padding-left: 1.2em; }
.rb-page, .rb-tag { color: #0969da; }
.rb-tag { font-size: .9em; opacity: .8; }
.nightMode .rb-page, .nightMode .rb-tag { color: #58a6ff; }
.rb-ref { border-bottom: 1px dotted currentColor; }
.rb-missing, .rb-widget { opacity: .6; font-style: italic; }
mark { background: #fff3b0; color: inherit; }
.nightMode mark { background: #6b5a00; }
code { font-size: .9em; padding: 0 .2em; border-radius: 3px; background: rgba(127,127,127,.15); }
.rb-footer { margin-top: 1.6em; padding-top: .5em; border-top: 1px solid rgba(127,127,127,.25);
  font-size: 13px; color: #656d76; }
.nightMode .rb-footer { color: #9198a1; }
.rb-crumbs { margin-bottom: .2em; }
.rb-crumb { color: inherit; text-decoration: none; }
a.rb-crumb:hover { text-decoration: underline; }
.rb-sep, .rb-more { opacity: .6; }
.rb-page-title { font-weight: 600; }
.rb-attrs { display: flex; flex-wrap: wrap; gap: .2em 1em; }
.rb-attr-key { font-weight: 600; }
.rb-attr-key::after { content: ":"; }
.rb-source { margin-top: .3em; }
.rb-source a, .rb-attrs a { color: inherit; }
.card h1, .card h2, .card h3 { margin: .2em 0; line-height: 1.25; }
.card h1 { font-size: 1.5em; } .card h2 { font-size: 1.3em; } .card h3 { font-size: 1.15em; }
pre { padding: .5em .7em; border-radius: 4px; overflow-x: auto; text-align: left;
  background: rgba(127,127,127,.12); }
pre code { padding: 0; background: none; }
code.rb-fence { display: block; white-space: pre-wrap; padding: .4em .6em; }
blockquote { margin: .3em 0; padding-left: .8em; border-left: 3px solid #d0d7de; color: #57606a; }
.nightMode blockquote { border-left-color: #3d444d; color: #9198a1; }
.rb-attr-name { font-weight: 600; }
.rb-todo, .rb-done { font-size: 1.1em; }
.rb-done { color: #1a7f37; }
.nightMode .rb-done { color: #3fb950; }
.rb-math.rb-display { display: block; text-align: center; margin: .3em 0; }
.rb-embed { margin: .3em 0; padding: .2em .6em; border-left: 3px solid #0969da;
  background: rgba(127,127,127,.06); }
.nightMode .rb-embed { border-left-color: #58a6ff; }
.rb-embed-path, .rb-embed-title { font-size: .8em; opacity: .7; }
.rb-media { display: inline-block; text-decoration: none; color: #0969da; }
.nightMode .rb-media { color: #58a6ff; }
.rb-thumb { display: block; max-width: 320px; border-radius: 4px; }
.rb-media-label { font-size: .9em; }
.rb-reveal { display: inline; }
.rb-reveal summary { display: inline; cursor: pointer; border-bottom: 1px dashed currentColor; }
.rb-reveal[open] summary { opacity: .6; }
.rb-reveal > span { margin-left: .4em; }
.rb-table { border-collapse: collapse; margin: .3em 0; }
.rb-table td { border: 1px solid #d0d7de; padding: .2em .5em; vertical-align: top; }
.nightMode .rb-table td { border-color: #3d444d; }
.rb-cloze { font-weight: 600; color: #0969da; }
.nightMode .rb-cloze { color: #58a6ff; }
.rb-image { opacity: .7; font-style: italic; }
"""


def find(col: Collection) -> dict[Kind, NotetypeDict]:
    """Our note types that already exist, by kind (the one ``copies`` merges the others
    into). Reads only."""
    return {kind: found[0] for kind, found in _ours(col).items()}


def copies(col: Collection) -> dict[Kind, list[NotetypeDict]]:
    """Second copies of our note types, by kind: made on two devices before they synced
    (by versions that did not derive note type ids). Reads only."""
    return {kind: found[1:] for kind, found in _ours(col).items() if len(found) > 1}


def _ours(col: Collection) -> dict[Kind, list[NotetypeDict]]:
    """Our note types by kind, the one to keep first: the one with the derived id, else the
    oldest (lowest id), so every device keeps the same one."""
    found: dict[Kind, list[NotetypeDict]] = {}
    for entry in col.models.all_names_and_ids():
        nt = col.models.get(NotetypeId(entry.id))
        if nt is None:
            continue
        marker = nt.get(MARKER)
        # A user's clone copies the marker but gets a new id: it is theirs, not ours.
        if (
            isinstance(marker, dict)
            and marker.get("kind") in NAMES
            and marker.get("id") == nt["id"]
        ):
            found.setdefault(marker["kind"], []).append(nt)
    for kind, types in found.items():
        derived = identity.notetype_id(kind)
        types.sort(key=lambda nt: (nt["id"] != derived, nt["id"]))
    return found


def ensure(col: Collection) -> tuple[dict[Kind, NotetypeDict], list[str]]:
    """Create missing note types and upgrade ours; returns them and any warnings."""
    existing = find(col)
    warnings: list[str] = []
    for kind in NAMES:
        nt = existing.get(kind)
        if nt is None:
            existing[kind] = _create(col, kind)
        elif nt[MARKER].get("version") != VERSION:
            warnings.extend(_upgrade(col, kind, nt))
            existing[kind] = current_notetype(col, nt["id"])
    return existing, warnings


def _create(col: Collection, kind: Kind) -> NotetypeDict:
    mm = col.models
    name = NAMES[kind]
    if mm.by_name(name) is not None:  # a user's own type has our name: keep clear of it
        name = f"{name} ({MARKER})"
    nt = mm.new(name)
    if kind == "cloze":
        nt["type"] = 1  # MODEL_CLOZE
    for field_name in FIELDS[kind]:
        mm.add_field(nt, mm.new_field(field_name))
    for template_name, front, back in TEMPLATES[kind]:
        template = mm.new_template(template_name)
        template["qfmt"], template["afmt"] = front, _VERSION_COMMENT + "\n" + back
        mm.add_template(nt, template)
    nt["css"] = CSS
    nt["id"] = identity.free_ids([identity.notetype_id(kind)], lambda i: mm.have(NotetypeId(i)))[0]
    nt[MARKER] = {**_marker(kind, nt), "id": nt["id"]}
    add_notetype_with_id(col, nt)
    created = mm.get(nt["id"])
    assert created is not None
    return created


def _upgrade(col: Collection, kind: Kind, nt: NotetypeDict) -> list[str]:
    mm = col.models
    warnings: list[str] = []
    names = _field_names(nt)
    for position, field_name in enumerate(FIELDS[kind]):
        if field_name not in names:
            mm.add_field(nt, mm.new_field(field_name))
            mm.reposition_field(nt, nt["flds"][-1], position)
    look = nt[MARKER].get("look")
    if _look_hash(nt) == look:
        for template, (_, front, back) in zip(nt["tmpls"], TEMPLATES[kind], strict=False):
            template["qfmt"], template["afmt"] = front, _VERSION_COMMENT + "\n" + back
        nt["css"] = CSS
        look = _look_hash(nt)
    else:
        # Said once: the version moves on, and "look" keeps what we last wrote, so the
        # user's templates never match it and are never overwritten.
        warnings.append(
            f"note type {nt['name']!r}: its templates were edited, so Roam Bridge left them "
            f"as they are (version {VERSION} of its templates was not applied)"
        )
    nt[MARKER] = {"kind": kind, "version": VERSION, "look": look, "id": nt["id"]}
    mm.update_dict(nt)
    return warnings


def _marker(kind: Kind, nt: NotetypeDict) -> dict[str, Any]:
    return {"kind": kind, "version": VERSION, "look": _look_hash(nt)}


def _look_hash(nt: NotetypeDict) -> str:
    parts = [nt.get("css", "")] + [t["qfmt"] + "\x1f" + t["afmt"] for t in nt["tmpls"]]
    return hashlib.sha1("\x1e".join(parts).encode()).hexdigest()[:16]


def _field_names(nt: NotetypeDict) -> list[str]:
    return [f["name"] for f in nt["flds"]]

"""The note types' fields are defined once (core/fields.py): everything else follows it."""

from __future__ import annotations

import re

from anki.collection import Collection

from addon.core import fields, notetypes
from addon.core.cards import collect
from addon.core.config import CardOptions
from addon.core.note_fields import NoteRenderer
from addon.core.sources.roam_json import build_graph
from tests.roam import block, page


def test_every_kind_has_the_roles_the_engine_asks_for() -> None:
    for kind in fields.KINDS:
        roles = [f.role for f in fields.NOTE_FIELDS[kind]]
        assert len(roles) == len(set(roles)), "one field per role"
        for role in ("main", "back", "context", "source", "key"):
            assert fields.name(kind, role)
    assert fields.kind_change_map("basic", "cloze") == {
        "Text": "Front", "Back Extra": "Back", "Context": "Context", "Source": "Source",
        "SourceID": "SourceID"}


def test_the_templates_name_only_fields_of_their_note_type() -> None:
    for kind, templates in notetypes.TEMPLATES.items():
        names = set(fields.names(kind)) | {"FrontSide"}
        for _, front, back in templates:
            used = {re.sub(r"^(?:cloze:|[#/^])", "", m) for m in
                    re.findall(r"\{\{([^}]+)\}\}", front + back)}
            assert used <= names, (kind, used - names)


def test_the_note_types_made_have_exactly_these_fields(col: Collection) -> None:
    notetypes.ensure(col)
    for kind, nt in notetypes.find(col).items():
        assert [f["name"] for f in nt["flds"]] == list(fields.names(kind))


def test_the_renderer_fills_every_field_but_the_key() -> None:
    graph = build_graph([page("P", block("Q #card", block("A"), uid="b"),
                              block("{{c1::x}} y #card", uid="c"))], "g")
    renderer = NoteRenderer(graph, CardOptions())
    for spec in collect(graph, CardOptions()):
        rendered = renderer.render(spec).fields
        assert list(rendered) == [n for n in fields.names(spec.kind) if n != fields.SOURCE_ID]


def test_the_editor_has_a_hint_for_every_field() -> None:
    hints = fields.hints()
    for kind in fields.KINDS:
        assert set(fields.names(kind)) <= set(hints)


def test_every_setting_has_its_default_in_config_json_and_its_help_in_config_md() -> None:
    """A setting is defined once: config.json holds its default, config.md documents it."""
    from dataclasses import fields as dataclass_fields
    from pathlib import Path

    from addon.core.config import DEFAULTS, CardOptions, Config, load_config

    profile_keys = {"sources", "roam_api_token", "roam_local_tokens"}
    settings = ({f.name for f in dataclass_fields(Config)} - {"cards"} - profile_keys
                | {f.name for f in dataclass_fields(CardOptions)} - {"brace_clozes"})
    assert set(DEFAULTS) == settings
    assert load_config({}) == Config(), "the dataclasses' defaults are config.json's"
    help_text = (Path(__file__).resolve().parents[1] / "addon" / "config.md").read_text(
        encoding="utf-8")
    assert all(f"`{key}`" in help_text for key in DEFAULTS)

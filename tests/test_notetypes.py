"""Our note types: created once, upgraded only while unmodified, never the user's."""

from __future__ import annotations

from anki.collection import Collection

from addon.core import notetypes
from addon.core.notetypes import MARKER, VERSION


def _make_old(col: Collection, kind: str, edit: str = "") -> None:
    """Turn our note type back into an older version, optionally with a user's edit."""
    nt = notetypes.find(col)[kind]
    template = nt["tmpls"][0]
    template["afmt"] = template["afmt"].replace(f"template v{VERSION}", "template v1") + edit
    if not edit:
        nt[MARKER] = {**nt[MARKER], "look": notetypes._look_hash(nt)}
    nt[MARKER] = {**nt[MARKER], "version": 1}
    col.models.update_dict(nt)


def test_ensure_creates_both_types_with_the_contract_fields_once(col: Collection) -> None:
    types, warnings = notetypes.ensure(col)
    assert warnings == []
    assert [f["name"] for f in types["basic"]["flds"]] == [
        "Front", "Back", "Context", "Source", "Add Reverse", "SourceID"]
    assert [f["name"] for f in types["cloze"]["flds"]] == [
        "Text", "Back Extra", "Context", "Source", "SourceID"]
    assert all("{{Context}}" in t["afmt"] and "{{Source}}" in t["afmt"]
               for nt in types.values() for t in nt["tmpls"])
    mod = col.mod
    again, _ = notetypes.ensure(col)
    assert {k: v["id"] for k, v in again.items()} == {k: v["id"] for k, v in types.items()}
    assert col.mod == mod


def test_a_users_type_with_our_name_is_left_alone(col: Collection) -> None:
    mine = col.models.new("Roam Bridge Basic")
    col.models.add_field(mine, col.models.new_field("Mine"))
    template = col.models.new_template("Card 1")
    template["qfmt"], template["afmt"] = "{{Mine}}", "{{Mine}}"
    col.models.add_template(mine, template)
    col.models.add_dict(mine)
    types, _ = notetypes.ensure(col)
    assert types["basic"]["name"] != "Roam Bridge Basic"
    untouched = col.models.by_name("Roam Bridge Basic")
    assert [f["name"] for f in untouched["flds"]] == ["Mine"] and MARKER not in untouched


def test_unmodified_old_templates_are_upgraded(col: Collection) -> None:
    notetypes.ensure(col)
    _make_old(col, "basic")
    _, warnings = notetypes.ensure(col)
    assert warnings == []
    nt = notetypes.find(col)["basic"]
    assert nt[MARKER]["version"] == VERSION
    assert f"template v{VERSION}" in nt["tmpls"][0]["afmt"]


def test_edited_templates_are_kept_and_we_say_so_once(col: Collection) -> None:
    notetypes.ensure(col)
    _make_old(col, "cloze", edit="<div>my own footer</div>")
    _, warnings = notetypes.ensure(col)
    assert len(warnings) == 1 and "edited" in warnings[0]
    nt = notetypes.find(col)["cloze"]
    assert "my own footer" in nt["tmpls"][0]["afmt"]
    _, again = notetypes.ensure(col)
    assert again == []
    assert "my own footer" in notetypes.find(col)["cloze"]["tmpls"][0]["afmt"]

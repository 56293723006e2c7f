"""The engine stands without Anki desktop: nothing under ``addon/core`` imports Qt, ``aqt``
or the add-on's GUI, so the CLI, the bench and the tests run it with the ``anki`` package
alone (and ``make demo`` installs nothing more)."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "addon" / "core"
DESKTOP = ("aqt", "PyQt6", "PyQt5", "PySide6", "sip")


def imported(path: Path) -> list[str]:
    """Every module ``path`` imports, relative ones spelt with their dots."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.append("." * node.level + (node.module or ""))
    return names


def reaches_gui(path: Path, name: str) -> bool:
    if not name.startswith("."):
        return name.split(".")[0] == "addon" and ".gui" in name
    level = len(name) - len(name.lstrip("."))
    package = path.parent
    for _ in range(level - 1):
        package = package.parent
    target = package.joinpath(*name.lstrip(".").split(".")) if name.lstrip(".") else package
    return "gui" in target.relative_to(CORE.parent.parent).parts


def test_the_engine_imports_neither_qt_nor_the_gui() -> None:
    modules = sorted(CORE.rglob("*.py"))
    assert len(modules) > 30
    wrong = [
        f"{path.relative_to(CORE)}: {name}"
        for path in modules for name in imported(path)
        if name.split(".")[0] in DESKTOP or reaches_gui(path, name)
    ]
    assert wrong == []


def test_the_check_sees_a_gui_import() -> None:
    assert reaches_gui(CORE / "sync.py", "..gui.controller")
    assert reaches_gui(CORE / "sources" / "detect.py", "...gui")
    assert not reaches_gui(CORE / "sources" / "detect.py", "..model")

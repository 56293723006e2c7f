"""Tiny builders for Roam JSON exports, so each test states its notes in a few lines."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

_counter = itertools.count(1)


def block(text: str, *children: dict[str, Any], uid: str | None = None, **extra: Any) -> dict:
    raw: dict[str, Any] = {"string": text, "uid": uid or f"uid{next(_counter):06d}", **extra}
    if children:
        raw["children"] = list(children)
    return raw


def page(title: str, *children: dict[str, Any], uid: str | None = None) -> dict:
    raw: dict[str, Any] = {"title": title, "children": list(children)}
    if uid:
        raw["uid"] = uid
    return raw


def write_export(path: Path, pages: list[dict]) -> Path:
    path.write_text(json.dumps(pages), encoding="utf-8")
    return path


def find_block(pages: list[dict], uid: str) -> dict:
    stack = [b for p in pages for b in p.get("children", [])]
    while stack:
        raw = stack.pop()
        if raw["uid"] == uid:
            return raw
        stack.extend(raw.get("children", []))
    raise KeyError(uid)

"""Roam Research JSON export -> Graph.

Accepts a ``.json`` file, a ``.zip`` holding one, or a folder (its newest export). Both export
generations are read: ``refs`` / ``:block/refs``, ``create-email`` / ``:create/user``, pages
without a uid and blocks without times. Children keep array order; ``heading`` is kept.
A block repeating an earlier block's uid, or with a control character in it, gets a
synthetic uid (``fallback_uid``). Anything that is not a Roam export raises SourceError before
a Graph exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from .. import json_steps
from ..model import Block, Graph, Page, SourceError, gc_paused, synthetic_uid
from .exports import newest_roam_export, read_export_bytes


def read(path: str | Path, graph_name: str) -> Graph:
    path = Path(path)
    if path.is_dir():
        path = newest_roam_export(path, ("json",))
    elif not path.exists():
        raise SourceError(path, "no such file or folder")
    data, label = read_export_bytes(path, ".json")
    with gc_paused():
        try:
            pages = json_steps.loads(data)  # page by page: see json_steps.py
        except orjson.JSONDecodeError as err:
            raise SourceError(label, json_problem(err)) from None
        del data
        return build_graph(pages, graph_name, label)


def json_problem(err: orjson.JSONDecodeError) -> str:
    """What is wrong with a JSON document orjson refused, in one line."""
    if "limit" in str(err) and ("depth" in str(err) or "recursion" in str(err)):
        # orjson reads 1,024 levels of arrays and objects: about 500 levels of blocks.
        return (f"blocks nested deeper than the JSON reader can read (at "
                f"{_where(err)}: more than 1,024 levels of arrays and objects)")
    return f"not valid JSON ({err})"


def _where(err: orjson.JSONDecodeError) -> str:
    return f"line {err.lineno} column {err.colno}"


def build_graph(pages: Any, graph_name: str, label: str = "export") -> Graph:
    """Build a Graph from the decoded export (a list of page objects)."""
    if not isinstance(pages, list):
        raise SourceError(label, "not a Roam JSON export (expected a list of pages)")
    if not pages:
        raise SourceError(label, "the export holds no pages")
    graph = Graph(source="roam", name=graph_name)
    for index, raw in enumerate(pages):
        if not isinstance(raw, dict) or not isinstance(raw.get("title"), str):
            raise SourceError(label, f"page #{index + 1} has no title; not a Roam JSON export")
        page = graph.add_page(Page(title=raw["title"], uid=str(raw.get("uid") or "")))
        _add_children(graph, page, None, raw.get("children"), label)
    return graph


def fallback_uid(page_title: str, text: str, blocks: dict[str, Block]) -> str:
    """The uid for a block whose own is taken by an earlier block (a copy: the first keeps
    it) or holds a control character (Anki drops those from the key it stores, so the note
    would never be found again): a synthetic one, as for a block without a uid."""
    return synthetic_uid(page_title, text, blocks)


def _add_children(
    graph: Graph, page: Page, parent: Block | None, raw_children: Any, label: str
) -> None:
    if not raw_children:
        return
    if not isinstance(raw_children, list):
        raise SourceError(label, f"page {page.title!r}: 'children' is not a list")
    siblings = page.children if parent is None else parent.children
    blocks = graph.blocks
    # Iterative preorder walk: real graphs nest deeper than Python's recursion allows, and
    # preorder keeps graph.blocks in document order (new cards are added in that order).
    stack: list[tuple[Block | None, list[Block], Any]] = [(parent, siblings, iter(raw_children))]
    while stack:
        owner, into, raws = stack[-1]
        for raw in raws:
            if not isinstance(raw, dict):
                raise SourceError(label, f"page {page.title!r}: a block is not an object")
            text = raw.get("string", "")
            if not isinstance(text, str):
                raise SourceError(label, f"page {page.title!r}: a block's 'string' is not text")
            uid = raw.get("uid") or synthetic_uid(page.title, text, blocks)
            if not isinstance(uid, str):
                raise SourceError(label, f"page {page.title!r}: a block's 'uid' is not text")
            if uid in blocks or not uid.isprintable():
                uid = fallback_uid(page.title, text, blocks)
            heading = raw.get("heading")
            block = Block(uid, text, page, owner, [], heading if isinstance(heading, int) else 0)
            into.append(block)
            blocks[uid] = block
            kids = raw.get("children")
            if kids:
                if not isinstance(kids, list):
                    raise SourceError(label, f"block {block.uid}: 'children' is not a list")
                stack.append((block, block.children, iter(kids)))
                break
        else:
            stack.pop()


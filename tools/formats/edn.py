"""Roam JSON pages -> a Roam EDN export (``#datascript/DB {:schema … :datoms […]}``) of the
same graph.

The output has the shape Roam itself writes: one datom ``[e a v tx]`` per fact, sorted by
entity then attribute (datascript's EAVT order), pages with ``:node/title``, blocks with
``:block/string``, ``:block/order`` among siblings, ``:block/children`` on the parent,
``:block/page`` and every ancestor in ``:block/parents``, users as entities, and one
``:graph/name`` entity. Entity ids follow the pages' document order, so a reader that takes
pages in entity order gives them back in the JSON's order. Strings are escaped the way
ClojureScript's printer does it: ``\\" \\\\ \\b \\f \\n \\r \\t``, every other character raw.

Run ``python -m tools.formats.edn IN.json OUT.edn --graph NAME``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_TX0 = 536870913  # datascript's first transaction id, as in real exports
_ESCAPES = str.maketrans({
    '"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
})
_REF = "{:db/valueType :db.type/ref, :db/cardinality :db.cardinality/%s}"
_SCHEMA = {
    ":block/children": _REF % "many", ":block/page": _REF % "one",
    ":block/parents": _REF % "many", ":block/refs": _REF % "many",
    ":create/user": _REF % "one", ":edit/user": _REF % "one",
    ":block/uid": "{:db/unique :db.unique/identity}",
    ":node/title": "{:db/unique :db.unique/identity}",
    ":user/uid": "{:db/unique :db.unique/identity}",
    ":graph/name": "{:db/unique :db.unique/identity}",
    ":version/id": "{:db/unique :db.unique/identity}",
}
Datom = tuple[int, str, str]


def write(pages: list[dict[str, Any]], dest: Path, graph_name: str) -> Path:
    """Write ``pages`` (a Roam JSON export) to ``dest`` as a Roam EDN export; return ``dest``."""
    dest = Path(dest)
    dest.write_text(render(pages, graph_name), encoding="utf-8")
    return dest


def render(pages: list[dict[str, Any]], graph_name: str, pretty: bool = False) -> str:
    """The export as text. ``pretty`` puts one datom per line, with commas (still valid EDN,
    the same database, but not the layout Roam writes)."""
    datoms = sorted(_datoms(pages, graph_name), key=lambda d: (d[0], d[1]))
    separator = ",\n  " if pretty else " "
    body = separator.join(f"[{e} {a} {v} {_TX0 + e}]" for e, a, v in datoms)
    schema = ", ".join(f"{k} {v}" for k, v in _SCHEMA.items())
    return f"#datascript/DB {{:schema {{{schema}}}, :datoms [{body}]}}\n"


def edn_string(text: str) -> str:
    return '"' + text.translate(_ESCAPES) + '"'


def _datoms(pages: list[dict[str, Any]], graph_name: str) -> Iterator[Datom]:
    yield 1, ":version/id", edn_string("0.9.7")
    yield 2, ":block/uid", edn_string("graph-name")
    yield 2, ":graph/name", edn_string(graph_name)
    users: dict[str, int] = {}
    next_id = [3]

    def new_id() -> int:
        next_id[0] += 1
        return next_id[0] - 1

    def user(uid: str) -> int:
        if uid not in users:
            users[uid] = new_id()
        return users[uid]

    def meta(e: int, raw: dict[str, Any]) -> Iterator[Datom]:
        for key, attr in (("create-time", ":create/time"), ("edit-time", ":edit/time")):
            if isinstance(raw.get(key), int):
                yield e, attr, str(raw[key])
        for key, attr in ((":create/user", ":create/user"), (":edit/user", ":edit/user")):
            who = raw.get(key)
            if isinstance(who, dict) and isinstance(who.get(":user/uid"), str):
                yield e, attr, str(user(who[":user/uid"]))
        if raw.get("uid"):
            yield e, ":block/uid", edn_string(str(raw["uid"]))

    for raw_page in pages:
        page_id = new_id()
        yield page_id, ":node/title", edn_string(raw_page["title"])
        yield from meta(page_id, raw_page)
        # Iterative: exports nest deeper than Python's recursion allows.
        stack: list[tuple[int, list[int], list[dict[str, Any]]]] = [
            (page_id, [page_id], list(raw_page.get("children") or []))
        ]
        while stack:
            parent, chain, kids = stack.pop()
            for order, raw in enumerate(kids):
                e = new_id()
                yield parent, ":block/children", str(e)
                yield e, ":block/order", str(order)
                yield e, ":block/page", str(page_id)
                yield e, ":block/open", "false" if raw.get("open") is False else "true"
                for ancestor in chain:
                    yield e, ":block/parents", str(ancestor)
                if "string" in raw:
                    yield e, ":block/string", edn_string(raw["string"])
                if isinstance(raw.get("heading"), int):
                    yield e, ":block/heading", str(raw["heading"])
                if isinstance(raw.get("text-align"), str):
                    yield e, ":block/text-align", edn_string(raw["text-align"])
                if isinstance(raw.get("view-type"), str):
                    yield e, ":children/view-type", ":" + raw["view-type"]
                yield from meta(e, raw)
                if raw.get("children"):
                    # Blocks get ids in no tree order (as in Roam, where ids follow creation
                    # time): siblings are ordered by :block/order alone.
                    stack.append((e, [*chain, e], list(raw["children"])))
    for uid, e in users.items():
        yield e, ":user/uid", edn_string(uid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source", type=Path, help="a Roam JSON export")
    parser.add_argument("dest", type=Path)
    parser.add_argument("--graph", required=True, help="the :graph/name to write")
    args = parser.parse_args()
    pages = json.loads(args.source.read_text(encoding="utf-8"))
    write(pages, args.dest, args.graph)


if __name__ == "__main__":
    main()

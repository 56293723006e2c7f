"""Field HTML in the form Anki's editor keeps, so that looking at a note never edits it.

When a note is shown in Anki's editor (the Browser, Edit), each field goes through the web
view's HTML parser and is written back if its serialisation differs from what is stored: the
note then gets a new modification time, an undo entry, and is sent on the next AnkiWeb sync.
``editor_stable`` rewrites what the bridge writes into that form: void elements without
``/``, every attribute as ``name="value"`` (boolean ones as ``name=""``), quotes unescaped and
``>`` escaped in text, and table rows inside ``<tbody>``. It changes spelling, never meaning;
it is linear in the text, and applying it twice changes nothing.
"""

from __future__ import annotations

import re
from functools import lru_cache

_TAG = re.compile(r"(<[^<>]*>)")
_OPENING = re.compile(r"<([A-Za-z][A-Za-z0-9-]*)(.*?)\s*/?>\Z", re.S)
_ATTRIBUTE = re.compile(r"""\s*([^\s=/>"']+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'>]+))?""")
_TEXT_ENTITIES = {"&quot;": '"', "&#34;": '"', "&#x27;": "'", "&#39;": "'"}
_TEXT_ENTITY = re.compile("|".join(map(re.escape, _TEXT_ENTITIES)))
_BARE_ROWS = re.compile(r"(<table\b[^<>]*>)(\s*<tr\b.*?</tr>\s*)(</table>)", re.S)
# Cheap signs that the editor would spell a field differently: a self-closing tag, a quote
# entity, a table, a single-quoted or unquoted attribute value, a likely bare attribute, a ">"
# in text (more ">" than "<"). Most fields show none, and then they are left as they are.
# (The bare attributes checked for are the ones HTML for a card can have: details' "open",
# the "hidden" of the bridge's state span.)
_SIGNS = ("/>", "&quot;", "&#", "<table", "='", " hidden>", " hidden ", " open>", " open ")
_UNQUOTED = re.compile(r"""=[^"'\s>]""")


def _needs_work(html: str) -> bool:
    return (
        any(sign in html for sign in _SIGNS)
        or html.count("<") != html.count(">")
        or _UNQUOTED.search(html) is not None
    )


@lru_cache(maxsize=1 << 14)  # a page's cards share their Context field
def editor_stable(html: str) -> str:
    if ("<" not in html and ">" not in html and "&" not in html) or not _needs_work(html):
        return html
    if "<table" in html:
        html = _BARE_ROWS.sub(r"\1<tbody>\2</tbody>\3", html)
    parts = _TAG.split(html)
    for i, part in enumerate(parts):
        if i % 2:
            parts[i] = _tag(part)
        elif part:
            if "&" in part:
                part = _TEXT_ENTITY.sub(lambda m: _TEXT_ENTITIES[m.group(0)], part)
            parts[i] = part.replace(">", "&gt;")
    return "".join(parts)


def _tag(tag: str) -> str:
    match = _OPENING.match(tag)
    if match is None:  # a closing tag, a comment
        return tag
    name, rest = match.groups()
    if not rest.strip():
        return f"<{name}>"
    pieces = [f"<{name}"]
    for attribute, value in _ATTRIBUTE.findall(rest):
        if not value:
            value = '""'
        elif value[0] == "'":
            value = '"' + value[1:-1].replace('"', "&quot;") + '"'
        elif value[0] != '"':
            value = f'"{value}"'
        pieces.append(f" {attribute}={value}")
    return "".join(pieces) + ">"

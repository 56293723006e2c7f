"""The way back from the notes to Anki: a block's uid, from the link or reference a note app
copies for it (Tools > Roam Bridge > Find a block's cards… searches ``SourceID`` for it).

``uid_in`` understands a Roam block URL (``…/#/app/<graph>/page/<uid>``), a ``((uid))``
reference (Roam and Logseq), Logseq's ``logseq://graph/<g>?block-id=<uuid>``, Obsidian's
``obsidian://open?vault=…&file=Note%23%5Eid`` and ``[[Note#^id]]``, and a bare uid. It
returns None for anything else and never raises, whatever the text.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlsplit

MAX_TEXT = 4000  # a clipboard can hold anything: look at its start only
_UID = r"[A-Za-z0-9_-]{1,64}"
_REF = re.compile(rf"\(\(({_UID})\)\)")
_OBSIDIAN_EMBED = re.compile(rf"\[\[[^\]#|]*#\^({_UID})(?:\|[^\]]*)?\]\]")
_BARE = re.compile(rf"\^?({_UID})")


def uid_in(text: str) -> str | None:
    text = text[:MAX_TEXT].strip()
    if not text:
        return None
    if "://" in text:
        return _from_url(text.split()[0])
    for pattern in (_REF, _OBSIDIAN_EMBED):
        found = pattern.search(text)
        if found:
            return found.group(1)
    bare = _BARE.fullmatch(text)
    return bare.group(1) if bare else None


def _from_url(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        # Roam keeps its route in the fragment: #/app/<graph>/page/<uid>
        route = re.fullmatch(rf"/app/[^/]+/page/({_UID})", unquote(parts.fragment))
        return route.group(1) if route else None
    query = parse_qs(parts.query)
    if scheme == "logseq":
        ids = query.get("block-id", [])
        return ids[0] if ids and re.fullmatch(_UID, ids[0]) else None
    if scheme == "obsidian":
        file = query.get("file", [""])[0]
        found = re.search(rf"#\^({_UID})$", file)
        return found.group(1) if found else None
    return None

"""What the bridge remembers about each note, kept in the note itself.

A hidden ``<span class="rb-state" …>`` at the end of the ``Source`` field holds the source hash
(``data-h``, read by SQL when planning, so a no-op run loads no fields) and the rest as JSON
(``data-rb``): the tags and deck the bridge set, the note's location, the cards it suspended,
its cloze numbers, its downloaded images and, for blocks without ids, their page. It syncs and
undoes with the note; if it is lost, the next run compares content instead and writes it back.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

import orjson

from .cards import ClozeMemory

_STATE = re.compile(r'<span class="rb-state" hidden data-h="([^"]*)" data-rb="([^"]*)"></span>')
# What precedes the hash in the span: SQL finds the hash by it.
STATE_HASH_MARK = 'data-h="'


@dataclass(frozen=True)
class NoteState:
    source_hash: str = ""
    tags: tuple[str, ...] = ()
    deck: str = ""
    location: str = ""
    suspended: tuple[int, ...] = ()
    # Numbers of the auto-numbered clozes, by content digest (see cards.number_clozes).
    clozes: ClozeMemory = ()
    # The block's page, kept for blocks without a stable id, to re-match them by similarity.
    page: str = ""
    # Downloaded images: (URL, media file name), so an unchanged image is not fetched again.
    media: tuple[tuple[str, str], ...] = ()

    def to_html(self) -> str:
        record: dict[str, Any] = {
            "t": self.tags, "d": self.deck, "l": self.location, "s": self.suspended
        }
        if self.clozes:
            record["c"] = self.clozes
        if self.page:
            record["p"] = self.page
        if self.media:
            record["m"] = self.media
        data = orjson.dumps(record).decode()
        return (
            f'<span class="rb-state" hidden data-h="{html.escape(self.source_hash)}" '
            f'data-rb="{html.escape(data)}"></span>'
        )

    @staticmethod
    def from_field(source_field: str) -> NoteState | None:
        match = _STATE.search(source_field)
        if match is None:
            return None
        try:
            data = orjson.loads(html.unescape(match.group(2)))
            return NoteState(
                source_hash=html.unescape(match.group(1)),
                tags=tuple(str(t) for t in data.get("t", ())),
                deck=str(data.get("d", "")),
                location=str(data.get("l", "")),
                suspended=tuple(int(c) for c in data.get("s", ())),
                clozes=tuple((str(d), int(n)) for d, n in data.get("c", ())),
                page=str(data.get("p", "")),
                media=tuple((str(u), str(n)) for u, n in data.get("m", ())),
            )
        except (orjson.JSONDecodeError, ValueError, KeyError, TypeError):
            return None


def strip_state(source_field: str) -> str:
    return _STATE.sub("", source_field)

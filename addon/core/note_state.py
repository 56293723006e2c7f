"""What the bridge remembers about each note, kept in the note itself.

A hidden ``<span class="rb-state" …>`` at the end of the ``Source`` field holds the source hash
and the time the bridge last wrote the note (``data-h``, read by SQL when planning, so a no-op
run loads no fields) and the rest as JSON (``data-rb``): a digest of each field as the bridge
wrote it (so an edit made in Anki, on this device or another, is recognised), the tags and
deck the bridge set, the note's location, the cards it suspended, its cloze numbers, its
downloaded images and, for blocks without ids, their page. It syncs and
undoes with the note; if it is lost, the next run compares content instead and writes it back.

The span is written exactly as Anki's editor serialises it (``hidden=""``, attribute values
escaped only where the browser escapes them), so opening a note in the editor and closing it
leaves the note unmodified.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from .cards import ClozeMemory

# A JSON string, escapes included (linear: no nested quantifiers).
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
# Matches the span as written before it was made editor-stable too (bare ``hidden``).
_STATE = re.compile(
    r'<span class="rb-state" hidden(?:="")? data-h="([^"]*)" data-rb="([^"]*)"></span>'
)
# What precedes the hash in the span: SQL finds the hash by it. A span written before it was
# editor-stable has no hash by this mark, so its note is rewritten once.
STATE_HASH_MARK = 'hidden="" data-h="'
# ``data-h`` is the source hash, then "." and the time written (ten digits of epoch seconds).
WRITTEN_LENGTH = 11


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
    # When the bridge wrote the note (epoch seconds): a later modification time means the
    # note was edited since, here or on another device.
    written: int = 0
    # Each field's digest as the bridge wrote it (see field_digest).
    fields: tuple[tuple[str, str], ...] = ()
    # Anki edits the user chose to keep on a source that cannot be written: field -> digest
    # of the kept text. They are still never overwritten, but no longer reported.
    kept: tuple[tuple[str, str], ...] = ()

    def to_html(self) -> str:
        record: dict[str, Any] = {
            "t": self.tags, "d": self.deck, "l": self.location, "s": self.suspended
        }
        if self.fields:
            record["f"] = self.fields
        if self.kept:
            record["k"] = self.kept
        if self.clozes:
            record["c"] = self.clozes
        if self.page:
            record["p"] = self.page
        if self.media:
            record["m"] = self.media
        # Anki plays a "[sound:…]" (and typesets a "[$]") it finds anywhere in a card, even
        # in an attribute, and a page title or tag remembered here may hold one: inside JSON
        # strings "[" is written as its escape, which the editor leaves as it is.
        data = _JSON_STRING.sub(_escape_brackets, orjson.dumps(record).decode())
        stamp = f"{self.source_hash}.{self.written:010d}" if self.written else self.source_hash
        return (
            f'<span class="rb-state" hidden="" data-h="{_attribute(stamp)}" '
            f'data-rb="{_attribute(data)}"></span>'
        )

    def field_digests(self) -> dict[str, str]:
        return dict(self.fields)

    @staticmethod
    def from_field(source_field: str) -> NoteState | None:
        match = _STATE.search(source_field)
        if match is None:
            return None
        try:
            data = orjson.loads(html.unescape(match.group(2)))
            source_hash, written = split_stamp(html.unescape(match.group(1)))
            return NoteState(
                source_hash=source_hash,
                written=written,
                fields=tuple((str(n), str(d)) for n, d in data.get("f", ())),
                kept=tuple((str(n), str(d)) for n, d in data.get("k", ())),
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


def split_stamp(stamp: str) -> tuple[str, int]:
    """``data-h``'s value -> (source hash, time written or 0). SQL reads a fixed number of
    characters, which for a span without the time runs past the attribute's closing quote."""
    source_hash, dot, written = stamp.split('"', 1)[0].partition(".")
    return source_hash, int(written) if dot and written.isdigit() else 0


def field_digest(value: str) -> str:
    return hashlib.blake2b(value.encode(), digest_size=6).hexdigest()


def digests_of(fields: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The digests to remember for the fields the bridge writes (never SourceID, whose
    content is the key)."""
    return tuple((name, field_digest(value)) for name, value in fields.items()
                 if name != "SourceID")


def _escape_brackets(string: re.Match[str]) -> str:
    return string.group(0).replace("[", "\\u005b")


def _attribute(value: str) -> str:
    """An attribute value as the browser serialises it: only &, " and no-break space."""
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("\xa0", "&nbsp;")


def strip_state(source_field: str) -> str:
    return _STATE.sub("", source_field)

"""Roam Research EDN export -> Graph.

An EDN export is one datascript database, ``#datascript/DB {:schema … :datoms [[e a v tx] …]}``:
pages are entities with ``:node/title``, blocks have ``:block/string`` and ``:block/uid``, a
parent lists its children in ``:block/children`` and each child knows its place among its
siblings by ``:block/order``. Accepts a ``.edn`` file, a ``.zip`` holding one, or a folder (its
newest export).

Guarantees: the Graph is the one ``roam_json`` builds from the JSON export of the same graph
(source ``roam``, same uids, titles, strings, headings, child order; pages in entity order,
which is the order Roam creates them in). Blocks no page reaches (deleted or orphaned in the
database) are left out, as the JSON export leaves them out. Any EDN is read: strings with every
escape, characters, numbers, ``##NaN``, keywords, symbols, vectors, lists, maps, sets, tagged
literals (``#inst``, ``#uuid``, any other: read as the value they tag), comments and ``#_``
discards, nested to any depth. A datom is ``[e a v]``, ``[e a v tx]`` or ``[e a v tx added]``;
one of an attribute the reader does not use is passed over unread. Anything that is not a Roam
EDN export raises SourceError before a Graph exists, in time linear in the file's size (which
``limits`` bounds).

One reader: ``_Values`` (a regex tokenizer feeding a stack machine) reads every value, and the
datoms vector is taken a chunk (256 KiB) at a time. A chunk in the layout Roam writes
(``[e :attr value tx]`` separated by single spaces) is read in bulk by ``_bulk``; any other
chunk (pretty-printed, commented, a vector as a value) is halved until small, then read by
``_Values`` datom by datom. ``_bulk`` takes a chunk only when every datom in it reads as
``_Values`` would read it, so the Graph does not depend on which lane a datom took.
"""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Collection, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from itertools import compress, count, groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

from ..model import Block, Graph, Page, SourceError, gc_paused, synthetic_uid
from .exports import newest_roam_export, read_export_bytes
from .roam_json import fallback_uid

_NO_ORDER = 1 << 62  # children without :block/order go last, in datom order
_CHUNK = 1 << 18  # bytes of datoms read in bulk at once
_SMALL = 1 << 12  # a chunk this small that is not in Roam's layout is read datom by datom


def read(path: str | Path, graph_name: str = "") -> Graph:
    """Read a Roam EDN export. ``graph_name`` defaults to the export's ``:graph/name``, else
    the file's stem (detect.read_source always passes the checked name it chose)."""
    path = Path(path)
    if path.is_dir():
        path = newest_roam_export(path, ("edn",))
    elif not path.exists():
        raise SourceError(path, "no such file or folder")
    data, label = read_export_bytes(path, ".edn")
    data = data.removeprefix(b"\xef\xbb\xbf")  # a BOM, as some editors save it
    with gc_paused():
        datoms = _read_datoms(data, label)
        del data
        name = graph_name or datoms.graph_name() or path.stem or "roam"
        return _build_graph(datoms, name, label)


def graph_name_of(path: str | Path) -> str:
    """The export's ``:graph/name``, or "" when it has none or cannot be read.

    Looks for the one datom, without parsing the rest of the file.
    """
    path = Path(path)
    try:
        if path.is_dir():
            path = newest_roam_export(path, ("edn",))
        data, _ = read_export_bytes(path, ".edn")
    except SourceError:
        return ""
    at = data.find(b":graph/name")
    while at >= 0:
        match = _GRAPH_NAME_VALUE.match(data, at)
        if match is not None and _DATOM_HEAD.search(data, max(0, at - 32), at):
            try:
                return _unescape(match.group(1).decode("utf-8")).strip()
            except (UnicodeDecodeError, ValueError):
                return ""
        at = data.find(b":graph/name", at + 1)
    return ""


# `[e :graph/name "…"` found from the literal. A string cannot fake it: inside a string
# every '"' is escaped, so the unescaped '"' after ':graph/name ' is a real delimiter.
_GRAPH_NAME_VALUE = re.compile(rb':graph/name[\s,]+"([^"\\]*+(?:\\.[^"\\]*+)*+)"', re.S)
_DATOM_HEAD = re.compile(rb"\[\d+[\s,]+\Z")



# ---------------------------------------------------------------------------------------------
# Datoms: the attributes we read, keyed by entity id.


@dataclass
class _Datoms:
    uid: dict[int, str] = field(default_factory=dict)
    string: dict[int, str] = field(default_factory=dict)
    title: dict[int, str] = field(default_factory=dict)  # pages: entities with :node/title
    name: dict[int, str] = field(default_factory=dict)  # :graph/name
    children: list[tuple[int, int]] = field(default_factory=list)  # (parent, child)
    order: dict[int, int] = field(default_factory=dict)
    heading: dict[int, int] = field(default_factory=dict)

    def graph_name(self) -> str:
        if not self.name:
            return ""
        return self.name[min(self.name)].strip()

    def take(self, chunk: _Chunk) -> None:
        """Take in the datoms of a chunk read in bulk (a later value of an attribute wins)."""
        ids = list(map(int, chunk.entities))
        present = set(chunk.attrs)
        for attr, name in _STRING_FIELDS.items():
            if attr[::-1] not in present:
                continue
            chosen = list(map(attr[::-1].__eq__, chunk.attrs))
            getattr(self, name).update(zip(compress(ids, chosen), compress(chunk.texts, chosen),
                                           strict=True))
        for kind, (entities, values) in chunk.numbers.items():
            if kind == b"children":
                self.children.extend(zip(map(int, entities), map(int, values), strict=True))
            else:
                getattr(self, kind.decode()).update(zip(map(int, entities), map(int, values),
                                                        strict=True))

    def add(self, datom: Any, label: str) -> None:
        """Take in one datom as ``_Values`` read it. Only the datoms of the attributes read
        are checked further than being ``[e a v]`` or ``[e a v tx]`` (or with ``added``)."""
        if not isinstance(datom, list) or len(datom) not in (3, 4, 5):
            raise SourceError(label, f"not a Roam EDN export (a datom is not [e a v tx]: "
                                     f"{_show(datom)})")
        e, attr, value = datom[0], datom[1], datom[2]
        name = attr.encode() if isinstance(attr, Keyword) else b""
        if name not in _STRING_FIELDS and name not in _NUMBER_FIELDS:
            return
        if not _is_int(e) or e < 0:
            raise SourceError(label, f"not a Roam EDN export (bad datom {_show(datom)})")
        if name in _STRING_FIELDS:
            if isinstance(value, str) and not isinstance(value, (Keyword, Symbol)):
                getattr(self, _STRING_FIELDS[name])[e] = value
        elif name == b":block/children":
            if _is_int(value) and value >= 0:
                self.children.append((e, value))
        elif _is_int(value):
            getattr(self, _NUMBER_FIELDS[name])[e] = value


# Attribute -> the _Datoms field its values go to.
_STRING_FIELDS = {b":block/uid": "uid", b":block/string": "string", b":node/title": "title",
                  b":graph/name": "name"}
_NUMBER_FIELDS = {b":block/children": "children", b":block/order": "order",
                  b":block/heading": "heading"}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _show(value: Any) -> str:
    # reprlib stops a few levels down: repr() of a datom nested thousands deep would end in
    # RecursionError instead of this message.
    text = reprlib.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------------------------------
# The datoms vector, chunk by chunk: in bulk where Roam's layout holds, else datom by datom.


def _read_datoms(data: bytes, label: str) -> _Datoms:
    values = _Values(data, label)
    pos = values.datoms_start() + 1
    end = _datoms_end(data)
    datoms = _Datoms()
    size = _CHUNK
    while pos < end:
        cut = _next_cut(data, pos, size, end)
        part = _bulk(data[pos:cut], label) if cut > 0 else None
        if part is not None:
            datoms.take(part)
            pos = min(cut + 1, end)  # past the space before the next datom
            size = min(2 * size, _CHUNK)
        elif cut > 0 and size > _SMALL:
            size //= 2
        else:
            pos, closed = values.read_datoms(pos, max(cut, pos + size), datoms)
            if closed:
                break
    else:
        pos, _ = values.read_datoms(pos, len(data), datoms)
    values.finish(pos)
    return datoms


def _next_cut(data: bytes, pos: int, size: int, end: int) -> int:
    """Where a chunk of about ``size`` bytes from ``pos`` ends: just past a datom's ``]``
    (or at ``end``), or -1 if no datom ends near there."""
    if pos + 2 * size >= end:
        return end
    # A datom ends in its transaction id; text in a string ("[[a]] [[b]]") seldom has a
    # digit before "] [", and a cut inside a string only makes the chunk _Values's.
    at = _DATOM_END.search(data, pos + size - 2, pos + 2 * size)
    return at.start() + 2 if at is not None else -1


_DATOM_END = re.compile(rb"\d\] \[")


def _datoms_end(data: bytes) -> int:
    """Where the datoms vector closes, if it is the last value of the top-level map, else
    -1 (then ``_Values`` reads every datom)."""
    # The datoms vector is the map's last value: ']' and '}' at the end of the file.
    tail = data[-256:]
    end = len(tail.rstrip())
    if end < 2 or tail[end - 1:end] != b"}":
        return -1
    inner = len(tail[:end - 1].rstrip(b" \t\r\n,"))
    if inner == 0 or tail[inner - 1:inner] != b"]":
        return -1
    return len(data) - len(tail) + inner - 1


# ---------------------------------------------------------------------------------------------
# Bulk: a chunk of datoms in Roam's layout, read whole by splits, counts and regexes.
#
# 1. Set the strings aside: after the escaped '\\' and '"' are replaced, a split on '"'
#    leaves the strings at odd indexes (inside an EDN string every '"' is escaped).
# 2. Hide each map, list or set value (with all that nests in it) behind one byte.
# 3. Prove that every '[' left opens a datom of four values: no other bracket, separator,
#    comment, tag or character literal is left.
# 4. Read each string's datom head (``[e :attr``) and each number attribute's datoms with
#    regexes that start at the attribute or the string; the head comes before the value, so
#    they run on the chunk reversed. Counts of strings and attributes prove that they missed
#    none (a datom they cannot read makes the chunk ``_Values``'s).

_MARK = b"\x02"  # stands for a string once strings are set aside
_HIDDEN = b"\x04"  # stands for a map, set or list value
# Entity ids and numbers of at most _DIGITS digits: a longer one is no id or order Roam
# writes (and past 4,300 digits int() refuses it); _Values reads it as a float.
_DIGITS = 18
# In the reversed chunk: a string's datom head, '\x02 :attr e[' reversed.
_STRING_HEAD = re.compile(rb"\x02 ([^ \[\]]*: \d{1,18})\[")
_NUMBER_VALUES = {kind: re.compile(rb" :block/" + kind + rb" (" + sign + rb"\d{1,18}) ")
                  for kind, sign in ((b"children", b""), (b"order", b"-?"), (b"heading", b"-?"))}
_NUMBER_HEADS = {kind: re.compile(rb" " + kind[::-1] + rb"/kcolb: (\d{1,18})\[")
                 for kind in _NUMBER_VALUES}
# The bytes Roam's layout is made of ('[', ']', ' ') and those that break it: other
# separators, comments, tags, character literals. A map from every other byte to nothing.
_ALL_BUT_SHAPE = bytes(range(256)).translate(None, b"[] \t\n\r\f\v,;#\\\x00\x01")
_NEEDS_UNESCAPE = re.compile("[\\\\\x00\x01]")
_BRACKETS = re.compile(rb"[\[\]{}()]")
_OPENERS = re.compile(rb"#?[{(]")


@dataclass
class _Aside:
    """A chunk with its strings set aside."""

    flat: bytes  # the chunk, each string replaced by _MARK
    strings: list[bytes]  # the strings' bodies, escapes as in the file
    escaped: bool  # whether any body holds an escape
    hidden: list[tuple[int, int]] = field(default_factory=list)  # see _hide_collections


@dataclass
class _Chunk:
    """What a chunk's datoms say, in datom order."""

    entities: list[bytes]  # of the strings, one for each of ``texts``
    attrs: list[bytes]  # of the strings, reversed (b"diu/kcolb:")
    texts: list[str]
    numbers: dict[bytes, tuple[list[bytes], list[bytes]]]  # kind -> (entities, values)


def _bulk(chunk: bytes, label: str) -> _Chunk | None:
    """The datoms of ``chunk`` (whole datoms from the vector), or None if it is not in Roam's
    one-datom-per-``[e a v tx]`` layout."""
    aside = _set_strings_aside(chunk)
    if aside is None or not _hide_collections(aside) or not _one_datom_per_bracket(aside.flat):
        return None
    backwards = aside.flat[::-1]
    heads = _string_heads(aside, backwards)
    numbers = _number_datoms(aside.flat, backwards)
    if heads is None or numbers is None:
        return None
    texts = _decode_strings(aside, label)
    return _Chunk(heads[0], heads[1], texts, numbers)


def _set_strings_aside(chunk: bytes) -> _Aside | None:
    if _MARK in chunk or _HIDDEN in chunk:
        return None
    escaped = b"\\" in chunk
    if escaped:
        if b"\x00" in chunk or b"\x01" in chunk:
            return None
        # Escaped backslashes first, so that in '\\"' the quote still closes the string.
        chunk = chunk.replace(b"\\\\", b"\x00").replace(b'\\"', b"\x01")
    pieces = chunk.split(b'"')
    if len(pieces) % 2 == 0:
        return None  # a string cut in two (or unclosed: _Values says where)
    return _Aside(_MARK.join(pieces[0::2]), pieces[1::2], escaped)


def _hide_collections(aside: _Aside) -> bool:
    """Replace every map, set or list in ``aside.flat`` by one _HIDDEN byte, noting the range
    of string indexes each held. False if one is not closed in the chunk. A vector holding a
    map is left a vector, which the shape check refuses."""
    flat = aside.flat
    if b"{" not in flat and b"(" not in flat:
        return True
    kept: list[bytes] = []
    pos = strings_before = 0
    while (opener := _OPENERS.search(flat, pos)) is not None:
        begin = opener.start()
        finish = _matching_close(flat, opener.end() - 1)
        if finish < 0:
            return False
        strings_before += flat.count(_MARK, pos, begin)
        inside = flat.count(_MARK, begin, finish)
        if inside:
            aside.hidden.append((strings_before, strings_before + inside))
        strings_before += inside
        kept.append(flat[pos:begin])
        kept.append(_HIDDEN)
        pos = finish
    kept.append(flat[pos:])
    aside.flat = b"".join(kept)
    return True


def _matching_close(flat: bytes, begin: int) -> int:
    """One past the bracket that closes the collection opening at ``begin``, or -1."""
    depth = 0
    for match in _BRACKETS.finditer(flat, begin):
        depth += 1 if match.group() in b"[{(" else -1
        if depth == 0:
            return match.end()
    return -1


def _one_datom_per_bracket(flat: bytes) -> bool:
    """True if ``flat`` is ``[a b c d] [a b c d] …`` and nothing else: no value holds a
    space, a bracket or another separator, so each '[' opens a datom of at most four values.

    An empty value (``[ 1 :a 2]``) passes: the heads and counts of the attributes read refuse
    every datom of ours it could hide, and other datoms are not read."""
    shape = flat.translate(None, _ALL_BUT_SHAPE)
    return shape == (b"[   ] " * flat.count(b"["))[:-1]


def _string_heads(aside: _Aside, backwards: bytes) -> tuple[list[bytes], list[bytes]] | None:
    """For each string left in ``aside.flat``, the entity and the (reversed) attribute of its
    datom ``[e :attr "…" tx]``, in order; None if some string is not such a value."""
    found = _STRING_HEAD.findall(backwards)
    if len(found) != len(aside.strings) - sum(last - first for first, last in aside.hidden):
        return None
    fields = b" ".join(found).split(b" ")  # attr, entity, attr, entity, … (reversed)
    entities = _forwards(fields[1::2])
    attrs = fields[0::2]
    attrs.reverse()
    return entities, attrs


def _number_datoms(flat: bytes, backwards: bytes
                   ) -> dict[bytes, tuple[list[bytes], list[bytes]]] | None:
    """(entities, values) of each number attribute's datoms, in order; None if a datom of one
    is not ``[e :block/… n tx]`` with ``n`` an integer of at most _DIGITS digits."""
    numbers = {}
    for kind, values_of in _NUMBER_VALUES.items():
        mentions = flat.count(b" :block/" + kind + b" ")
        if not mentions:
            continue
        values = values_of.findall(flat)
        entities = _forwards(_NUMBER_HEADS[kind].findall(backwards))
        if not len(values) == len(entities) == mentions:
            return None
        numbers[kind] = (entities, values)
    return numbers


def _forwards(found: list[bytes]) -> list[bytes]:
    """Ids found in the reversed chunk (last first, digits reversed), as written and in
    order."""
    return b" ".join(found)[::-1].split(b" ") if found else []


def _decode_strings(aside: _Aside, label: str) -> list[str]:
    """The text of every string left in ``aside.flat`` (those in hidden values are dropped)."""
    raw = aside.strings
    for first, last in reversed(aside.hidden):
        del raw[first:last]
    try:
        texts = _MARK.join(raw).decode("utf-8").split("\x02")
    except UnicodeDecodeError as err:
        raise SourceError(label, f"not UTF-8 text ({err.reason})") from None
    if aside.escaped:
        for index in compress(count(), map(_NEEDS_UNESCAPE.search, texts)):
            text = texts[index].replace("\x00", "\\\\").replace("\x01", '\\"')
            try:
                texts[index] = _unescape(text)
            except ValueError as err:
                raise SourceError(label, f"not a Roam EDN export: bad string ({err})") from None
    return texts


_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|[0-7]{1,3}|.)", re.S)
_SURROGATE = re.compile("[\ud800-\udfff]")
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "\\": "\\"}


def _unescape(body: str) -> str:
    """The text of an EDN string body: ``\\n \\t \\r \\b \\f \\" \\\\ \\uXXXX`` and octal."""

    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[code]
        if code[0] == "u" and len(code) == 5:
            return chr(int(code[1:], 16))
        if code.isdigit() and int(code, 8) <= 0o377:
            return chr(int(code, 8))
        raise ValueError(f"unsupported escape \\{code}")

    if "\\" not in body:
        return body
    if body.endswith("\\") and (len(body) - len(body.rstrip("\\"))) % 2:
        raise ValueError("string ends inside an escape")
    text = _ESCAPE.sub(one, body)
    if "\\u" in body and _SURROGATE.search(text):
        # A character beyond the BMP escaped as a UTF-16 pair ("\\ud83d\\ude00", as JavaScript
        # writes it) is one character; a lone half cannot be encoded anywhere, so it is U+FFFD.
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


# ---------------------------------------------------------------------------------------------
# Values: every EDN form, for the export's head and every datom not in Roam's layout.


class Keyword(str):
    """An EDN keyword, kept with its colon (``:block/uid``)."""


class Symbol(str):
    """An EDN symbol."""


_TOKEN = re.compile(
    rb"""
      (?P<ws>(?:[\s,]+|;[^\n]*)+)
    | (?P<string>"[^"\\]*+(?:\\.[^"\\]*+)*+")
    | (?P<open>\#\{|[\[{(])
    | (?P<close>[\]})])
    | (?P<discard>\#_)
    | (?P<special>\#\#[^\s,\[\]{}()"\\;]+)
    | (?P<tag>\#[^\s,\[\]{}()"\\;\#][^\s,\[\]{}()"\\;]*)
    | (?P<char>\\(?:newline|space|tab|return|backspace|formfeed|u[0-9a-fA-F]{4}|o[0-7]{1,3}
                 |[^\s\x80-\xff]|[\xc0-\xff][\x80-\xbf]*))
    | (?P<atom>[^\s,\[\]{}()"\\;\#][^\s,\[\]{}()"\\;]*)
    """,
    re.X | re.S,
)
_CLOSERS = {b"[": b"]", b"{": b"}", b"(": b")", b"#{": b"}"}
_SPECIAL = {b"##NaN": math.nan, b"##Inf": math.inf, b"##-Inf": -math.inf}
_CHARS = {"newline": "\n", "space": " ", "tab": "\t", "return": "\r", "backspace": "\b",
          "formfeed": "\f"}
_INT = re.compile(rb"[+-]?\d+N?")
_FLOAT = re.compile(rb"[+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?M?")
_TAG = b"#"  # a stack frame: a tag waiting for the value it tags
_DISCARD = b"#_"  # a stack frame: a #_ waiting for the value it drops
_CLOSED = object()  # what value() returns on meeting the close of an enclosing collection


@dataclass
class _Frame:
    opener: bytes
    begin: int
    items: list[Any] = field(default_factory=list)


class _Values:
    """Reads EDN values from ``data``, iteratively (nesting cannot exhaust Python's stack).

    A tag it knows nothing about (``#inst``, ``#uuid``, ``#my/tag``) is read as the value it
    tags; a set reads as a list, a map with a collection as a key as a map keyed by tuples.
    """

    def __init__(self, data: bytes, label: str) -> None:
        self.data = data
        self.label = label

    def fail(self, pos: int, what: str) -> SourceError:
        line = self.data.count(b"\n", 0, pos) + 1
        return SourceError(self.label, f"not a Roam EDN export: {what} (line {line})")

    def datoms_start(self) -> int:
        """Read the head ``#datascript/DB {:schema …`` up to the ``:datoms`` value; return
        the offset of its ``[``."""
        pos = self._skip(0)
        token = _TOKEN.match(self.data, pos)
        if token is not None and token.lastgroup == "tag":
            pos = self._skip(token.end())
            token = _TOKEN.match(self.data, pos)
        if token is None or token.group() != b"{":
            if pos >= len(self.data):
                raise SourceError(self.label, "the file is empty")
            raise SourceError(self.label, "not a Roam EDN export (expected "
                                          "#datascript/DB {:schema … :datoms […]})")
        pos = token.end()
        while True:
            key, pos = self.value(pos)
            if key is _CLOSED:
                raise SourceError(self.label, "not a Roam EDN export (no :datoms)")
            pos = self._skip_discarded(pos)
            if key == ":datoms":
                if self.data[pos:pos + 1] != b"[":
                    raise self.fail(pos, ":datoms is not a vector")
                return pos
            value, pos = self.value(pos)
            if value is _CLOSED:
                raise self.fail(pos - 1, "a map has a key without a value")

    def read_datoms(self, pos: int, until: int, datoms: _Datoms) -> tuple[int, bool]:
        """Read datoms of the vector from ``pos`` into ``datoms`` until past ``until`` (and
        past the separators after it) or the vector's close; return where reading stopped
        and whether the vector closed there."""
        while pos < until:
            datom, pos = self.value(pos)
            if datom is _CLOSED:
                if self.data[pos - 1:pos] != b"]":
                    raise self.fail(pos - 1, f"'[' closed by {self.data[pos - 1:pos].decode()!r}")
                return pos, True
            datoms.add(datom, self.label)
            pos = self._skip_discarded(pos)
        return pos, False

    def finish(self, pos: int) -> None:
        """Read the rest of the top-level map, from just past the datoms vector, to the end
        of the file."""
        while True:
            key, pos = self.value(pos)
            if key is _CLOSED:
                break
            value, pos = self.value(pos)
            if value is _CLOSED:
                raise self.fail(pos - 1, "a map has a key without a value")
        if self.data[pos - 1:pos] != b"}":
            raise self.fail(pos - 1, "the map of the export is not closed by '}'")
        pos = self._skip(pos)
        if pos < len(self.data):
            raise self.fail(pos, "more after the export's map")

    def _skip(self, pos: int) -> int:
        token = _TOKEN.match(self.data, pos)
        if token is not None and token.lastgroup == "ws":
            return token.end()
        return pos

    def _skip_discarded(self, pos: int) -> int:
        """Past separators and any ``#_`` with the value it drops."""
        while True:
            pos = self._skip(pos)
            if not self.data.startswith(b"#_", pos):
                return pos
            dropped, pos = self.value(pos + 2)
            if dropped is _CLOSED:
                raise self.fail(pos - 1, "#_ without a value")

    def value(self, pos: int) -> tuple[Any, int]:
        """The value starting at ``pos`` (after separators) and the offset after it, or
        ``_CLOSED`` and the offset after a closing bracket that closes no value begun here."""
        data = self.data
        stack: list[_Frame] = []
        while True:
            token = _TOKEN.match(data, pos)
            if token is None:
                if pos >= len(data):
                    raise self.fail(pos, "the file ends early (truncated?)")
                raise self.fail(pos, f"unexpected {data[pos:pos + 12]!r}")
            kind = token.lastgroup
            pos = token.end()
            if kind == "ws":
                continue
            if kind == "tag":
                stack.append(_Frame(_TAG, token.start()))
                continue
            if kind == "discard":
                stack.append(_Frame(_DISCARD, token.start()))
                continue
            if kind == "open":
                stack.append(_Frame(token.group(), token.start()))
                continue
            if kind == "close":
                if not stack:
                    return _CLOSED, pos
                item = self._close(stack.pop(), token)
            else:
                item = self._scalar(kind, token)
            # The value is done: it is what a tag tags, what a #_ drops, or a collection's.
            while stack and stack[-1].opener is _TAG:
                stack.pop()
            if stack and stack[-1].opener is _DISCARD:
                stack.pop()
                continue
            if not stack:
                return item, pos
            stack[-1].items.append(item)

    def _close(self, frame: _Frame, token: re.Match[bytes]) -> Any:
        closer = token.group()
        if frame.opener in (_TAG, _DISCARD):
            what = "a tag" if frame.opener is _TAG else "#_"
            raise self.fail(frame.begin, f"{what} without a value before {closer.decode()!r}")
        if _CLOSERS[frame.opener] != closer:
            raise self.fail(token.start(), f"{frame.opener.decode()!r} closed by "
                                           f"{closer.decode()!r}")
        items = frame.items
        if frame.opener != b"{":
            return items
        if len(items) % 2:
            raise self.fail(frame.begin, "a map has a key without a value")
        try:
            return {_hashable(items[i]): items[i + 1] for i in range(0, len(items), 2)}
        except RecursionError:  # a key nested thousands deep: no export has one
            raise self.fail(frame.begin, "a map key is nested too deeply") from None

    def _scalar(self, kind: str | None, token: re.Match[bytes]) -> Any:
        text = token.group()
        if kind == "string":
            try:
                return _unescape(text[1:-1].decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as err:
                raise self.fail(token.start(), f"bad string ({err})") from None
        if kind == "special":
            if text not in _SPECIAL:
                raise self.fail(token.start(), f"unknown value {text.decode()!r}")
            return _SPECIAL[text]
        try:
            return self._char(text[1:].decode("utf-8")) if kind == "char" else self._atom(text)
        except UnicodeDecodeError:
            raise self.fail(token.start(), "not UTF-8 text") from None

    @staticmethod
    def _char(name: str) -> str:
        if name in _CHARS:
            return _CHARS[name]
        if len(name) == 5 and name[0] == "u":
            return chr(int(name[1:], 16))
        if len(name) > 1 and name[0] == "o":
            return chr(int(name[1:], 8))
        return name

    def _atom(self, text: bytes) -> Any:
        if text == b"nil":
            return None
        if text in (b"true", b"false"):
            return text == b"true"
        if text[:1] == b":":
            return Keyword(text.decode("utf-8"))
        if _INT.fullmatch(text):
            digits = text.rstrip(b"N")
            # No datom of ours holds such a number; as a float it is read in bounded time
            # and never taken for an entity id or an order.
            return int(digits) if len(digits.lstrip(b"+-")) <= _DIGITS else float(digits)
        if _FLOAT.fullmatch(text):
            return float(text.rstrip(b"M"))
        if text[:1].isdigit() or (text[:1] in b"+-" and text[1:2].isdigit()):
            raise SourceError(self.label, f"not a Roam EDN export: bad number "
                                          f"{text[:40].decode('utf-8', 'replace')!r}")
        return Symbol(text.decode("utf-8"))


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _hashable(v)) for k, v in value.items())
    return value


# ---------------------------------------------------------------------------------------------
# Graph: the same walk and the same rules as roam_json.build_graph.


def _build_graph(datoms: _Datoms, graph_name: str, label: str) -> Graph:
    try:
        graph = Graph(source="roam", name=graph_name)
    except ValueError as err:
        raise SourceError(label, str(err)) from None
    titles = datoms.title
    if not titles:
        raise SourceError(label, "the export holds no pages")
    kids = _children_by_parent(datoms, titles.keys())
    for entity in sorted(titles):
        page = graph.add_page(Page(title=titles[entity], uid=datoms.uid.get(entity, "")))
        _add_blocks(graph, page, datoms, kids, entity)
    return graph


def _add_blocks(graph: Graph, page: Page, datoms: _Datoms, kids: dict[int, list[int]],
                entity: int) -> None:
    """The page's blocks, in an iterative preorder walk as in roam_json: deep nesting,
    document order."""
    blocks = graph.blocks
    uid_of = datoms.uid.get
    string_of = datoms.string.get
    heading_of = datoms.heading.get
    stack: list[tuple[Block | None, list[Block], Iterable[int]]] = [
        (None, page.children, iter(kids.get(entity, ())))
    ]
    while stack:
        owner, into, pending = stack[-1]
        for child in pending:
            string = string_of(child, "")
            uid = uid_of(child) or synthetic_uid(page.title, string, blocks)
            if uid in blocks or not uid.isprintable():
                uid = fallback_uid(page.title, string, blocks)
            block = Block(uid, string, page, owner, [], heading_of(child, 0))
            into.append(block)
            blocks[uid] = block
            grandchildren = kids.get(child)
            if grandchildren:
                stack.append((block, block.children, iter(grandchildren)))
                break
        else:
            stack.pop()


def _children_by_parent(datoms: _Datoms, pages: Collection[int]) -> dict[int, list[int]]:
    """Each parent's children, sorted by :block/order. A child listed under two parents
    stays with the last; a page is never anyone's child."""
    pairs = datoms.children
    kids: dict[int, list[int]] = {}
    listed: AbstractSet[int] = set(map(itemgetter(1), pairs))
    if len(listed) == len(pairs) and listed.isdisjoint(pages):
        # Every child listed once, as Roam writes them: a parent's children datoms together.
        for parent, run in groupby(pairs, itemgetter(0)):
            siblings = kids.get(parent)
            if siblings is None:
                kids[parent] = list(map(itemgetter(1), run))
            else:
                siblings.extend(map(itemgetter(1), run))
    else:
        parent_of = dict(map(itemgetter(1, 0), pairs))
        for page in listed & set(pages):
            del parent_of[page]
        listed = parent_of.keys()
        for child, parent in parent_of.items():
            kids.setdefault(parent, []).append(child)
    order = datoms.order
    for child in listed - order.keys():
        order[child] = _NO_ORDER
    key = order.__getitem__
    for siblings in kids.values():
        if len(siblings) > 1:
            siblings.sort(key=key)
    return kids

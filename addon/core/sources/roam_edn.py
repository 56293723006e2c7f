"""Roam Research EDN export -> Graph.

An EDN export is one datascript database, ``#datascript/DB {:schema … :datoms [[e a v tx] …]}``:
pages are entities with ``:node/title``, blocks have ``:block/string`` and ``:block/uid``, a
parent lists its children in ``:block/children`` and each child knows its place among its
siblings by ``:block/order``. Accepts a ``.edn`` file, a ``.zip`` holding one, or a folder (its
newest export).

Guarantees: the Graph is the one ``roam_json`` builds from the JSON export of the same graph
(source ``roam``, same uids, titles, strings, headings, child order; pages in entity order,
which is the order Roam creates them in). Blocks no page reaches (deleted or orphaned in the
database) are left out, as the JSON export leaves them out. Anything that is not a Roam EDN
export raises SourceError before a Graph exists.

Speed: an export holds about nine datoms per block, and tokenising them one by one in Python
is several times slower than the JSON reader. Roam writes the datoms in one fixed shape,
``[e :attr value tx]`` separated by single spaces, so the fast path (``_fast_datoms``) lets C
code do the work: one split on ``"`` sets every string aside (inside an EDN string a ``"`` is
always escaped), one translate proves that every remaining ``[`` opens a datom of four
values, each string's datom head (``e :attr``) is split out with C-level joins and splits and
checked to be a value's head, a regex finds the number attributes we read, and a count of
each such attribute proves the regex missed none. The results are maps keyed by entity, so
the tree walk looks each block up without building keys. Input that is valid EDN but not in
that shape (pretty-printed, comments, vectors as values, …) goes through the complete reader
(``_EdnParser``), which is slower but reads any EDN.
"""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from itertools import compress, count, groupby, repeat
from operator import itemgetter
from pathlib import Path
from typing import Any

from ..model import Block, Graph, Page, SourceError, gc_paused, synthetic_uid
from .exports import newest_roam_export, read_export_bytes
from .roam_json import fallback_uid

_NO_ORDER = 1 << 62  # children without :block/order go last, in datom order


def read(path: str | Path, graph_name: str = "") -> Graph:
    """Read a Roam EDN export. ``graph_name`` defaults to the export's ``:graph/name``, else
    the name the file or folder gives (as for the other readers)."""
    path = Path(path)
    if path.is_dir():
        path = newest_roam_export(path, ("edn",))
    elif not path.exists():
        raise SourceError(path, "no such file or folder")
    data, label = read_export_bytes(path, ".edn")
    data = data.removeprefix(b"\xef\xbb\xbf")  # a BOM, as some editors save it
    with gc_paused():
        datoms = _read_datoms(data, label)
        name = graph_name or datoms.graph_name() or _default_name(path)
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
_GRAPH_NAME_VALUE = re.compile(rb':graph/name[\s,]+"((?:[^"\\]|\\.)*)"', re.S)
_DATOM_HEAD = re.compile(rb"\[\d+[\s,]+\Z")


def _default_name(path: Path) -> str:
    from .detect import default_graph_name  # detect picks readers, so import it late

    return default_graph_name(path)


# ---------------------------------------------------------------------------------------------
# Datoms: the attributes we read, keyed by entity id (decimal bytes as written, e.g. b"42").


@dataclass
class _Datoms:
    uid: dict[bytes, str] = field(default_factory=dict)
    string: dict[bytes, str] = field(default_factory=dict)
    title: dict[bytes, str] = field(default_factory=dict)  # pages: entities with :node/title
    name: dict[bytes, str] = field(default_factory=dict)  # :graph/name
    children: list[tuple[bytes, bytes]] = field(default_factory=list)  # (parent, child)
    order: dict[bytes, int] = field(default_factory=dict)
    heading: dict[bytes, int] = field(default_factory=dict)

    def graph_name(self) -> str:
        if not self.name:
            return ""
        return self.name[min(self.name, key=int)].strip()


# Attribute -> the _Datoms map its string values go to.
_STRING_FIELDS = {b":block/uid": "uid", b":block/string": "string", b":node/title": "title",
                  b":graph/name": "name"}
_NUMBER_FIELDS = {b":block/children": "children", b":block/order": "order",
                  b":block/heading": "heading"}


def _read_datoms(data: bytes, label: str) -> _Datoms:
    parser = _EdnParser(data, label)
    start = parser.datoms_start()
    fast = _fast_datoms(data, start, label)
    if fast is not None:
        return fast
    return _datoms_from_values(parser.datoms_value(start), label)


def _datoms_from_values(values: Any, label: str) -> _Datoms:
    if not isinstance(values, list):
        raise SourceError(label, "not a Roam EDN export (:datoms is not a vector)")
    datoms = _Datoms()
    for datom in values:
        if not isinstance(datom, list) or len(datom) not in (3, 4, 5):
            raise SourceError(label, f"not a Roam EDN export (a datom is not [e a v tx]: "
                                     f"{_show(datom)})")
        e, attr, value = datom[0], datom[1], datom[2]
        if not isinstance(e, int) or isinstance(e, bool) or not isinstance(attr, Keyword):
            raise SourceError(label, f"not a Roam EDN export (bad datom {_show(datom)})")
        key = str(e).encode()
        name = attr.encode()
        if name in _STRING_FIELDS:
            if isinstance(value, str) and not isinstance(value, (Keyword, Symbol)):
                getattr(datoms, _STRING_FIELDS[name])[key] = value
        elif name in _NUMBER_FIELDS and isinstance(value, int) and not isinstance(value, bool):
            if name == b":block/children":
                datoms.children.append((key, str(value).encode()))
            else:
                getattr(datoms, _NUMBER_FIELDS[name])[key] = value
    return datoms


def _show(value: Any) -> str:
    # reprlib stops a few levels down: repr() of a datom nested thousands deep (the parser
    # itself is iterative) would end in RecursionError instead of this message.
    text = reprlib.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------------------------------
# Fast path: Roam's own layout, read with C-level splits, counts and one regex.

# Numbers of at most _DIGITS digits: a longer one is no entity id or order Roam writes (and
# past 4,300 digits int() refuses it); it fails the counts below, and the complete reader
# reads it as a float.
_DIGITS = 18
_NUMBER_DATOM = re.compile(rb"\[(\d{1,18}) :block/(children|order|heading) (-?\d{1,18}) ")
# The bytes Roam's layout is made of ('[', ']', ' ') and those that break it: other
# separators, comments, character literals. A map from every other byte to nothing.
_ALL_BUT_SHAPE = bytes(range(256)).translate(None, b"[] \t\n\r\f\v,;\\\x00\x01")
_NEEDS_UNESCAPE = re.compile("[\\\\\x00\x01]")
# A tag and the space after it ('#inst ', '#my/tag '), but not the '#NaN' inside '##NaN'.
_TAG_BEFORE_VALUE = re.compile(rb"#(?<!##)[^\s,\[\]{}()\"\x02#][^\s,\[\]{}()\"\x02]* ")
_BRACKETS = re.compile(rb"[\[\]{}()]")
_MARK = b"\x02"  # stands for a string once strings are set aside
_HIDDEN = b"\x04"  # stands for a map, set or list value that was cut out
_HIDDEN_HEAD = b"0 - "  # the head given to strings inside a cut-out value: no attribute


def _fast_datoms(data: bytes, start: int, label: str) -> _Datoms | None:
    """The datoms of the vector opening at ``data[start]``, or None if the export is not in
    Roam's one-datom-per-``[e a v tx]`` layout (the complete reader takes over then)."""
    end = _datoms_end(data)
    if end <= start:
        return None
    region = data[start + 1:end]
    if _MARK in region:
        return None
    escaped = b"\\" in region
    if escaped:
        if b"\x00" in region or b"\x01" in region:
            return None
        # Escaped backslashes first, so that in '\\"' the quote still closes the string.
        region = region.replace(b"\\\\", b"\x00").replace(b'\\"', b"\x01")
    pieces = region.split(b'"')
    del region
    if len(pieces) % 2 == 0:
        return None  # an unclosed string: let the complete reader say where
    outside = pieces[0::2]
    strings = pieces[1::2]
    del pieces
    flat = _MARK.join(outside)
    hidden: list[tuple[int, int]] = []  # string indexes [first, last) inside cut-out values
    tagged = b"#" in flat
    if tagged:
        if b"#_" in flat:
            return None  # a discard: not Roam's layout
        flat = _TAG_BEFORE_VALUE.sub(b"#", flat)  # '#inst "…"' -> '#"…"': one value
    if b"{" in flat or b"(" in flat:
        if _HIDDEN in flat:
            return None
        cut = _cut_collections(flat)
        if cut is None:
            return None
        flat, hidden = cut
    if not _one_datom_per_bracket(flat):
        return None
    # Every '[' now opens a datom of exactly four values, so the regex and the heads below
    # meet real datoms only.
    datoms = _Datoms()
    if strings:
        heads = _string_heads(outside, hidden, tagged)
        if heads is None:
            return None
        entities, attrs = heads
        texts = _decode_strings(strings, escaped, label)
        del strings
        for attr, name in _STRING_FIELDS.items():
            # C-level filters: a dict per attribute, no Python work per datom.
            chosen = list(map(attr.__eq__, attrs))
            setattr(datoms, name, dict(zip(compress(entities, chosen), compress(texts, chosen),
                                           strict=True)))
    found = _NUMBER_DATOM.findall(flat)
    kinds = list(map(itemgetter(1), found))
    for kind, name in ((b"children", "children"), (b"order", "order"), (b"heading", "heading")):
        rows = list(compress(found, map(kind.__eq__, kinds)))
        # Every mention of the attribute must be a datom the regex read: a value it could
        # not read, or an odd space, leaves one over (then the complete reader decides).
        if len(rows) != flat.count(b" :block/" + kind + b" "):
            return None
        if rows:
            if name == "children":
                datoms.children = list(map(itemgetter(0, 2), rows))
            else:
                setattr(datoms, name, dict(zip(map(itemgetter(0), rows),
                                               map(int, map(itemgetter(2), rows)), strict=True)))
    return datoms


def _string_heads(outside: list[bytes], hidden: list[tuple[int, int]], tagged: bool
                  ) -> tuple[list[bytes], list[bytes]] | None:
    """For each string, the entity and attribute of its datom (``[e a "…" tx]``), or None
    if some string is not a datom's value (then the layout is not Roam's)."""
    # The head of a string's datom is what follows the last '[' before the string.
    tails = list(map(itemgetter(2), map(bytes.rpartition, outside[:-1], repeat(b"["))))
    for first, last in hidden:
        tails[first:last] = [_HIDDEN_HEAD] * (last - first)
    # A value's head is "e a " (two spaces); joined by one more space, every head is exactly
    # three fields: e, a and "". Anything else shifts the fields and fails the checks.
    joined = b" ".join(tails)
    if tagged:
        joined = _TAG_BEFORE_VALUE.sub(b"", joined)  # '#inst "…"' is the string's value
    fields = joined.split(b" ")
    entities = fields[0::3]
    attrs = fields[1::3]
    if (len(fields) != 3 * len(tails) or any(fields[2::3]) or not all(entities)
            or not all(attrs) or not b"".join(entities).isdigit()
            or max(map(len, entities), default=0) > _DIGITS):
        return None
    return entities, attrs


def _one_datom_per_bracket(flat: bytes) -> bool:
    """True if ``flat`` is ``[a b c d] [a b c d] …`` and nothing else: no value holds a
    space, a bracket or another separator, so each '[' opens a datom of at most four values.

    Checking that no value is empty (``[ 1 :a 2]``) would take three more passes; the
    callers' counts catch the datoms such a value could hide."""
    if not flat.strip():
        return True
    shape = flat.translate(None, _ALL_BUT_SHAPE)
    count = flat.count(b"[")
    return shape == (b"[   ] " * count)[:-1]


def _decode_strings(raw: list[bytes], escaped: bool, label: str) -> list[str]:
    try:
        texts = _MARK.join(raw).decode("utf-8").split("\x02")
    except UnicodeDecodeError as err:
        raise SourceError(label, f"not UTF-8 text ({err.reason} at byte {err.start})") from None
    if escaped:
        for index in compress(count(), map(_NEEDS_UNESCAPE.search, texts)):
            text = texts[index].replace("\x00", "\\\\").replace("\x01", '\\"')
            try:
                texts[index] = _unescape(text)
            except ValueError as err:
                raise SourceError(label, f"not a Roam EDN export: bad string ({err})") from None
    return texts


def _datoms_end(data: bytes) -> int:
    """Where the datoms vector closes, if it is the last value of the top-level map."""
    # Look only at the file's tail: rstrip() would copy the whole export twice.
    tail = data[-256:]
    end = len(tail.rstrip())
    if end < 2 or tail[end - 1:end] != b"}":
        return -1
    inner = len(tail[:end - 1].rstrip(b" \t\r\n,"))
    if inner == 0 or tail[inner - 1:inner] != b"]":
        return -1
    return len(data) - len(tail) + inner - 1


def _cut_collections(flat: bytes) -> tuple[bytes, list[tuple[int, int]]] | None:
    """Replace every map, set or list (and all that nests in it) by one placeholder byte.

    Returns the new text and, for each cut, the range of string indexes it held. A vector
    that holds a map is left a vector, which the caller's counts then refuse.
    """
    kept: list[bytes] = []
    hidden: list[tuple[int, int]] = []
    pos = strings_before = 0
    while True:
        begin = min((i for i in (flat.find(b"{", pos), flat.find(b"(", pos)) if i >= 0),
                    default=-1)
        if begin < 0:
            break
        finish = _matching_close(flat, begin)
        if finish < 0:
            return None
        strings_before += flat.count(_MARK, pos, begin)
        inside = flat.count(_MARK, begin, finish)
        if inside:
            hidden.append((strings_before, strings_before + inside))
        strings_before += inside
        kept.append(flat[pos:begin])
        kept.append(_HIDDEN)
        pos = finish
    kept.append(flat[pos:])
    return b"".join(kept), hidden


def _matching_close(flat: bytes, begin: int) -> int:
    """One past the bracket that closes the collection opening at ``begin``."""
    depth = 0
    for match in _BRACKETS.finditer(flat, begin):
        depth += 1 if match.group() in b"[{(" else -1
        if depth == 0:
            return match.end()
    return -1


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

    if body.endswith("\\") and not body.endswith("\\\\"):
        raise ValueError("string ends inside an escape")
    text = _ESCAPE.sub(one, body)
    if "\\u" in body and _SURROGATE.search(text):
        # A character beyond the BMP escaped as a UTF-16 pair ("\\ud83d\\ude00", as JavaScript
        # writes it) is one character; a lone half cannot be encoded anywhere, so it is U+FFFD.
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


# ---------------------------------------------------------------------------------------------
# The complete EDN reader: every EDN form, for the export's head and any unusual layout.


class Keyword(str):
    """An EDN keyword, kept with its colon (``:block/uid``)."""


class Symbol(str):
    """An EDN symbol."""


_TOKEN = re.compile(
    rb"""
      (?P<ws>(?:[\s,]+|;[^\n]*)+)
    | (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<open>\#\{|[\[{(])
    | (?P<close>[\]})])
    | (?P<discard>\#_)
    | (?P<special>\#\#[^\s,\[\]{}()"\\;]+)
    | (?P<tag>\#[^\s,\[\]{}()"\\;\#][^\s,\[\]{}()"\\;]*)
    | (?P<char>\\(?:newline|space|tab|return|backspace|formfeed|u[0-9a-fA-F]{4}|[^\s]))
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


class _EdnParser:
    """A small reader for the EDN subset exports use (all of EDN but #_ inside maps' keys
    aside): strings with escapes, numbers, ``##NaN``/``##Inf``, nil/true/false, keywords,
    symbols, characters, vectors, lists, maps, sets, and tagged literals. A tag it knows
    nothing about (``#inst``, ``#uuid``, ``#my/tag``) is read as the value it tags."""

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
            pos = self._skip(pos)
            if self.data[pos:pos + 1] == b"}":
                raise SourceError(self.label, "not a Roam EDN export (no :datoms)")
            key, pos = self.value(pos)
            pos = self._skip(pos)
            if key == ":datoms":
                if self.data[pos:pos + 1] != b"[":
                    raise self.fail(pos, ":datoms is not a vector")
                return pos
            _, pos = self.value(pos)

    def datoms_value(self, start: int) -> Any:
        value, _ = self.value(start)
        return value

    def _skip(self, pos: int) -> int:
        token = _TOKEN.match(self.data, pos)
        while token is not None and token.lastgroup in ("ws", "discard"):
            if token.lastgroup == "discard":
                _, pos = self.value(token.end())
            else:
                pos = token.end()
            token = _TOKEN.match(self.data, pos)
        return pos

    def value(self, pos: int) -> tuple[Any, int]:
        """The value starting at ``pos`` (after whitespace) and the offset after it.

        Iterative, so deep nesting cannot exhaust Python's stack. Tags are skipped: a tagged
        literal reads as the value it tags.
        """
        data = self.data
        stack: list[tuple[bytes, list[Any], int]] = []  # (opener, items so far, offset)
        while True:
            pos = self._skip(pos)
            token = _TOKEN.match(data, pos)
            if token is None:
                if pos >= len(data):
                    raise self.fail(pos, "the file ends early (truncated?)")
                raise self.fail(pos, f"unexpected {data[pos:pos + 12]!r}")
            kind = token.lastgroup
            pos = token.end()
            if kind == "tag":
                continue
            if kind == "open":
                stack.append((token.group(), [], token.start()))
                continue
            if kind == "close":
                if not stack:
                    raise self.fail(token.start(), f"unexpected {token.group().decode()!r}")
                opener, items, begin = stack.pop()
                if _CLOSERS[opener] != token.group():
                    raise self.fail(token.start(), f"{opener.decode()!r} closed by "
                                                   f"{token.group().decode()!r}")
                item = self._collection(opener, items, begin)
            else:
                item = self._scalar(kind, token)
            if not stack:
                return item, pos
            stack[-1][1].append(item)

    def _collection(self, opener: bytes, items: list[Any], begin: int) -> Any:
        if opener != b"{":
            return items
        if len(items) % 2:
            raise self.fail(begin, "a map has a key without a value")
        try:
            return {_hashable(items[i]): items[i + 1] for i in range(0, len(items), 2)}
        except RecursionError:  # a key nested thousands deep: no export has one
            raise self.fail(begin, "a map key is nested too deeply") from None

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
        if kind == "char":
            name = text[1:].decode("utf-8")
            if name in _CHARS:
                return _CHARS[name]
            return chr(int(name[1:], 16)) if len(name) == 5 and name[0] == "u" else name
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
            return int(digits) if len(digits) <= _DIGITS + 1 else float(digits)
        if _FLOAT.fullmatch(text):
            return float(text.rstrip(b"M"))
        if text[:1].isdigit():
            raise self.fail(token.start(), f"bad number {text.decode()!r}")
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
    blocks = graph.blocks
    uid_of = datoms.uid.get
    string_of = datoms.string.get
    heading_of = datoms.heading.get if datoms.heading else {}.get
    for entity in sorted(titles, key=int):
        page = graph.add_page(Page(title=titles[entity], uid=uid_of(entity, "")))
        # Iterative preorder walk, as in roam_json: deep nesting, document order.
        stack: list[tuple[Block | None, list[Block], Iterable[bytes]]] = [
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
    return graph


def _children_by_parent(datoms: _Datoms, pages: Collection[bytes]) -> dict[bytes, list[bytes]]:
    """Each parent's children, sorted by :block/order. A child listed under two parents
    stays with the last; a page is never anyone's child."""
    pairs = datoms.children
    kids: dict[bytes, list[bytes]] = {}
    listed = set(map(itemgetter(1), pairs))
    if len(listed) == len(pairs) and listed.isdisjoint(pages):
        # The usual case: every child listed once. Roam writes a parent's children datoms
        # together, so take them run by run.
        for parent, run in groupby(pairs, itemgetter(0)):
            siblings = kids.get(parent)
            if siblings is None:
                kids[parent] = list(map(itemgetter(1), run))
            else:
                siblings.extend(map(itemgetter(1), run))
    else:
        parent_of = dict(map(itemgetter(1, 0), pairs))
        for page in listed.intersection(pages):
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

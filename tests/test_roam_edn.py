"""The Roam EDN reader: the same Graph as the JSON export of the same graph, any EDN, clear
errors, and a sync of the EDN seed into a real collection."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from anki.collection import Collection

from addon.core import sync
from addon.core.model import Graph, SourceError
from addon.core.sources import roam_edn, roam_json
from addon.core.sources.roam_json import build_graph
from tests.conftest import FIXTURES
from tests.roam import block, page
from tests.test_cards import rendered_cards
from tools.formats import edn as edn_writer
from tools.graphgen import generate

ROAM_TO_CSV = FIXTURES / "roam-to-csv"
SEEDS = Path(__file__).resolve().parent.parent / "seeds"
SEED_JSON = SEEDS / "roam-bridge-demo.json"
SEED_EDN = SEEDS / "roam-edn" / "roam-bridge-demo.edn"


def structure(graph: Graph) -> dict[str, Any]:
    """Everything a reader decides, in document order: pages, blocks, tree, headings."""
    return {
        "source": graph.source,
        "pages": [(p.title, p.uid, [b.uid for b in p.children]) for p in graph.pages.values()],
        "blocks": [
            (uid, b.string, b.heading, b.page.title, b.parent.uid if b.parent else None,
             [c.uid for c in b.children])
            for uid, b in graph.blocks.items()
        ],
    }


def write_edn(tmp_path: Path, pages: list[dict], name: str = "g.edn", **kw: Any) -> Path:
    dest = tmp_path / name
    dest.write_text(edn_writer.render(pages, "test-graph", **kw), encoding="utf-8")
    return dest


def from_json(pages: list[dict], name: str = "g") -> Graph:
    return build_graph(json.loads(json.dumps(pages)), name)


# --- The same graph as JSON and as EDN --------------------------------------------------------


def test_real_json_and_edn_exports_of_one_graph_read_alike() -> None:
    from_json_export = roam_json.read(ROAM_TO_CSV / "backup.json", "fixture")
    from_edn_export = roam_edn.read(ROAM_TO_CSV / "backup.edn", "fixture")
    assert structure(from_edn_export) == structure(from_json_export)
    assert len(from_edn_export.blocks) == 6


def test_real_export_with_refs_gives_pages_in_entity_order_and_skips_orphans() -> None:
    # What Roam's JSON export of this graph holds: its pages and their block trees. The
    # database also has three "Import" blocks on no page, which no export shows.
    expected = [
        page("Filipe Silva", uid="0ZxapTfIe"),
        page("page one",
             block("ref to [[page two]]", uid="Nor_-5TS0"),
             block("block one", uid="9URU-iY31"),
             block("ref to ((9URU-iY31))", uid="ORxUDF0MY"),
             block("block two", uid="GCpapkSmR"), uid="QBEeD3GER"),
        page("page two", block("ref to ((GCpapkSmR))", uid="jhO9bMW_L"), uid="3Lv3z5p5l"),
    ]
    graph = roam_edn.read(ROAM_TO_CSV / "backup-with-refs.edn", "fixture")
    assert structure(graph) == structure(from_json(expected, "fixture"))
    assert "gj6fowoMb" not in graph.blocks


def test_graph_name_defaults_to_the_exports_graph_name() -> None:
    with_name = ROAM_TO_CSV / "backup-with-refs.edn"
    assert roam_edn.graph_name_of(with_name) == "fstest6"
    assert roam_edn.read(with_name).name == "fstest6"
    assert roam_edn.read(with_name, "mine").name == "mine"
    # No :graph/name: the file's own name, as for the other readers.
    assert roam_edn.graph_name_of(ROAM_TO_CSV / "backup.edn") == ""
    assert roam_edn.read(ROAM_TO_CSV / "backup.edn").name == "backup"


def test_writer_output_of_the_seed_reads_back_as_the_json_seed(tmp_path: Path) -> None:
    pages = json.loads(SEED_JSON.read_text(encoding="utf-8"))
    written = edn_writer.write(pages, tmp_path / "seed.edn", "roam-bridge-demo")
    graph = roam_edn.read(written)
    assert graph.name == "roam-bridge-demo"
    assert structure(graph) == structure(roam_json.read(SEED_JSON, "roam-bridge-demo"))
    # The committed seed is exactly what the writer makes of the JSON seed.
    assert SEED_EDN.read_bytes() == written.read_bytes()


def test_generated_graph_reads_alike_in_both_formats(tmp_path: Path) -> None:
    pages = generate(blocks=3000, cards=150, seed=3)
    graph = roam_edn.read(write_edn(tmp_path, pages), "g")
    assert structure(graph) == structure(from_json(pages))
    assert len(graph.blocks) >= 3000


def test_cards_from_edn_match_cards_from_json(tmp_path: Path) -> None:
    from addon.core.cards import CardOptions

    pages = json.loads(SEED_JSON.read_text(encoding="utf-8"))
    options = CardOptions(card_tags=("card", "flashcard"))
    edn_cards = rendered_cards(roam_edn.read(write_edn(tmp_path, pages), "g"), options)
    json_cards = rendered_cards(from_json(pages), options)
    def shown(cards: list) -> list[tuple]:
        return [(c.key, c.kind, c.reversed, c.deck, c.tags, c.source_hash, c.location,
                 c.fields) for c in cards]

    assert len(edn_cards) >= 8
    assert shown(edn_cards) == shown(json_cards)


# --- The complete reader: any layout, any EDN value -------------------------------------------


def test_pretty_printed_export_reads_like_roams_one_line_layout(tmp_path: Path) -> None:
    pages = generate(blocks=400, cards=20, seed=5)
    compact = roam_edn.read(write_edn(tmp_path, pages, "compact.edn"), "g")
    pretty = roam_edn.read(write_edn(tmp_path, pages, "pretty.edn", pretty=True), "g")
    assert structure(pretty) == structure(compact) == structure(from_json(pages))


@pytest.mark.parametrize("pretty", [False, True], ids=["roam-layout", "pretty"])
def test_escaped_strings_round_trip(tmp_path: Path, pretty: bool) -> None:
    texts = [
        'say "hi"', "back\\slash", "ends with a backslash \\", 'both \\"', "line\nbreak",
        "tab\there", "cr\r ff\f bs\b", "ctrl \x01 raw", "é ü 😀 – “quotes”", "[[a]] [[b]]",
        "looks like a datom: [9 :block/order 3 536870913] [9 :block/children 2 5]",
        '[5 :graph/name "fake" 1]', "", "\\\\\"\\",
    ]
    pages = [page("Escapes", *[block(t, uid=f"esc{i}") for i, t in enumerate(texts)])]
    graph = roam_edn.read(write_edn(tmp_path, pages, pretty=pretty), "g")
    assert [graph.blocks[f"esc{i}"].string for i in range(len(texts))] == texts
    assert structure(graph) == structure(from_json(pages))
    assert roam_edn.graph_name_of(tmp_path / "g.edn") == "test-graph"


def edn_db(*datoms: str, schema: str = "{}") -> bytes:
    return f"#datascript/DB {{:schema {schema}, :datoms [{' '.join(datoms)}]}}".encode()


@pytest.mark.parametrize("separator", [" ", ",\n"], ids=["roam-layout", "pretty"])
def test_unicode_escapes_of_a_surrogate_pair_read_as_one_character(
    tmp_path: Path, separator: str
) -> None:
    # JavaScript writers escape characters outside the BMP as two UTF-16 \\u escapes.
    data = edn_db(
        '[1 :node/title "P" 9]', '[1 :block/uid "p1" 9]', '[1 :block/children 2 9]',
        '[2 :block/uid "b2" 9]', '[2 :block/string "smile \\ud83d\\ude00, lone \\ud800" 9]',
    ).replace(b"] [", b"]" + separator.encode() + b"[")
    path = tmp_path / "g.edn"
    path.write_bytes(data)
    text = roam_edn.read(path, "g").blocks["b2"].string
    assert text == "smile \U0001f600, lone \ufffd"
    text.encode("utf-8")  # what synthetic uids, Anki and the renderer all do


ODD_VALUES = [
    '[1 :node/title "P" 9]', '[1 :block/uid "p1" 9]',
    '[1 :block/children 2 9]', '[1 :block/children 3 9]',
    '[1 :weird/nan ##NaN 9]', '[1 :weird/inf ##-Inf 9]',
    '[2 :block/order 1 9]', '[2 :block/string "second \\u00e9" 9]', '[2 :block/uid "b2" 9]',
    '[2 :create/at #inst "2021-06-28T12:00:00.000-00:00" 9]',
    '[2 :block/props {:image-size {"https://x" {:width 10}} :tags #{:a :b}} 9]',
    '[3 :block/order 0 9]', '[3 :block/string "first" 9]', '[3 :block/uid "b3" 9]',
    '[3 :my.ns/thing #my.ns/unknown {:k [1 2 "s" nil true]} 9]',
    '[3 :block/heading 2 9]', '[3 :user/settings {:a [:none :partial]} 9]',
]


@pytest.mark.parametrize("separator", [" ", ",\n"], ids=["roam-layout", "pretty"])
def test_nan_tagged_literals_maps_and_sets_are_read_past(tmp_path: Path, separator: str) -> None:
    export = tmp_path / "odd.edn"
    export.write_bytes(f"#datascript/DB {{:schema {{}}, :datoms [{separator.join(ODD_VALUES)}]}}"
                       .encode())
    graph = roam_edn.read(export, "g")
    expected = [page("P", block("first", uid="b3", heading=2), block("second é", uid="b2"),
                     uid="p1")]
    assert structure(graph) == structure(from_json(expected))


def test_unknown_tag_on_a_vector_value_and_comments_read_too(tmp_path: Path) -> None:
    export = tmp_path / "odd.edn"
    export.write_bytes(edn_db(
        '; a comment', '[1 :node/title "P" 9]', '[1 :block/children 2 9]',
        '[1 :x/y #foo/bar [1 [2 :block/order 7 9]] 9]', '#_[2 :block/order 5 9]',
        '[2 :block/order 0 9]', '[2 :block/string "only" 9]', '[2 :block/uid "b2" 9]',
        '[2 :c/d \\x 9]',
    ).replace(b" [1 :node", b"\n [1 :node"))
    graph = roam_edn.read(export, "g")
    assert structure(graph) == structure(from_json([page("P", block("only", uid="b2"))]))


def test_children_follow_block_order_not_datom_or_entity_order(tmp_path: Path) -> None:
    # Children listed (and numbered) in the opposite order to :block/order; :block/parents
    # lists ancestors in no useful order; datoms not sorted by entity.
    export = tmp_path / "order.edn"
    export.write_bytes(edn_db(
        '[9 :block/uid "c" 1]', '[9 :block/string "third" 1]', '[9 :block/order 2 1]',
        '[5 :node/title "P" 1]', '[5 :block/children 9 1]', '[5 :block/children 8 1]',
        '[5 :block/children 7 1]', '[8 :block/order 1 1]', '[8 :block/string "second" 1]',
        '[8 :block/uid "b" 1]', '[8 :block/children 6 1]', '[7 :block/order 0 1]',
        '[7 :block/string "first" 1]', '[7 :block/uid "a" 1]', '[6 :block/order 0 1]',
        '[6 :block/string "nested" 1]', '[6 :block/uid "n" 1]', '[6 :block/parents 8 1]',
        '[6 :block/parents 5 1]', '[3 :node/title "Earlier page" 1]',
    ))
    graph = roam_edn.read(export, "g")
    assert list(graph.pages) == ["Earlier page", "P"]
    assert [b.string for b in graph.pages["P"].children] == ["first", "second", "third"]
    assert [b.uid for b in graph.blocks.values()] == ["a", "b", "n", "c"]
    assert graph.blocks["n"].parent is graph.blocks["b"]


def test_blocks_without_uid_get_the_same_synthetic_uid_as_from_json(tmp_path: Path) -> None:
    pages = [{"title": "P", "children": [{"string": "no uid"}, {"string": "no uid"},
                                         {"string": "x", "uid": "u1", "children": [
                                             {"string": "kid"}]}]}]
    graph = roam_edn.read(write_edn(tmp_path, pages), "g")
    assert structure(graph) == structure(from_json(pages))
    assert sum(uid.startswith("md-") for uid in graph.blocks) == 3


# --- Files, zips, folders ----------------------------------------------------------------------


def test_zip_holding_an_edn_export(tmp_path: Path) -> None:
    archive = tmp_path / "Roam-Export-1.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(ROAM_TO_CSV / "backup-with-refs.edn", "fstest6.edn")
    assert structure(roam_edn.read(archive, "g")) == structure(
        roam_edn.read(ROAM_TO_CSV / "backup-with-refs.edn", "g"))
    assert roam_edn.graph_name_of(archive) == "fstest6"


def test_folder_reads_its_newest_export(tmp_path: Path) -> None:
    old = write_edn(tmp_path, [page("Old", block("old", uid="o1"))], "a.edn")
    new = write_edn(tmp_path, [page("New", block("new", uid="n1"))], "b.edn")
    os.utime(old, (1_000_000, 1_000_000))
    os.utime(new, (2_000_000, 2_000_000))
    assert list(roam_edn.read(tmp_path, "g").pages) == ["New"]
    assert roam_edn.graph_name_of(tmp_path) == "test-graph"


# --- Bad input -----------------------------------------------------------------------------------


def truncated(tmp_path: Path, keep: float) -> bytes:
    data = SEED_EDN.read_bytes()
    return data[:int(len(data) * keep)]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"hello world", "not a Roam EDN export"),
        (b'[{"title": "P", "children": []}]', "not a Roam EDN export"),
        (b"{:a 1}", "no :datoms"),
        (b"[1 2 3]", "not a Roam EDN export"),
        (edn_db(), "holds no pages"),
        (edn_db('[1 :block/string "orphan" 2]'), "holds no pages"),
        (b"#datascript/DB {:schema {}, :datoms [[1 :node/title \"P\" 2] [1 2]]}",
         "not [e a v tx]"),
        (b"#datascript/DB {:schema {}, :datoms [[1 :node/title \"P\xff\" 2]]}", "UTF-8"),
        (b"#datascript/DB {:schema {}, :datoms [[1 :node/title \"P\\q\" 2]]}", "escape"),
        (b"#datascript/DB {:schema {}, :datoms [[1 :node/title \"P\" 2}]}", "closed by"),
        (b"#datascript/DB {:schema {}, :datoms [" + b"[" * 50_000 + b"]" * 50_000 + b"]}",
         "not [e a v tx]"),
        (b"#datascript/DB {:schema {" + b"[" * 50_000 + b"]" * 50_000 + b" 1}, :datoms []}",
         "nested too deeply"),
        (edn_db('[1 :node/title "P" 9]') + b" trailing", "more after"),
        (edn_db('[1 :node/title "P" 9]', "[1 :x #foo]"), "a tag without a value"),
        (edn_db('[1 :node/title "P" 9]', "#_"), "#_ without a value"),
        (edn_db('[1 :node/title "P" 9]') + b"#_" * 100_000, "more after"),
        (b"#datascript/DB {:schema {} :datoms [" + b"#_ " * 100_000 + b"[1 2 3 4]]}",
         "#_ without a value"),
        (b'#datascript/DB {:schema {} :datoms [[1 :node/title \\\xc3 9]]}', "UTF-8"),
        (b"#datascript/DB {:schema {:a} :datoms []}", "key without a value"),
    ],
    ids=["empty", "not-edn", "json", "map-without-datoms", "vector", "no-datoms",
         "no-pages", "short-datom", "bad-utf8", "bad-escape", "mismatched-bracket",
         "deeply-nested-datom", "deeply-nested-map-key", "after-the-map", "tag-without-value",
         "discard-without-value", "discards-after",
         "100k-discards", "bad-utf8-char", "odd-map"],
)
def test_bad_input_raises_one_clear_source_error(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    bad = tmp_path / "bad.edn"
    bad.write_bytes(content)
    with pytest.raises(SourceError) as err:
        roam_edn.read(bad, "g")
    assert reason in err.value.message
    assert "\n" not in str(err.value)
    assert err.value.path.endswith("bad.edn")


@pytest.mark.parametrize("keep", [0.5, 0.999], ids=["mid-file", "last-bytes"])
def test_truncated_export_is_refused(tmp_path: Path, keep: float) -> None:
    bad = tmp_path / "cut.edn"
    bad.write_bytes(truncated(tmp_path, keep))
    with pytest.raises(SourceError) as err:
        roam_edn.read(bad, "g")
    assert "ends early" in err.value.message


def test_missing_path_and_zip_without_edn(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        roam_edn.read(tmp_path / "nope.edn", "g")
    archive = tmp_path / "e.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("graph.json", "[]")
    with pytest.raises(SourceError, match=r"no \.edn file"):
        roam_edn.read(archive, "g")
    assert roam_edn.graph_name_of(archive) == ""


# --- Into a real collection -----------------------------------------------------------------------


def test_edn_seed_syncs_into_a_collection_like_the_json_seed(tmp_path: Path) -> None:
    counts = {}
    keys = {}
    for name, graph in (("edn", roam_edn.read(SEED_EDN)),
                        ("json", roam_json.read(SEED_JSON, "roam-bridge-demo"))):
        (tmp_path / name).mkdir()
        col = Collection(str(tmp_path / name / "collection.anki2"))
        try:
            report = sync.apply(sync.plan(graph, col), col)
            counts[name] = report.counts()["created"]
            keys[name] = sorted(col.get_note(n)["SourceID"] for n in col.find_notes(""))
            again = sync.apply(sync.plan(roam_edn.read(SEED_EDN), col), col)
            assert again.counts()["unchanged"] == counts[name]
        finally:
            col.close()
    assert counts["edn"] >= 8
    assert counts["edn"] == counts["json"]
    assert keys["edn"] == keys["json"]
    assert all(k.startswith("roam:roam-bridge-demo:") for k in keys["edn"])


def datoms_region(data: bytes) -> bytes:
    """The datoms vector's inside, as the reader cuts it into chunks."""
    start = roam_edn._Values(data, "t").datoms_start()
    return data[start + 1:roam_edn._datoms_end(data)]


def bulk(data: bytes) -> roam_edn._Datoms | None:
    """The datoms of the whole vector read in bulk, or None if the bulk lane refuses it."""
    chunk = roam_edn._bulk(datoms_region(data), "t")
    if chunk is None:
        return None
    datoms = roam_edn._Datoms()
    datoms.take(chunk)
    return datoms


def datom_by_datom(data: bytes) -> roam_edn._Datoms:
    values = roam_edn._Values(data, "t")
    datoms = roam_edn._Datoms()
    _, closed = values.read_datoms(values.datoms_start() + 1, len(data), datoms)
    assert closed
    return datoms


@pytest.mark.parametrize(
    "export", [ROAM_TO_CSV / "backup.edn", ROAM_TO_CSV / "backup-with-refs.edn", SEED_EDN],
    ids=["backup", "with-refs", "seed"],
)
def test_roams_layout_is_read_in_bulk_and_the_bulk_agrees_with_datom_by_datom(
    export: Path,
) -> None:
    # backup-with-refs holds a map value with a vector in it (:user/settings): still bulk.
    data = export.read_bytes()
    fast = bulk(data)
    assert fast is not None  # else Roam's own exports would read several times slower
    assert fast == datom_by_datom(data)
    assert fast.title and fast.uid and fast.children


def test_a_datom_the_bulk_lane_cannot_read_is_read_datom_by_datom(tmp_path: Path) -> None:
    # Three-value datoms with a doubled space: one line, Roam's brackets and space count, but
    # the bulk regexes cannot read them; its counts notice and the chunk is read datom by datom.
    export = tmp_path / "odd-space.edn"
    export.write_bytes(edn_db(
        '[1 :node/title "P" 9]', '[1 :block/children 2 9]', '[1 :block/children 3 9]',
        '[2  :block/order 1]', '[2 :block/string "second" 9]', '[2 :block/uid "b2" 9]',
        '[3  :block/order 0]', '[3 :block/string "first" 9]', '[3 :block/uid "b3" 9]',
    ))
    assert bulk(export.read_bytes()) is None
    graph = roam_edn.read(export, "g")
    assert [b.string for b in graph.pages["P"].children] == ["first", "second"]


@pytest.mark.parametrize(
    ("datoms", "error"),
    [(('[1 :node/title "P" 9]', '[1 "x" 2 3]', '[1 :a 2 "y"]'), None),
     (('[1 :node/title "P" 9]', '["x" :a 1 2]', '[1 :a 2 "y"]'), None),
     (('[1 :node/title "P" 9]', '["x" :block/string "s" 2]'), "bad datom"),
     (('[1 :node/title "P" 9]', '[:k :block/order 1 2]'), "bad datom")],
    ids=["string-as-attribute", "string-as-entity", "string-entity-of-a-string",
         "keyword-entity-of-an-order"],
)
def test_strings_outside_a_datoms_value_are_never_read_as_one(
    tmp_path: Path, datoms: tuple[str, ...], error: str | None
) -> None:
    # The string counts add up as if every string were a value; the heads must not. A datom
    # of an attribute the reader does not read is passed over; one it reads must be sound.
    bad = tmp_path / "bad.edn"
    bad.write_bytes(edn_db(*datoms))
    assert bulk(bad.read_bytes()) is None
    if error is None:
        graph = roam_edn.read(bad, "g")
        assert list(graph.pages) == ["P"] and not graph.blocks
    else:
        with pytest.raises(SourceError, match=error):
            roam_edn.read(bad, "g")


def test_bulk_reads_entity_keyed_attributes(tmp_path: Path) -> None:
    pages = [page("P", block("a", uid="u1", heading=1, children=[block("b", uid="u2")]),
                  uid="pu")]
    data = write_edn(tmp_path, pages).read_bytes()
    fast = bulk(data)
    assert fast is not None
    page_e = next(iter(fast.title))
    assert fast.title[page_e] == "P" and fast.uid[page_e] == "pu"
    assert sorted(fast.string.values()) == ["a", "b"]
    parent = next(e for e, s in fast.string.items() if s == "a")
    assert fast.heading == {parent: 1}
    assert [p for p, _ in fast.children] == [page_e, parent]
    assert fast.graph_name() == "test-graph"


def test_an_export_saved_with_a_bom_reads_like_one_without(tmp_path: Path) -> None:
    plain = ROAM_TO_CSV / "backup-with-refs.edn"
    with_bom = tmp_path / "bom.edn"
    with_bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    assert structure(roam_edn.read(with_bom, "g")) == structure(roam_edn.read(plain, "g"))


# --- Unusual EDN forms, and lanes changing mid-vector -----------------------------------------


UNUSUAL = [
    '; a comment line\n[1 :node/title "P" 9]', '[1 :block/uid "p1" 9]',
    '#_ #_ [1 :block/children 99 9] [99 :block/string "dropped" 9]',
    '[1 :block/children 2 9 true]', '[1 :block/children 3]',
    '[2 :block/string "two\\ttabs \\u00e9 \\"q\\" \\\\" 9]', '[2 :block/uid "b2" 9]',
    '[2 :block/order 1 9]', '[2 :my.ns/kw :other.ns/value 9]', '[2 :x/char \\newline 9]',
    '[2 :x/chars [\\a \\u00e9 \\o101 \\é \\space] 9]', '[2 :x/set #{1 #{2} "s"} 9]',
    '[2 :x/list (1 (2) "(") 9]', '[2 :x/map {[1 2] {:a #{}} "k" ##NaN} 9]',
    '[2 :x/inst #inst "2021-01-01T00:00:00.000-00:00" 9]',
    '[3 :block/uid #uuid "00000000-0000-0000-0000-000000000003" 9]',
    '[3 :block/string #my/tag "tagged text" 9]', '[3 :block/order 0 9]',
    '[3 :x/big 123456789012345678901234567890N 9] [3 :x/dec 1.5M 9] [3 :x/sym a/b? 9]',
    '#_[3 :block/order 7 9]',
]


@pytest.mark.parametrize("separator", [" ", ",\n  ", "\t"], ids=["space", "pretty", "tab"])
def test_unusual_edn_forms_read_as_edn_says(tmp_path: Path, separator: str) -> None:
    export = tmp_path / "unusual.edn"
    export.write_bytes(("#datascript/DB {:schema {:block/uid {:db/unique :db.unique/identity}}"
                        " :datoms [" + separator.join(UNUSUAL) + "]}\n; the end\n").encode())
    graph = roam_edn.read(export, "g")
    expected = [page("P", block("tagged text", uid="00000000-0000-0000-0000-000000000003"),
                     block('two\ttabs é "q" \\', uid="b2"), uid="p1")]
    assert structure(graph) == structure(from_json(expected))


def test_datoms_need_not_be_the_maps_last_value(tmp_path: Path) -> None:
    export = tmp_path / "first.edn"
    export.write_bytes(b'#datascript/DB {:datoms [[1 :node/title "P" 9] [1 :block/children 2 9]'
                       b' [2 :block/string "s" 9] [2 :block/uid "u" 9]] :schema {:a [1 2]}}')
    graph = roam_edn.read(export, "g")
    assert structure(graph) == structure(from_json([page("P", block("s", uid="u"))]))


def test_chunks_change_lanes_and_read_like_one_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small chunks, and datoms only _Values reads (a comment, a vector value, a tab) in the
    # middle of Roam's layout: chunks around them are still read in bulk, the graph is one.
    monkeypatch.setattr(roam_edn, "_CHUNK", 2048)
    monkeypatch.setattr(roam_edn, "_SMALL", 256)
    pages = generate(blocks=1500, cards=60, seed=11)
    text = edn_writer.render(pages, "test-graph")
    odd = ' [1 :x/v [1 [2 :block/order 3 4]] 9] ; note\n [1 :x/t\t:a 9]'
    for at in (len(text) // 4, len(text) // 2, 3 * len(text) // 4):
        cut = text.index("] [", at) + 1
        text = text[:cut] + odd + text[cut:]
    export = tmp_path / "mixed.edn"
    export.write_text(text, encoding="utf-8")
    lanes: list[bool] = []
    real_bulk = roam_edn._bulk
    monkeypatch.setattr(roam_edn, "_bulk", lambda chunk, label: lanes.append(
        (result := real_bulk(chunk, label)) is not None) or result)
    graph = roam_edn.read(export, "g")
    assert structure(graph) == structure(from_json(pages))
    assert lanes.count(True) > 20 and lanes.count(False) >= 3


def attributes(graph: Graph) -> list[tuple]:
    return [(p.title, sorted(p.attributes().items()),
             [b.attribute for b in p.children]) for p in graph.pages.values()]


def test_edn_and_json_exports_of_one_graph_give_the_same_graph(tmp_path: Path) -> None:
    pages = generate(blocks=2000, cards=80, seed=7)
    pages.append(page("Attributes",
                      block("Type:: [[Book]]", uid="at1"), block("Author:: Someone", uid="at2"),
                      block("plain", uid="at3", children=[block("Nested:: x", uid="at4")]),
                      uid="atp"))
    (tmp_path / "g.json").write_text(json.dumps(pages), encoding="utf-8")
    from_edn = roam_edn.read(write_edn(tmp_path, pages), "g")
    from_json_file = roam_json.read(tmp_path / "g.json", "g")
    assert structure(from_edn) == structure(from_json_file)
    assert list(from_edn.blocks) == list(from_json_file.blocks)
    assert attributes(from_edn) == attributes(from_json_file)
    assert from_edn.pages["Attributes"].attributes()["type"] == ("Type", "[[Book]]")
    assert from_edn.blocks["at4"].attribute == ("Nested", "x")


@pytest.mark.parametrize("separator", [" ", ",\n"], ids=["roam-layout", "pretty"])
def test_a_block_of_twenty_megabytes_reads_in_linear_time(tmp_path: Path, separator: str) -> None:
    import time

    text = "x" * 20_000_000 + "\\n"
    export = tmp_path / "big.edn"
    export.write_bytes(edn_db('[1 :node/title "P" 9]', '[1 :block/children 2 9]',
                              f'[2 :block/string "{text}" 9]', '[2 :block/uid "b" 9]'
                              ).replace(b"] [", b"]" + separator.encode() + b"["))
    start = time.process_time()
    graph = roam_edn.read(export, "g")
    # A token regex that steps through a string one alternation at a time took 7 s here.
    assert time.process_time() - start < 3
    assert graph.blocks["b"].string == "x" * 20_000_000 + "\n"

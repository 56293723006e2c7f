"""json_steps.loads reads every document exactly as orjson.loads does, page by page."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from addon.core import json_steps
from tools.graphgen import generate

FIXTURES = Path(__file__).parent / "fixtures"


def test_a_generated_graph_and_every_fixture_read_as_orjson_reads_them() -> None:
    documents = [json.dumps(generate(2_000, 100, seed=3)).encode()]
    documents += [p.read_bytes() for p in sorted(FIXTURES.rglob("*.json"))]
    assert len(documents) > 1
    for data in documents:
        try:
            expected = orjson.loads(data)
        except orjson.JSONDecodeError:
            with pytest.raises(orjson.JSONDecodeError):
                json_steps.loads(data)
            continue
        assert json_steps.loads(data) == expected


@pytest.mark.parametrize("data", [
    b'[{"title": "A", "children": [{"string": "x \\u00e9 \\" \\\\ /", "uid": "u"}]}, {}]',
    b' \n[ {"title": "A"} ,\t{"title": "B", "n": -1.5e3, "t": true, "f": null} ] \r\n',
    b"[]", b"  [ ]  ", b'[1, "two", [3], {"4": 5}]',
    "[{\"title\": \"caf\u00e9 \U0001f600\"}]".encode(),
    b'[{"title": "\\ud83d\\ude00"}]',  # a surrogate pair, written as escapes
    b'[{"a": 1, "a": 2}]',  # the last of two keys wins, in both
])
def test_valid_documents_read_alike(data: bytes) -> None:
    assert json_steps.loads(data) == orjson.loads(data)


@pytest.mark.parametrize("data", [
    b'[{"title": ', b"[1,]", b"[1 2]", b"[1] x", b'[{"t": NaN}]', b"[Infinity]",
    b'[{"t": "\\ud800"}]', b"[\xff]", b"", b"   ", b"[" * 2000 + b"]" * 2000,
    b'{"pages": []}', b'"text"',
])
def test_what_orjson_refuses_or_reads_otherwise_is_orjson_s_to_say(data: bytes) -> None:
    try:
        expected = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        with pytest.raises(orjson.JSONDecodeError) as raised:
            json_steps.loads(data)
        assert str(raised.value) == str(err)
        return
    assert json_steps.loads(data) == expected

"""The way back from a note app's block link to the block's uid (Find a block's cards…)."""

from __future__ import annotations

import pytest

from addon.core.block_links import MAX_TEXT, uid_in
from addon.core.model import Block, Graph, Page


@pytest.mark.parametrize(
    ("text", "uid"),
    [
        ("https://roamresearch.com/#/app/my-graph/page/aB3_x-9Qz", "aB3_x-9Qz"),
        ("  ((aB3_x-9Qz))  ", "aB3_x-9Qz"),
        ("see ((64f1c2a0-1b2c-4d5e-8f90-123456789abc)) here",
         "64f1c2a0-1b2c-4d5e-8f90-123456789abc"),
        ("logseq://graph/notes?block-id=64f1c2a0-1b2c-4d5e-8f90-123456789abc",
         "64f1c2a0-1b2c-4d5e-8f90-123456789abc"),
        ("obsidian://open?vault=Vault&file=Study%2FNote%23%5Eq1w2e3", "q1w2e3"),
        ("[[Note#^q1w2e3]]", "q1w2e3"),
        ("[[Folder/Note#^q1w2e3|alias]]", "q1w2e3"),
        ("aB3_x-9Qz", "aB3_x-9Qz"),
        ("^q1w2e3", "q1w2e3"),
    ],
)
def test_a_block_link_or_reference_gives_its_uid(text: str, uid: str) -> None:
    assert uid_in(text) == uid


@pytest.mark.parametrize(
    "text",
    ["", "   ", "two words", "https://example.com/page/abc", "https://roamresearch.com/#/app/g",
     "logseq://graph/notes?page=Foo", "obsidian://open?vault=V&file=Note", "ftp://x/y",
     "((not a uid!))", "http://[::1", "x" * (MAX_TEXT * 3)],
)
def test_anything_else_gives_none(text: str) -> None:
    assert uid_in(text) is None


def test_the_links_the_bridge_writes_read_back_to_their_uid() -> None:
    for source, uid in (("roam", "aB3_x-9Qz"), ("logseq", "64f1c2a0-1b2c-4d5e-8f90-1234"),
                        ("obsidian", "q1w2e3")):
        graph = Graph(source, "My Graph")
        page = graph.add_page(Page("Study/Note", uid="p1", path="Study/Note.md"))
        graph.add_block(Block(uid, "text", page))
        assert uid_in(graph.link(uid)) == uid, graph.link(uid)

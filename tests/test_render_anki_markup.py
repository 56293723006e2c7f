"""Anki's own markup written in the notes is text on the card: never played, spoken or typeset.

``[sound:…]`` plays a media file, ``[anki:tts]…[/anki:tts]`` is spoken, ``[latex]``, ``[$]``
and ``[$$]`` go to LaTeX: Anki looks for them anywhere in a card's HTML. Written in a block, a
parent, a page title or an attribute, they must show as written, while our own images and
math still work. Checked through Anki's own card rendering on a real collection.
"""

from __future__ import annotations

import re

import pytest
from anki.collection import Collection

from addon.core import sync
from addon.core.config import SyncOptions
from addon.core.sources.roam_json import build_graph
from tests.conftest import Syncer
from tests.roam import block, page

MARKUP = [
    "[sound:x.mp3]",
    "[sound:../../etc/passwd]",
    "[SOUND:loud.mp3]",
    "[anki:tts lang=en_US]spoken aloud[/anki:tts]",
    "[latex]\\frac{a}{b}[/latex]",
    "[$]x^2[/$]",
    "[$$]y^2[/$$]",
]
EVERYWHERE = " ".join(MARKUP)


def _pages(uid: str | None = "q") -> list[dict]:
    card = {"string": f"Q {EVERYWHERE} #card", "children": [
        {"string": f"answer {EVERYWHERE}"}, {"string": f"{{{{[[query]]: {EVERYWHERE}}}}}"},
        {"string": "`[sound:in-code.mp3]` and $$\\sqrt{2}$$"}]}
    cloze = {"string": f"{{{{c1::{EVERYWHERE}}}}} and {{{{c2::[sound:two.mp3]}}}} #card"}
    if uid is not None:
        card["uid"], cloze["uid"] = uid, f"{uid}c"
    return [{"title": f"Page {EVERYWHERE}", "children": [
        {"string": f"Author:: {EVERYWHERE}"},
        {"string": f"[[{EVERYWHERE}]]:: an attribute named so"},
        {"string": f"Parent {EVERYWHERE}", "children": [card, cloze]},
    ]}]


def _cards(col: Collection) -> list:
    return [col.get_card(cid) for cid in col.find_cards("SourceID:_*")]


@pytest.mark.parametrize("with_ids", [True, False], ids=["roam-ids", "no-ids"])
def test_anki_markup_in_notes_is_never_played_spoken_or_typeset(
    syncer: Syncer, with_ids: bool
) -> None:
    syncer(_pages("q" if with_ids else None))
    cards = _cards(syncer.col)
    assert len(cards) == 3  # the basic note's card and the cloze note's two
    for card in cards:
        assert card.question_av_tags() == [] and card.answer_av_tags() == []
        for side in (card.question(), card.answer()):
            assert not re.search(r"latex-[0-9a-f]+\.(png|svg)", side)
            assert "[sound:" not in side and "[anki:tts" not in side
            assert "[latex]" not in side and "[$]" not in side and "[$$]" not in side
            # Shown as written: the entity reads as "[" in the browser.
            assert "&#91;sound:x.mp3]" in side or "&#91;sound:two.mp3]" in side
    basic = next(c for c in cards if c.note().note_type()["name"].endswith("Basic"))
    answer = basic.answer()
    assert "answer &#91;sound:x.mp3]" in answer  # a child on the back
    assert "Parent &#91;sound:x.mp3]" in answer  # the parent, as a crumb
    assert "Page &#91;sound:x.mp3]" in answer  # the page title
    assert "&#91;anki:tts lang=en_US]spoken aloud&#91;/anki:tts]" in answer  # an attribute
    # Our own math stays math for MathJax.
    assert '<span class="rb-math">\\(\\sqrt{2}\\)</span>' in answer


def test_our_images_still_show_beside_anki_markup(col: Collection, tmp_path) -> None:
    png = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                        "0000000d4944415478da63f8ffff3f0005fe02fea7d6a4c80000000049454e44ae"
                        "426082")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "cat.png").write_bytes(png)
    graph = build_graph([page("P", block("![a cat](cat.png) [sound:cat.mp3] #card",
                                         uid="img"))], "g")
    graph.root = str(tmp_path / "notes")
    graph.pages["P"].path = "P.md"
    sync.apply(sync.plan(graph, col, SyncOptions()), col)
    [card] = _cards(col)
    question = card.question()
    image = re.search(r'<img alt="a cat" src="(rb-[0-9a-f]{16}\.png)">', question)
    assert image and col.media.have(image.group(1))
    assert card.question_av_tags() == []
    assert "&#91;sound:cat.mp3]" in question

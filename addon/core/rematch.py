"""Pairing notes whose block lost its key with the new card blocks they most likely became.

Sources without block ids (a Roam Markdown export, Logseq blocks without ``id::``, Obsidian
blocks without ``^id``) key a block by a hash of its page and text, so editing or moving such
a block changes its key. Sync then sees a note whose key vanished and a card block that looks
new; this module pairs them: identical text anywhere first (a moved block), then by text
similarity on the same page, then anywhere, so the note is updated in place and keeps its
review history. Only a truly new block makes a note,
and only a truly gone one is orphaned.

Copies of one text on one page share a key but for a counter (``md-<hash>``, ``md-<hash>-2``…),
given in document order: delete the first copy and the second takes its key. ``ambiguous_keys``
names such families whose copies changed, and sync re-matches their notes by content (the
block and its children) as it does a vanished key, so no copy's note, and review history,
passes to another copy. A note shows what ``comparable_text`` gives: its text and its back,
images by their file.

Guarantees: each old and each new item is paired at most once; pairs are chosen best score
first (ties in document order), so the result does not depend on dict order; empty texts and
texts of images alone pair only with the very same text; the work stays bounded for large
edits (past ``MAX_COMPARISONS`` only identical texts are paired).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from difflib import SequenceMatcher
from typing import NamedTuple

from .fields import names_with
from .model import SYNTHETIC_PREFIX
from .render import plain_text

_MAIN = tuple(names_with({"main"}))
_BACK = tuple(names_with({"back"}))

# How alike two texts must be (difflib's ratio) to count as the same block: on one page an
# edit may rewrite more; across pages only a lightly edited, moved block is the same one.
SAME_PAGE_THRESHOLD = 0.6
ANYWHERE_THRESHOLD = 0.8
MAX_COMPARISONS = 250_000

_CLOZE_NUMBER = re.compile(r"\{\{c\d+::")
_IMAGE = re.compile(r"<img\b[^>]*>")
_SRC = re.compile(r'\ssrc="([^"]*)"')
_IMAGE_TOKEN = re.compile(r"\[image [^\]]*\]")
# A synthetic key's family: its hash without the counter of a copy.
_COPY = re.compile(rf"({re.escape(SYNTHETIC_PREFIX)}[0-9a-f]+)(-\d+)?\Z")


class Item(NamedTuple):
    page: str  # "" when not known: then only the anywhere pass can pair it
    text: str


def pair_by_similarity(old: Sequence[Item], new: Sequence[Item]) -> list[tuple[int, int]]:
    """Index pairs ``(old i, new j)`` of items that are the same block."""
    free_old, free_new = set(range(len(old))), set(range(len(new)))
    pairs: list[tuple[int, int]] = []
    candidates: list[tuple[int, int]] | None
    for step in ("identical", "same page", "anywhere"):
        if not free_old or not free_new:
            break
        if step == "identical":
            candidates = _identical_text_candidates(old, new, free_old, free_new)
            threshold = 1.0
        elif step == "same page":
            candidates = _same_page_candidates(old, new, free_old, free_new)
            threshold = SAME_PAGE_THRESHOLD
            if candidates is None:
                candidates = _identical_text_candidates(old, new, free_old, free_new)
                threshold = 1.0
        elif len(free_old) * len(free_new) <= MAX_COMPARISONS:
            candidates = [(i, j) for i in sorted(free_old) for j in sorted(free_new)]
            threshold = ANYWHERE_THRESHOLD
        else:
            candidates = _identical_text_candidates(old, new, free_old, free_new)
            threshold = 1.0
        scored = []
        for i, j in candidates:
            score = _similarity(old[i].text, new[j].text, threshold)
            if score >= threshold:
                scored.append((-score, i, j))
        scored.sort()
        for _, i, j in scored:
            if i in free_old and j in free_new:
                free_old.discard(i)
                free_new.discard(j)
                pairs.append((i, j))
    return pairs


def _same_page_candidates(
    old: Sequence[Item], new: Sequence[Item], free_old: set[int], free_new: set[int]
) -> list[tuple[int, int]] | None:
    """Pairs on the same page, or None if there are too many to compare."""
    new_by_page: dict[str, list[int]] = defaultdict(list)
    for j in sorted(free_new):
        if new[j].page:
            new_by_page[new[j].page].append(j)
    count = sum(len(new_by_page.get(old[i].page, ())) for i in free_old if old[i].page)
    if count > MAX_COMPARISONS:
        return None
    return [
        (i, j) for i in sorted(free_old) if old[i].page for j in new_by_page.get(old[i].page, ())
    ]


def _identical_text_candidates(
    old: Sequence[Item], new: Sequence[Item], free_old: set[int], free_new: set[int]
) -> list[tuple[int, int]]:
    new_by_text: dict[str, list[int]] = defaultdict(list)
    for j in sorted(free_new):
        new_by_text[new[j].text].append(j)
    return [(i, j) for i in sorted(free_old) for j in new_by_text.get(old[i].text, ())]


def comparable_text(fields: dict[str, str]) -> str:
    """What a note says, as plain text: its main field and its back, with cloze numbers left
    out (they come from memory, not from the block) and images by their file, so two notes
    that show only different images do not read alike."""
    main = next((fields[n] for n in _MAIN if fields.get(n)), "")
    back = next((fields[n] for n in _BACK if fields.get(n)), "")
    return "\n".join(_plain(part) for part in (main, back)).strip()


def ambiguous_keys(old_keys: Iterable[str], new_keys: Iterable[str]) -> set[str]:
    """The keys, old and new, of the families of copies (see the module doc) whose set of
    keys changed: their key no longer tells which copy a note was made for."""
    families: dict[str, tuple[set[str], set[str]]] = defaultdict(lambda: (set(), set()))
    copied: set[str] = set()  # families with a key that has a counter
    for side, keys in enumerate((old_keys, new_keys)):
        for key in keys:
            head, _, uid = key.rpartition(":")
            copy = _COPY.match(uid)
            if copy is None:
                continue
            family = f"{head}:{copy.group(1)}"
            families[family][side].add(key)
            if copy.group(2):
                copied.add(family)
    found: set[str] = set()
    for family in copied:
        old, new = families[family]
        if old != new:
            found |= old | new
    return found


def _plain(html_text: str) -> str:
    if "<img" in html_text:
        html_text = _IMAGE.sub(lambda m: f" [image {_image_src(m.group(0))}] ", html_text)
    return _CLOZE_NUMBER.sub("{{", plain_text(html_text))


def _image_src(tag: str) -> str:
    src = _SRC.search(tag)
    return src.group(1) if src else ""


def _similarity(a: str, b: str, threshold: float) -> float:
    if a == b:
        return 1.0 if a else 0.0
    if threshold >= 1.0 or not a or not b:
        return 0.0
    if not _IMAGE_TOKEN.sub("", a).strip() or not _IMAGE_TOKEN.sub("", b).strip():
        return 0.0  # images alone: the same images, or another block
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    # The cheap upper bounds rule out most pairs before the real comparison.
    if matcher.real_quick_ratio() < threshold or matcher.quick_ratio() < threshold:
        return 0.0
    return matcher.ratio()

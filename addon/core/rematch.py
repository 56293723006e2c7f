"""Pairing notes whose block lost its key with the new card blocks they most likely became.

Sources without block ids (a Roam Markdown export, Logseq blocks without ``id::``, Obsidian
blocks without ``^id``) key a block by a hash of its page and text, so editing or moving such
a block changes its key. Sync then sees a note whose key vanished and a card block that looks
new; this module pairs them: identical text anywhere first (a moved block), then by text
similarity on the same page, then anywhere, so the note is updated in place and keeps its
review history. Only a truly new block makes a note,
and only a truly gone one is orphaned.

Guarantees: each old and each new item is paired at most once; pairs are chosen best score
first (ties in document order), so the result does not depend on dict order; the work stays
bounded for large edits (past ``MAX_COMPARISONS`` only identical texts are paired).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from difflib import SequenceMatcher
from typing import NamedTuple

# How alike two texts must be (difflib's ratio) to count as the same block: on one page an
# edit may rewrite more; across pages only a lightly edited, moved block is the same one.
SAME_PAGE_THRESHOLD = 0.6
ANYWHERE_THRESHOLD = 0.8
MAX_COMPARISONS = 250_000


class Item(NamedTuple):
    page: str  # "" when not known: then only the anywhere pass can pair it
    text: str


def pair_by_similarity(old: Sequence[Item], new: Sequence[Item]) -> list[tuple[int, int]]:
    """Index pairs ``(old i, new j)`` of items that are the same block."""
    free_old, free_new = set(range(len(old))), set(range(len(new)))
    pairs: list[tuple[int, int]] = []
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


def _similarity(a: str, b: str, threshold: float) -> float:
    if a == b:
        return 1.0
    if threshold >= 1.0 or not a or not b:
        return 0.0
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    # The cheap upper bounds rule out most pairs before the real comparison.
    if matcher.real_quick_ratio() < threshold or matcher.quick_ratio() < threshold:
        return 0.0
    return matcher.ratio()

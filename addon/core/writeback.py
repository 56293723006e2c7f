"""Opt-in: give Logseq card blocks that have no ``id::`` a stable one, in the notes files.

A block without ``id::`` is keyed by a hash of its page and text, so every edit changes its
key and sync has to re-match it by similarity. Written once, the id makes its identity exact.
This is the only place Roam Bridge ever writes into a notes folder, and it runs only when a
source's ``write_ids`` is on: each file is replaced atomically, and never if it changed since
it was read (see ``logseq.write_back_ids``). The note whose key was the hash moves to the new
key on the same run, by sync's re-matching.
"""

from __future__ import annotations

from collections.abc import Iterable

from .cards import collect
from .config import CardOptions
from .model import Graph, is_synthetic
from .sources import logseq


def write_ids(graph: Graph, card_tags: Iterable[str]) -> list[str]:
    """Write ``id::`` into the graph's card blocks that lack one; returns warnings (files
    skipped because they changed, or cannot be rewritten). Other sources: nothing to do."""
    if graph.source != "logseq":
        return []
    specs = collect(graph, CardOptions(card_tags=tuple(card_tags)))
    blocks = [spec.block for spec in specs if is_synthetic(spec.uid)]
    if not blocks:
        return []
    _, warnings = logseq.write_back_ids(graph, blocks)
    return warnings

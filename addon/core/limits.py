"""Every limit on what one sync takes in, stated once, and the check of a card block against
them.

A sync reads files, zips, HTTP answers and notes it did not write. Each limit here bounds the
time or memory one of them may cost, far above what a real graph needs, so that any input ends
in bounded time and memory. The readers and the Roam API client take their limits from here,
and media.py its image limits.

- Past a limit on the source as a whole (a file, a zip, a folder, an HTTP answer), the read
  fails with a SourceError naming the file (or the URL) and the limit: nothing is written.
- Past a limit on one card (``card_problem``: a deck Anki cannot create, nesting past
  ``MAX_DEPTH``, text past ``MAX_BLOCK_CHARS`` or ``MAX_NOTE_CHARS``), that card's block is
  skipped with a warning naming it, and the rest of the graph syncs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import Block

MiB = 1024**2
GiB = 1024**3

# Files, folders and zips ------------------------------------------------------------------

MAX_FILE_BYTES = 1 * GiB  # one export file, note file or zip member
MAX_TOTAL_BYTES = 2 * GiB  # everything one read takes in: a folder's notes, a zip's members
MAX_FILES = 300_000  # files in a notes folder, members in a zip
MAX_FOLDER_DEPTH = 64  # folder levels below a notes folder's root

# One card (its block, the parents and children it shows) -----------------------------------

MAX_DEPTH = 100  # levels from the page down to the deepest block a card shows
MAX_BLOCK_CHARS = 1_000_000  # characters in one block a card shows
MAX_NOTE_CHARS = 2_000_000  # characters in all the blocks one card shows, together
# Anki creates at most this many deck levels at once ("deck nesting level too deep"), so a
# deeper deck:: could be created in no fresh collection.
MAX_DECK_LEVELS = 11

# HTTP: the Roam API ------------------------------------------------------------------------

HTTP_TIMEOUT = 30.0  # seconds to connect, and between two reads of an answer
HTTP_ANSWER_SECONDS = 120.0  # seconds one answer may take, from the request to its last byte
HTTP_ANSWER_BYTES = 256 * MiB  # bytes in one answer
API_READ_SECONDS = 30 * 60.0  # seconds a whole Roam API read may take, waits included
MAX_RETRY_AFTER = 60.0  # seconds the API may ask us to wait; a longer wait ends the read

# HTTP: images ------------------------------------------------------------------------------

IMAGE_BYTES = 20 * MiB  # one image, downloaded or local
IMAGE_TIMEOUT = 15.0  # seconds to connect, and between two reads of an image
IMAGE_ANSWER_FACTOR = 4  # one download attempt may take this many IMAGE_TIMEOUTs in all
IMAGE_RETRY_AFTER = 10.0  # seconds of a server's Retry-After honoured for an image
IMAGE_RETRY_HOURS = 24.0  # a download the server refused is not tried again for this long
IMAGE_RETRY_HOURS_TRANSIENT = 1.0  # nor one that timed out or met a 429 or 5xx


def card_problem(block: Block, ancestors: Sequence[Block], deck: str) -> str | None:
    """Why ``block`` cannot become a note within the limits, or None.

    ``ancestors`` are the block's parents (as ``Block.ancestors`` lists them) and ``deck`` the
    deck it would go to. The blocks below it are walked iteratively and the walk stops at the
    first limit passed, so a card over a subtree of any depth or size costs bounded work.
    """
    levels = deck.count("::") + 1
    if levels > MAX_DECK_LEVELS:
        return (f"its deck {_short(deck)!r} has {levels} levels; Anki creates at most "
                f"{MAX_DECK_LEVELS}")
    depth = len(ancestors) + 1
    if depth > MAX_DEPTH:
        return f"it is nested {depth} levels deep (the limit is {MAX_DEPTH})"
    total = 0
    for shown in ancestors:
        total += len(shown.string)
        if len(shown.string) > MAX_BLOCK_CHARS:
            return _too_long(shown)
    stack: list[tuple[Block, int]] = [(block, depth)]
    while stack:
        shown, level = stack.pop()
        if level > MAX_DEPTH:
            return (f"the blocks below it are nested more than {MAX_DEPTH} levels deep "
                    f"(block {shown.uid})")
        size = len(shown.string)
        if size > MAX_BLOCK_CHARS:
            return _too_long(shown)
        total += size
        if total > MAX_NOTE_CHARS:
            return (f"the blocks it shows hold more than {MAX_NOTE_CHARS:,} characters "
                    "together")
        stack.extend((child, level + 1) for child in shown.children)
    return None


def _too_long(block: Block) -> str:
    return (f"block {block.uid} has {len(block.string):,} characters (the limit is "
            f"{MAX_BLOCK_CHARS:,})")


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

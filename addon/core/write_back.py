"""Which blocks an edit made in Anki goes back to, and the exact text that says it there.

This module's public interface is ``propose``. Given a note's kept Anki edit (sync.py's
``AnkiEdit``: per field, what the notes say and what Anki says), it finds, field by field,
the one block that field shows and the markup that renders to Anki's text (edit_back.py):

- the front (``Front``, or a cloze note's ``Text``) is the card block's own text, without its
  card tag (put back as it was written);
- the back (``Back``, ``Back Extra``) maps back only when it shows one child block that has
  no children of its own;
- anything else (the context, the source, a back assembled from several blocks) is one-way,
  and so is any text a block shows through a ref or an embed: an edit there is kept in Anki
  and reported, never guessed into the notes.

A proposal is checked by rendering the graph with the new text in place, exactly as a sync
renders it (same cloze numbers, same card tags): only text whose rendering gives back what
Anki holds is proposed. Proposing writes nothing; the pipeline writes the edits
(block_writes.py) before it applies the note's update.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from bs4 import BeautifulSoup, Tag

from .apps import APPS, Dialect
from .block_writes import BlockEdit
from .cards import REVERSE_TAG, CardSpec, collect
from .clozes import ClozeMemory
from .config import CardOptions
from .edit_back import block_text
from .editor_html import editor_stable
from .fields import role_of
from .model import Block, Graph
from .note_fields import NoteFields, NoteRenderer
from .render import ImageResolver

_NO_RENDERING = "\x00"  # what a candidate that is no longer this card renders as


@dataclass
class Proposal:
    """The block edits that say a note's Anki edit, what the note is once they are written
    (its spec and rendering with the new text), and why other fields cannot be said."""

    edits: list[BlockEdit] = field(default_factory=list)
    spec: CardSpec | None = None
    fields: NoteFields | None = None
    problems: dict[str, str] = field(default_factory=dict)


def propose(
    graph: Graph, cards: CardOptions, deck: str, spec: CardSpec, memory: ClozeMemory,
    edited: Mapping[str, tuple[str, str]], images: ImageResolver | None = None,
) -> Proposal:
    """``edited``: field -> (what the notes say, what Anki says), for the note of ``spec``."""
    proposal = Proposal()
    app = APPS.get(graph.source)
    dialect: Dialect | None = app.dialect if app is not None else None
    if dialect is None:
        proposal.problems = {name: f"{graph.source} notes cannot be written" for name in edited}
        return proposal
    hidden = (*cards.card_tags, REVERSE_TAG)
    texts: dict[str, str] = {}  # block uid -> its new text
    blocks: dict[str, Block] = {}
    for name, (notes, anki) in edited.items():
        found_target = target(spec, name)
        if isinstance(found_target, str):
            proposal.problems[name] = found_target
            continue
        block, inner = found_target
        shown, held = inner(notes), inner(anki)
        if shown is None or held is None:
            proposal.problems[name] = f"{name} no longer shows one block"
            continue
        if not held.strip():
            proposal.problems[name] = f"{name} was emptied in Anki; a block is not emptied"
            continue

        def render(candidate: str, block: Block = block, name: str = name,
                   inner: Callable[[str], str | None] = inner) -> str:
            fields = render_with(graph, cards, deck, spec, memory, {block: candidate}, images)
            if fields is None:
                return _NO_RENDERING
            return inner(editor_stable(fields.fields[name])) or _NO_RENDERING

        original = texts.get(block.uid, block.string)
        text = block_text(held, shown, original, dialect, render, hidden)
        if text is None:
            proposal.problems[name] = (
                f"{name}: no text in the notes renders exactly as Anki has it (a change to "
                "a ref, an embed, an image or a widget, or formatting the notes cannot say)")
            continue
        texts[block.uid] = text
        blocks[block.uid] = block
    if not texts:
        return proposal
    with _saying({blocks[uid]: text for uid, text in texts.items()}):
        proposal.fields = _rendered(graph, cards, deck, spec, memory, images)
        found = collect(graph, cards, deck, blocks=[spec.block])
    if proposal.fields is None or len(found) != 1:
        proposal.problems.update((n, "the edit would change what the block is")
                                 for n in edited if n not in proposal.problems)
        proposal.fields = None
        return proposal
    proposal.spec = found[0]
    proposal.edits = [BlockEdit(spec.key, uid, blocks[uid].string, text, blocks[uid].page.path)
                      for uid, text in texts.items()]
    return proposal


def render_with(
    graph: Graph, cards: CardOptions, deck: str, spec: CardSpec, memory: ClozeMemory,
    texts: Mapping[Block, str], images: ImageResolver | None = None,
) -> NoteFields | None:
    """The note of ``spec`` as a sync would render it if these blocks said these texts; None
    when the block would no longer be the same kind of card, or one with content."""
    with _saying(texts):
        return _rendered(graph, cards, deck, spec, memory, images)


def target(spec: CardSpec, name: str
           ) -> tuple[Block, Callable[[str], str | None]] | str:
    """The block a field shows, and how to find that block's part in the field's HTML; or
    why the field is one-way."""
    role = role_of(name)
    if role == "main":
        return spec.block, _whole
    if role == "back":
        shown = [c for c in spec.block.children if c.attribute is None]
        if len(shown) != 1 or shown[0].children:
            return f"{name} shows several blocks; only a back of one block is written back"
        return shown[0], single_child
    return f"{name} is made by the bridge, not written in the notes"


def _whole(html: str) -> str | None:
    return html


def single_child(html: str) -> str | None:
    """The inner HTML of a back that lists one block (``<ul class="rb-children"><li>…</li>
    </ul>``), or None when it shows anything else."""
    soup = BeautifulSoup(html, "html.parser")
    top = [n for n in soup.contents if not (isinstance(n, str) and not n.strip())]
    if len(top) != 1 or not isinstance(top[0], Tag) or top[0].name != "ul":
        return None
    items = [n for n in top[0].contents if not (isinstance(n, str) and not n.strip())]
    if len(items) != 1 or not isinstance(items[0], Tag) or items[0].name != "li":
        return None
    if items[0].find(["ul", "ol"]) is not None:
        return None
    return items[0].decode_contents()


def _rendered(graph: Graph, cards: CardOptions, deck: str, spec: CardSpec,
              memory: ClozeMemory, images: ImageResolver | None) -> NoteFields | None:
    """The note as a sync would render it now, or None when the block is no longer the same
    kind of card. A fresh renderer: the run's caches hold the blocks' old texts."""
    found = collect(graph, cards, deck, blocks=[spec.block])
    if len(found) != 1 or found[0].kind != spec.kind:
        return None
    fields = NoteRenderer(graph, cards, images=images).render(found[0], memory)
    return fields if fields.has_content else None


@contextmanager
def _saying(texts: Mapping[Block, str]) -> Iterator[None]:
    """The blocks say these texts for the time of the ``with`` (rendering reads the graph)."""
    before = {block: block.string for block in texts}
    try:
        for block, text in texts.items():
            block.string = text
        yield
    finally:
        for block, text in before.items():
            block.string = text

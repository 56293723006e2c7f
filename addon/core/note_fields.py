"""The renderer step: a CardSpec and what its note remembers -> the note's fields and cloze numbers.

This module's public interface is ``NoteRenderer`` and the ``NoteFields`` it returns. Sync
makes one NoteRenderer per graph and run, and calls ``render`` once for each note it will
write, after it knows that note's memory (the cloze numbers the note's last content used; a
new note has none)::

    renderer = NoteRenderer(graph, options.cards, images=media.resolve)
    note = renderer.render(spec, memory=state.clozes if state else ())
    note.fields       # field name -> HTML, for the note type of spec.kind (no SourceID)
    note.clozes       # the numbers to remember for next time (NoteState.clozes)
    note.has_content  # False for a block that is only its card tag: no note is made
    note.live_ords    # the card ordinals the fields give content to

Guarantees:
- ``render`` is a function of its arguments alone: a spec holds no renderer and no memory,
  and nothing a call learns is written back into it, so the numbers a note keeps never depend
  on which filter happened to render it first. The renderer only caches what is the same for
  every note of the run (rendered blocks, refs, embeds, breadcrumbs).
- Every field is safe HTML (render.py's allow-list), with TeX commands that make links or
  styles defused and Anki's own markup (``[sound:…]``, ``[anki:tts]``, ``[latex]``, ``[$]``,
  ``[$$]``) shown as text, never played or typeset (see ``render.defuse_anki``).
- Only a cloze note's ``Text`` holds live cloze markers; a cloze anywhere else (a child on the
  back, a parent in the breadcrumb, a ref) shows its content, emphasised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .cards import CardSpec, Kind, cloze_syntax, marks_for
from .clozes import ClozeMemory, number_clozes
from .config import CardOptions
from .context import CardContext
from .fields import NOTE_FIELDS, Role
from .fields import name as field_name
from .model import Block, Graph
from .render import ImageResolver, Renderer, defuse_anki, defuse_tex

_CLOZE_NUMBER = re.compile(r"\{\{c(\d+)::")
# Children shown below a card, in levels: deeper ones are cut with a muted "…".
CHILD_LEVELS = 32


@dataclass(frozen=True)
class NoteFields:
    """What one note says: its fields, and the cloze numbers they gave."""

    kind: Kind
    fields: dict[str, str]
    clozes: ClozeMemory = ()

    @property
    def main(self) -> str:
        return self.fields[field_name(self.kind, "main")]

    @property
    def has_content(self) -> bool:
        return bool(self.main.strip())

    @property
    def live_ords(self) -> frozenset[int]:
        """The card ordinals these fields give content to (see the note types' templates)."""
        if self.kind == "cloze":
            # Anki makes no card for c0, and a cloze note always has at least its first.
            numbers = {int(n) for n in _CLOZE_NUMBER.findall(self.main)} - {0}
            return frozenset(n - 1 for n in numbers) or frozenset({0})
        reverse = (self.fields.get(field_name(self.kind, "reverse")) == "y"
                   and bool(self.fields[field_name(self.kind, "back")].strip()))
        return frozenset({0, 1} if reverse else {0})


class NoteRenderer:
    """Renders the cards of one graph for one run. Not thread-safe (see render.Renderer)."""

    def __init__(
        self, graph: Graph, options: CardOptions, images: ImageResolver | None = None,
    ) -> None:
        self.graph = graph
        self.syntax = cloze_syntax(graph, options)
        self.renderer = Renderer(graph, marks=marks_for(graph, options), images=images,
                                 clozes=self.syntax)
        self.context = CardContext(graph, self.renderer, options.context_depth)

    def render(self, spec: CardSpec, memory: ClozeMemory = ()) -> NoteFields:
        """The fields of ``spec``'s note. ``memory``: the cloze numbers the note remembers
        (``NoteState.clozes``), so each cloze keeps its number."""
        with self.renderer.budget():  # one budget of ref HTML for the whole note
            return self._render(spec, memory)

    def _render(self, spec: CardSpec, memory: ClozeMemory) -> NoteFields:
        block, r = spec.block, self.renderer
        back = self._children_html(block)
        context = self.context.field_html(block)
        source = self.context.open_link_html(block)
        clozes: ClozeMemory = ()
        if spec.kind == "cloze":
            numbered = number_clozes(block.string, self.syntax, memory)
            text, clozes = numbered if numbered is not None else (block.string, ())
            main = r.inline(text, page=block.page, cloze=True)
        else:
            main = r.block(block)
        by_role: dict[Role, str] = {"main": main, "back": back, "context": context,
                                    "source": source, "reverse": "y" if spec.reversed else ""}
        # Anki typesets TeX and plays [sound:…] anywhere in a field, not only in our markup.
        safe = {f.name: defuse_anki(defuse_tex(by_role[f.role]))
                for f in NOTE_FIELDS[spec.kind] if f.role in by_role}
        return NoteFields(spec.kind, safe, clozes)

    def _children_html(self, block: Block) -> str:
        """The block's children as nested lists, attribute children left out; built without
        recursion, so an outline nested a thousand deep cannot exhaust the stack."""
        out: list[str] = []
        # A frame: the blocks of one list still to show, last first; its list is open while
        # it is here.
        frames: list[list[Block]] = []
        first = self._shown(block.children)
        if not first:
            return ""
        out.append('<ul class="rb-children">')
        frames.append(first)
        while frames:
            todo = frames[-1]
            if not todo:
                frames.pop()
                out.append("</ul></li>" if frames else "</ul>")
                continue
            child = todo.pop()
            out.append(f"<li>{self.renderer.block(child)}")
            # A {{[[table]]}} block's rendering is its children, as rows.
            below = [] if self.renderer.renders_children(child) else self._shown(child.children)
            if below and len(frames) >= CHILD_LEVELS:
                out.append('<ul class="rb-children"><li><span class="rb-more">…</span></li></ul>')
                below = []
            if below:
                out.append('<ul class="rb-children">')
                frames.append(below)
            else:
                out.append("</li>")
        return "".join(out)

    @staticmethod
    def _shown(children: list[Block]) -> list[Block]:
        """The children a card's back lists, last first."""
        return [c for c in reversed(children) if c.attribute is None and c.string.strip()]

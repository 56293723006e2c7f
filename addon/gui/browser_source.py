"""The Browser: where each note came from, and the way back to its block.

- A "Source" column shows the note's page › parents (what its card's breadcrumb shows). It
  sorts (the Browser hands us the search, and we order the ids by that text) and it searches:
  ``roam-page:"Title"`` finds the notes of a page, ``roam-source:text`` the notes whose
  page › parents mention ``text`` (``*`` is any text, ``_`` one character, as in Anki).
  Both become Anki searches on the Context field before Anki runs the search, so they combine
  with every other search term.
- The sidebar gets a "Roam Bridge" section: each graph, and under it each of its pages.
- The table's context menu: Open in Roam / Logseq / Obsidian, Sync this note's source now,
  and Pin (the notes never overwrite the note) / Unpin.

Everything here reads the collection as it is (the Context field), so it follows undo.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from typing import Any

from anki.cards import CardId
from anki.collection import BrowserColumns, Collection, SearchNode
from anki.errors import NotFoundError
from anki.notes import NoteId
from aqt import gui_hooks, mw
from aqt.browser import Browser, CellRow, Column, ItemId, SearchContext, SidebarItem, SidebarStage
from aqt.browser.sidebar import SidebarItemType
from aqt.operations.tag import add_tags_to_notes, remove_tags_from_notes
from aqt.qt import QMenu, qconnect

from ..core import notetypes
from ..core.anki_compat import db
from ..core.apps import app_name as source_app_name
from ..core.fields import CONTEXT, SOURCE_ID
from ..core.render import plain_text
from ..core.state_tags import PINNED, is_pinned
from .source_links import app_name, block_link, key_of, open_block
from .widgets import add_action

COLUMN_KEY = "roamBridgeSource"
PAGE_TERM = "roam-page"
SOURCE_TERM = "roam-source"
_CRUMBS = re.compile(r'<div class="rb-crumbs">(.*?)</div>', re.S)
_PAGE_TITLE = re.compile(r'rb-page-title"[^>]*>([^<]*)<')
# An Anki search term: "roam-page:…", roam-page:"…" or roam-page:word (\" and \\ escaped).
_TERM = re.compile(
    rf'"({PAGE_TERM}|{SOURCE_TERM}):((?:[^"\\]|\\.)*)"'
    rf'|({PAGE_TERM}|{SOURCE_TERM}):"((?:[^"\\]|\\.)*)"'
    rf'|({PAGE_TERM}|{SOURCE_TERM}):((?:[^\s"()\\]|\\.)+)'
)
_REGEX_SPECIAL = set(".^$*+?()[]{}|\\")


def source_text(context_html: str) -> str:
    """The Context field's breadcrumb as one line: "Page › parent › parent"."""
    found = _CRUMBS.search(context_html)
    return " ".join(plain_text(found.group(1)).split()) if found else ""


class BrowserSource:
    def __init__(self, sync_sources: Callable[[list[str]], None]) -> None:
        # Syncs the sources of the given keys' graphs (the controller's; see gui/__init__).
        self.sync_sources = sync_sources

    def register(self) -> None:
        gui_hooks.browser_did_fetch_columns.append(self.add_column)
        gui_hooks.browser_did_fetch_row.append(self.fill_row)
        gui_hooks.browser_will_search.append(self.will_search)
        gui_hooks.browser_will_build_tree.append(self.build_tree)
        gui_hooks.browser_will_show_context_menu.append(self.context_menu)

    # The column -----------------------------------------------------------------------

    def add_column(self, columns: dict[str, Column]) -> None:
        tip = "Where the note comes from in your notes: page › parent blocks (Roam Bridge)"
        columns[COLUMN_KEY] = Column(
            key=COLUMN_KEY, cards_mode_label="Source", notes_mode_label="Source",
            sorting_cards=BrowserColumns.SORTING_ASCENDING,
            sorting_notes=BrowserColumns.SORTING_ASCENDING,
            uses_cell_font=False, alignment=BrowserColumns.ALIGNMENT_START,
            cards_mode_tooltip=tip, notes_mode_tooltip=tip,
        )

    def fill_row(
        self, item_id: ItemId, is_note: bool, row: CellRow, columns: Sequence[str]
    ) -> None:
        if COLUMN_KEY not in columns:
            return
        col = mw.col
        try:
            nid = NoteId(item_id) if is_note else col.get_card(CardId(item_id)).nid
            note = col.get_note(nid)
        except NotFoundError:
            return  # a row whose note was just deleted: Anki shows it as such
        if key_of(note) is not None and CONTEXT in note:
            row.cells[columns.index(COLUMN_KEY)].text = source_text(note[CONTEXT])

    # Searching and sorting ------------------------------------------------------------

    def will_search(self, context: SearchContext) -> None:
        if context.ids is not None:
            return  # another add-on chose the ids
        context.search = expand_terms(context.search)
        order = context.order
        if isinstance(order, Column) and order.key == COLUMN_KEY:
            notes = context.browser.table.is_notes_mode()
            col = context.browser.col
            found = col.find_notes(context.search) if notes else col.find_cards(context.search)
            context.ids = sorted_by_source(col, found, notes, context.reverse)

    # The sidebar ----------------------------------------------------------------------

    def build_tree(
        self, handled: bool, root: SidebarItem, stage: SidebarStage, browser: Browser
    ) -> bool:
        if stage is not SidebarStage.NOTETYPES:
            return handled
        pages = pages_by_graph(browser.col)
        if not pages:
            return handled
        section = SidebarItem("Roam Bridge", "icons:book-outline.svg",
                              item_type=SidebarItemType.CUSTOM)
        root.add_child(section)
        for prefix, titles in sorted(pages.items()):
            source, graph, _ = prefix.split(":", 2)
            item = SidebarItem(
                f"{graph} ({source_app_name(source)})", "icons:book-outline.svg",
                search_node=SearchNode(parsable_text=f'"{SOURCE_ID}:'
                                       f'{_escape(prefix)}*"'),
                item_type=SidebarItemType.CUSTOM,
            )
            item.tooltip = f"The notes of {graph}; under it, its pages"
            section.add_child(item)
            for title in sorted(titles, key=str.lower):
                item.add_simple(title, "icons:newspaper.svg", SidebarItemType.CUSTOM,
                                SearchNode(parsable_text=page_search(title)))
        return handled

    # The context menu -----------------------------------------------------------------

    def context_menu(self, browser: Browser, menu: QMenu) -> None:
        nids = list(browser.selected_notes())
        if not nids:
            return
        notes = [browser.col.get_note(nid) for nid in nids[:200]]
        ours = [n for n in notes if key_of(n) is not None]
        if not ours:
            return
        menu.addSeparator()
        first = ours[0]
        if len(nids) == 1 and block_link(first):
            action = add_action(menu, f"Open in {app_name(first)}")
            qconnect(action.triggered, lambda: open_block(first))
        keys = [key_of(n) or "" for n in ours]
        label = "Sync this note's source now" if len(ours) == 1 else "Sync these notes' sources now"
        qconnect(add_action(menu, label).triggered, lambda: self.sync_sources(keys))
        pinned = [n.id for n in ours if is_pinned(n.tags)]
        unpinned = [n.id for n in ours if not is_pinned(n.tags)]
        if unpinned:
            pin = add_action(menu, "Pin: your notes never overwrite it")
            qconnect(pin.triggered, lambda: _set_pinned(browser, unpinned, True))
        if pinned:
            unpin = add_action(menu, "Unpin: follow your notes again")
            qconnect(unpin.triggered, lambda: _set_pinned(browser, pinned, False))


def _set_pinned(browser: Browser, nids: list[NoteId], pinned: bool) -> None:
    op = add_tags_to_notes if pinned else remove_tags_from_notes
    op(parent=browser, note_ids=nids, space_separated_tags=PINNED).run_in_background()


# Pure helpers (they read, never write) -----------------------------------------------------


def expand_terms(search: str) -> str:
    """``search`` with our terms replaced by the Context-field searches they stand for."""
    if PAGE_TERM not in search and SOURCE_TERM not in search:
        return search

    def replace(match: re.Match[str]) -> str:
        groups = match.groups()
        term, value = next((groups[i], groups[i + 1]) for i in (0, 2, 4) if groups[i])
        pattern = _pattern(_tokens(value))
        if term == PAGE_TERM:
            return _context_regex(f'rb-page-title"[^>]*>{pattern}</')
        # Inside the breadcrumb's div (it holds no other div), in a text node.
        return _context_regex(f'rb-crumbs">(?:[^<]|<[^/]|</[^d])*?>[^<]*{pattern}')

    return _TERM.sub(replace, search)


def page_search(title: str) -> str:
    """Our search term for the notes of the page ``title`` (taken literally)."""
    return f'"{PAGE_TERM}:{_escape(title)}"'


def _context_regex(pattern: str) -> str:
    # In an Anki regex search only \" is Anki's escape; the rest goes to the regex as is.
    escaped = pattern.replace('"', '\\"')
    return f'("{CONTEXT}:re:{escaped}" "{SOURCE_ID}:_*")'


def _pattern(tokens: list[tuple[str, bool]]) -> str:
    """A regex for a search value as the Context field holds it (HTML-escaped), unescaped
    ``*`` and ``_`` being Anki's wildcards; Anki's regex searches ignore case."""
    parts: list[str] = []
    for char, literal in tokens:
        if not literal and char == "*":
            parts.append("[^<]*")
        elif not literal and char == "_":
            parts.append("[^<]")
        elif char == '"':
            parts.append('(?:"|&quot;)')
        elif char == "'":
            parts.append("(?:'|&#x27;)")
        else:
            escaped = html.escape(char, quote=False)
            parts.append("".join("\\" + c if c in _REGEX_SPECIAL else c for c in escaped))
    return "".join(parts)


def _tokens(value: str) -> list[tuple[str, bool]]:
    """The characters of a search value as Anki reads it (a backslash escapes the next one),
    each with whether it was escaped, so taken literally."""
    tokens: list[tuple[str, bool]] = []
    i = 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            tokens.append((value[i + 1], True))
            i += 2
        else:
            tokens.append((value[i], False))
            i += 1
    return tokens


def _escape(text: str) -> str:
    return re.sub(r'([\\"*_:()-])', r"\\\1", text)


def _managed_rows(col: Collection, with_cards: bool) -> list[tuple[int, str, str]]:
    """``(note or card id, key, Context)`` of every note of ours: one query per note type."""
    rows: list[tuple[int, str, str]] = []
    for nt in notetypes.find(col).values():
        names = [f["name"] for f in nt["flds"]]
        if CONTEXT not in names:
            continue
        key_at, context_at = names.index(SOURCE_ID), names.index(CONTEXT)
        source = ("cards c join notes n on c.nid = n.id" if with_cards else "notes n")
        ident = "c.id" if with_cards else "n.id"
        rows.extend((int(i), str(k), str(c)) for i, k, c in db(col).all(
            f"select {ident}, field_at_index(n.flds, {key_at}), "
            f"field_at_index(n.flds, {context_at}) from {source} where n.mid = ?", nt["id"]))
    return rows


def sorted_by_source(
    col: Collection, ids: Sequence[Any], notes: bool, reverse: bool
) -> list[Any]:
    """``ids`` ordered by their Source column's text; notes not of ours come last."""
    texts = {item: source_text(context).lower()
             for item, _, context in _managed_rows(col, with_cards=not notes)}
    ordered = sorted(ids, key=lambda i: (i not in texts, texts.get(i, "")))
    return ordered[::-1] if reverse else ordered


def pages_by_graph(col: Collection) -> dict[str, set[str]]:
    """Each graph's key prefix (``roam:graph:``) with the titles of its notes' pages."""
    pages: dict[str, set[str]] = {}
    for _, key, context in _managed_rows(col, with_cards=False):
        if key.count(":") < 2:
            continue
        source, graph, _ = key.strip().split(":", 2)
        titles = pages.setdefault(f"{source}:{graph}:", set())
        title = _PAGE_TITLE.search(context)
        if title:
            titles.add(html.unescape(title.group(1)))
    return pages

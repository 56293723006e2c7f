"""The notes apps a graph comes from: Roam, Logseq, Obsidian. One entry each, asked by all.

An app is what a source format's notes belong to (several formats share one: Roam's JSON,
EDN and Markdown exports and its two APIs are all "roam"). Its ``source`` is ``Graph.source``
and the first part of every note key (``roam:<graph>:<uid>``); the entry says how the app is
named on screen, how a link that opens one of its blocks is built, which URL schemes such
links use, and which Markdown dialect its notes are written in.

Guarantees: every link an app's ``link`` builds starts with one of its ``schemes``; this
module imports nothing of the project's, so the bottom layer (model.py) may ask it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import quote

Dialect = Literal["roam", "logseq", "obsidian"]


class PageRef(Protocol):
    """What a link needs of a page (model.Page has it)."""

    title: str
    uid: str
    path: str


# (block or page uid the app knows, or "" for a synthetic one; whether it is a block's; the
# block's page) -> the link, for one graph (its name already bound).
Linker = Callable[[str, bool, "PageRef | None"], str]


@dataclass(frozen=True)
class App:
    source: str
    name: str
    # URL prefixes of the links ``link`` builds (what a screen may open as this app's).
    schemes: tuple[str, ...]
    # The graph's name -> its linker; see Linker.
    linker: Callable[[str], Linker]
    dialect: Dialect
    # The app's own URL scheme, which links in its notes' text may use (``logseq://…``).
    url_scheme: str
    # Written in (CommonMark-like) Markdown: ``$math$``, ``*italic*``, ``[[page|alias]]``
    # and ``~~~`` fences are its syntax, not Roam's.
    markdown: bool
    # ``key:: value`` lines under a block's first line are the block's properties (Logseq),
    # not text.
    block_properties: bool = False


def _roam(graph: str) -> Linker:
    base = f"https://roamresearch.com/#/app/{quote(graph)}"  # Roam keeps "/" in this part

    def link(uid: str, block: bool, page: PageRef | None) -> str:
        if uid:
            return f"{base}/page/{quote(uid)}"
        # A block Roam does not know (a Markdown export's): open its page, if Roam knows it.
        return f"{base}/page/{quote(page.uid)}" if page is not None and page.uid else base

    return link


def _logseq(graph: str) -> Linker:
    base = f"logseq://graph/{quote(graph, safe='')}"

    def link(uid: str, block: bool, page: PageRef | None) -> str:
        if uid and block:
            return f"{base}?block-id={quote(uid, safe='')}"
        return f"{base}?page={quote(page.title, safe='')}" if page is not None else base

    return link


def _obsidian(graph: str) -> Linker:
    vault = quote(graph, safe="")

    def link(uid: str, block: bool, page: PageRef | None) -> str:
        if page is None:
            return ""
        file = page.path.removesuffix(".md") or page.title
        if uid and block:
            file = f"{file}#^{uid}"
        return f"obsidian://open?vault={vault}&file={quote(file, safe='')}"

    return link


APPS: dict[str, App] = {app.source: app for app in (
    App("roam", "Roam", ("https://roamresearch.com/",), _roam, "roam", "roam",
        markdown=False),
    App("logseq", "Logseq", ("logseq://",), _logseq, "logseq", "logseq", markdown=True,
        block_properties=True),
    App("obsidian", "Obsidian", ("obsidian://",), _obsidian, "obsidian", "obsidian",
        markdown=True),
)}
SOURCES: tuple[str, ...] = tuple(APPS)
MARKDOWN_DIALECTS: tuple[str, ...] = tuple(a.source for a in APPS.values() if a.markdown)
# A regex group of the URL schemes a note's text may link with: the web's and the apps'.
TEXT_URL_SCHEMES = "(?:https?|{})".format("|".join(a.url_scheme for a in APPS.values()))
_WEB = ("https://", "http://")
# What a link on a card or screen may open: the web, and the apps' own schemes.
LINK_SCHEMES: tuple[str, ...] = (
    *_WEB, *(s for a in APPS.values() for s in a.schemes if not s.startswith(_WEB)))


def app_name(source: str) -> str:
    """The app's name for "Open in …"; "your notes" for a source no app has."""
    app = APPS.get(source)
    return app.name if app is not None else "your notes"

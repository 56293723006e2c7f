"""Typed configuration with validation and clear errors.

The add-on's config.json and the CLI's flags both end up as these dataclasses. ``load_config``
accepts the add-on's dict (unknown keys are kept out, wrong types raise ConfigError naming the
key). Every default is in one place, the add-on's ``config.json`` (``DEFAULTS``): the
dataclasses, ``load_config`` and the settings dialog all read it. A source's settings, which
live in the profile, not in config.json, have their defaults in ``SourceConfig``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .sources.registry import KINDS

# The add-on's config.json: the defaults of every setting it holds.
DEFAULTS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parent.parent / "config.json").read_text(encoding="utf-8"))

OnRemoved = Literal["suspend", "delete", "keep"]
ON_REMOVED = ("suspend", "delete", "keep")
# What a sync does with a note edited both in Anki and in the notes: leave both as they are
# (and report it), let the notes win, or let Anki win.
OnConflict = Literal["keep", "notes", "anki"]
ON_CONFLICT = ("keep", "notes", "anki")
DEFAULT_CARD_TAGS: tuple[str, ...] = tuple(DEFAULTS["card_tags"])
DEFAULT_DECK: str = DEFAULTS["default_deck"]


class ConfigError(ValueError):
    """A config value has the wrong type or an unknown value. The message names the key."""


@dataclass(frozen=True)
class CardOptions:
    """What makes a block a card and how it is shown."""

    card_tags: tuple[str, ...] = DEFAULT_CARD_TAGS
    default_deck: str = DEFAULT_DECK
    highlight_cloze: bool = DEFAULTS["highlight_cloze"]
    # Parent blocks in the card's breadcrumb: None for all, 0 for the page only.
    context_depth: int | None = (None if DEFAULTS["context_depth"] == "all"
                                 else DEFAULTS["context_depth"])
    # The bare {x} cloze shorthand (a source's brace_clozes): off, as ordinary text has braces.
    brace_clozes: bool = False

    def fingerprint(self) -> str:
        tags = sorted(t.lower() for t in self.card_tags)
        return f"{tags}|{self.highlight_cloze}|{self.context_depth}|{self.brace_clozes}"


SOURCE_KINDS = ("auto", *KINDS)
DEFAULT_POLL_INTERVAL: int = DEFAULTS["poll_interval"]


@dataclass(frozen=True)
class SourceConfig:
    """One source. ``include``/``exclude`` are glob patterns on note paths (folder sources);
    ``write_ids`` lets the bridge write ``id::`` into Logseq card blocks that have none;
    ``brace_clozes`` reads ``{x}`` in a card block as a cloze (see clozes.py);
    ``write_back`` writes edits made in Anki back into the notes (see write_back.py)."""

    path: str
    kind: str = "auto"
    graph: str = ""
    deck: str = ""
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    write_ids: bool = False
    brace_clozes: bool = False
    write_back: bool = False


SOURCE_DEFAULTS = SourceConfig(path="")


@dataclass(frozen=True)
class SyncOptions:
    """How one source is synced: which blocks are cards, and how the run treats the collection.

    ``deck`` is the source's deck (``--deck`` / ``sources[].deck``), used when no ``deck::``
    attribute applies.
    """

    cards: CardOptions = field(default_factory=CardOptions)
    deck: str = ""
    on_removed: OnRemoved = "suspend"
    force: bool = False
    # Download images into Anki's media (else cards keep linking to them).
    download_images: bool = True
    on_conflict: OnConflict = "keep"
    # Write edits made in Anki back into the notes, where the source can be written.
    write_back: bool = False
    # Per note key, how the user settled its conflict this time ("notes" or "anki").
    resolutions: tuple[tuple[str, OnConflict], ...] = ()


@dataclass(frozen=True)
class Config:
    sources: tuple[SourceConfig, ...] = ()
    cards: CardOptions = field(default_factory=CardOptions)
    on_removed: OnRemoved = DEFAULTS["on_removed"]
    on_conflict: OnConflict = DEFAULTS["on_conflict"]
    sync_on_startup: bool = DEFAULTS["sync_on_startup"]
    watch: bool = DEFAULTS["watch"]
    show_nearby: bool = DEFAULTS["show_nearby"]
    panel_collapsed: bool = DEFAULTS["panel_collapsed"]
    roam_api_token: str = ""  # a profile's, never in config.json
    roam_api_base_url: str = DEFAULTS["roam_api_base_url"]
    download_images: bool = DEFAULTS["download_images"]
    # After a sync that wrote something, sync with AnkiWeb (as the Sync button does).
    push_to_ankiweb: bool = DEFAULTS["push_to_ankiweb"]
    # Roam desktop tokens by graph ("GRAPH" or "GRAPH?type=offline"), kept per profile.
    roam_local_tokens: dict[str, str] = field(default_factory=dict)
    # Seconds between polls of API sources while Anki is open; 0: never poll.
    poll_interval: int = DEFAULT_POLL_INTERVAL


def load_config(raw: dict[str, Any]) -> Config:
    """Validate the add-on's config dict; defaults fill anything missing."""
    if not isinstance(raw, dict):
        raise ConfigError("config must be a JSON object")
    card_tags = raw.get("card_tags", DEFAULTS["card_tags"])
    if not isinstance(card_tags, list) or not card_tags or not all(
        isinstance(t, str) and t.strip() for t in card_tags
    ):
        raise ConfigError("card_tags must be a list of one or more tag names")
    on_removed = _typed(raw, "on_removed", str)
    if on_removed not in ON_REMOVED:
        raise ConfigError(f"on_removed must be one of {', '.join(ON_REMOVED)}")
    on_conflict = _typed(raw, "on_conflict", str)
    if on_conflict not in ON_CONFLICT:
        raise ConfigError(f"on_conflict must be one of {', '.join(ON_CONFLICT)}")
    sources = raw.get("sources", [])
    if not isinstance(sources, list):
        raise ConfigError("sources must be a list")
    tokens = raw.get("roam_local_tokens") or {}
    if not isinstance(tokens, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tokens.items()
    ):
        raise ConfigError("roam_local_tokens must map graph names to tokens")
    poll = raw.get("poll_interval", DEFAULT_POLL_INTERVAL)
    if poll is None:
        poll = DEFAULT_POLL_INTERVAL
    if not isinstance(poll, int) or isinstance(poll, bool) or poll < 0 or 0 < poll < 5:
        raise ConfigError("poll_interval must be a whole number of seconds, at least 5 "
                          "(0: never poll)")
    depth = raw.get("context_depth", DEFAULTS["context_depth"])
    if depth not in (None, "all") and (
        not isinstance(depth, int) or isinstance(depth, bool) or depth < 0
    ):
        raise ConfigError('context_depth must be "all" or a whole number of parents (0: page)')
    return Config(
        sources=tuple(_source(s, i) for i, s in enumerate(sources)),
        cards=CardOptions(
            card_tags=tuple(t.strip() for t in card_tags),
            default_deck=_typed(raw, "default_deck", str) or DEFAULT_DECK,
            highlight_cloze=_typed(raw, "highlight_cloze", bool),
            context_depth=None if depth in (None, "all") else depth,
        ),
        on_removed=on_removed,
        on_conflict=on_conflict,
        sync_on_startup=_typed(raw, "sync_on_startup", bool),
        watch=_typed(raw, "watch", bool),
        show_nearby=_typed(raw, "show_nearby", bool),
        panel_collapsed=_typed(raw, "panel_collapsed", bool),
        roam_api_token=_typed(raw, "roam_api_token", str, ""),
        roam_api_base_url=_typed(raw, "roam_api_base_url", str),
        download_images=_typed(raw, "download_images", bool),
        push_to_ankiweb=_typed(raw, "push_to_ankiweb", bool),
        roam_local_tokens=dict(tokens),
        poll_interval=poll,
    )


def _source(raw: Any, index: int) -> SourceConfig:
    if not isinstance(raw, dict) or not isinstance(raw.get("path"), str) or not raw["path"]:
        raise ConfigError(f"sources[{index}] needs a non-empty 'path'")
    prefix = f"sources[{index}]."
    kind = _typed(raw, "kind", str, SOURCE_DEFAULTS.kind, prefix)
    if kind not in SOURCE_KINDS:
        raise ConfigError(f"{prefix}kind must be one of {', '.join(SOURCE_KINDS)}")
    return SourceConfig(
        path=raw["path"],
        kind=kind,
        graph=_typed(raw, "graph", str, SOURCE_DEFAULTS.graph, prefix),
        deck=_typed(raw, "deck", str, SOURCE_DEFAULTS.deck, prefix),
        include=_patterns(raw, "include", prefix),
        exclude=_patterns(raw, "exclude", prefix),
        write_ids=_typed(raw, "write_ids", bool, SOURCE_DEFAULTS.write_ids, prefix),
        brace_clozes=_typed(raw, "brace_clozes", bool, SOURCE_DEFAULTS.brace_clozes, prefix),
        write_back=_typed(raw, "write_back", bool, SOURCE_DEFAULTS.write_back, prefix),
    )


def _patterns(raw: dict[str, Any], key: str, prefix: str) -> tuple[str, ...]:
    value = raw.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{prefix}{key} must be a list of glob patterns")
    return tuple(value)


def _typed(raw: dict[str, Any], key: str, kind: type, default: Any = None, prefix: str = ""
           ) -> Any:
    """``raw[key]``, checked to be a ``kind``; missing, the default (``DEFAULTS[key]`` for
    a top-level setting)."""
    if default is None and not prefix:
        default = DEFAULTS[key]
    value = raw.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise ConfigError(f"{prefix}{key} must be a {kind.__name__}")
    return value

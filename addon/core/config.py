"""Typed configuration with validation and clear errors.

The add-on's config.json and the CLI's flags both end up as these dataclasses. ``load_config``
accepts the add-on's dict (unknown keys are kept out, wrong types raise ConfigError naming the
key), so the GUI and the CLI share one source of truth for defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

OnRemoved = Literal["suspend", "delete", "keep"]
ON_REMOVED = ("suspend", "delete", "keep")
DEFAULT_CARD_TAGS = ("card", "flashcard", "anki")
DEFAULT_DECK = "Roam"


class ConfigError(ValueError):
    """A config value has the wrong type or an unknown value. The message names the key."""


@dataclass(frozen=True)
class CardOptions:
    """What makes a block a card and how it is shown."""

    card_tags: tuple[str, ...] = DEFAULT_CARD_TAGS
    default_deck: str = DEFAULT_DECK
    highlight_cloze: bool = False
    # Parent blocks in the card's breadcrumb: None for all, 0 for the page only.
    context_depth: int | None = None

    def fingerprint(self) -> str:
        tags = sorted(t.lower() for t in self.card_tags)
        return f"{tags}|{self.highlight_cloze}|{self.context_depth}"


SOURCE_KINDS = (
    "auto", "roam-json", "roam-edn", "roam-markdown", "logseq", "obsidian", "roam-api",
)


@dataclass(frozen=True)
class SourceConfig:
    """One source. ``include``/``exclude`` are glob patterns on note paths (folder sources);
    ``write_ids`` lets the bridge write ``id::`` into Logseq card blocks that have none."""

    path: str
    kind: str = "auto"
    graph: str = ""
    deck: str = ""
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    write_ids: bool = False


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


@dataclass(frozen=True)
class Config:
    sources: tuple[SourceConfig, ...] = ()
    cards: CardOptions = field(default_factory=CardOptions)
    on_removed: OnRemoved = "suspend"
    sync_on_startup: bool = True
    watch: bool = True
    show_nearby: bool = True
    panel_collapsed: bool = False
    roam_api_token: str = ""
    roam_api_base_url: str = "https://api.roamresearch.com"
    download_images: bool = True


def load_config(raw: dict[str, Any]) -> Config:
    """Validate the add-on's config dict; defaults fill anything missing."""
    if not isinstance(raw, dict):
        raise ConfigError("config must be a JSON object")
    card_tags = raw.get("card_tags", list(DEFAULT_CARD_TAGS))
    if not isinstance(card_tags, list) or not card_tags or not all(
        isinstance(t, str) and t.strip() for t in card_tags
    ):
        raise ConfigError("card_tags must be a list of one or more tag names")
    on_removed = _typed(raw, "on_removed", str, "suspend")
    if on_removed not in ON_REMOVED:
        raise ConfigError(f"on_removed must be one of {', '.join(ON_REMOVED)}")
    sources = raw.get("sources", [])
    if not isinstance(sources, list):
        raise ConfigError("sources must be a list")
    depth = raw.get("context_depth", "all")
    if depth not in (None, "all") and (
        not isinstance(depth, int) or isinstance(depth, bool) or depth < 0
    ):
        raise ConfigError('context_depth must be "all" or a whole number of parents (0: page)')
    return Config(
        sources=tuple(_source(s, i) for i, s in enumerate(sources)),
        cards=CardOptions(
            card_tags=tuple(t.strip() for t in card_tags),
            default_deck=_typed(raw, "default_deck", str, DEFAULT_DECK) or DEFAULT_DECK,
            highlight_cloze=_typed(raw, "highlight_cloze", bool, False),
            context_depth=None if depth in (None, "all") else depth,
        ),
        on_removed=on_removed,  # type: ignore[arg-type]
        sync_on_startup=_typed(raw, "sync_on_startup", bool, True),
        watch=_typed(raw, "watch", bool, True),
        show_nearby=_typed(raw, "show_nearby", bool, True),
        panel_collapsed=_typed(raw, "panel_collapsed", bool, False),
        roam_api_token=_typed(raw, "roam_api_token", str, ""),
        roam_api_base_url=_typed(raw, "roam_api_base_url", str, "https://api.roamresearch.com"),
        download_images=_typed(raw, "download_images", bool, True),
    )


def _source(raw: Any, index: int) -> SourceConfig:
    if not isinstance(raw, dict) or not isinstance(raw.get("path"), str) or not raw["path"]:
        raise ConfigError(f"sources[{index}] needs a non-empty 'path'")
    prefix = f"sources[{index}]."
    kind = _typed(raw, "kind", str, "auto", prefix)
    if kind not in SOURCE_KINDS:
        raise ConfigError(f"{prefix}kind must be one of {', '.join(SOURCE_KINDS)}")
    return SourceConfig(
        path=raw["path"],
        kind=kind,
        graph=_typed(raw, "graph", str, "", prefix),
        deck=_typed(raw, "deck", str, "", prefix),
        include=_patterns(raw, "include", prefix),
        exclude=_patterns(raw, "exclude", prefix),
        write_ids=_typed(raw, "write_ids", bool, False, prefix),
    )


def _patterns(raw: dict[str, Any], key: str, prefix: str) -> tuple[str, ...]:
    value = raw.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{prefix}{key} must be a list of glob patterns")
    return tuple(value)


def _typed(raw: dict[str, Any], key: str, kind: type, default: Any, prefix: str = "") -> Any:
    value = raw.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise ConfigError(f"{prefix}{key} must be a {kind.__name__}")
    return value

"""Tools > Roam Bridge > Settings… (also the add-on's Config button): every option of
config.md, each with its help, and "Connect to Roam desktop…" (live.connect_desktop: the token
comes from Roam's permission dialog and is kept for the profile, never shown).

- Sources: each source's path, kind, graph and deck, and the fields that apply to its kind
  only (include/exclude for an Obsidian vault, write ids for a Logseq graph, the API token and
  address for a Roam API graph); the others are hidden.
- Cards, syncing and the reviewer: the other options, with a line of help under each; Help
  shows config.md in full.

Nothing is written until OK: the settings are validated with the same ``load_config`` the
engine uses, and an API source needs its token first. The dialog reads and writes only
through the ``raw``/``save`` it is given (the controller's), so where settings are kept is
not its business. The token field never shows the token.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import markdown
from aqt.main import AnkiQt
from aqt.qt import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
    qconnect,
)
from aqt.utils import askUser, getText, showWarning, tooltip

from ..core.config import (
    DEFAULT_POLL_INTERVAL,
    DEFAULTS,
    ON_CONFLICT,
    ON_REMOVED,
    SOURCE_KINDS,
    ConfigError,
)
from ..core.model import SourceError
from ..core.sources import roam_api, roam_local
from ..core.sources.detect import default_graph_name, detect_kind
from ..core.sources.registry import FORMATS
from .live import connect_desktop

DEPTHS = (("All parent blocks", "all"), ("The page only", 0), ("The nearest parent", 1),
          ("The nearest 2 parents", 2), ("The nearest 3 parents", 3))
REMOVED = {"suspend": "Suspend it and tag it roam::orphaned (restored if the block returns)",
           "keep": "Keep it as it is, tagged roam::orphaned",
           "delete": "Delete the note and its review history"}
CONFLICT = {"keep": "Keep both as they are and list it, until I choose (tagged roam::conflict)",
            "notes": "Let the notes win", "anki": "Let Anki win (written back where it can be)"}
KIND_LABELS = {"auto": "Detect from the path", **{k: f.label for k, f in FORMATS.items()}}
# The per-source fields that not every kind has, by the setting each edits (which kinds have
# it is the registry's: Format.applies).
KIND_FIELDS = {"include": "include", "exclude": "exclude", "write_ids": "write_ids",
               "write_back": "write_back", "token": "roam_api_token",
               "base_url": "roam_api_base_url"}
SAVE = Callable[[dict[str, Any]], None]


def help_label(text: str, parent: QWidget) -> QLabel:
    label = QLabel(text, parent)
    label.setWordWrap(True)
    label.setStyleSheet("color: palette(placeholder-text); font-size: 11px;")
    return label


class SettingsDialog(QDialog):
    def __init__(self, mw: AnkiQt, raw: dict[str, Any], save: SAVE,
                 help_file: Path | None = None) -> None:
        super().__init__(mw)
        self.setWindowTitle("Roam Bridge settings")
        self.resize(640, 620)
        self.raw = dict(raw)
        self.save = save
        self.mw = mw
        self.help_file = help_file
        self.sources: list[dict[str, Any]] = [dict(s) for s in raw.get("sources", [])]
        self.local_tokens: dict[str, str] = dict(raw.get("roam_local_tokens") or {})
        self._kinds: dict[str, str] = {}
        self._showing = False
        layout = QVBoxLayout(self)
        self.tabs = QTabWidget(self)
        layout.addWidget(self.tabs)
        self.tabs.addTab(self._sources_tab(raw), "Sources")
        self.tabs.addTab(self._cards_tab(raw), "Cards")
        self.tabs.addTab(self._syncing_tab(raw), "Syncing")
        self.tabs.addTab(self._reviewer_tab(raw), "Reviewer")

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.Help, self
        )
        qconnect(buttons.accepted, self._accept)
        qconnect(buttons.rejected, self.reject)
        qconnect(buttons.helpRequested, self._show_help)
        layout.addWidget(buttons)
        self._refresh_list()

    # Tabs -------------------------------------------------------------------------------

    def _sources_tab(self, raw: dict[str, Any]) -> QWidget:
        tab = QWidget(self)
        layout = QVBoxLayout(tab)
        layout.addWidget(help_label(
            "What to sync: a Roam export file, the folder your browser saves Roam-Export-….zip "
            "files to (its newest is used), a Logseq graph or Obsidian vault folder, or a Roam "
            "graph through the API.", tab))
        self.source_list = QListWidget(tab)
        qconnect(self.source_list.currentRowChanged, self._show_source)
        layout.addWidget(self.source_list)
        row = QHBoxLayout()
        for label, handler in (("Add export file…", self._add_file),
                               ("Add folder…", self._add_folder),
                               ("Add Roam API graph…", self._add_api),
                               ("Connect to Roam desktop…", self._connect_desktop),
                               ("Remove", self._remove)):
            button = QPushButton(label, tab)
            qconnect(button.clicked, handler)
            row.addWidget(button)
        layout.addLayout(row)

        self.source_form = form = QFormLayout()
        self.kind = QComboBox(tab)
        for kind in SOURCE_KINDS:
            self.kind.addItem(KIND_LABELS.get(kind, kind), kind)
        self.graph = QLineEdit(tab)
        self.graph.setPlaceholderText("your graph's name, as in its Roam URL")
        self.deck = QLineEdit(tab)
        self.deck.setPlaceholderText("optional")
        self.include = QLineEdit(tab)
        self.include.setPlaceholderText("e.g. Study/**, Notes/*.md")
        self.exclude = QLineEdit(tab)
        self.exclude.setPlaceholderText("e.g. Archive/**")
        self.write_ids = QCheckBox("Write id:: into Logseq card blocks that have none", tab)
        self.write_back = QCheckBox("Write edits made in Anki back into these notes", tab)
        self.token = QLineEdit(raw.get("roam_api_token", ""), tab)
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("needed for an API graph (Roam: Settings > Graph > API)")
        self.base_url = QLineEdit(
            raw.get("roam_api_base_url") or DEFAULTS["roam_api_base_url"], tab)
        for widget, tip in (
            (self.kind, "The source's format; detected from the path unless you name it."),
            (self.graph, "Part of every card's identity and of its link back: set it once "
                         "and keep it. For Roam, the name in roamresearch.com/#/app/<graph>."),
            (self.deck, "The deck for this source's cards that no deck:: attribute places."),
            (self.include, "Only the vault's notes whose path matches one of these globs "
                           "(** spans folders), comma-separated."),
            (self.exclude, "Skip the vault's notes whose path matches one of these globs."),
            (self.write_ids, "Without it, Roam Bridge never writes into your notes folder."),
            (self.write_back, "A card's front (its block), a cloze's text, or a back of one "
                              "block, edited in Anki, is written into the block. Without it, "
                              "edits made in Anki are kept and listed, never overwritten."),
            (self.token, "Kept out of reports and logs; never shown here."),
            (self.base_url, "The Roam backend API's address; change it only for a proxy."),
        ):
            widget.setToolTip(tip)
        qconnect(self.kind.currentIndexChanged, self._edit_source)
        for line in (self.graph, self.deck, self.include, self.exclude):
            qconnect(line.textEdited, self._edit_source)
        qconnect(self.write_ids.toggled, self._edit_source)
        qconnect(self.write_back.toggled, self._edit_source)
        form.addRow("Kind", self.kind)
        form.addRow("Graph name", self.graph)
        form.addRow("Deck", self.deck)
        form.addRow("Include", self.include)
        form.addRow("Exclude", self.exclude)
        form.addRow(self.write_ids)
        form.addRow(self.write_back)
        form.addRow("Roam API token", self.token)
        form.addRow("API address", self.base_url)
        layout.addLayout(form)
        self.source_help = help_label("", tab)
        layout.addWidget(self.source_help)
        return tab

    def _cards_tab(self, raw: dict[str, Any]) -> QWidget:
        tab, form = self._form_tab()
        self.card_tags = QLineEdit(", ".join(raw.get("card_tags", DEFAULTS["card_tags"])), tab)
        self._row(form, "Card tags", self.card_tags,
                  "A block carrying one of these tags (#card, #[[card]] or [[card]]) becomes "
                  "a card. Comma-separated.")
        self.default_deck = QLineEdit(raw.get("default_deck", DEFAULTS["default_deck"]), tab)
        self._row(form, "Default deck", self.default_deck,
                  "For cards that neither your notes (deck::) nor their source place.")
        self.highlight = QCheckBox("^^Highlighted^^ and ==highlighted== text is a cloze", tab)
        self.highlight.setChecked(bool(raw.get("highlight_cloze", DEFAULTS["highlight_cloze"])))
        self._row(form, None, self.highlight, "Off: highlights stay highlights.")
        self.depth_box = QComboBox(tab)
        for label, value in DEPTHS:
            self.depth_box.addItem(label, value)
        current = raw.get("context_depth", DEFAULTS["context_depth"])
        if current not in [value for _, value in DEPTHS] and isinstance(current, int):
            self.depth_box.addItem(f"The nearest {current} parents", current)
        values = [self.depth_box.itemData(i) for i in range(self.depth_box.count())]
        self.depth_box.setCurrentIndex(values.index(current) if current in values else 0)
        self._row(form, "Parents on the card", self.depth_box,
                  "How much of page › parent › parent the card's breadcrumb shows; the "
                  "reviewer's panel shows the rest.")
        self.on_removed = QComboBox(tab)
        for value in ON_REMOVED:
            self.on_removed.addItem(REMOVED.get(value, value), value)
        self.on_removed.setCurrentIndex(max(0, self.on_removed.findData(
            raw.get("on_removed", DEFAULTS["on_removed"]))))
        self._row(form, "When a block is gone", self.on_removed,
                  "What happens to a card whose block disappears or loses its tag.")
        self.on_conflict = QComboBox(tab)
        for value in ON_CONFLICT:
            self.on_conflict.addItem(CONFLICT.get(value, value), value)
        self.on_conflict.setCurrentIndex(max(0, self.on_conflict.findData(
            raw.get("on_conflict", DEFAULTS["on_conflict"]))))
        self._row(form, "Edited on both sides", self.on_conflict,
                  "A note edited in Anki whose block was edited too. Tools > Roam Bridge > "
                  "Conflicts and Anki edits… settles each one.")
        self.images = QCheckBox("Download images into Anki", tab)
        self.images.setChecked(bool(raw.get("download_images", DEFAULTS["download_images"])))
        self._row(form, None, self.images,
                  "Cards then show them offline and on every device; off, cards link to them.")
        return tab

    def _syncing_tab(self, raw: dict[str, Any]) -> QWidget:
        tab, form = self._form_tab()
        self.startup = QCheckBox("Sync in the background when the profile opens", tab)
        self.startup.setChecked(bool(raw.get("sync_on_startup", DEFAULTS["sync_on_startup"])))
        self._row(form, None, self.startup,
                  "Also after each AnkiWeb sync, so notes from another device are matched.")
        self.watch = QCheckBox("Sync again when a source changes", tab)
        self.watch.setChecked(bool(raw.get("watch", DEFAULTS["watch"])))
        self._row(form, None, self.watch,
                  "A moment after an export is saved (or a new Roam-Export-….zip lands) or a "
                  "note in a notes folder changes. The Roam API is not watched.")
        self.push = QCheckBox("Sync with AnkiWeb after a sync that changed cards", tab)
        self.push.setChecked(bool(raw.get("push_to_ankiweb", DEFAULTS["push_to_ankiweb"])))
        self._row(form, None, self.push,
                  "New cards reach your phone without another click. Needs an AnkiWeb login.")
        self.poll = QSpinBox(tab)
        self.poll.setRange(0, 3600)
        self.poll.setSuffix(" s")
        self.poll.setSpecialValueText("never")
        poll = raw.get("poll_interval", DEFAULTS["poll_interval"])
        self.poll.setValue(poll if isinstance(poll, int) else DEFAULT_POLL_INTERVAL)
        self._row(form, "Check Roam graphs every", self.poll,
                  "While Anki is open, Roam API and Roam desktop graphs are asked what changed "
                  "(a quiet check is one small request); an edit reaches the card within it.")
        return tab

    def _reviewer_tab(self, raw: dict[str, Any]) -> QWidget:
        tab, form = self._form_tab()
        self.nearby = QCheckBox("Show the blocks just before and after", tab)
        self.nearby.setChecked(bool(raw.get("show_nearby", DEFAULTS["show_nearby"])))
        self._row(form, None, self.nearby,
                  "In the context panel below the answer (desktop only).")
        self.collapsed = QCheckBox("Start with the context panel collapsed", tab)
        self.collapsed.setChecked(bool(raw.get("panel_collapsed", DEFAULTS["panel_collapsed"])))
        self._row(form, None, self.collapsed,
                  "Press C in the reviewer to open or close it; Anki remembers your choice.")
        return tab

    def _form_tab(self) -> tuple[QWidget, QFormLayout]:
        tab = QWidget(self)
        form = QFormLayout(tab)
        return tab, form

    @staticmethod
    def _row(form: QFormLayout, label: str | None, widget: QWidget, help_text: str) -> None:
        widget.setToolTip(help_text)
        if label is None:
            form.addRow(widget)
        else:
            form.addRow(label, widget)
        form.addRow(help_label(help_text, widget.parentWidget() or widget))

    # Sources ----------------------------------------------------------------------------

    def _refresh_list(self, select: int = 0) -> None:
        self.source_list.clear()
        for source in self.sources:
            graph = source.get("graph") or default_graph_name(source["path"],
                                                              source.get("kind", "auto"))
            self.source_list.addItem(f"{source['path']}  (graph {graph})")
        if self.sources:
            self.source_list.setCurrentRow(min(select, len(self.sources) - 1))
        self._show_source(self.source_list.currentRow())

    def source_kind(self, source: dict[str, Any] | None) -> str:
        """The kind the source reads as: its own, or what its path looks like."""
        if source is None:
            return ""
        kind = source.get("kind") or "auto"
        if kind != "auto":
            return kind
        path = source["path"]
        if path not in self._kinds:
            try:
                self._kinds[path] = detect_kind(path)
            except (SourceError, OSError):
                self._kinds[path] = ""
        return self._kinds[path]

    def _show_source(self, row: int) -> None:
        source = self.sources[row] if 0 <= row < len(self.sources) else None
        self._showing = True  # filling the fields is not an edit
        kind = self.source_kind(source)
        self.kind.setCurrentIndex(max(0, self.kind.findData(
            source.get("kind", "auto") if source else "auto")))
        for field, key in ((self.graph, "graph"), (self.deck, "deck")):
            field.setText(source.get(key, "") if source else "")
        for field, key in ((self.include, "include"), (self.exclude, "exclude")):
            field.setText(", ".join(source.get(key, [])) if source else "")
        self.write_ids.setChecked(bool(source and source.get("write_ids")))
        self.write_back.setChecked(bool(source and source.get("write_back")))
        visible = {"kind": source is not None, "graph": source is not None,
                   "deck": source is not None}
        fmt = FORMATS.get(kind)
        visible.update({name: source is not None and fmt is not None and fmt.applies(setting)
                        for name, setting in KIND_FIELDS.items()})
        for name, widget in (("kind", self.kind), ("graph", self.graph), ("deck", self.deck),
                             ("include", self.include), ("exclude", self.exclude),
                             ("write_ids", self.write_ids), ("write_back", self.write_back),
                             ("token", self.token),
                             ("base_url", self.base_url)):
            self.source_form.setRowVisible(widget, visible[name])
        self.source_help.setText(_source_help(kind) if source else
                                 "Add a source to start.")
        self._showing = False

    def _edit_source(self) -> None:
        row = self.source_list.currentRow()
        if self._showing or not 0 <= row < len(self.sources):
            return
        source = self.sources[row]
        kind_before = self.source_kind(source)
        source["kind"] = self.kind.currentData() or "auto"
        source["graph"] = self.graph.text().strip()
        source["deck"] = self.deck.text().strip()
        for field, key in ((self.include, "include"), (self.exclude, "exclude")):
            patterns = [p.strip() for p in field.text().split(",") if p.strip()]
            if patterns:
                source[key] = patterns
            else:
                source.pop(key, None)
        for box, key in ((self.write_ids, "write_ids"), (self.write_back, "write_back")):
            if box.isChecked():
                source[key] = True
            else:
                source.pop(key, None)
        if self.source_kind(source) != kind_before:
            self._show_source(row)  # other fields apply now

    def _add(self, path: str) -> None:
        if path:
            self.sources.append({"path": path, "kind": "auto",
                                 "graph": default_graph_name(path), "deck": ""})
            self._refresh_list(len(self.sources) - 1)

    def _add_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Roam export", "", "Roam exports (*.json *.edn *.zip);;All files (*)"
        )
        self._add(path)

    def _add_folder(self) -> None:
        self._add(QFileDialog.getExistingDirectory(
            self, "Folder of Roam exports, or a Logseq, Obsidian or Markdown notes folder"
        ))

    def _add_api(self) -> None:
        graph, ok = getText("Roam graph name (as in its URL):", parent=self,
                            title="Sync from the Roam API")
        if ok and graph.strip():
            self._add(f"roam-api://{graph.strip()}")
            if not self.token.text().strip():
                self.token.setFocus()

    def _connect_desktop(self) -> None:
        graph, ok = getText(
            "Roam graph name, as in Roam desktop (for an offline graph, add ?type=offline):",
            parent=self, title="Connect to Roam desktop")
        if not ok or not graph.strip():
            return
        try:
            target = roam_local.parse_url(roam_local.SCHEME + graph.strip())
        except ValueError as err:
            showWarning(str(err), parent=self)
            return

        editing = askUser(
            "Allow Roam Bridge to edit this graph too?\n\nWith edit access, edits you make "
            "to a card in Anki can be written back into its block (turn on \"Write edits "
            "made in Anki back\" for the source). Without it, Roam Bridge only reads.",
            parent=self, defaultno=True, title="Connect to Roam desktop")

        def connected(token: str) -> None:
            self.local_tokens[target.key] = token
            path = target.label
            if not any(s.get("path") == path for s in self.sources):
                self._add(path)
            tooltip(f"Connected to Roam desktop: graph {target.graph}; press OK to keep it",
                    parent=self)

        def refused(message: str) -> None:
            showWarning(f"Not connected: {message}", parent=self)

        connect_desktop(self.mw, target, connected, refused, editing=editing)

    def _remove(self) -> None:
        row = self.source_list.currentRow()
        if 0 <= row < len(self.sources):
            del self.sources[row]
            self._refresh_list(row)

    # Saving -----------------------------------------------------------------------------

    def collected(self) -> dict[str, Any]:
        """The settings as the dialog shows them, in config.json's shape."""
        raw = dict(self.raw)
        raw.update(
            sources=self.sources,
            card_tags=[t.strip().lstrip("#") for t in self.card_tags.text().split(",")
                       if t.strip()],
            default_deck=self.default_deck.text().strip() or "Roam",
            highlight_cloze=self.highlight.isChecked(),
            sync_on_startup=self.startup.isChecked(),
            watch=self.watch.isChecked(),
            push_to_ankiweb=self.push.isChecked(),
            on_removed=self.on_removed.currentData(),
            on_conflict=self.on_conflict.currentData(),
            context_depth=self.depth_box.currentData(),
            show_nearby=self.nearby.isChecked(),
            panel_collapsed=self.collapsed.isChecked(),
            download_images=self.images.isChecked(),
            roam_api_token=self.token.text().strip(),
            roam_api_base_url=self.base_url.text().strip() or roam_api.DEFAULT_BASE_URL,
            roam_local_tokens=self.local_tokens,
            poll_interval=self.poll.value(),
        )
        return raw

    def _accept(self) -> None:
        raw = self.collected()
        api = [s["path"] for s in self.sources if self.source_kind(s) == "roam-api"]
        if api and not raw["roam_api_token"]:
            self.tabs.setCurrentIndex(0)
            showWarning(f"Not saved: {api[0]} is a Roam API graph, which needs its API "
                        "token (in Roam: Settings > Graph > API tokens).", parent=self)
            return
        try:
            self.save(raw)
        except ConfigError as err:
            showWarning(f"Not saved: {err}", parent=self)
            return
        self.accept()

    def _show_help(self) -> None:
        text = (self.help_file.read_text(encoding="utf-8") if self.help_file
                and self.help_file.is_file() else "See the add-on's config.md.")
        dialog = QDialog(self)
        dialog.setWindowTitle("Roam Bridge settings: help")
        dialog.resize(640, 560)
        layout = QVBoxLayout(dialog)
        view = QTextBrowser(dialog)
        view.setHtml(markdown.markdown(text))
        layout.addWidget(view)
        dialog.show()


def _source_help(kind: str) -> str:
    fmt = FORMATS.get(kind)
    if fmt is None:
        return "Roam Bridge cannot tell what this is (is the path still there?)."
    return fmt.help

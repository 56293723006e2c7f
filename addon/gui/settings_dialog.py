"""Tools > Roam Bridge > Settings…: sources, card tags, triggers, removal policy, images,
API token.

Writes the add-on's config through Anki's add-on manager, after validating it with the same
``load_config`` the engine uses; an invalid value is reported and nothing is written.
"""

from __future__ import annotations

from typing import Any

from aqt.main import AnkiQt
from aqt.qt import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
    qconnect,
)
from aqt.utils import getText, showWarning

from ..core.config import ON_REMOVED, ConfigError
from ..core.sources.detect import default_graph_name

DEPTHS = (("All parent blocks", "all"), ("The page only", 0), ("The nearest parent", 1),
          ("The nearest 2 parents", 2), ("The nearest 3 parents", 3))


class SettingsDialog(QDialog):
    def __init__(self, mw: AnkiQt, raw: dict[str, Any], save: Any) -> None:
        super().__init__(mw)
        self.setWindowTitle("Roam Bridge settings")
        self.raw = dict(raw)
        self.save = save
        self.sources: list[dict[str, Any]] = [dict(s) for s in raw.get("sources", [])]
        self._showing = False
        layout = QVBoxLayout(self)

        self.source_list = QListWidget(self)
        qconnect(self.source_list.currentRowChanged, self._show_source)
        layout.addWidget(self.source_list)
        row = QHBoxLayout()
        for label, handler in (("Add export file…", self._add_file),
                               ("Add folder…", self._add_folder),
                               ("Add Roam API graph…", self._add_api),
                               ("Remove", self._remove)):
            button = QPushButton(label, self)
            qconnect(button.clicked, handler)
            row.addWidget(button)
        layout.addLayout(row)

        source_form = QFormLayout()
        self.graph = QLineEdit(self)
        self.graph.setPlaceholderText("your graph's name, as in its Roam URL")
        self.deck = QLineEdit(self)
        self.deck.setPlaceholderText("deck for cards with no deck:: (optional)")
        self.include = QLineEdit(self)
        self.include.setPlaceholderText("Obsidian: only notes matching, e.g. Study/**")
        self.exclude = QLineEdit(self)
        self.exclude.setPlaceholderText("Obsidian: skip notes matching, e.g. Archive/**")
        self.write_ids = QCheckBox("Write id:: into Logseq card blocks that have none", self)
        qconnect(self.graph.textEdited, self._edit_source)
        qconnect(self.deck.textEdited, self._edit_source)
        qconnect(self.include.textEdited, self._edit_source)
        qconnect(self.exclude.textEdited, self._edit_source)
        qconnect(self.write_ids.toggled, self._edit_source)
        source_form.addRow("Graph name", self.graph)
        source_form.addRow("Deck", self.deck)
        source_form.addRow("Include", self.include)
        source_form.addRow("Exclude", self.exclude)
        source_form.addRow(self.write_ids)
        layout.addLayout(source_form)

        form = QFormLayout()
        self.card_tags = QLineEdit(", ".join(raw.get("card_tags", [])), self)
        self.default_deck = QLineEdit(raw.get("default_deck", "Roam"), self)
        self.startup = QCheckBox("Sync in the background when the profile opens", self)
        self.startup.setChecked(bool(raw.get("sync_on_startup", True)))
        self.watch = QCheckBox("Sync again when a source changes", self)
        self.watch.setChecked(bool(raw.get("watch", True)))
        self.on_removed = QComboBox(self)
        self.on_removed.addItems(list(ON_REMOVED))
        self.on_removed.setCurrentText(raw.get("on_removed", "suspend"))
        self.depth = QComboBox(self)
        for label, value in DEPTHS:
            self.depth.addItem(label, value)
        current = raw.get("context_depth", "all")
        if current not in [value for _, value in DEPTHS] and isinstance(current, int):
            self.depth.addItem(f"The nearest {current} parents", current)
        values = [self.depth.itemData(i) for i in range(self.depth.count())]
        self.depth.setCurrentIndex(values.index(current) if current in values else 0)
        self.nearby = QCheckBox("Show the blocks just before and after in the reviewer", self)
        self.nearby.setChecked(bool(raw.get("show_nearby", True)))
        self.collapsed = QCheckBox("Start with the reviewer's context panel collapsed", self)
        self.collapsed.setChecked(bool(raw.get("panel_collapsed", False)))
        self.images = QCheckBox("Download images into Anki (else cards link to them)", self)
        self.images.setChecked(bool(raw.get("download_images", True)))
        self.token = QLineEdit(raw.get("roam_api_token", ""), self)
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        form.addRow("Card tags", self.card_tags)
        form.addRow("Default deck", self.default_deck)
        form.addRow(self.startup)
        form.addRow(self.watch)
        form.addRow("When a block is gone", self.on_removed)
        form.addRow("Parents on the card", self.depth)
        form.addRow(self.nearby)
        form.addRow(self.collapsed)
        form.addRow(self.images)
        form.addRow("Roam API token", self.token)
        holder = QWidget(self)
        holder.setLayout(form)
        layout.addWidget(holder)

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        qconnect(buttons.accepted, self._accept)
        qconnect(buttons.rejected, self.reject)
        layout.addWidget(buttons)
        self._refresh_list()

    # Sources ----------------------------------------------------------------------------

    def _refresh_list(self, select: int = 0) -> None:
        self.source_list.clear()
        for source in self.sources:
            graph = source.get("graph") or default_graph_name(source["path"])
            self.source_list.addItem(f"{source['path']}  (graph {graph})")
        if self.sources:
            self.source_list.setCurrentRow(min(select, len(self.sources) - 1))
        self._show_source(self.source_list.currentRow())

    def _show_source(self, row: int) -> None:
        source = self.sources[row] if 0 <= row < len(self.sources) else None
        self._showing = True  # filling the fields is not an edit
        for field, key in ((self.graph, "graph"), (self.deck, "deck")):
            field.setEnabled(source is not None)
            field.setText(source.get(key, "") if source else "")
        for field, key in ((self.include, "include"), (self.exclude, "exclude")):
            field.setEnabled(source is not None)
            field.setText(", ".join(source.get(key, [])) if source else "")
        self.write_ids.setEnabled(source is not None)
        self.write_ids.setChecked(bool(source and source.get("write_ids")))
        self._showing = False

    def _edit_source(self) -> None:
        row = self.source_list.currentRow()
        if self._showing or not 0 <= row < len(self.sources):
            return
        source = self.sources[row]
        source["graph"] = self.graph.text().strip()
        source["deck"] = self.deck.text().strip()
        for field, key in ((self.include, "include"), (self.exclude, "exclude")):
            patterns = [p.strip() for p in field.text().split(",") if p.strip()]
            if patterns:
                source[key] = patterns
            else:
                source.pop(key, None)
        if self.write_ids.isChecked():
            source["write_ids"] = True
        else:
            source.pop("write_ids", None)

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

    def _remove(self) -> None:
        row = self.source_list.currentRow()
        if 0 <= row < len(self.sources):
            del self.sources[row]
            self._refresh_list(row)

    # Saving -----------------------------------------------------------------------------

    def _accept(self) -> None:
        raw = dict(self.raw)
        raw.update(
            sources=self.sources,
            card_tags=[t.strip().lstrip("#") for t in self.card_tags.text().split(",")
                       if t.strip()],
            default_deck=self.default_deck.text().strip() or "Roam",
            sync_on_startup=self.startup.isChecked(),
            watch=self.watch.isChecked(),
            on_removed=self.on_removed.currentText(),
            context_depth=self.depth.currentData(),
            show_nearby=self.nearby.isChecked(),
            panel_collapsed=self.collapsed.isChecked(),
            download_images=self.images.isChecked(),
            roam_api_token=self.token.text().strip(),
        )
        try:
            self.save(raw)
        except ConfigError as err:
            showWarning(f"Not saved: {err}", parent=self)
            return
        self.accept()

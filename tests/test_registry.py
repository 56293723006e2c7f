"""The registry of source formats and the table of apps: complete, and the one list every
other place follows (config, config.md, the settings dialog, the CLI, links, layers)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from addon.core import apps, config, id_writes, pipeline
from addon.core.block_writes import FolderWriter
from addon.core.config import SOURCE_DEFAULTS, SourceConfig
from addon.core.model import Block, Graph, Page, synthetic_uid
from addon.core.sources import registry
from addon.core.sources.detect import detect_kind, read_source
from addon.core.sources.registry import FORMATS, KINDS

ROOT = Path(__file__).resolve().parent.parent
ADDON = ROOT / "addon"
SEEDS = ROOT / "seeds"
SEED_SOURCES = {
    "roam-json": SEEDS / "roam-bridge-demo.json",
    "roam-edn": SEEDS / "roam-edn" / "roam-bridge-demo.edn",
    "roam-markdown": SEEDS / "roam-markdown",
    "logseq": SEEDS / "logseq",
    "obsidian": SEEDS / "obsidian",
}
# The per-source settings a Format may list (SourceConfig's fields, and the API's top-level
# settings the dialog shows beside a source).
PER_SOURCE = {f for f in SourceConfig.__dataclass_fields__} | {
    "roam_api_token", "roam_api_base_url"}


@pytest.mark.parametrize("kind", KINDS)
def test_every_entry_is_complete(kind: str) -> None:
    fmt = FORMATS[kind]
    assert fmt.kind == kind
    assert fmt.label.strip() and fmt.help.strip()
    assert fmt.app in apps.APPS
    assert callable(fmt.read)
    # Recognisable: by its URL, by the marks its folders carry, or as the export it is.
    assert [fmt.url is not None, fmt.marks is not None, bool(fmt.export)].count(True) == 1
    assert (fmt.url is None) == (fmt.url_graph is None)
    assert not fmt.export_file or fmt.export
    assert fmt.settings <= PER_SOURCE - {"path", "kind", "graph", "deck", "write_back"}
    # An API source is written through its client, a notes folder into its files.
    assert not (fmt.writes_files and fmt.connect is not None)
    assert fmt.connect is None or fmt.api
    if fmt.writes_ids:
        assert fmt.writes_files and fmt.app in id_writes.APPS


def test_the_kinds_and_their_order_are_the_public_ones() -> None:
    # config.json's, the CLI's and the dialog's names: renaming one breaks users' configs.
    assert KINDS == ("roam-json", "roam-edn", "roam-markdown", "logseq", "obsidian",
                     "roam-api", "roam-local")
    assert ("auto", *KINDS) == config.SOURCE_KINDS
    assert [k for k, f in FORMATS.items() if f.writable] == [
        "logseq", "obsidian", "roam-api", "roam-local"]
    assert [k for k, f in FORMATS.items() if f.api] == ["roam-api", "roam-local"]


def test_config_md_lists_exactly_the_registry_kinds() -> None:
    text = (ADDON / "config.md").read_text(encoding="utf-8")
    sentence = re.search(r"`kind` is `\"auto\"` \(detected\) or one of (.*?)\.\n", text, re.S)
    assert sentence is not None
    assert tuple(re.findall(r'`"([a-z-]+)"`', sentence.group(1))) == KINDS


def test_the_settings_dialog_offers_exactly_the_registry_kinds() -> None:
    from addon.gui import settings_dialog

    assert list(settings_dialog.KIND_LABELS) == ["auto", *KINDS]
    settings = {s for f in FORMATS.values() for s in f.settings} | {"write_back"}
    assert set(settings_dialog.KIND_FIELDS.values()) == settings
    assert settings_dialog._source_help("roam-local") != settings_dialog._source_help(
        "roam-json")  # Roam desktop is no export


def test_the_cli_offers_exactly_the_registry_kinds_and_apps() -> None:
    from tools.bridge import _parser

    parser = _parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    sync = commands.choices["sync"]
    kind = next(a for a in sync._actions if a.dest == "kind")
    assert tuple(kind.choices) == ("auto", *KINDS)
    watch = next(a for a in commands.choices["watch"]._actions if a.dest == "kind")
    assert tuple(watch.choices) == ("auto", *KINDS)
    rename = commands.choices["rename-graph"]
    source = next(a for a in rename._actions if a.dest == "source")
    assert tuple(source.choices) == apps.SOURCES == ("roam", "logseq", "obsidian")


@pytest.mark.parametrize(("kind", "source"), SEED_SOURCES.items())
def test_each_format_is_detected_and_read_as_its_app(kind: str, source: Path) -> None:
    assert detect_kind(source) == kind
    graph = read_source(source)
    assert graph.source == FORMATS[kind].app
    assert graph.blocks


@pytest.mark.parametrize("kind", ["roam-api", "roam-local"])
def test_each_api_format_claims_its_urls_only(kind: str) -> None:
    url = {"roam-api": "roam-api://my-graph", "roam-local": "roam-local://my-graph"}[kind]
    assert detect_kind(url) == kind
    assert registry.api_format(url) is FORMATS[kind]
    assert FORMATS[kind].url_graph is not None and FORMATS[kind].url_graph(url) == "my-graph"
    assert registry.api_format(Path("my-graph")) is None


@pytest.mark.parametrize("source", apps.SOURCES)
def test_each_apps_links_use_its_registered_schemes(source: str) -> None:
    app = apps.APPS[source]
    graph = Graph(source, "My Graph/2")
    page = graph.add_page(Page("A Page", uid="pageuid1", path="Folder/A Page.md"))
    real = graph.add_block(Block("blockuid1", "real", page))
    synthetic = graph.add_block(Block(synthetic_uid(page.title, "made"), "made", page))
    page.children = [real, synthetic]
    links = [graph.link(real.uid), graph.link(synthetic.uid), graph.link(page.uid)]
    for link in links:
        assert link.startswith(app.schemes), link
        assert link.startswith(apps.LINK_SCHEMES), link
    assert len(set(links[:2])) == 2  # a real block opens itself, a synthetic one its page
    assert graph.app_name == app.name
    # The renderer lets the app's own links in note text through.
    assert re.fullmatch(apps.TEXT_URL_SCHEMES, app.url_scheme)


def test_a_graph_of_no_app_links_nowhere() -> None:
    graph = Graph("elsewhere", "g")
    page = graph.add_page(Page("P", uid="p"))
    graph.add_block(Block("b", "text", page))
    assert graph.link("b") == ""
    assert graph.app_name == "your notes"


@pytest.mark.parametrize("kind", ["logseq", "obsidian"])
def test_a_writable_notes_folder_gets_a_folder_writer(kind: str) -> None:
    source = SourceConfig(path=str(SEED_SOURCES[kind]))
    graph = read_source(source.path)
    writer = pipeline.writer_for(source, graph, registry.ReadOptions())
    assert isinstance(writer, FolderWriter)
    assert FORMATS[kind].applies("write_back") and not FORMATS["roam-json"].applies("write_back")


def test_an_export_gets_no_writer() -> None:
    source = SourceConfig(path=str(SEED_SOURCES["roam-json"]))
    graph = read_source(source.path)
    assert pipeline.writer_for(source, graph, registry.ReadOptions()) is None
    assert SOURCE_DEFAULTS.kind == "auto"


# Layers ----------------------------------------------------------------------------------


def _project_imports(path: Path) -> set[str]:
    """The project modules ``path`` imports (relative imports, resolved to dotted names)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            module = f"{base}.{node.module}" if node.module else base
            found.update({module} if node.module else {f"{base}.{a.name}" for a in node.names})
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("addon"):
            found.add(node.module or "")
    return found


def test_the_bottom_layer_imports_only_the_apps_table() -> None:
    assert _project_imports(ADDON / "core" / "apps.py") == set()
    assert _project_imports(ADDON / "core" / "model.py") == {"addon.core.apps"}


def _file_of(module: str) -> Path:
    path = ROOT.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def test_sources_import_only_what_never_imports_sources() -> None:
    """Imports flow one way: what a reader uses of the engine (model, limits…) never
    reaches back into sources/, directly or through another module."""
    below: set[str] = set()
    for path in sorted((ADDON / "core" / "sources").glob("*.py")):
        below |= {m for m in _project_imports(path) if not m.startswith("addon.core.sources")}
    assert "addon.core.model" in below
    seen: set[str] = set()
    pending = sorted(below)
    while pending:
        module = pending.pop()
        if module in seen or not _file_of(module).is_file():
            continue
        seen.add(module)
        imported = _project_imports(_file_of(module))
        assert not any(m.startswith("addon.core.sources") for m in imported), module
        pending.extend(imported)


def test_readers_only_read() -> None:
    writes = re.compile(r"os\.replace|os\.rename|tempfile|write_bytes|write_text|"
                        r"open\([^)]*['\"][wa]b?['\"]")
    for path in sorted((ADDON / "core" / "sources").glob("*.py")):
        assert not writes.search(path.read_text(encoding="utf-8")), path.name

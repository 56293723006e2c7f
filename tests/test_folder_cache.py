"""Re-reading a notes folder through its cache: after edits, adds, deletes and renames the
Graph is exactly the one a full read gives (pages, blocks, uids, order, attributes, rendered
fields), for Logseq, Obsidian and Roam Markdown folders; only changed files are parsed; the
scope names the changed pages and the pages showing them; and a scoped sync lands where a
full one does."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from anki.collection import Collection

from addon.core import pipeline, sync, unchanged
from addon.core.block_writes import Journal
from addon.core.config import SourceConfig, SyncOptions
from addon.core.model import Graph
from addon.core.sources.detect import ReadOptions, read_source
from addon.core.sources.folder_cache import FolderCache
from tests.test_cards import rendered_cards
from tests.test_render_sources import PNG
from tools.watch import Every, Watch

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
UUID_A = "65a1f0c2-1111-4a5b-9c3d-0123456789ab"

# Per kind: the seed, and files that make pages meet (refs, embeds, a copied id, a title
# two files share) beside it.
EXTRA: dict[str, dict[str, str]] = {
    "logseq": {
        "pages/Cross A.md": f"- Shown elsewhere #card\n  id:: {UUID_A}\n  - its answer\n",
        "pages/Cross B.md": f"- Shows (({UUID_A})) #card\n- {{{{embed [[Cross A]]}}}} #card\n",
        "pages/Copy.md": f"- A copy keeping the id #card\n  id:: {UUID_A}\n- same\n- same\n",
        "pages/Same title.md": "title:: Cross C\n\n- Twin one #card\n",
        "pages/Cross C.md": "- Twin two #card\n- same\n",
        "journals/2024_01_15.md": "- A day #card\n  - answer\n",
    },
    "obsidian": {
        "Cross A.md": "Shown elsewhere #card ^shown\n\n- item #card\n  - answer\n",
        "Cross B.md": "Shows ![[Cross A#^shown]] #card\n\n![[pic.png]] #card\n",
        "Copy.md": "A copy keeping the id #card ^shown\n\nsame\n\nsame\n",
        "sub/Cross A.md": "A note of the same name #card\n",
    },
    "roam-markdown": {
        "Cross A.md": "- Shown elsewhere #card\n    - answer\n",
        "Cross B.md": "- Shows [[Cross A]] #card\n",
        "ns/Deep.md": "- In a folder #card\n- same\n- same\n",
    },
}
# A card alone on its page, which moves to another.
LONELY = {"logseq": "- A lonely card, in words enough to be known again #card\n  - its answer\n",
          "obsidian": "- A lonely card, in words enough to be known again #card\n"
                      "    - its answer\n",
          "roam-markdown": "- A lonely card, in words enough to be known again #card\n"
                           "    - its answer\n"}
SEED_OF = {"logseq": "logseq", "obsidian": "obsidian", "roam-markdown": "roam-markdown"}


def shape(graph: Graph) -> dict[str, Any]:
    """Everything a read gives, in order, with the cards' rendered fields."""

    def tree(block: Any) -> tuple[Any, ...]:
        return (block.uid, block.string, block.heading, block.page.title,
                block.parent.uid if block.parent else None,
                tuple(child.uid for child in block.children))

    return {
        "head": (graph.source, graph.name, graph.root),
        "pages": [(title, page.title, page.uid, page.path,
                   tuple(b.uid for b in page.children), sorted(page.attributes().items()))
                  for title, page in graph.pages.items()],
        "blocks": [(uid, *tree(block)) for uid, block in graph.blocks.items()],
        "digests": list(graph.file_digests.items()),
        "cards": [(card.spec.key, card.spec.source_hash, card.fields)
                  for card in rendered_cards(graph)],
    }


def folder(tmp_path: Path, kind: str) -> Path:
    root = tmp_path / kind
    shutil.copytree(SEEDS / SEED_OF[kind], root)
    (root / ("pages/Lonely.md" if kind == "logseq" else "Lonely.md")).write_text(
        LONELY[kind], encoding="utf-8")
    for rel, text in EXTRA[kind].items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    if kind == "obsidian":
        (root / "attachments").mkdir()
        (root / "attachments" / "pic.png").write_bytes(PNG)
    return root


def read(root: Path, kind: str, cache: FolderCache | None = None) -> Graph:
    return read_source(root, "g", kind, ReadOptions(folder_cache=cache))


def edits(kind: str) -> list[tuple[str, Callable[[Path], object]]]:
    """Steps after which a cached read must still equal a full one."""
    a, b = ("pages/Cross A.md", "pages/Cross B.md") if kind == "logseq" else (
        "Cross A.md", "Cross B.md")
    copy = "pages/Copy.md" if kind == "logseq" else "ns/Deep.md" if kind == "roam-markdown" \
        else "Copy.md"

    def append(rel: str, text: str) -> Callable[[Path], object]:
        return lambda root: (root / rel).write_text(
            (root / rel).read_text(encoding="utf-8") + text, encoding="utf-8")

    def rename(old: str, new: str) -> Callable[[Path], object]:
        return lambda root: (root / old).rename(root / new)

    def delete(rel: str) -> Callable[[Path], object]:
        return lambda root: (root / rel).unlink()

    def add(rel: str, text: str) -> Callable[[Path], object]:
        def do(root: Path) -> None:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text, encoding="utf-8")
        return do

    bullet = "\n- " if kind != "obsidian" else "\n\n"
    lonely = "pages/Lonely.md" if kind == "logseq" else "Lonely.md"
    steps = [
        ("edit a page others show", append(a, f"{bullet}An added card #card\n")),
        ("edit the same size", lambda root: (root / a).write_text(
            (root / a).read_text(encoding="utf-8").replace("Shown", "Shewn"), encoding="utf-8")),
        ("delete the first holder of an id", delete(a)),
        ("add it back", add(a, f"{bullet.strip() or ''} Back again #card\n")),
        ("rename a page", rename(b, b.replace("Cross B", "Cross Z"))),
        ("add a page", add(b, f"{bullet.strip()} New page (({UUID_A})) #card\n")),
        ("delete a page with copies", delete(copy)),
        ("delete a card's page", delete(lonely)),
        ("write the orphaned card again, elsewhere", add(
            lonely.replace("Lonely", "Found"), LONELY[kind])),
    ]
    if kind == "obsidian":
        steps.append(("remove an attachment", delete("attachments/pic.png")))
        steps.append(("delete the shallower namesake", delete("Cross A.md")))
    if kind == "logseq":
        steps.append(("change the graph's config", add(
            "logseq/config.edn", '{:journal/page-title-format "yyyy-MM-dd"}')))
        steps.append(("delete a shared title", delete("pages/Same title.md")))
    return steps


@pytest.mark.parametrize("kind", ["logseq", "obsidian", "roam-markdown"])
def test_a_cached_read_equals_a_full_read_after_every_change(tmp_path: Path, kind: str) -> None:
    root = folder(tmp_path, kind)
    cache = FolderCache()
    assert shape(read(root, kind, cache)) == shape(read(root, kind))
    assert cache.parsed > 0
    assert shape(read(root, kind, cache)) == shape(read(root, kind))
    assert cache.parsed == 0  # nothing changed: nothing parsed again
    for name, step in edits(kind):
        step(root)
        cached = shape(read(root, kind, cache))
        assert cached == shape(read(root, kind)), name
        on_disk = {str(f.relative_to(root).as_posix()) for f in root.rglob("*.md")
                   if not f.relative_to(root).as_posix().startswith(("logseq/", "."))}
        assert set(cache.files) == on_disk, name  # deleted files left the cache


def test_only_changed_files_are_parsed_and_the_scope_follows_refs(tmp_path: Path) -> None:
    root = folder(tmp_path, "logseq")
    cache = FolderCache()
    read(root, "logseq", cache)
    assert cache.changes is None  # a first read: plan everything
    cache.settle(cache.reads, "mark")
    assert cache.changes == set()
    (root / "pages/Cross A.md").write_text(
        f"- Shown elsewhere, edited #card\n  id:: {UUID_A}\n  - its answer\n", encoding="utf-8")
    graph = read(root, "logseq", cache)
    assert cache.parsed == 1
    changes = cache.changes
    assert changes is not None
    on = {graph.blocks[uid].page.title for uid in changes if uid in graph.blocks}
    # The page itself, the page showing its block by ref and embed; not the rest.
    assert on == {"Cross A", "Cross B"}
    # Not settled: the next read's changes still hold these.
    read(root, "logseq", cache)
    assert cache.changes is not None and changes <= cache.changes


@pytest.mark.parametrize("kind", ["logseq", "obsidian"])
def test_a_scoped_sync_lands_where_a_full_sync_does(tmp_path: Path, kind: str) -> None:
    root = folder(tmp_path, kind)
    source = SourceConfig(path=str(root), graph="g", kind=kind)
    options = SyncOptions()
    col = Collection(str(tmp_path / "scoped.anki2"))
    full = Collection(str(tmp_path / "full.anki2"))
    ledger = unchanged.Ledger(tmp_path / "runs.json")
    cache = FolderCache()
    try:
        scopes = []
        for step in [None, *(s for _, s in edits(kind))]:
            if step is not None:
                step(root)
            look = ledger.look(str(root), options)
            look.compare(col)
            graph = pipeline.read(source, ReadOptions(), cache)
            scope = pipeline.scope_for(cache, look, col)
            scopes.append(scope)
            plan = sync.plan(graph, col, options, scope=scope)
            sync.apply(plan, col)
            pipeline.settle(cache, cache.reads, look, plan, col)
            sync.apply(sync.plan(read(root, kind), full, options), full)
            assert notes(col) == notes(full)
        assert scopes[0] is None and all(s is not None for s in scopes[1:-2])
        assert min(len(s) for s in scopes if s is not None) < len(read(root, kind).blocks)
    finally:
        col.close()
        full.close()


def test_a_collection_or_a_file_changed_besides_the_pages_plans_every_note(
        tmp_path: Path) -> None:
    root = folder(tmp_path, "logseq")
    source = SourceConfig(path=str(root), graph="g", kind="logseq")
    options = SyncOptions()
    col = Collection(str(tmp_path / "c.anki2"))
    ledger = unchanged.Ledger(tmp_path / "runs.json")
    cache = FolderCache()

    def sync_once() -> None:
        look = ledger.look(str(root), options)
        look.compare(col)
        graph = pipeline.read(source, ReadOptions(), cache)
        plan = sync.plan(graph, col, options, scope=pipeline.scope_for(cache, look, col))
        sync.apply(plan, col)
        pipeline.settle(cache, cache.reads, look, plan, col)

    def scope_now() -> set[str] | None:
        look = ledger.look(str(root), options)
        pipeline.read(source, ReadOptions(), cache)
        return pipeline.scope_for(cache, look, col)

    try:
        sync_once()
        (root / "pages/Cross C.md").write_text("- Twin two, edited #card\n", encoding="utf-8")
        assert scope_now() is not None
        note = col.get_note(col.find_notes("")[0])
        note.tags.append("mine")
        col.update_note(note)  # a change in Anki since the settled sync
        assert scope_now() is None
        sync_once()
        assert scope_now() == set()
        (root / "assets").mkdir(exist_ok=True)
        (root / "assets" / "pic.png").write_bytes(b"png")  # not a page: any note may show it
        assert scope_now() is None
        sync_once()
        assert scope_now() == set()
        assert pipeline.scope_for(cache, ledger.look(str(root), SyncOptions(deck="Other")),
                                  col) is None  # other options
        unused = FolderCache()  # an export's: never read through, never a scope
        pipeline.settle(unused, unused.reads, ledger.look(str(root), options), plan_of(),
                        col)
        assert pipeline.scope_for(unused, ledger.look(str(root), options), col) is None
    finally:
        col.close()


def plan_of() -> sync.SyncPlan:
    """A plan with nothing to do (settled)."""
    return sync.SyncPlan(prefix="logseq:g:", options=SyncOptions())


def notes(col: Collection) -> list[tuple[str, ...]]:
    """Every note's fields and tags, in a stable order (without the time a note's state
    was written, which two syncs a second apart do not share)."""
    found = []
    for nid in col.find_notes(""):
        note = col.get_note(nid)
        fields = [_WRITTEN.sub(r"\1", field) for field in note.fields]
        found.append((*fields, " ".join(sorted(note.tags))))
    return sorted(found)


_WRITTEN = re.compile(r'(data-h="[0-9a-f]+)\.\d+')


def test_a_watch_keeps_the_pages_and_plans_one_edit_alone(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = folder(tmp_path, "logseq")
    collection = tmp_path / "c.anki2"
    watch = Watch(SourceConfig(path=str(root), graph="g"), SyncOptions(), ReadOptions(),
                  collection, Journal(tmp_path / "journal.jsonl"), Every(0, as_json=True))
    col = Collection(str(collection))
    try:
        watch._turn(col, None)
        first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert first["created"] > 3
        cache = watch.folder_cache
        assert cache.mark is not None  # settled: the next turn may plan what changed alone
        (root / "pages/Cross C.md").write_text("- Twin two, edited #card\n- same\n",
                                               encoding="utf-8")
        planned: list[set[str] | None] = []
        original = sync.plan

        def spy(*args: Any, **kwargs: Any) -> sync.SyncPlan:
            planned.append(kwargs.get("scope"))
            return original(*args, **kwargs)

        monkeypatch.setattr(sync, "plan", spy)
        watch._turn(col, None)
        monkeypatch.undo()
        second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert cache.parsed == 1
        assert planned and planned[0] is not None and 0 < len(planned[0]) < 10
        # The edited block's note, re-matched from its old key: updated, nothing else.
        assert (second["created"], second["updated"], second["orphaned"]) == (0, 1, 0)
        assert notes(col) == notes_after_full_sync(tmp_path, root)
    finally:
        col.close()


def notes_after_full_sync(tmp_path: Path, root: Path) -> list[tuple[str, ...]]:
    full = Collection(str(tmp_path / "full.anki2"))
    try:
        sync.apply(sync.plan(read(root, "logseq"), full, SyncOptions()), full)
        return notes(full)
    finally:
        full.close()

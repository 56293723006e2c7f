from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import anki.collection  # noqa: F401  (import first: anki 26.9 has an import cycle otherwise)
import pytest
import requests
from anki.collection import Collection

from addon.core import sync
from addon.core.config import SyncOptions
from addon.core.progress import Progress, silent
from addon.core.sources.roam_json import build_graph

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def col(tmp_path: Path) -> Iterator[Collection]:
    collection = Collection(str(tmp_path / "collection.anki2"))
    yield collection
    collection.close()


class Syncer:
    """Runs plan + apply of in-memory pages against one collection, like the CLI does."""

    def __init__(self, col: Collection, graph: str = "test") -> None:
        self.col = col
        self.graph = graph

    def plan(self, pages: list[dict], progress: Progress = silent, **options) -> sync.SyncPlan:
        graph = build_graph(copy.deepcopy(pages), self.graph)
        return sync.plan(graph, self.col, SyncOptions(**options), progress)

    def __call__(self, pages: list[dict], **options) -> sync.Report:
        return sync.apply(self.plan(pages, **options), self.col)

    def note(self, uid: str):
        nids = self.col.find_notes(f'"SourceID:roam:{self.graph}:{uid}"')
        assert len(nids) == 1, f"expected one note for {uid}, found {len(nids)}"
        return self.col.get_note(nids[0])


@pytest.fixture
def syncer(col: Collection) -> Syncer:
    return Syncer(col)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    """A requests session for tests that talk to a server on 127.0.0.1: no proxy from the
    environment may sit in between."""
    with requests.Session() as s:
        s.trust_env = False
        yield s

"""Images in card blocks land in the collection's media, once, through a real HTTP server."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator

import pytest
from anki.collection import Collection

from addon.core import sync
from addon.core.config import SyncOptions
from addon.core.sources.roam_json import build_graph
from tests.conftest import Syncer
from tests.http_server import LocalServer, Reply
from tests.roam import block, page
from tests.test_media import PNG, png
from tests.test_sync import edited


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


def pages_with(url: str) -> list[dict]:
    return [page("Pics", block(f"What does this show? #card ![a cat]({url})",
                               block("A cat."), uid="pic"))]


def media_files(col: Collection) -> list[str]:
    return sorted(n for n in os.listdir(col.media.dir()) if n.startswith("rb-"))


def test_an_image_is_downloaded_into_media_and_shown_from_there(
    syncer: Syncer, server: LocalServer
) -> None:
    url = server.add("/cat.png", Reply(body=PNG, content_type="image/png"))
    report = syncer(pages_with(url))
    assert report.created == 1 and not report.warnings
    [name] = media_files(syncer.col)
    front = syncer.note("pic")["Front"]
    assert f'src="{name}"' in front and url not in front
    with open(os.path.join(syncer.col.media.dir(), name), "rb") as handle:
        assert handle.read() == PNG


def test_an_unchanged_image_is_not_downloaded_again(syncer: Syncer, server: LocalServer) -> None:
    url = server.add("/cat.png", Reply(body=PNG, content_type="image/png"))
    pages = pages_with(url)
    syncer(pages)
    edit = edited(pages, "pic", f"What does this picture show? #card ![a cat]({url})")
    assert syncer(edit).updated == 1
    assert server.hits["/cat.png"] == 1
    assert f'src="{media_files(syncer.col)[0]}"' in syncer.note("pic")["Front"]


def test_a_changed_image_url_brings_the_new_image(syncer: Syncer, server: LocalServer) -> None:
    first = server.add("/one.png", Reply(body=png(1, 1, seed=1), content_type="image/png"))
    second = server.add("/two.png", Reply(body=png(1, 1, seed=2), content_type="image/png"))
    pages = pages_with(first)
    syncer(pages)
    syncer(edited(pages, "pic", f"What does this show? #card ![a cat]({second})"))
    files = media_files(syncer.col)
    assert len(files) == 2
    assert syncer.note("pic")["Front"].count('src="rb-') == 1
    assert server.hits["/two.png"] == 1


def test_a_failed_download_keeps_the_link_warns_and_syncs_the_rest(
    syncer: Syncer, server: LocalServer
) -> None:
    url = server.add("/gone.png", Reply(404, b"no", "text/plain"))
    pages = copy.deepcopy(pages_with(url))
    pages[0]["children"].append(block("Another card #card", block("Answer"), uid="other"))
    report = syncer(pages)
    assert report.created == 2
    assert any("/gone.png" in w for w in report.warnings)
    assert f'src="{url}"' in syncer.note("pic")["Front"]
    assert media_files(syncer.col) == []


def test_a_dry_run_downloads_nothing_into_media(syncer: Syncer, server: LocalServer) -> None:
    url = server.add("/cat.png", Reply(body=PNG, content_type="image/png"))
    syncer.plan(pages_with(url))  # planning only
    assert media_files(syncer.col) == []


def test_images_can_be_left_remote(syncer: Syncer, server: LocalServer) -> None:
    url = server.add("/cat.png", Reply(body=PNG, content_type="image/png"))
    syncer(pages_with(url), download_images=False)
    assert server.hits["/cat.png"] == 0
    assert f'src="{url}"' in syncer.note("pic")["Front"]


def test_an_image_on_the_back_is_not_downloaded_again_after_the_graph_is_released(
    col: Collection, server: LocalServer
) -> None:
    """The add-on frees the graph (Graph.release) on the worker thread between planning and
    apply: what a new note remembers about its images must not depend on the graph then."""
    url = server.add("/cat.png", Reply(body=PNG, content_type="image/png"))
    pages = [page("Pics", block("What is on the back? #card", block(f"![a cat]({url})"),
                                uid="pic"))]
    graph = build_graph(copy.deepcopy(pages), "test")
    the_plan = sync.plan(graph, col, SyncOptions())
    graph.release()
    assert sync.apply(the_plan, col).created == 1

    syncer = Syncer(col)
    assert syncer(edited(pages, "pic", "What is on the back, then? #card")).updated == 1
    assert server.hits["/cat.png"] == 1

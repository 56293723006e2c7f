"""Real Anki desktop syncing a Logseq graph folder: keys, deep links and images in media.

The add-on is installed from the built .ankiaddon; the graph is a copy of seeds/logseq plus one
page whose card shows an image served by a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest

from tests.e2e.test_anki_desktop import GUI, ROOT, SEED_CARDS, now, stamp_reports, start_anki
from tests.e2e.test_anki_desktop import wait_for_report as next_report
from tests.http_server import LocalServer, Reply
from tests.test_media import PNG

pytestmark = pytest.mark.e2e
GRAPH = "notes"
# A page property gives the card a deck of its own, so the reviewer shows it first.
PICTURE_PAGE = ("deck:: Pictures\n\n"
                "- What does this picture show? #card ![a cat]({url})\n\t- A cat.\n")


@pytest.fixture(scope="module")
def logseq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    tmp = tmp_path_factory.mktemp("logseq")
    with LocalServer() as server:
        url = server.add("/cat.png", Reply(body=PNG, content_type="image/png"))
        graph = tmp / GRAPH
        shutil.copytree(ROOT / "seeds" / "logseq", graph)
        (graph / "pages" / "Pictures.md").write_text(PICTURE_PAGE.format(url=url),
                                                    encoding="utf-8")
        config = {"sources": [{"path": str(graph), "kind": "auto", "graph": "", "deck": ""}],
                  "sync_on_startup": True, "watch": True}
        with start_anki(tmp, config) as anki:
            yield anki, graph, server


def logseq_notes(anki) -> int:
    return anki.driver.eval(f"len(mw.col.find_notes('\"SourceID:logseq:{GRAPH}:*\"'))")


def test_a_logseq_folder_syncs_at_startup(logseq) -> None:
    anki, _, server = logseq
    deadline = time.monotonic() + 60
    while logseq_notes(anki) < SEED_CARDS + 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert logseq_notes(anki) == SEED_CARDS + 1
    anki.driver.wait_until(f"not {GUI}.CONTROLLER.running", timeout=30)
    assert server.hits["/cat.png"] == 1


def test_the_image_is_in_media_and_shown_from_there(logseq) -> None:
    anki, _, _ = logseq
    driver = anki.driver
    nid = driver.eval("mw.col.find_notes('\"Front:*picture*\"')[0]")
    front = driver.eval(f"mw.col.get_note({nid})['Front']")
    name = front.split('src="', 1)[1].split('"', 1)[0]
    assert name.startswith("rb-") and name.endswith(".png"), front
    assert driver.eval(f"mw.col.media.have({name!r})")
    did = driver.eval("mw.col.decks.id_for_name('Pictures')")
    assert driver.eval(f"mw.col.get_card(mw.col.card_ids_of_note({nid})[0]).did") == did
    driver.open_reviewer(deck_id=did)
    html = driver.wait_for_web_text(name, web="reviewer", timeout=30)
    assert f'src="{name}"' in html
    driver.show_answer()
    answer = driver.wait_for_web_text('class="rb-open"', web="reviewer", timeout=30)
    assert f"logseq://graph/{GRAPH}?page=Pictures" in answer, "the Open in Logseq link"
    driver.exec("mw.moveToState('deckBrowser'); result = True")


def test_a_note_edited_in_place_is_found_by_polling_and_updated(logseq) -> None:
    anki, graph, _ = logseq
    driver = anki.driver
    stamp_reports(anki)
    driver.exec(f"{GUI}.WATCHER._poll.setInterval(500)\n{GUI}.WATCHER._poll.start()\n"
                "result = True")
    page = graph / "pages" / "Sholto Douglas.md"
    start = now(anki)
    text = page.read_text(encoding="utf-8")
    page.write_text(text + "- Who did Sholto Douglas work with? #card\n\t- Trenton Bricken\n",
                    encoding="utf-8")  # in place: no folder event, only the poll sees it
    report = next_report(anki, start, timeout=60)
    assert report["manual"] is False and report["created"] == 1
    assert logseq_notes(anki) == SEED_CARDS + 2


def test_no_file_of_the_graph_was_written_by_the_sync(logseq) -> None:
    _, graph, _ = logseq
    assert not any("id:: " in p.read_text(encoding="utf-8") for p in graph.rglob("*.md")
                   if p.name == "Pictures.md")
    assert not list(graph.rglob("*.tmp"))


def test_anki_exits_cleanly_after_syncing_a_folder(logseq) -> None:
    anki, _, _ = logseq
    anki.driver.quit()
    anki.assert_clean_exit(timeout=60)

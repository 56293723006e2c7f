"""Several devices, one AnkiWeb account: every collection ends with one note per block.

The devices are real collections that sync through Anki's own sync server on 127.0.0.1, as
Anki desktop does. AnkiWeb's sync merges notes, cards, note types and decks by id, so these
tests assert ids: the same note ids, card ids and review history on every device.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from anki.collection import Collection, ExportAnkiPackageOptions, ImportAnkiPackageRequest

from addon.core import notetypes, sync
from addon.core.config import CardOptions, SyncOptions
from addon.core.healing import DUPLICATE_TAG
from addon.core.sources.roam_json import build_graph
from tests.ankiweb import Device, SyncServer, running_server
from tests.roam import block, find_block, page

ROOT = Path(__file__).resolve().parents[1]
SEED = json.loads((ROOT / "seeds" / "roam-bridge-demo.json").read_text(encoding="utf-8"))
GRAPH = "roam-bridge-demo"
SEED_CARDS = 9


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncServer]:
    with running_server(tmp_path_factory.mktemp("ankiweb") / "base") as started:
        yield started


@pytest.fixture
def devices(server: SyncServer, tmp_path: Path) -> Iterator[list[Device]]:
    """Three devices of one new user: the first uploads its collection (one note of the
    user's own) and the others download it, so all three share one collection, as after
    setting up AnkiWeb."""
    user = server.new_user()
    made = [Device(tmp_path / f"device{i}" / "collection.anki2", server, user)
            for i in range(3)]
    own = made[0].col.new_note(made[0].col.models.by_name("Basic"))
    own["Front"] = "a note of the user's own"
    made[0].col.add_note(own, 1)
    assert made[0].sync(full="upload") == "full upload"
    for device in made[1:]:
        assert device.sync(full="download") == "full download"
    yield made
    for device in made:
        device.close()


def bridge(device: Device, pages: list[dict], **options) -> sync.Report:
    graph = build_graph(copy.deepcopy(pages), GRAPH)
    return sync.apply(sync.plan(graph, device.col, SyncOptions(**options)), device.col)


def notes_by_key(col: Collection) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for nid in col.find_notes(f'"SourceID:roam:{GRAPH}:*"'):
        found.setdefault(col.get_note(nid)["SourceID"], []).append(nid)
    return found


def cards_of(col: Collection) -> list[tuple[int, int, int]]:
    return col.db.all(
        "select id, nid, ord from cards where nid in (select id from notes where mid in "
        f"({','.join(str(nt['id']) for nt in notetypes.find(col).values())})) order by id"
    )


def our_type_names(col: Collection) -> list[str]:
    return sorted(n.name for n in col.models.all_names_and_ids() if "Roam Bridge" in n.name)


def assert_one_note_per_block(*devices: Device, blocks: int = SEED_CARDS) -> None:
    first = notes_by_key(devices[0].col)
    assert len(first) == blocks
    assert all(len(nids) == 1 for nids in first.values()), first
    for device in devices:
        assert notes_by_key(device.col) == first
        assert cards_of(device.col) == cards_of(devices[0].col)
        assert our_type_names(device.col) == ["Roam Bridge Basic", "Roam Bridge Cloze"]
        assert [d.name for d in device.col.decks.all_names_and_ids()
                if d.name.startswith("Roam")] == ["Roam", "Roam Bridge Demo",
                                                  "Roam Bridge Demo::Careers"]


def answer(col: Collection, nid: int, ease: int = 3) -> list[int]:
    """Answer every card of the note once; returns the revlog ids written."""
    before = set(col.db.list("select id from revlog"))
    for cid in col.card_ids_of_note(nid):
        time.sleep(0.002)  # a revlog id is a millisecond: two devices' reviews never share one
        card = col.get_card(cid)
        card.start_timer()
        col.sched.answerCard(card, ease)
    return sorted(set(col.db.list("select id from revlog")) - before)


def test_two_devices_that_sync_the_notes_before_ankiweb_end_with_one_note_each(
    devices: list[Device],
) -> None:
    a, b, _ = devices
    assert bridge(a, SEED).created == SEED_CARDS
    assert bridge(b, SEED).created == SEED_CARDS  # both ran at startup, before syncing
    for device in (a, b, a):
        assert device.sync() == "normal"
    assert_one_note_per_block(a, b)
    for device in (a, b):
        report = bridge(device, SEED)
        assert (report.created, report.updated, report.healed) == (0, 0, 0)


def test_a_fresh_device_that_pulls_the_notes_creates_nothing(devices: list[Device]) -> None:
    a, _, c = devices
    bridge(a, SEED)
    a.sync()
    c.sync()
    report = bridge(c, SEED)
    assert (report.created, report.updated, report.unchanged) == (0, 0, SEED_CARDS)
    assert_one_note_per_block(a, c)


def test_new_blocks_added_on_two_devices_before_syncing_stay_single(
    devices: list[Device],
) -> None:
    a, b, c = devices
    bridge(a, SEED)
    for device in (a, b, c):
        device.sync()
    grown = copy.deepcopy(SEED)
    grown[0]["children"].append(block("What is new here? #card", block("Two devices."),
                                      uid="newblock1"))
    cloze = find_block(grown, "ydi1hVTE6")
    cloze["string"] = cloze["string"].replace("#card", "and {a third} #card")
    for device in (a, b):
        report = bridge(device, grown)
        assert (report.created, report.updated) == (1, 1)
    for device in (a, b, c, a):
        device.sync()
    assert_one_note_per_block(a, b, c, blocks=SEED_CARDS + 1)


def test_reviews_made_on_every_device_survive_the_syncs(devices: list[Device]) -> None:
    a, b, c = devices
    bridge(a, SEED)
    for device in (a, b, c):
        device.sync()
    keys = sorted(notes_by_key(a.col))
    nid_of = {key: nids[0] for key, nids in notes_by_key(a.col).items()}
    reviews = answer(a.col, nid_of[keys[0]]) + answer(b.col, nid_of[keys[1]])
    reviews += answer(c.col, nid_of[keys[0]], ease=4)  # the same card, on the phone too
    assert bridge(b, SEED).created == 0  # the bridge runs between the reviews and the syncs
    for device in (a, b, c, a, b):
        device.sync()
    for device in (a, b, c):
        assert sorted(device.col.db.list("select id from revlog")) == sorted(reviews)
    assert_one_note_per_block(a, b, c)


def test_an_edit_after_convergence_reaches_every_device(devices: list[Device]) -> None:
    a, b, _ = devices
    bridge(a, SEED)
    bridge(b, SEED)
    for device in (a, b, a):
        device.sync()
    edited = copy.deepcopy(SEED)
    find_block(edited, "n-sta8Uww")["string"] = "What is distillation, really? #card"
    assert bridge(a, edited).updated == 1
    a.sync()
    b.sync()
    key = f"roam:{GRAPH}:n-sta8Uww"
    for device in (a, b):
        (nid,) = notes_by_key(device.col)[key]
        assert device.col.get_note(nid)["Front"].startswith("What is distillation, really?")
    assert bridge(b, edited).updated == 0


def _legacy_copy(device: Device, key: str, reviewed: bool) -> int:
    """A second note of ``key`` in this device's collection, with a time-based id, as versions
    before derived ids made on a second device."""
    col = device.col
    (nid,) = notes_by_key(col)[key]
    original = col.get_note(nid)
    twin = col.new_note(original.note_type())
    twin.fields = list(original.fields)
    twin.tags = [*original.tags, "from-the-phone"]
    col.add_note(twin, col.decks.id("Roam"))
    if reviewed:
        answer(col, twin.id)
    return twin.id


def test_copies_that_exist_already_are_healed_keeping_every_review(
    devices: list[Device],
) -> None:
    a, b, _ = devices
    bridge(a, SEED)
    a.sync()
    b.sync()
    keys = sorted(notes_by_key(b.col))
    (original,) = notes_by_key(b.col)[keys[1]]
    unreviewed = _legacy_copy(b, keys[0], reviewed=False)
    reviewed_copy = _legacy_copy(b, keys[1], reviewed=True)
    both = _legacy_copy(b, keys[2], reviewed=True)
    (first_of_both,) = [n for n in notes_by_key(b.col)[keys[2]] if n != both]
    answer(b.col, first_of_both)
    b.sync()
    a.sync()
    report = bridge(a, SEED)
    assert report.healed == 2  # the unreviewed copy, and the unreviewed original of keys[1]
    assert any("hold reviews" in w for w in report.warnings)
    by_key = notes_by_key(a.col)
    assert len(by_key[keys[0]]) == 1 and unreviewed not in by_key[keys[0]]
    assert by_key[keys[1]] == [reviewed_copy] and original not in by_key[keys[1]]
    assert "from-the-phone" in a.col.get_note(by_key[keys[0]][0]).tags
    assert sorted(by_key[keys[2]]) == sorted([first_of_both, both])
    assert all(DUPLICATE_TAG in a.col.get_note(n).tags for n in by_key[keys[2]])
    a.sync()
    b.sync()
    assert notes_by_key(b.col) == by_key
    assert bridge(b, SEED).healed == 0  # both devices settle the same way


def test_copies_of_our_note_types_are_merged_into_one(devices: list[Device]) -> None:
    a, b, _ = devices
    bridge(a, SEED)
    a.sync()
    b.sync()
    col = b.col
    ours = notetypes.find(col)["basic"]
    clone = copy.deepcopy(ours)
    clone.update(id=0, name="Roam Bridge Basic+")
    col.models.add_dict(clone)
    clone = col.models.by_name("Roam Bridge Basic+")
    clone[notetypes.MARKER] = {**clone[notetypes.MARKER], "id": clone["id"]}
    col.models.update_dict(clone)  # a copy made on another device: its marker names itself
    key = sorted(notes_by_key(col))[0]
    (nid,) = notes_by_key(col)[key]
    request = col.models.change_notetype_info(old_notetype_id=ours["id"],
                                              new_notetype_id=clone["id"]).input
    request.note_ids.extend([nid])
    col.models.change_notetype_of_notes(request)
    revlog = answer(col, nid)
    report = bridge(b, SEED)
    assert report.full_sync
    assert our_type_names(col) == ["Roam Bridge Basic", "Roam Bridge Cloze"]
    assert col.get_note(nid).note_type()["id"] == ours["id"]
    assert col.db.list(f"select id from revlog where cid in "
                       f"(select id from cards where nid = {nid})") == revlog
    assert b.sync(full="upload") == "full upload"
    assert a.sync(full="download") == "full download"
    assert_one_note_per_block(a, b)


def test_an_apkg_of_the_notes_imports_into_a_collection_that_has_them(
    devices: list[Device], tmp_path: Path
) -> None:
    a, b, _ = devices
    bridge(a, SEED)
    a.sync()
    b.sync()
    package = tmp_path / "shared.apkg"
    a.col.export_anki_package(
        out_path=str(package), limit=None,
        options=ExportAnkiPackageOptions(with_scheduling=True, with_deck_configs=False,
                                         with_media=False, legacy=False),
    )
    (tmp_path / "fresh").mkdir()
    fresh = Collection(str(tmp_path / "fresh" / "collection.anki2"))
    for col in (b.col, fresh):
        col.import_anki_package(ImportAnkiPackageRequest(package_path=str(package)))
        assert sorted(notes_by_key(col)) == sorted(notes_by_key(a.col))
        assert notes_by_key(col) == notes_by_key(a.col)  # the same ids, even in a fresh one
        report = sync.apply(sync.plan(build_graph(copy.deepcopy(SEED), GRAPH), col), col)
        assert (report.created, report.healed) == (0, 0)
    fresh.close()


def test_a_block_edited_into_a_new_cloze_on_two_devices_gets_one_card(
    devices: list[Device],
) -> None:
    a, b, _ = devices
    pages = [page("Spanish", block("{hola} means hello #card", uid="es-hola"), uid="es")]
    # Auto-numbered clozes: each device numbers the new one from the note's memory.
    braces = CardOptions(brace_clozes=True)
    for device in (a, b):
        bridge(device, pages, cards=braces)
    a.sync()
    b.sync()
    pages[0]["children"][0]["string"] = "{hola} means {hello} #card"
    for device in (a, b):
        assert bridge(device, pages, cards=braces).updated == 1
    for device in (a, b, a):
        device.sync()
    for device in (a, b):
        rows = cards_of(device.col)
        assert sorted(o for _, _, o in rows) == [0, 1]
    assert cards_of(a.col) == cards_of(b.col)


def test_an_edit_made_on_the_phone_goes_back_into_the_notes_and_reaches_every_device(
    devices: list[Device], tmp_path: Path,
) -> None:
    """The phone edits a card (and reviews it) between two desktop syncs: the desktop's next
    run writes the edit into the Logseq file, and every device ends with the same note."""
    from addon.core import pipeline
    from addon.core.block_writes import Journal
    from addon.core.config import Config, SourceConfig
    from addon.core.sources.detect import ReadOptions
    from tests.test_write_back import HOLA, LOGSEQ_PAGE

    desktop, phone, _ = devices
    root = tmp_path / "graph"
    (root / "pages").mkdir(parents=True)
    (root / "logseq").mkdir()
    page_file = root / "pages" / "Spanish.md"
    page_file.write_text(LOGSEQ_PAGE, encoding="utf-8")
    source = SourceConfig(path=str(root), kind="logseq", graph="g", write_back=True)

    def run() -> sync.Report:
        planned = pipeline.plan(source, pipeline.read(source, ReadOptions()), desktop.col,
                                pipeline.options_for(Config(sources=(source,)), source),
                                ReadOptions())
        pipeline.write_back([planned], Journal(tmp_path / "journal.jsonl"))
        return sync.apply(planned.plan, desktop.col)

    assert run().created == 3
    assert desktop.sync() == "normal" and phone.sync() == "normal"
    [nid] = phone.col.find_notes(f'"SourceID:{HOLA}"')
    time.sleep(1.1)  # the phone's edit comes after the desktop's sync, to the second
    note = phone.col.get_note(nid)
    note["Front"] = note["Front"].replace("mean?", "mean, said the phone?")
    phone.col.update_note(note)
    reviews = answer(phone.col, nid)
    assert phone.sync() == "normal" and desktop.sync() == "normal"
    report = run()
    assert (report.written_back, report.conflicts) == (1, 0), report.write_back_problems
    assert "- What does **hola** mean, said the phone? #card" in page_file.read_text(
        encoding="utf-8")
    assert desktop.sync() == "normal" and phone.sync() == "normal"
    for device in (desktop, phone):
        assert device.col.get_note(nid)["Front"] == (
            "What does <strong>hola</strong> mean, said the phone?")
        assert sorted(device.col.db.list(
            f"select id from revlog where cid in (select id from cards where nid = {nid})"
        )) == reviews
    assert run().updated == 0

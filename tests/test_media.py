"""Images into Anki media: downloads from a real HTTP server on 127.0.0.1, local files, and a
real collection at the end."""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from anki.collection import Collection

from addon.core.media import MediaStore, media_name, sniff, url_label
from addon.core.model import Page

from .http_server import LocalServer, Reply


def png(width: int = 1, height: int = 1, seed: int = 0) -> bytes:
    """A valid RGB PNG; ``seed`` varies the pixels, so different seeds give different bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    rows = b"".join(b"\x00" + bytes((seed + x + y) % 256 for x in range(width * 3))
                    for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


PNG = png(2, 2)
FIREBASE_PATH = "/v0/b/firescript-577a2.appspot.com/o/imgs%2Fapp%2FGRAPH%2FAbC123.png"
SECRET = "0b5e-77c4-secret-token"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "media"
    folder.mkdir()
    return folder


def store_for(media_dir: Path, session: requests.Session, **options) -> MediaStore:
    options = {"timeout": 5, "retries": 2, "backoff": 0.01, **options}
    return MediaStore(media_dir, session=session, **options)


# Downloads ---------------------------------------------------------------------------------


def test_png_is_stored_under_its_content_hash(server, session, media_dir):
    url = server.add("/a.png", Reply(body=PNG, content_type="image/png"))
    store = store_for(media_dir, session)

    name = store.resolve(url, None)

    assert name == f"rb-{hashlib.blake2b(PNG, digest_size=8).hexdigest()}.png"
    assert store.pending == {name: PNG}
    assert store.used() == {url: name}
    assert store.warnings == []
    assert server.hits["/a.png"] == 1


def test_octet_stream_image_is_recognised_by_its_bytes(server, session, media_dir):
    gif = b"GIF89a" + bytes(range(40))
    url = server.add("/blob", Reply(body=gif, content_type="application/octet-stream"))
    store = store_for(media_dir, session)

    assert store.resolve(url, None) == media_name(gif, "gif")
    assert store.warnings == []


def test_html_is_refused_and_the_remote_link_kept(server, session, media_dir):
    url = server.add("/page.png", Reply(body=b"<html><script>x()</script></html>",
                                        content_type="text/html; charset=utf-8"))
    store = store_for(media_dir, session)

    assert store.resolve(url, None) is None
    assert store.pending == {}
    assert store.used() == {}
    assert len(store.warnings) == 1
    assert url in store.warnings[0]
    assert "text/html" in store.warnings[0]
    assert server.hits["/page.png"] == 1  # a refusal is final: no retry


def test_image_content_type_with_non_image_bytes_is_refused(server, session, media_dir):
    url = server.add("/liar.png", Reply(body=b"<html>not really</html>", content_type="image/png"))
    store = store_for(media_dir, session)

    assert store.resolve(url, None) is None
    assert "not an image" in store.warnings[0]


def test_svg_is_refused_by_header_and_by_bytes(server, session, media_dir):
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    by_header = server.add("/a.svg", Reply(body=svg, content_type="image/svg+xml"))
    by_bytes = server.add("/b.svg", Reply(body=b'<?xml version="1.0"?>\n' + svg))
    store = store_for(media_dir, session)

    assert store.resolve(by_header, None) is None
    assert store.resolve(by_bytes, None) is None
    assert len(store.warnings) == 2
    assert all("SVG" in w for w in store.warnings)


def test_declared_too_big_is_refused(server, session, media_dir):
    url = server.add("/big.png", Reply(body=PNG + bytes(5000), content_type="image/png"))
    store = store_for(media_dir, session, max_bytes=1000)

    assert store.resolve(url, None) is None
    assert "larger than 1000 bytes" in store.warnings[0]


def test_undeclared_endless_body_stops_at_the_cap(server, session, media_dir):
    # No Content-Length, and 640 MB on offer: only streaming with a cap can refuse this.
    chunk = PNG + bytes(64 * 1024 - len(PNG))
    server.add("/endless.png", Reply(body=chunk, repeat=10_000, content_length=False,
                                     content_type="image/png"))
    store = store_for(media_dir, session, max_bytes=100_000)

    started = time.monotonic()
    assert store.resolve(server.url("/endless.png"), None) is None
    assert time.monotonic() - started < 10
    assert "larger than" in store.warnings[0]
    assert store.pending == {}
    time.sleep(0.2)  # let the server notice the closed connection
    assert server.sent["/endless.png"] < 100 * len(chunk)


def test_slow_server_times_out_and_is_retried(server, session, media_dir):
    url = server.add("/slow.png", Reply(body=PNG, delay=1.5))
    store = store_for(media_dir, session, timeout=0.2, retries=1)

    started = time.monotonic()
    assert store.resolve(url, None) is None
    assert time.monotonic() - started < 1.4
    assert "timed out" in store.warnings[0]
    assert server.hits["/slow.png"] == 2


@pytest.mark.parametrize("status", [503, 500, 429])
def test_transient_error_is_retried(server, session, media_dir, status):
    url = server.add("/flaky.png", Reply(status, b"busy", "text/plain"), Reply(body=PNG))
    store = store_for(media_dir, session)

    assert store.resolve(url, None) == media_name(PNG, "png")
    assert server.hits["/flaky.png"] == 2
    assert store.warnings == []


def test_retries_give_up_after_the_limit(server, session, media_dir):
    url = server.add("/down.png", Reply(503, b"down", "text/plain"))
    store = store_for(media_dir, session, retries=2)

    assert store.resolve(url, None) is None
    assert server.hits["/down.png"] == 3
    assert "HTTP 503" in store.warnings[0]


def test_retry_after_is_honoured(server, session, media_dir):
    url = server.add("/limited.png", Reply(429, b"", "text/plain", {"Retry-After": "1"}),
                     Reply(body=PNG))
    store = store_for(media_dir, session)

    started = time.monotonic()
    assert store.resolve(url, None) is not None
    assert time.monotonic() - started >= 0.9


@pytest.mark.parametrize("status", [404, 403, 410])
def test_client_error_warns_without_retry(server, session, media_dir, status):
    url = server.add("/gone.png", Reply(status, b"no", "text/plain"))
    store = store_for(media_dir, session)

    assert store.resolve(url, None) is None
    assert server.hits["/gone.png"] == 1
    assert store.warnings == [f"image {url}: HTTP {status}; the card keeps the remote link"]


def test_unreachable_host_warns_and_does_not_raise(session, media_dir):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = store_for(media_dir, session, retries=1)

    assert store.resolve(f"http://127.0.0.1:{port}/x.png", None) is None
    assert "connection failed" in store.warnings[0]


def test_firebase_url_is_requested_exactly_and_its_token_never_shown(server, session, media_dir):
    query = f"alt=media&token={SECRET}"
    server.add(FIREBASE_PATH, Reply(body=PNG, content_type="application/octet-stream"))
    missing = FIREBASE_PATH.replace("AbC123", "Gone99")
    store = store_for(media_dir, session)

    assert store.resolve(server.url(f"{FIREBASE_PATH}?{query}"), None) == media_name(PNG, "png")
    assert store.resolve(server.url(f"{missing}?{query}"), None) is None

    assert server.requests == [f"{FIREBASE_PATH}?{query}", f"{missing}?{query}"]
    assert len(store.warnings) == 1
    assert missing in store.warnings[0]
    assert SECRET not in store.warnings[0]
    assert "token" not in store.warnings[0]


def test_url_label_drops_credentials_query_and_fragment():
    label = url_label("https://user:pw@example.com:8443/a%2Fb.png?token=s#frag")
    assert label == "https://example.com:8443/a%2Fb.png"


# Once per run, once per content, never twice across runs ----------------------------------


def test_same_src_downloads_once_per_run(server, session, media_dir):
    url = server.add("/shared.png", Reply(body=PNG))
    store = store_for(media_dir, session)

    names = {store.resolve(url, None) for _ in range(5)}

    assert names == {media_name(PNG, "png")}
    assert server.hits["/shared.png"] == 1


def test_failed_src_is_tried_and_reported_once_per_run(server, session, media_dir):
    url = server.add("/missing.png", Reply(404))
    store = store_for(media_dir, session)

    assert [store.resolve(url, None) for _ in range(3)] == [None, None, None]
    assert server.hits["/missing.png"] == 1
    assert len(store.warnings) == 1


def test_identical_bytes_from_two_urls_make_one_file(server, session, media_dir):
    first = server.add("/one.png", Reply(body=PNG))
    second = server.add("/two.png", Reply(body=PNG))
    other = server.add("/three.png", Reply(body=png(3, 3, seed=7)))
    store = store_for(media_dir, session)

    a, b, c = (store.resolve(u, None) for u in (first, second, other))

    assert a == b != c
    assert set(store.pending) == {a, c}
    assert store.used() == {first: a, second: a, other: c}


def test_file_already_in_media_folder_is_not_pending(server, session, media_dir):
    url = server.add("/a.png", Reply(body=PNG))
    (media_dir / media_name(PNG, "png")).write_bytes(PNG)
    store = store_for(media_dir, session)

    assert store.resolve(url, None) == media_name(PNG, "png")
    assert store.pending == {}


def test_remembered_image_still_present_is_not_downloaded_again(server, session, media_dir):
    url = server.add(FIREBASE_PATH, Reply(body=PNG)) + "?alt=media&token=t"
    name = media_name(PNG, "png")
    (media_dir / name).write_bytes(PNG)
    store = store_for(media_dir, session)

    store.remember(url, name)
    store.prefetch([(url, None)])

    assert store.resolve(url, None) == name
    assert server.hits[FIREBASE_PATH] == 0
    assert store.used() == {url: name}


def test_remembered_image_whose_file_is_gone_is_downloaded(server, session, media_dir):
    url = server.add("/a.png", Reply(body=PNG))
    store = store_for(media_dir, session)

    store.remember(url, media_name(PNG, "png"))
    store.remember(url.replace("a.png", "b.png"), "../escape.png")

    assert store.resolve(url, None) == media_name(PNG, "png")
    assert server.hits["/a.png"] == 1
    assert store.pending == {media_name(PNG, "png"): PNG}


def test_prefetch_downloads_in_parallel_and_resolve_reuses_it(server, session, media_dir):
    urls = [server.add(f"/p{i}.png", Reply(body=png(2, 2, seed=i), delay=0.4)) for i in range(4)]
    store = store_for(media_dir, session, workers=4)

    started = time.monotonic()
    store.prefetch([(u, None) for u in urls + urls])
    elapsed = time.monotonic() - started

    assert elapsed < 1.2  # four 0.4 s answers one after another would take 1.6 s
    assert [server.hits[f"/p{i}.png"] for i in range(4)] == [1, 1, 1, 1]
    names = [store.resolve(u, None) for u in urls]
    assert names == [media_name(png(2, 2, seed=i), "png") for i in range(4)]
    assert sum(server.hits.values()) == 4
    assert set(store.pending) == set(names)


def test_prefetch_failures_are_warned_and_do_not_stop_the_rest(server, session, media_dir):
    good = server.add("/good.png", Reply(body=PNG))
    bad = server.add("/bad.png", Reply(404))
    store = store_for(media_dir, session)

    store.prefetch([(good, None), (bad, None), ("ftp://example.com/x.png", None)])

    assert store.resolve(good, None) == media_name(PNG, "png")
    assert store.resolve(bad, None) is None
    assert store.resolve("ftp://example.com/x.png", None) is None
    assert len(store.warnings) == 2
    assert ("image ftp://example.com/x.png: ftp: images are not supported; not added"
            in store.warnings)
    assert sum(server.hits.values()) == 2


# Local files -------------------------------------------------------------------------------


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    root = tmp_path / "graph"
    (root / "pages" / "deep").mkdir(parents=True)
    (root / "assets").mkdir()
    (root / "assets" / "x.png").write_bytes(PNG)
    (root / "assets" / "my pic.png").write_bytes(png(1, 1, seed=3))
    (root / "assets" / "notes.txt").write_text("just text")
    (tmp_path / "secret.png").write_bytes(png(1, 1, seed=9))
    return root


def test_local_image_resolves_from_the_page_folder(notes, media_dir):
    store = MediaStore(media_dir, notes)
    page = Page("Foo", path="pages/foo.md")
    deep = Page("Bar", path="pages/deep/bar.md")

    assert store.resolve("../assets/x.png", page) == media_name(PNG, "png")
    assert store.resolve("../../assets/x.png", deep) == media_name(PNG, "png")
    assert store.resolve("/assets/x.png", deep) == media_name(PNG, "png")
    assert store.resolve("../assets/my%20pic.png", page) == media_name(png(1, 1, seed=3), "png")
    assert store.warnings == []
    assert store.pending == {media_name(PNG, "png"): PNG,
                             media_name(png(1, 1, seed=3), "png"): png(1, 1, seed=3)}


def test_local_image_outside_the_root_is_refused(notes, media_dir):
    store = MediaStore(media_dir, notes)
    page = Page("Foo", path="pages/foo.md")

    assert store.resolve("../../etc/passwd", page) is None
    assert store.resolve("../../secret.png", page) is None
    assert store.resolve(str(notes.parent / "secret.png"), page) is None
    assert store.pending == {}
    assert all("outside the notes folder" in w or "not found" in w for w in store.warnings)
    assert any("../../secret.png" in w for w in store.warnings)


def test_symlink_leading_outside_the_root_is_refused(notes, media_dir):
    link = notes / "assets" / "link.png"
    try:
        os.symlink(notes.parent / "secret.png", link)
    except OSError:
        pytest.skip("symlinks not available")
    store = MediaStore(media_dir, notes)

    assert store.resolve("../assets/link.png", Page("Foo", path="pages/foo.md")) is None
    assert "outside the notes folder" in store.warnings[0]


def test_local_non_image_missing_or_folder_is_refused(notes, media_dir):
    store = MediaStore(media_dir, notes, max_bytes=50)
    page = Page("Foo", path="pages/foo.md")
    (notes / "assets" / "big.png").write_bytes(png(20, 20))

    assert store.resolve("../assets/notes.txt", page) is None
    assert store.resolve("../assets/nope.png", page) is None
    assert store.resolve("../assets", page) is None
    assert store.resolve("../assets/big.png", page) is None
    reasons = " | ".join(store.warnings)
    for expected in ("not an image", "file not found", "not a regular file", "larger than 50"):
        assert expected in reasons
    assert "(on pages/foo.md)" in store.warnings[0]


def test_local_image_without_a_root_is_refused(media_dir):
    store = MediaStore(media_dir)

    assert store.resolve("assets/x.png", Page("Foo", path="foo.md")) is None
    assert "notes folder" in store.warnings[0]


def test_same_relative_src_on_two_pages_names_two_files(notes, media_dir):
    (notes / "pages" / "deep" / "x.png").write_bytes(png(4, 4))
    store = MediaStore(media_dir, notes)

    top = store.resolve("x.png", Page("Top", path="assets/top.md"))
    deep = store.resolve("x.png", Page("Deep", path="pages/deep/deep.md"))

    assert top == media_name(PNG, "png")
    assert deep == media_name(png(4, 4), "png")


# Sniffing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "ext"),
    [
        (PNG, "png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(20), "jpg"),
        (b"GIF87a" + bytes(20), "gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(20), "webp"),
        (b"BM" + bytes(12) + (40).to_bytes(4, "little") + bytes(20), "bmp"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + bytes(8), "avif"),
        (b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf" + bytes(8), "avif"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(8), None),
        (b"BM is how this text starts", None),
        (b"<!doctype html><html>", None),
        (b"", None),
    ],
)
def test_sniff_knows_images_by_their_first_bytes(data, ext):
    assert sniff(data) == ext


# Into a real collection ----------------------------------------------------------------------


def test_write_puts_pending_files_into_the_collection(server, session, col: Collection):
    url = server.add("/a.png", Reply(body=PNG))
    store = store_for(Path(col.media.dir()), session)
    name = store.resolve(url, None)
    assert name is not None and not col.media.have(name)

    assert store.write(col) == [name]

    assert col.media.have(name)
    assert (Path(col.media.dir()) / name).read_bytes() == PNG
    assert store.pending == {}

    again = store_for(Path(col.media.dir()), session)
    again.remember(url, name)
    assert again.resolve(url, None) == name
    assert again.pending == {}
    assert again.write(col) == []
    assert server.hits["/a.png"] == 1

"""Images -> collection media: downloads over http(s) and local files, under content-hashed names.

A MediaStore is filled during sync planning and written at apply time, so a dry run never
touches the collection:

- ``prefetch`` downloads (or reads) every image a run needs, in parallel; ``resolve`` is the
  renderer's callback and answers from what was fetched, fetching late only what was missed.
- A file's name is ``rb-<16 hex of blake2b of its bytes>.<ext>``: identical bytes from two URLs
  are one file, and a name already in the media folder means the bytes are already there.
- A URL whose name the caller ``remember``s, and whose file is still in the media folder, is not
  downloaded again. Local files are re-read every run (cheap, and they can change in place).

Guarantees:
- only images are stored: the Content-Type must allow an image and the bytes must start like
  PNG, JPEG, GIF, WebP, BMP or AVIF. SVG is refused (see ``_SVG_REASON``), as is HTML, script
  and anything unrecognised;
- a download stops once it passes ``max_bytes`` (the body is streamed; Content-Length is only a
  hint); each attempt has a deadline; connection errors, timeouts, 429 and 5xx are retried with
  back-off, other 4xx are not;
- URLs are requested exactly as written (Roam's firebase links keep their ``%2F`` path and query);
- a local image must be a regular file inside the source's root folder, symlinks resolved;
- a failure never raises: ``resolve`` returns None, the caller keeps the remote URL, and one line
  goes to ``warnings`` naming the image without its query string (firebase tokens live there).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from .model import Page

if TYPE_CHECKING:
    from anki.collection import Collection

NAME_PREFIX = "rb-"
CHUNK = 64 * 1024
# A server's Retry-After is honoured up to this many seconds: a sync must not stall on it.
MAX_RETRY_AFTER = 10.0
# Each attempt may take this many times ``timeout`` in total. ``timeout`` alone bounds only
# the connect and each read, so a server dripping a byte at a time could hold a worker forever.
DEADLINE_FACTOR = 4

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")
# Some servers (firebase among them) label every upload as bytes; the magic bytes decide.
_GENERIC_TYPES = frozenset({
    "application/octet-stream", "binary/octet-stream", "application/binary", "application/x-binary",
})
_SVG_REASON = (
    "SVG images are not stored (an SVG file can carry script: harmless in an <img>, but Anki "
    "serves media from its own local web server, where opening the file runs it)"
)
_ACCEPT = "image/avif,image/webp,image/png,image/jpeg,image/gif,image/*;q=0.8"


def sniff(data: bytes) -> str | None:
    """The file extension for ``data`` if it starts like an image we store, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    # "BM" alone is too common a start; the DIB header size must be one of the known ones.
    dib_header = int.from_bytes(data[14:18], "little") if len(data) >= 18 else 0
    if data[:2] == b"BM" and dib_header in (12, 40, 52, 56, 64, 108, 124):
        return "bmp"
    if data[4:8] == b"ftyp" and _is_avif(data):
        return "avif"
    return None


def _is_avif(data: bytes) -> bool:
    """An ISO-BMFF file whose major or compatible brands include AVIF (HEIC is not shown by
    Anki's web view, so it is not accepted)."""
    size = int.from_bytes(data[:4], "big")
    end = min(size if size >= 16 else 16, len(data), 256)
    brands = [data[8:12]] + [data[i : i + 4] for i in range(16, end - 3, 4)]
    return b"avif" in brands or b"avis" in brands


def _looks_like_svg(data: bytes) -> bool:
    head = data[:512].lstrip().lower()
    return head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head)


def media_name(data: bytes, ext: str) -> str:
    return f"{NAME_PREFIX}{hashlib.blake2b(data, digest_size=8).hexdigest()}.{ext}"


def url_label(url: str) -> str:
    """The URL as shown in warnings: no user info, query or fragment (they may hold secrets)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(malformed URL)"
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    label = urlunsplit((parts.scheme, host, parts.path, "", ""))
    return label if len(label) <= 200 else label[:199] + "…"


class _Failed(Exception):
    """The image cannot be had; ``reason`` is safe to show (never contains the URL)."""

    def __init__(self, reason: str, retry: bool = False, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        self.wait = wait


@dataclass(frozen=True, slots=True)
class _Target:
    """Where one image src points. ``key`` identifies it within a run: the URL as requested,
    or the local file's real path (one relative src names different files on different pages)."""

    key: str
    label: str
    url: str = ""
    path: str = ""
    error: str = ""


class MediaStore:
    """Images for one sync run. ``media_dir`` is the collection's media folder (only read);
    ``root`` the source's root folder, against which local images resolve ("" for none).

    Not thread-safe as a whole: ``prefetch`` fans out to its own worker threads, but the
    public methods are meant to be called from one thread.
    """

    def __init__(
        self,
        media_dir: str | Path,
        root: str | Path = "",
        *,
        session: requests.Session | None = None,
        timeout: float = 15,
        max_bytes: int = 20 * 2**20,
        retries: int = 2,
        workers: int = 4,
        backoff: float = 0.5,
    ) -> None:
        self.media_dir = Path(media_dir)
        self.root = os.path.realpath(root) if str(root) else ""
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.retries = max(0, retries)
        self.workers = max(1, workers)
        self.backoff = backoff
        self._own_session = session is None
        self.session = session if session is not None else _new_session(self.workers)
        self.pending: dict[str, bytes] = {}
        self.warnings: list[str] = []
        self._names: dict[str, str | None] = {}  # target key -> media name, None on failure
        self._used: dict[str, str] = {}
        self._lock = threading.Lock()

    # The public interface ------------------------------------------------------------------

    def remember(self, src: str, name: str) -> None:
        """Seed a known src -> media name (from a note's stored state); used only if that file
        still exists in media_dir, so an unchanged image is never downloaded again.

        Only URLs are remembered: a local file can change under the same path, and reading it
        again costs little.
        """
        url = _as_url(src.strip())
        if url is None or url in self._names:
            return
        if name != os.path.basename(name) or name in ("", ".", ".."):
            return
        if name in self.pending or (self.media_dir / name).is_file():
            self._names[url] = name

    def prefetch(self, items: Iterable[tuple[str, Page | None]]) -> None:
        """Download/read every not-yet-known src, in parallel (at most ``workers`` at once),
        so rendering never waits on the network one image at a time."""
        todo: dict[str, _Target] = {}
        for src, page in items:
            target = self._target(src, page)
            if target.key in self._names or target.key in todo:
                continue
            if target.error:
                self._names[target.key] = self._fail(target, target.error)
                continue
            todo[target.key] = target
        if not todo:
            return
        if len(todo) == 1 or self.workers == 1:
            for key, target in todo.items():
                self._names[key] = self._load(target)
            return
        with ThreadPoolExecutor(min(self.workers, len(todo)), "rb-media") as pool:
            for key, name in zip(todo, pool.map(self._load, todo.values()), strict=True):
                self._names[key] = name

    def resolve(self, src: str, page: Page | None) -> str | None:
        """Media file name for src (fetching it now if prefetch did not), or None on failure."""
        target = self._target(src, page)
        if target.key not in self._names:
            self._names[target.key] = (
                self._fail(target, target.error) if target.error else self._load(target)
            )
        name = self._names[target.key]
        if name is not None:
            self._used[src] = name
        return name

    def used(self) -> dict[str, str]:
        """src -> media name of every image resolved so far (for the notes' stored state).

        Keys are srcs as written; a relative local src that names different files on different
        pages keeps the last one (``remember`` ignores local srcs, so nothing depends on it).
        """
        return dict(self._used)

    def write(self, col: Collection) -> list[str]:
        """Write pending files through ``col.media.write_data`` (apply time). Returns the names
        written; files already in the media folder are skipped."""
        written: list[str] = []
        for name, data in self.pending.items():
            if col.media.have(name):
                continue
            stored = col.media.write_data(name, data)
            if stored != name:
                # Only if someone put other bytes under our hashed name; cards say ``name``.
                self.warnings.append(f"media file {name} exists with other content; "
                                     f"the image was stored as {stored}")
            written.append(stored)
        self.pending.clear()
        return written

    def close(self) -> None:
        """Close the HTTP session, if this store made it."""
        if self._own_session:
            self.session.close()

    # Targets ------------------------------------------------------------------------------

    def _target(self, src: str, page: Page | None) -> _Target:
        src = src.strip()
        url = _as_url(src)
        if url is not None:
            return _Target(url, url_label(url), url=url)
        scheme = _SCHEME.match(src)
        if scheme is not None and not _is_drive(src):
            name = scheme.group(1).lower()
            label = "(data: URI)" if name == "data" else url_label(src)
            return _Target(f"bad:{src}", label, error=f"{name}: images are not supported")
        page_path = page.path if page is not None else ""
        label = f"{src} (on {page_path})" if page_path else src
        if not src:
            return _Target("bad:", "(empty)", error="the image has no address")
        if not self.root:
            return _Target(f"bad:{label}", label,
                           error="a local image needs a notes folder to resolve against")
        path = self._local_path(src, page_path)
        if path is None:
            return _Target(f"bad:{label}", label, error="it is outside the notes folder")
        return _Target(path, label, path=path)

    def _local_path(self, src: str, page_path: str) -> str | None:
        """The real path ``src`` names, seen from the page's folder; None if outside root.

        A leading ``/`` means the notes folder's top (Logseq and Obsidian write vault paths
        so), unless it is already a path inside the folder. Percent-escapes are tried too, as
        Markdown links often encode spaces.
        """
        base = os.path.join(self.root, os.path.dirname(page_path))
        candidates = [src]
        unquoted = unquote(src)
        if unquoted != src:
            candidates.append(unquoted)
        found: list[str] = []
        for candidate in candidates:
            if os.path.isabs(candidate):
                inside = _real_inside(candidate, self.root)
                joined = inside or os.path.join(self.root, candidate.lstrip("/\\"))
            else:
                joined = os.path.join(base, candidate)
            real = _real_inside(joined, self.root)
            if real is not None:
                found.append(real)
        existing = [p for p in found if os.path.exists(p)]
        return (existing or found or [None])[0]

    # Loading (runs on prefetch's worker threads) ---------------------------------------------

    def _load(self, target: _Target) -> str | None:
        try:
            if target.url:
                data, ext = self._download(target.url)
            else:
                data, ext = self._read(target.path)
        except _Failed as failure:
            return self._fail(target, failure.reason)
        except Exception as error:  # never fail the sync over an image
            return self._fail(target, f"unexpected {type(error).__name__}")
        name = media_name(data, ext)
        with self._lock:
            if name not in self.pending and not (self.media_dir / name).is_file():
                self.pending[name] = data
        return name

    def _fail(self, target: _Target, reason: str) -> None:
        outcome = "the card keeps the remote link" if target.url else "not added"
        with self._lock:
            self.warnings.append(f"image {target.label}: {reason}; {outcome}")

    def _read(self, path: str) -> tuple[bytes, str]:
        try:
            info = os.stat(path)
            if not stat.S_ISREG(info.st_mode):
                raise _Failed("not a regular file")
            if info.st_size > self.max_bytes:
                raise _Failed(f"larger than {_size(self.max_bytes)}")
            with open(path, "rb") as file:
                data = file.read(self.max_bytes + 1)
        except FileNotFoundError:
            raise _Failed("file not found") from None
        except OSError as error:
            raise _Failed(f"cannot be read ({error.strerror or type(error).__name__})") from None
        if len(data) > self.max_bytes:
            raise _Failed(f"larger than {_size(self.max_bytes)}")
        return data, _image_type(data)

    def _download(self, url: str) -> tuple[bytes, str]:
        attempt = 0
        while True:
            try:
                return self._get(url)
            except _Failed as failure:
                if not failure.retry or attempt >= self.retries:
                    if failure.retry and attempt:
                        raise _Failed(f"{failure.reason} ({attempt + 1} tries)") from None
                    raise
                wait = self.backoff * 2**attempt if failure.wait is None else failure.wait
                time.sleep(wait)
                attempt += 1

    def _get(self, url: str) -> tuple[bytes, str]:
        # Every message here is fixed text: requests' own messages repeat the URL and its token.
        try:
            with self.session.get(url, stream=True, timeout=self.timeout,
                                  headers={"Accept": _ACCEPT}) as response:
                status = response.status_code
                if status == 429 or status >= 500:
                    raise _Failed(f"HTTP {status}", retry=True, wait=_retry_after(response))
                if status >= 300:
                    raise _Failed(f"HTTP {status}")
                self._check_headers(response)
                return self._body(response)
        except requests.Timeout:
            raise _Failed("timed out", retry=True) from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
            raise _Failed("connection failed", retry=True) from None
        except requests.exceptions.InvalidURL:
            raise _Failed("invalid URL") from None
        except requests.TooManyRedirects:
            raise _Failed("too many redirects") from None
        except requests.RequestException as error:
            raise _Failed(f"request failed ({type(error).__name__})") from None

    def _check_headers(self, response: requests.Response) -> None:
        mime = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if mime == "image/svg+xml":
            raise _Failed(_SVG_REASON)
        if mime and not mime.startswith("image/") and mime not in _GENERIC_TYPES:
            raise _Failed(f"not an image (served as {mime[:60]})")
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            raise _Failed(f"larger than {_size(self.max_bytes)}")

    def _body(self, response: requests.Response) -> tuple[bytes, str]:
        deadline = time.monotonic() + self.timeout * DEADLINE_FACTOR
        body = bytearray()
        for chunk in response.iter_content(CHUNK):
            body += chunk
            if len(body) > self.max_bytes:
                raise _Failed(f"larger than {_size(self.max_bytes)}")
            if time.monotonic() > deadline:
                raise _Failed("timed out", retry=True)
        data = bytes(body)
        return data, _image_type(data)


def _new_session(workers: int) -> requests.Session:
    session = requests.Session()
    # One pooled connection per worker, so parallel downloads from one host reuse them.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=workers)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = f"RoamBridge (Anki add-on) {session.headers['User-Agent']}"
    return session


def _as_url(src: str) -> str | None:
    """The URL to request for src, if it is an http(s) one (``//host/x`` means https)."""
    if src.startswith("//"):
        return "https:" + src
    lowered = src[:8].lower()
    return src if lowered.startswith(("http://", "https://")) else None


def _is_drive(src: str) -> bool:
    return len(src) > 2 and src[1] == ":" and src[0].isalpha() and src[2] in "/\\"


def _real_inside(path: str, root: str) -> str | None:
    real = os.path.realpath(path)
    try:
        inside = os.path.commonpath([real, root]) == root
    except ValueError:  # different drives on Windows
        return None
    return real if inside else None


def _image_type(data: bytes) -> str:
    ext = sniff(data)
    if ext is not None:
        return ext
    if _looks_like_svg(data):
        raise _Failed(_SVG_REASON)
    raise _Failed("not an image we store (not PNG, JPEG, GIF, WebP, BMP or AVIF)")


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    return min(float(value), MAX_RETRY_AFTER) if value.isdigit() else None


def _size(n: int) -> str:
    return f"{n / 2**20:g} MB" if n >= 2**20 else f"{n} bytes"

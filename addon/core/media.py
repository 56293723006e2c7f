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
  goes to ``warnings`` naming the image without its query string (firebase tokens live there);
- a failed download is remembered (``FailureMemory``) and not tried again for a while: a day
  when the server said no (4xx, not an image, too large), an hour when it could not be reached
  (timeouts, 429, 5xx). The memory is a small file beside the collection, never the collection:
  losing it costs only a retry. It is read when the store is made and written with the media
  (``write``, at apply time), so a dry run changes nothing on disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

import orjson
import requests
import urllib3
from requests.adapters import HTTPAdapter

from . import limits
from .http_body import BodyTooLarge, BodyTooSlow, read_body
from .model import Page, SourceError
from .sources.files import read_file

if TYPE_CHECKING:
    from anki.collection import Collection

NAME_PREFIX = "rb-"
# The memory of failed downloads, in the folder that holds the collection.
FAILURES_FILE = "roam-bridge-image-failures.json"
# At most this many failures are remembered (the newest): the file stays small.
MAX_REMEMBERED = 5000

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
    """The image cannot be had; ``reason`` is safe to show (never contains the URL).
    ``retry``: the failure may pass (a timeout, 429, 5xx), so it is worth another try."""

    def __init__(self, reason: str, retry: bool = False, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        self.wait = wait


class FailureMemory:
    """Failed downloads by URL (as a digest: the file holds no URL, so no token in one), each
    with why it failed and until when it is not tried again. Kept in a JSON file; a missing,
    unreadable or malformed file is an empty memory, and a file that cannot be written is
    left as it was: either way the cost is only a retry."""

    def __init__(self, path: str | Path | None, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path) if path else None
        self._clock = clock
        self._entries: dict[str, tuple[float, float, str]] = {}  # digest -> failed, until, why
        self._changed = False
        if self.path is not None:
            self._load(self.path)

    def recent(self, url: str) -> tuple[float, float, str] | None:
        """(when it failed, until when it is not tried, why) if ``url`` failed lately."""
        entry = self._entries.get(_url_digest(url))
        return entry if entry is not None and entry[1] > self._clock() else None

    def failed(self, url: str, reason: str, transient: bool) -> None:
        hours = limits.IMAGE_RETRY_HOURS_TRANSIENT if transient else limits.IMAGE_RETRY_HOURS
        now = self._clock()
        self._entries[_url_digest(url)] = (now, now + hours * 3600, reason)
        self._changed = True

    def succeeded(self, url: str) -> None:
        if self._entries.pop(_url_digest(url), None) is not None:
            self._changed = True

    def save(self) -> None:
        """Write the memory (expired entries dropped) if it changed; never raises."""
        if self.path is None or not self._changed:
            return
        now = self._clock()
        live = sorted(((d, e) for d, e in self._entries.items() if e[1] > now),
                      key=lambda item: item[1][0])[-MAX_REMEMBERED:]
        data = orjson.dumps({d: list(e) for d, e in live})
        try:
            fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(temp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
        except OSError:
            return
        self._changed = False

    def _load(self, path: Path) -> None:
        try:
            if not path.is_file() or path.stat().st_size > 4 * 1024**2:
                return
            raw = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return
        if not isinstance(raw, dict):
            return
        for digest, entry in raw.items():
            if (isinstance(entry, list) and len(entry) == 3
                    and all(isinstance(x, (int, float)) for x in entry[:2])
                    and isinstance(entry[2], str)):
                self._entries[str(digest)] = (float(entry[0]), float(entry[1]), entry[2][:200])


def _url_digest(url: str) -> str:
    return hashlib.blake2b(url.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


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
        timeout: float = limits.IMAGE_TIMEOUT,
        max_bytes: int = limits.IMAGE_BYTES,
        retries: int = 2,
        workers: int = 4,
        backoff: float = 0.5,
        failures: FailureMemory | None = None,
    ) -> None:
        self.media_dir = Path(media_dir)
        # Beside the collection: the media folder's parent is the collection's folder.
        self.failures = failures if failures is not None else FailureMemory(
            self.media_dir.parent / FAILURES_FILE
        )
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

    def prefetch(
        self, items: Iterable[tuple[str, Page | None]],
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """Download/read every not-yet-known src, in parallel (at most ``workers`` at once),
        so rendering never waits on the network one image at a time. ``progress(done,
        total)`` hears each image done; if it raises, the downloads not yet started are
        dropped and the exception goes to the caller without waiting for the rest."""
        todo: dict[str, _Target] = {}
        for src, page in items:
            target = self._target(src, page)
            if target.key in self._names or target.key in todo:
                continue
            if target.error:
                self._fail(target, target.error)
                self._names[target.key] = None
                continue
            todo[target.key] = target
        if not todo:
            return
        tell = progress or (lambda done, total: None)
        tell(0, len(todo))
        if len(todo) == 1 or self.workers == 1:
            for done, (key, target) in enumerate(todo.items(), 1):
                self._names[key] = self._load(target)
                tell(done, len(todo))
            return
        pool = ThreadPoolExecutor(min(self.workers, len(todo)), "rb-media")
        try:
            futures = {pool.submit(self._load, target): key for key, target in todo.items()}
            for done, future in enumerate(as_completed(futures), 1):
                self._names[futures[future]] = future.result()
                tell(done, len(todo))
        finally:
            # On a cancel, downloads under way end by their own deadline, off this thread.
            pool.shutdown(wait=False, cancel_futures=True)

    def resolve(self, src: str, page: Page | None) -> str | None:
        """Media file name for src (fetching it now if prefetch did not), or None on failure."""
        target = self._target(src, page)
        if target.key not in self._names:
            if target.error:
                self._fail(target, target.error)
                self._names[target.key] = None
            else:
                self._names[target.key] = self._load(target)
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
        self.failures.save()
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
        return (existing or found)[0] if found else None

    # Loading (runs on prefetch's worker threads) ---------------------------------------------

    def _load(self, target: _Target) -> str | None:
        if target.url:
            with self._lock:
                earlier = self.failures.recent(target.url)
            if earlier is not None:
                failed, until, reason = earlier
                again = time.strftime("%Y-%m-%d %H:%M", time.localtime(until))
                self._fail(target, f"failed {_ago(failed)} ({reason}); not tried again "
                                          f"before {again}")
                return None
        try:
            if target.url:
                data, ext = self._download(target.url)
            else:
                data, ext = self._read(target.path)
        except _Failed as failure:
            if target.url:
                with self._lock:
                    self.failures.failed(target.url, failure.reason, failure.retry)
            self._fail(target, failure.reason)
            return None
        except Exception as error:  # never fail the sync over an image
            self._fail(target, f"unexpected {type(error).__name__}")
            return None
        if target.url:
            with self._lock:
                self.failures.succeeded(target.url)
        name = media_name(data, ext)
        with self._lock:
            if name not in self.pending and not (self.media_dir / name).is_file():
                self.pending[name] = data
        return name

    def _fail(self, target: _Target, reason: str) -> None:
        """Warn that an image could not be had; its name is then None (the card keeps the
        remote link)."""
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
            # Opened without blocking and checked again: a FIFO put in its place since the
            # stat must not hang the sync.
            data = read_file(path, limit=self.max_bytes)
        except FileNotFoundError:
            raise _Failed("file not found") from None
        except OSError as error:
            raise _Failed(f"cannot be read ({error.strerror or type(error).__name__})") from None
        except SourceError as error:
            raise _Failed(error.message) from None
        return data, _image_type(data)

    def _download(self, url: str) -> tuple[bytes, str]:
        attempt = 0
        while True:
            try:
                return self._get(url)
            except _Failed as failure:
                if not failure.retry or attempt >= self.retries:
                    if failure.retry and attempt:
                        raise _Failed(f"{failure.reason} ({attempt + 1} tries)",
                                      retry=True) from None
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
        except (requests.Timeout, urllib3.exceptions.TimeoutError):
            raise _Failed("timed out", retry=True) from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                urllib3.exceptions.ProtocolError):
            raise _Failed("connection failed", retry=True) from None
        except urllib3.exceptions.DecodeError:
            raise _Failed("the server sent a body it could not decode") from None
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
        # ``timeout`` alone bounds only the connect and each read of the socket: a server
        # dripping a byte at a time would hold a worker for ever without this deadline.
        deadline = time.monotonic() + self.timeout * limits.IMAGE_ANSWER_FACTOR
        try:
            data = bytes(read_body(response, self.max_bytes, deadline))
        except BodyTooLarge:
            raise _Failed(f"larger than {_size(self.max_bytes)}") from None
        except BodyTooSlow:
            raise _Failed("timed out", retry=True) from None
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
    return min(float(value), limits.IMAGE_RETRY_AFTER) if value.isdigit() else None


def _ago(when: float) -> str:
    minutes = max(0, int((time.time() - when) / 60))
    if minutes < 120:
        return f"{minutes} min ago"
    return f"{minutes // 60} h ago"


def _size(n: int) -> str:
    return f"{n / 2**20:g} MB" if n >= 2**20 else f"{n} bytes"

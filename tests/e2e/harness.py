"""Reusable end-to-end harness for driving the REAL Anki desktop app headless.

Typical use (see test_anki_desktop.py)::

    from harness import create_base, install_driver_addon, launch_anki

    base = create_base(tmp_path / "base", profile="e2e")
    install_driver_addon(base)
    with launch_anki(base, "e2e", log_path=tmp_path / "anki.log") as anki:
        d = anki.driver
        d.wait_for_collection()
        print(d.eval("mw.col.note_count()"))
        d.quit()
        anki.assert_clean_exit(timeout=30)

Pieces:

* :func:`create_base` – fresh base folder with a pre-seeded ``prefs21.db`` so
  Anki opens the named profile directly (no language picker, no first-run
  profile, no update / add-on-update checks, no AnkiWeb sync).
* :func:`install_addon_folder`, :func:`install_ankiaddon`,
  :func:`install_driver_addon` – add-on installation into ``BASE/addons21``.
* :func:`launch_anki` – context manager starting Anki (``aqt.run()``) with
  ``-b BASE -p PROFILE`` with a headless environment; it always kills the whole process
  tree on exit and exposes an :class:`AnkiDriver` connected to the driver add-on.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import random
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DRIVER_ADDON_SRC = HERE / "anki_e2e_driver"
DRIVER_ADDON_NAME = "anki_e2e_driver"
# Anki runs on the interpreter running the tests (the project's .venv).
DEFAULT_PYTHON = Path(sys.executable)

# Driver code that starts a 10 ms timer on Anki's main thread and keeps the worst gap between
# its ticks: ``mw._heartbeat`` is (the timer, {"last": ..., "worst": seconds}). A tick that
# comes late is the main thread held up (the bench's and the e2e tests' measure of a stall).
START_HEARTBEAT = (
    "from aqt.qt import QTimer\n"
    "import time\n"
    "hb = {'last': time.perf_counter(), 'worst': 0.0}\n"
    "def tick():\n"
    "    t = time.perf_counter()\n"
    "    hb['worst'] = max(hb['worst'], t - hb['last'])\n"
    "    hb['last'] = t\n"
    "timer = QTimer(mw)\n"
    "timer.timeout.connect(tick)\n"
    "timer.start(10)\n"
    "mw._heartbeat = (timer, hb)\n"
    "result = True"
)


class AnkiHarnessError(RuntimeError):
    """Raised for harness-level failures (startup, timeouts, bad exit)."""


class DriverCommandError(AnkiHarnessError):
    """The driver add-on reported an exception; ``.remote_traceback`` has it."""

    def __init__(self, cmd: str, remote_traceback: str) -> None:
        super().__init__(f"driver command {cmd!r} failed in Anki:\n{remote_traceback}")
        self.remote_traceback = remote_traceback


# ---------------------------------------------------------------------------
# Base folder / prefs21.db
# ---------------------------------------------------------------------------


def _anki_int_version() -> int | None:
    """Anki's YYMMPP version (``anki.utils.int_version``) if importable here."""
    try:
        from anki.utils import int_version

        return int(int_version())
    except Exception:
        return None


def _global_meta(profile: str, lang: str, extra: Mapping[str, Any] | None) -> dict:
    """The ``_global`` row, mirroring ``aqt.profiles.metaConf`` plus the keys
    read via ``ProfileManager.meta.get(...)`` that would otherwise trigger
    network activity or first-run UI."""
    now = int(time.time())
    meta: dict[str, Any] = dict(
        ver=0,
        updates=False,  # legacy key
        created=now,
        id=random.randrange(0, 2**63),
        lastMsg=0,
        suppressUpdate=False,
        firstRun=False,  # True => setupProfile() loads profiles()[0] instead
        defaultLang=lang,  # non-None + file exists => no language dialog
        check_for_updates=False,  # ProfileManager.check_for_updates()
        check_for_addon_updates=False,  # ProfileManager.check_for_addon_updates()
        last_addon_update_check=now,
        last_loaded_profile_name=profile,
    )
    ver = _anki_int_version()
    if ver is not None:
        meta["last_run_version"] = ver
    meta.update(extra or {})
    return meta


def _profile_conf(extra: Mapping[str, Any] | None) -> dict:
    """A profile row, mirroring ``aqt.profiles.profileConf`` with sync off."""
    now = int(time.time())
    prof: dict[str, Any] = dict(
        mainWindowGeom=None,
        mainWindowState=None,
        numBackups=50,
        lastOptimize=now,
        searchHistory=[],
        syncKey=None,  # no AnkiWeb credentials => sync_auth() is None
        syncUser=None,
        syncMedia=False,
        autoSync=False,  # never sync on open/close
        allowHTML=False,
        importMode=1,
        lastColour="#00f",
        stripHTML=True,
        deleteMedia=False,
    )
    prof.update(extra or {})
    return prof


def write_prefs_db(
    base: Path,
    profiles: list[str],
    *,
    last_profile: str | None = None,
    lang: str = "en_US",
    extra_meta: Mapping[str, Any] | None = None,
    extra_profile: Mapping[str, Any] | None = None,
) -> Path:
    """(Re)write ``base/prefs21.db`` exactly like ``aqt.profiles.ProfileManager``
    does: table ``profiles(name text primary key collate nocase, data blob not
    null)`` holding ``pickle.dumps(dict, protocol=4)`` per profile plus the
    ``_global`` row."""
    base.mkdir(parents=True, exist_ok=True)
    path = base / "prefs21.db"
    for suffix in ("", "-journal", "-wal", "-shm"):
        p = Path(str(path) + suffix)
        if p.exists():
            p.unlink()
    con = sqlite3.connect(path)
    try:
        con.execute(
            "create table if not exists profiles "
            "(name text primary key collate nocase, data blob not null)"
        )
        meta = _global_meta(last_profile or profiles[0], lang, extra_meta)
        con.execute(
            "insert or replace into profiles values ('_global', ?)",
            (pickle.dumps(meta, protocol=4),),
        )
        for name in profiles:
            con.execute(
                "insert or replace into profiles values (?, ?)",
                (name, pickle.dumps(_profile_conf(extra_profile), protocol=4)),
            )
        con.commit()
    finally:
        con.close()
    return path


def read_prefs_db(base: Path) -> dict[str, dict]:
    """Return ``{name: unpickled dict}`` for every row of ``base/prefs21.db``."""
    con = sqlite3.connect(Path(base) / "prefs21.db")
    try:
        rows = con.execute("select name, cast(data as blob) from profiles").fetchall()
    finally:
        con.close()
    return {name: pickle.loads(data) for name, data in rows}


def create_base(
    base: Path | str,
    profile: str = "e2e",
    *,
    lang: str = "en_US",
    video_driver: str | None = "software",
    extra_meta: Mapping[str, Any] | None = None,
    extra_profile: Mapping[str, Any] | None = None,
    wipe: bool = True,
) -> Path:
    """Create a fresh Anki base folder that starts straight into ``profile``.

    ``video_driver`` is written to ``gldriver6`` (values of
    ``aqt.profiles.VideoDriver``: "software", "auto", "vulkan"); "software"
    avoids any GL probing headless.  ``None`` leaves the file absent.
    """
    base = Path(base).resolve()
    if wipe and base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True, exist_ok=True)
    (base / "addons21").mkdir(exist_ok=True)
    (base / profile).mkdir(exist_ok=True)
    write_prefs_db(
        base,
        [profile],
        last_profile=profile,
        lang=lang,
        extra_meta=extra_meta,
        extra_profile=extra_profile,
    )
    if video_driver:
        (base / "gldriver6").write_text(video_driver, encoding="utf8")
    return base


# ---------------------------------------------------------------------------
# Add-ons
# ---------------------------------------------------------------------------


def install_addon_folder(
    base: Path | str,
    src: Path | str,
    name: str | None = None,
    *,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Copy add-on folder ``src`` (must contain ``__init__.py``) to
    ``BASE/addons21/<name>`` (default: the folder's name). ``meta`` is written
    to ``meta.json`` (e.g. ``{"disabled": True}`` or a display ``name``)."""
    src = Path(src)
    if not (src / "__init__.py").exists():
        raise AnkiHarnessError(f"{src} has no __init__.py; not an add-on")
    dest = Path(base) / "addons21" / (name or src.name)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(
        src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "meta.json")
    )
    if meta:
        (dest / "meta.json").write_text(json.dumps(dict(meta)), encoding="utf8")
    return dest


def install_ankiaddon(
    base: Path | str, zip_path: Path | str, name: str | None = None
) -> Path:
    """Install a ``.ankiaddon``/``.zip`` offline the way
    ``aqt.addons.AddonManager.install`` does: folder name from the zip's
    ``manifest.json`` ``package`` (else ``name``, else the file stem), files
    extracted with path-traversal protection, manifest's meta keys -> meta.json.
    """
    zip_path = Path(zip_path)
    with zipfile.ZipFile(zip_path) as zf:
        manifest: dict[str, Any] = {}
        if "manifest.json" in zf.namelist():
            manifest = json.loads(zf.read("manifest.json"))
        package = name or manifest.get("package") or zip_path.stem
        dest = (Path(base) / "addons21" / package).resolve()
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        for member in zf.namelist():
            if member.endswith("/"):
                continue
            target = (dest / member).resolve()
            if not str(target).startswith(str(dest) + os.sep):
                continue  # unsafe path, skipped like Anki does
            zf.extract(member, dest)
    meta_keys = (
        "name", "mod", "conflicts", "min_point_version", "max_point_version",
        "branch_index", "human_version", "homepage",
    )  # fmt: skip
    meta = {k: manifest[k] for k in meta_keys if k in manifest}
    meta.setdefault("name", manifest.get("name", package))
    (dest / "meta.json").write_text(json.dumps(meta), encoding="utf8")
    return dest


def install_driver_addon(base: Path | str) -> Path:
    """Install the test-only driver add-on (``anki_e2e_driver``)."""
    return install_addon_folder(base, DRIVER_ADDON_SRC, DRIVER_ADDON_NAME)


# ---------------------------------------------------------------------------
# Driver client
# ---------------------------------------------------------------------------


class AnkiDriver:
    """Client for the driver add-on (newline-delimited JSON over 127.0.0.1)."""

    def __init__(self, port: int, token: str, default_timeout: float = 30.0) -> None:
        self.port = port
        self.token = token
        self.default_timeout = default_timeout
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self._buf = b""
        self._next_id = 0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()

    # --- transport ----------------------------------------------------------

    def request(self, cmd: str, timeout: float | None = None, **args: Any) -> Any:
        """Send one command and wait for its response; returns ``result`` or
        raises :class:`DriverCommandError` with the remote traceback."""
        self._next_id += 1
        req_id = self._next_id
        msg = {"id": req_id, "token": self.token, "cmd": cmd, **args}
        self._sock.sendall((json.dumps(msg) + "\n").encode("utf8"))
        deadline = time.monotonic() + (timeout or self.default_timeout)
        while True:
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                resp = json.loads(line)
                if resp.get("id") != req_id:
                    continue  # stale reply of an earlier timed-out request
                if resp.get("ok"):
                    return resp.get("result")
                raise DriverCommandError(cmd, str(resp.get("error")))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AnkiHarnessError(f"driver command {cmd!r} timed out")
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                raise AnkiHarnessError(f"driver connection closed during {cmd!r}")
            self._buf += chunk

    # --- generic ------------------------------------------------------------

    def ping(self) -> dict:
        """``{"pid", "state", "col_loaded", "profile"}``."""
        return self.request("ping")

    def eval(self, expr: str, timeout: float | None = None) -> Any:
        """Evaluate a Python expression on Anki's main thread (``mw`` in scope)."""
        return self.request("eval", timeout=timeout, expr=expr)

    def exec(self, code: str, timeout: float | None = None) -> Any:
        """Exec Python code on the main thread; returns the variable ``result``.
        The namespace persists between calls (``mw``, ``aqt`` predefined)."""
        return self.request("exec", timeout=timeout, code=code)

    def exec_async(self, code: str, timeout: float = 30.0) -> Any:
        """Exec code that must eventually call ``done(value)`` or ``fail(msg)``
        (e.g. from a webview callback); returns ``value``."""
        return self.request("exec_async", timeout=timeout + 5, code=code, timeout_s=timeout)

    def wait_until(
        self, expr: str, timeout: float = 60.0, interval: float = 0.2
    ) -> Any:
        """Poll ``eval(expr)`` until truthy; returns the truthy value."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = self.eval(expr)
            except DriverCommandError as e:
                last = e
            else:
                if last:
                    return last
            time.sleep(interval)
        raise AnkiHarnessError(f"timed out waiting for {expr!r}; last={last!r}")

    # --- Anki specific ----------------------------------------------------

    IDLE_EXPR = (
        "all(w._domDone and not w._pendingActions "
        "for w in (mw.web, mw.toolbarWeb, mw.bottomWeb)) "
        "and not getattr(mw.progress, '_levels', 0)"
    )

    def wait_for_idle(self, timeout: float = 30.0, stable_polls: int = 3) -> None:
        """Wait until the main/toolbar/bottom webviews have finished loading
        their current page (``_domDone``, no queued actions) and no progress
        dialog is active, for ``stable_polls`` consecutive 100 ms polls.

        Needed before switching screens: ``AnkiWebView.setHtml`` forcibly resets
        ``_domDone``; a "domDone" from a still-loading previous page then marks
        the new page ready too early and its JS (e.g. ``_showQuestion``) runs
        before ``reviewer.js`` is loaded -> empty reviewer."""
        deadline = time.monotonic() + timeout
        streak = 0
        while time.monotonic() < deadline:
            streak = streak + 1 if self.eval(self.IDLE_EXPR) else 0
            if streak >= stable_polls:
                return
            time.sleep(0.1)
        raise AnkiHarnessError(f"Anki webviews not idle after {timeout}s")

    def wait_for_collection(self, timeout: float = 60.0) -> dict:
        """Wait until the profile is open, ``mw.col`` loaded, the main window
        left the startup/profile-manager state and its webviews are idle."""
        self.wait_until(
            "mw.col is not None and mw.state not in ('startup', 'profileManager')",
            timeout=timeout,
        )
        self.wait_for_idle(timeout=timeout)
        return self.ping()

    def list_actions(self, menu: str = "Tools") -> list[str]:
        return self.request("list_actions", menu=menu)

    def trigger_action(self, text: str, menu: str = "Tools") -> str:
        """Trigger a QAction by its visible text ('&' and trailing '...' ignored)."""
        return self.request("trigger_action", text=text, menu=menu)

    def web_html(
        self, web: str = "main", js: str = "document.documentElement.outerHTML",
        timeout: float | None = None,
    ) -> Any:
        """Async ``evalWithCallback`` on a webview: main|reviewer|toolbar|bottom."""
        return self.request("web_html", timeout=timeout, web=web, js=js)

    def wait_for_web_text(
        self, text: str, web: str = "main", timeout: float = 30.0,
        js: str = "document.documentElement.outerHTML",
    ) -> str:
        """Poll a webview's HTML until it contains ``text``; returns the HTML."""
        deadline = time.monotonic() + timeout
        html: Any = ""
        while time.monotonic() < deadline:
            try:
                html = self.web_html(web, js=js, timeout=10) or ""
            except (DriverCommandError, AnkiHarnessError):
                html = ""
            if text in html:
                return html
            time.sleep(0.2)
        raise AnkiHarnessError(f"{text!r} not in {web} webview; last html={str(html)[:2000]}")

    def open_reviewer(self, deck_id: int | None = None, timeout: float = 30.0) -> None:
        """Select ``deck_id`` (default: current) and ``mw.moveToState('review')``,
        then wait until the reviewer shows a card in 'question' state and the
        webviews are idle."""
        self.wait_for_idle(timeout=timeout)
        self.exec(
            (f"mw.col.decks.select({int(deck_id)})\n" if deck_id is not None else "")
            + "mw.moveToState('review')\n"
        )
        self.wait_until(
            "mw.state == 'review' and mw.reviewer.card is not None "
            "and mw.reviewer.state == 'question'",
            timeout=timeout,
        )
        self.wait_for_idle(timeout=timeout)

    def show_answer(self) -> None:
        """Press "Show Answer" the way the button does (``pycmd('ans')``)."""
        self.exec("mw.reviewer._linkHandler('ans')")
        self.wait_until("mw.reviewer.state == 'answer'", timeout=30)

    def screenshot(
        self, path: Path | str, widget_expr: str | None = None,
        settle_ms: int = 500, max_wait_ms: int = 3000,
    ) -> dict:
        """``<widget>.grab().save(path)`` (default widget ``mw``) after waiting
        ``settle_ms`` and until two grabs 100 ms apart are identical, because
        QtWebEngine paints asynchronously.  Returns ``{path,width,height,tries}``."""
        return self.request(
            "screenshot", timeout=(settle_ms + max_wait_ms) / 1000 + 30,
            path=str(Path(path).resolve()), widget_expr=widget_expr,
            settle_ms=settle_ms, max_wait_ms=max_wait_ms,
        )

    def quit(self, how: str = "close") -> None:
        """Ask Anki to exit: ``close`` -> ``mw.close()``; ``unload`` ->
        ``mw.unloadProfileAndExit()``."""
        self.request("quit", how=how)


# ---------------------------------------------------------------------------
# Process management
# ---------------------------------------------------------------------------


def headless_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for running Anki without a display."""
    env = dict(os.environ)
    for k in ("DISPLAY", "WAYLAND_DISPLAY", "ANKI_WAYLAND"):
        env.pop(k, None)
    env.update(
        QT_QPA_PLATFORM="offscreen",
        QTWEBENGINE_DISABLE_SANDBOX="1",  # required as root / without userns
        QTWEBENGINE_CHROMIUM_FLAGS="--no-sandbox --disable-gpu "
        "--disable-dev-shm-usage",
        QT_QUICK_BACKEND="software",
        LIBGL_ALWAYS_SOFTWARE="1",
        PYTHONUNBUFFERED="1",
        PYTHONFAULTHANDLER="1",
        LANG=env.get("LANG") or "C.UTF-8",
    )
    if not env.get("XDG_RUNTIME_DIR") or not os.path.isdir(env["XDG_RUNTIME_DIR"]):
        rt = Path("/tmp") / f"anki-e2e-runtime-{os.getuid()}"
        rt.mkdir(mode=0o700, exist_ok=True)
        env["XDG_RUNTIME_DIR"] = str(rt)
    env.update(extra or {})
    return env


def _descendants(pid: int) -> list[int]:
    """All descendant PIDs of ``pid`` (Linux /proc walk)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out: list[int] = []
    stack = [pid]
    while stack:
        for c in children.get(stack.pop(), []):
            out.append(c)
            stack.append(c)
    return out


class AnkiProcess:
    """A running Anki subprocess (use :func:`launch_anki`)."""

    def __init__(
        self, proc: subprocess.Popen, base: Path, log_path: Path, portfile: Path,
        token: str,
    ) -> None:
        self.proc = proc
        self.base = base
        self.log_path = log_path
        self.portfile = portfile
        self.token = token
        self._driver: AnkiDriver | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf8", errors="replace")

    def connect(self, timeout: float = 60.0) -> AnkiDriver:
        """Wait for the driver add-on's port file and connect to it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AnkiHarnessError(
                    f"Anki exited with {self.proc.returncode} before the driver "
                    f"came up. Log:\n{self.log_text()[-6000:]}"
                )
            if self.portfile.exists():
                info = json.loads(self.portfile.read_text())
                if info.get("pid") == self.proc.pid:
                    self._driver = AnkiDriver(info["port"], self.token)
                    return self._driver
            time.sleep(0.1)
        raise AnkiHarnessError(
            f"driver add-on did not start in {timeout}s. Log:\n{self.log_text()[-6000:]}"
        )

    @property
    def driver(self) -> AnkiDriver:
        if self._driver is None:
            return self.connect()
        return self._driver

    def wait_exit(self, timeout: float = 30.0) -> int | None:
        """Wait for the process; returns the exit code or None on timeout."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def assert_clean_exit(self, timeout: float = 30.0) -> None:
        """Assert Anki exits with code 0 within ``timeout`` seconds."""
        rc = self.wait_exit(timeout)
        if rc != 0:
            raise AnkiHarnessError(
                f"Anki did not exit cleanly (rc={rc!r}, timeout={timeout}s). "
                f"Log tail:\n{self.log_text()[-6000:]}"
            )

    def kill_tree(self) -> None:
        """SIGKILL Anki, its process group and every descendant (QtWebEngine)."""
        if self._driver:
            self._driver.close()
        pids = _descendants(self.proc.pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # start_new_session=True
        for p in [self.proc.pid, *pids]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(p, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)


@contextlib.contextmanager
def launch_anki(
    base: Path | str,
    profile: str,
    *,
    log_path: Path | str | None = None,
    python: Path | str | None = None,
    extra_args: list[str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    connect: bool = True,
    connect_timeout: float = 60.0,
) -> Iterator[AnkiProcess]:
    """Start ``python -c 'from aqt import run; run()' -b BASE -p PROFILE`` headless; yields an
    :class:`AnkiProcess`.  The process tree is always killed on exit (after a
    clean exit this is a no-op).  With ``connect=True`` the driver add-on must
    be installed (:func:`install_driver_addon`)."""
    base = Path(base).resolve()
    log_path = Path(log_path or base / "anki-e2e.log").resolve()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    portfile = base / "e2e_driver.json"
    with contextlib.suppress(FileNotFoundError):
        portfile.unlink()
    token = secrets.token_hex(16)
    env = headless_env(
        {
            "ANKI_E2E_DRIVER_PORTFILE": str(portfile),
            "ANKI_E2E_DRIVER_TOKEN": token,
            # unique single-instance key, so parallel runs don't "hand off"
            # to each other via QLocalServer (aqt.AnkiApp.KEY)
            "ANKI_SINGLE_INSTANCE_KEY": f"anki-e2e-{secrets.token_hex(8)}",
            **(extra_env or {}),
        }
    )
    py = str(
        python
        or os.environ.get("ANKI_E2E_PYTHON")
        or (DEFAULT_PYTHON if DEFAULT_PYTHON.exists() else sys.executable)
    )
    # aqt has no __main__.py; this is what the `anki` console script does.
    launcher = "import sys; from aqt import run; sys.exit(run())"
    cmd = [py, "-c", launcher, "-b", str(base), "-p", profile, *(extra_args or [])]
    with open(log_path, "ab", buffering=0) as log:
        log.write(f"$ {' '.join(cmd)}\n".encode())
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(base),
            start_new_session=True,
        )
    anki = AnkiProcess(proc, base, log_path, portfile, token)
    try:
        if connect:
            anki.connect(timeout=connect_timeout)
        yield anki
    finally:
        anki.kill_tree()

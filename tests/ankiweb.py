"""Anki's own sync server on 127.0.0.1, and devices that sync with it as Anki desktop does.

``SyncServer`` runs ``python -m anki.syncserver`` (it ships in the ``anki`` package) with a
temporary base folder and a set of users; each test takes a user of its own, so tests never
see each other's collections. A ``Device`` is one collection file that logs in and syncs with
``col.sync_collection``; when the server asks for a full sync it uploads or downloads as the
test says, which is the choice Anki desktop puts to the user.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anki.collection  # noqa: F401  (import first: anki 26.9 has an import cycle otherwise)
from anki.collection import Collection
from anki.sync_pb2 import SyncCollectionResponse

USERS = 40
PASSWORD = "pass"
_Required = SyncCollectionResponse.ChangesRequired


class SyncServer:
    def __init__(self, base: Path) -> None:
        self.base = base
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}/"
        self._users = itertools.count(1)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNC_")}
        env.update(SYNC_BASE=str(self.base), SYNC_HOST="127.0.0.1", SYNC_PORT=str(self.port))
        env.update({f"SYNC_USER{i}": f"user{i}:{PASSWORD}" for i in range(1, USERS + 1)})
        log = open(self.base.parent / "syncserver.log", "wb")  # noqa: SIM115 (kept open)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "anki.syncserver"], env=env, stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError("anki.syncserver exited; see syncserver.log")
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            time.sleep(0.1)
        raise RuntimeError("anki.syncserver did not start listening")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=10)

    def new_user(self) -> str:
        number = next(self._users)
        assert number <= USERS, "raise USERS in tests/ankiweb.py"
        return f"user{number}"


class Device:
    """One collection that syncs with the server as one user's device."""

    def __init__(self, path: Path, server: SyncServer, user: str) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.col = Collection(str(path))
        self.auth = self.col.sync_login(user, PASSWORD, server.endpoint)

    def sync(self, full: str = "download") -> str:
        """A normal sync; when a full one is required, ``full`` says which way it goes
        ("upload" or "download"; the server may insist on one). Returns "normal",
        "full upload" or "full download"."""
        out = self.col.sync_collection(self.auth, False)
        self.col.models._clear_cache()  # as Anki desktop does after every sync
        if out.required not in (_Required.FULL_SYNC, _Required.FULL_UPLOAD,
                                _Required.FULL_DOWNLOAD):
            return "normal"
        upload = out.required == _Required.FULL_UPLOAD or (
            out.required == _Required.FULL_SYNC and full == "upload"
        )
        self.col.close_for_full_sync()
        self.col.full_upload_or_download(
            auth=self.auth, server_usn=out.server_media_usn, upload=upload
        )
        self.col.reopen(after_full_sync=True)
        return "full upload" if upload else "full download"

    def close(self) -> None:
        self.col.close()


@contextlib.contextmanager
def running_server(base: Path) -> Iterator[SyncServer]:
    base.mkdir(parents=True, exist_ok=True)
    server = SyncServer(base)
    server.start()
    try:
        yield server
    finally:
        server.stop()

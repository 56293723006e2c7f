"""Test-only "driver" add-on for Anki end-to-end tests.

NEVER ship this to users: it executes arbitrary Python received over a socket.

It opens a ``QTcpServer`` bound to 127.0.0.1 on a random port and writes
``{"port": ..., "pid": ...}`` to the file named by the environment variable
``ANKI_E2E_DRIVER_PORTFILE`` (default: ``<base>/e2e_driver.json``).  Because the
server lives in Qt's event loop, every command runs on the GUI (main) thread.

Wire protocol: newline-delimited JSON, one request -> one response.

Request:  ``{"id": 1, "token": "...", "cmd": "eval", ...args}``
Response: ``{"id": 1, "ok": true, "result": <json>}`` or
          ``{"id": 1, "ok": false, "error": "<traceback text>"}``

If ``ANKI_E2E_DRIVER_TOKEN`` is set, every request must carry that token.

Commands (see ``_Handler.cmd_*``): ping, eval, exec, exec_async, trigger_action,
list_actions, web_html, screenshot, quit.
"""

from __future__ import annotations

import json
import os
import traceback
from collections.abc import Callable
from typing import Any

import aqt
from aqt import mw
from aqt.qt import QAction, QByteArray, QMenu, QObject, QTimer

# aqt.qt does not re-export QtNetwork's TCP classes
try:
    from PyQt6.QtNetwork import QHostAddress, QTcpServer, QTcpSocket
except ImportError:  # pragma: no cover - Qt5 builds
    from PyQt5.QtNetwork import QHostAddress, QTcpServer, QTcpSocket  # type: ignore

_TOKEN = os.environ.get("ANKI_E2E_DRIVER_TOKEN", "")


def _to_json(obj: Any) -> str:
    return json.dumps(obj, default=repr)


def _strip_amp(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&")


class _Handler:
    """Executes commands. Every ``cmd_X(req, reply)`` calls ``reply(ok, payload)``
    exactly once, possibly later (asynchronous commands)."""

    def __init__(self) -> None:
        # persistent namespace shared by exec/eval calls (tests can stash state)
        self.ns: dict[str, Any] = {"aqt": aqt, "mw": mw}

    def _namespace(self) -> dict[str, Any]:
        self.ns["mw"] = aqt.mw
        return self.ns

    # --- basic -------------------------------------------------------------

    def cmd_ping(self, req: dict, reply: Callable[[bool, Any], None]) -> None:
        m = aqt.mw
        reply(
            True,
            {
                "pid": os.getpid(),
                "state": getattr(m, "state", None),
                "col_loaded": bool(m is not None and m.col is not None),
                "profile": getattr(getattr(m, "pm", None), "name", None),
            },
        )

    def cmd_eval(self, req: dict, reply: Callable[[bool, Any], None]) -> None:
        reply(True, eval(req["expr"], self._namespace()))

    def cmd_exec(self, req: dict, reply: Callable[[bool, Any], None]) -> None:
        ns = self._namespace()
        ns["result"] = None
        exec(req["code"], ns)
        reply(True, ns.get("result"))

    def cmd_exec_async(self, req: dict, reply: Callable[[bool, Any], None]) -> None:
        """Run ``code`` with ``done(value)`` / ``fail(message)`` in scope; the
        response is sent when one of them is called (or after ``timeout`` s)."""
        state = {"sent": False}

        def finish(ok: bool, payload: Any) -> None:
            if not state["sent"]:
                state["sent"] = True
                reply(ok, payload)

        ns = self._namespace()
        ns["done"] = lambda value=None: finish(True, value)
        ns["fail"] = lambda msg="failed": finish(False, str(msg))
        timeout_ms = int(float(req.get("timeout_s", 30)) * 1000)
        QTimer.singleShot(
            timeout_ms,
            lambda: finish(False, f"exec_async timed out after {timeout_ms} ms"),
        )
        try:
            exec(req["code"], ns)
        except BaseException:
            finish(False, traceback.format_exc())

    # --- menus / actions ----------------------------------------------------

    def _menu(self, title: str) -> QMenu:
        form = aqt.mw.form
        for attr in dir(form):
            obj = getattr(form, attr)
            if isinstance(obj, QMenu) and _strip_amp(obj.title()) == title:
                return obj
        raise KeyError(f"no menu titled {title!r}")

    def _actions(self, menu: QMenu) -> list[QAction]:
        out: list[QAction] = []
        for act in menu.actions():
            sub = act.menu()
            if sub is not None:
                out.extend(self._actions(sub))
            elif not act.isSeparator():
                out.append(act)
        return out

    def cmd_list_actions(self, req: dict, reply: Callable[[bool, Any], None]) -> None:
        menu = self._menu(req.get("menu", "Tools"))
        reply(True, [_strip_amp(a.text()) for a in self._actions(menu)])

    def cmd_trigger_action(self, req: dict, reply: Callable[[bool, Any], None]) -> None:
        """Trigger the QAction whose text (without '&' and trailing '...')
        equals ``text`` in menu ``menu`` (default Tools).  The trigger happens on
        the next event-loop turn so a modal dialog cannot block the reply."""
        menu = self._menu(req.get("menu", "Tools"))
        want = req["text"].rstrip(".…").strip()
        for act in self._actions(menu):
            if _strip_amp(act.text()).rstrip(".…").strip() == want:
                QTimer.singleShot(0, act.trigger)
                reply(True, _strip_amp(act.text()))
                return
        names = [_strip_amp(a.text()) for a in self._actions(menu)]
        raise KeyError(f"no action {req['text']!r} in {req.get('menu', 'Tools')}: {names}")

    # --- webviews -----------------------------------------------------------

    def _web(self, which: str) -> Any:
        m = aqt.mw
        return {
            "main": m.web,
            "reviewer": m.reviewer.web,
            "toolbar": m.toolbarWeb,
            "bottom": m.bottomWeb,
        }[which]

    def cmd_web_html(self, req: dict, reply: Callable[[bool, Any], None]) -> None:
        web = self._web(req.get("web", "main"))
        js = req.get("js", "document.documentElement.outerHTML")
        web.evalWithCallback(js, lambda val: reply(True, val))

    # --- screenshots / exit -----------------------------------------------

    def cmd_screenshot(self, req: dict, reply: Callable[[bool, Any], None]) -> None:
        """``widget.grab().save(path)``.  QtWebEngine delivers composited frames
        asynchronously, so a grab right after a page change can show stale or
        empty webviews: wait ``settle_ms`` first, then re-grab every 100 ms until
        two consecutive grabs are identical (at most ``max_wait_ms``)."""
        target = aqt.mw
        if req.get("widget_expr"):
            target = eval(req["widget_expr"], self._namespace())
        path = req["path"]
        settle_ms = int(req.get("settle_ms", 500))
        deadline_tries = max(1, int(req.get("max_wait_ms", 3000)) // 100)
        state: dict[str, Any] = {"prev": None, "tries": 0}

        def save(pix: Any) -> None:
            if not pix.save(path, "PNG"):
                reply(False, f"QPixmap.save({path!r}) failed")
                return
            reply(True, {"path": path, "width": pix.width(), "height": pix.height(),
                         "tries": state["tries"]})

        def step() -> None:
            try:
                pix = target.grab()
                img = pix.toImage()
                state["tries"] += 1
                if (state["prev"] is not None and img == state["prev"]) or (
                    state["tries"] >= deadline_tries
                ):
                    save(pix)
                    return
                state["prev"] = img
                QTimer.singleShot(100, step)
            except BaseException:
                reply(False, traceback.format_exc())

        QTimer.singleShot(settle_ms, step)

    def cmd_quit(self, req: dict, reply: Callable[[bool, Any], None]) -> None:
        how = req.get("how", "close")
        reply(True, how)
        m = aqt.mw
        fn = m.unloadProfileAndExit if how == "unload" else m.close
        # let the reply flush before tearing down
        QTimer.singleShot(50, fn)


class _Server(QObject):
    def __init__(self) -> None:
        super().__init__(aqt.mw)
        self.handler = _Handler()
        self.server = QTcpServer(self)
        self.server.newConnection.connect(self._on_new_connection)
        if not self.server.listen(QHostAddress(QHostAddress.SpecialAddress.LocalHost), 0):
            raise RuntimeError(f"driver listen failed: {self.server.errorString()}")
        self._buffers: dict[int, bytes] = {}
        self._sockets: list[QTcpSocket] = []
        portfile = os.environ.get("ANKI_E2E_DRIVER_PORTFILE") or os.path.join(
            aqt.mw.pm.base, "e2e_driver.json"
        )
        tmp = portfile + ".tmp"
        with open(tmp, "w", encoding="utf8") as f:
            json.dump({"port": self.server.serverPort(), "pid": os.getpid()}, f)
        os.replace(tmp, portfile)  # atomic: reader never sees a partial file
        print(f"[e2e-driver] listening on 127.0.0.1:{self.server.serverPort()}", flush=True)

    def _on_new_connection(self) -> None:
        while self.server.hasPendingConnections():
            sock = self.server.nextPendingConnection()
            self._sockets.append(sock)
            self._buffers[id(sock)] = b""
            sock.readyRead.connect(lambda s=sock: self._on_ready_read(s))
            sock.disconnected.connect(lambda s=sock: self._on_disconnected(s))

    def _on_disconnected(self, sock: QTcpSocket) -> None:
        self._buffers.pop(id(sock), None)
        if sock in self._sockets:
            self._sockets.remove(sock)
        sock.deleteLater()

    def _on_ready_read(self, sock: QTcpSocket) -> None:
        buf = self._buffers.get(id(sock), b"") + bytes(sock.readAll())
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                self._dispatch(sock, line)
        self._buffers[id(sock)] = buf

    def _send(self, sock: QTcpSocket, msg: dict) -> None:
        try:
            data = _to_json(msg)
        except Exception:  # unserialisable result
            msg = {"id": msg.get("id"), "ok": False, "error": traceback.format_exc()}
            data = _to_json(msg)
        if sock.state() == QTcpSocket.SocketState.ConnectedState:
            sock.write(QByteArray((data + "\n").encode("utf8")))
            sock.flush()

    def _dispatch(self, sock: QTcpSocket, line: bytes) -> None:
        req_id = None
        try:
            req = json.loads(line)
            req_id = req.get("id")
            if _TOKEN and req.get("token") != _TOKEN:
                raise PermissionError("bad token")
            fn = getattr(self.handler, "cmd_" + req["cmd"], None)
            if fn is None:
                raise KeyError(f"unknown command {req['cmd']!r}")

            def reply(ok: bool, payload: Any) -> None:
                key = "result" if ok else "error"
                self._send(sock, {"id": req_id, "ok": ok, key: payload})

            fn(req, reply)
        except BaseException:  # includes SystemExit from exec'd code
            self._send(sock, {"id": req_id, "ok": False, "error": traceback.format_exc()})


# Add-ons are imported from AnkiQt.setupAddons(), i.e. after mw exists and before
# the profile/collection load.  Keep a module-level reference so it isn't GC'd.
_server = _Server()

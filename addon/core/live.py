"""Live API sources: a Roam graph read through the cloud API (``roam-api://``) or the desktop
app (``roam-local://``), kept in memory between syncs and refreshed by incremental pulls.

``LiveSource`` is one configured API source. Its first ``pull`` reads the whole graph; each
later one asks only what changed since (roam_mirror.py) and hands back the blocks to plan
(``LivePull.scope``, for sync.plan's ``scope``), or None when every note must be planned (the
first pull, a fall-back to a full read, or ``whole``). Every ``SWEEP_SECONDS``, and on
request, a pull also looks for blocks deleted unseen; ``whole`` (Sync now) reads the whole
graph again, which also catches an edit that reached Roam later than the overlap allows.

Used by the add-on's poller and by ``tools.bridge watch``; neither holds pull logic of its
own. A LiveSource is bound to its settings (source, graph name, token, address): ``fits``
tells whether a kept one still serves the current settings.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from .model import Graph, SourceError, graph_name
from .sources import roam_api, roam_local
from .sources.registry import ReadOptions, local_target
from .sources.roam_mirror import Querying, Refresh, RoamMirror

SWEEP_SECONDS = 300.0


@dataclass
class LivePull:
    graph: Graph
    # Block uids whose notes may have changed; None: plan every note.
    scope: set[str] | None
    refresh: Refresh

    @property
    def changed(self) -> bool:
        return self.scope is None or bool(self.scope)


class LiveSource:
    def __init__(
        self, source: str, graph: str = "", options: ReadOptions | None = None, *,
        session: requests.Session | None = None, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source.strip()
        self.options = options or ReadOptions()
        self.session = session or requests.Session()
        if roam_local.is_url(self.source):
            self.session.trust_env = False  # no proxy may see a token for this machine's app
        self._clock = clock
        self._last_sweep = clock()
        self.kind = "roam-local" if roam_local.is_url(self.source) else "roam-api"
        if self.kind == "roam-local":
            target = local_target(self.source)
            token = roam_local.token_for(target, dict(self.options.local_tokens))
            client: Querying = roam_local.connect(
                target, token, session=self.session, timeout=self.options.local_timeout)
            default = target.graph
        else:
            try:
                default = roam_api.parse_url(self.source)
            except ValueError as err:
                raise SourceError(self.source, str(err)) from None
            token = roam_api.token_from(self.options.api_token, default)
            client = roam_api.connect(default, token, self.options.api_base_url
                                      or roam_api.DEFAULT_BASE_URL, session=self.session,
                                      notice=self.options.notice)
        try:
            self.name = graph_name(graph or default)
        except ValueError as err:
            raise SourceError(self.source, str(err)) from None
        self.client = client
        self._fingerprint = _fingerprint(self.source, self.name, self.options, token)
        self.mirror = RoamMirror(client, progress=self.options.progress)

    def fits(self, source: str, graph: str, options: ReadOptions) -> bool:
        """Whether this LiveSource serves these settings (else make a new one)."""
        try:
            token = (roam_local.token_for(local_target(source), dict(options.local_tokens))
                     if roam_local.is_url(source) else
                     roam_api.token_from(options.api_token, roam_api.parse_url(source)))
            name = graph_name(graph or self.name)
        except (SourceError, ValueError):
            return False
        return self._fingerprint == _fingerprint(source.strip(), name, options, token)

    def pull(self, sweep: bool = False, whole: bool = False) -> LivePull:
        """Bring the graph up to date; ``sweep`` also looks for deleted blocks now (it is
        done every SWEEP_SECONDS anyway); ``whole`` reads the whole graph again and plans
        every note."""
        sweep = sweep or whole or self._clock() - self._last_sweep >= SWEEP_SECONDS
        restart = getattr(self.client, "restart", None)
        if restart is not None:
            restart()  # the API client bounds each read, not its own life
        refresh = self.mirror.refresh(sweep=sweep, whole=whole)
        if sweep:
            self._last_sweep = self._clock()
        graph = self.mirror.graph
        assert graph is not None
        if graph.name != self.name:
            graph.name = self.name
        scope = None if refresh.full else refresh.scope
        return LivePull(graph, scope, refresh)

    def close(self) -> None:
        self.session.close()
        if self.mirror.graph is not None:
            self.mirror.graph.release()
            self.mirror.graph = None


def _fingerprint(source: str, name: str, options: ReadOptions, token: str) -> str:
    """What a LiveSource depends on, the token only as a hash (it is never kept in clear
    beside the client, nor printed)."""
    secret = hashlib.sha256(token.encode()).hexdigest()
    return "|".join((source, name, options.api_base_url, str(options.local_timeout), secret))

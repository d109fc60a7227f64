"""What operators and load balancers ask the server: `/readyz` and `/metrics`.

`/healthz` (in server/app.py) says the process answers; a load balancer restarts it when it
does not. `/readyz` says this replica can serve: CouchDB answers our admin account and the
system databases exist, which is what provisioning leaves behind. A proxy sends traffic
only to ready replicas.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from server import metrics
from server.errors import CouchUnavailable
from server.settings import number_setting
from sync import naming, resolver_status
from sync.couch import Couch
from sync.directory import Directory
from sync.hub import Hub
from sync.provision import COUCH_SYSTEM_DBS
from sync.push_outbox import STATES, Outbox

log = logging.getLogger("doorstep.observability")

READY_TIMEOUT = 3.0  # seconds per CouchDB request; a probe must answer before it is retried


def readiness(couch: Couch) -> str | None:
    """None when ready, else the reason (one line). Costs one request per system database."""
    try:
        status, _ = couch.request("GET", "_session", timeout=READY_TIMEOUT)
        if status != 200:
            return f"CouchDB refused the admin session (HTTP {status})"
        wanted = [*COUCH_SYSTEM_DBS, *(couch.name(n) for n in naming.SYSTEM)]
        missing = [db for db in wanted
                   if couch.request("HEAD", db, timeout=READY_TIMEOUT)[0] != 200]
    except CouchUnavailable:
        return "CouchDB is unreachable"
    if missing:
        return f"not provisioned yet (missing {', '.join(missing)}); run `doorstep migrate`"
    return None


async def readyz(request: Request) -> JSONResponse:
    reason = await run_in_threadpool(readiness, request.app.state.couch)
    if reason:
        return JSONResponse({"error": "not_ready", "reason": reason}, status_code=503)
    return JSONResponse({"ok": True})


async def metrics_page(request: Request) -> PlainTextResponse:
    text = await run_in_threadpool(metrics.REGISTRY.render)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")


def routes() -> list[Route]:
    return [Route("/readyz", readyz), Route("/metrics", metrics_page)]


# -- figures of the whole installation, the same from every replica ---------------------------

FIGURES_TIMEOUT = 5.0  # seconds per CouchDB read; Prometheus gives a whole scrape 10 s


def cache_seconds(env: Mapping[str, str] | None = None) -> float:
    """DOORSTEP_METRICS_CACHE_SECONDS: how long a replica reuses the installation's figures."""
    return number_setting(os.environ if env is None else env, "DOORSTEP_METRICS_CACHE_SECONDS",
                          15, 1, 3600)


class InstallationFigures:
    """Read from CouchDB at most once per `ttl` seconds, however often and by how many
    Prometheus servers this replica is scraped. A figure whose source cannot be read right
    now is left out of the page (never reported as 0).

    It has a connection of its own with a short timeout: a slow CouchDB must not hold a
    scrape for a minute, nor take connections from request handlers."""

    def __init__(self, couch: Couch, ttl: float = 15.0) -> None:
        user, password = couch.auth
        self.couch = Couch(couch.url, user, password, couch.prefix, timeout=FIGURES_TIMEOUT)
        self.ttl = ttl
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, object]] = {}

    def cached(self, key: str, read: Callable[[], object]) -> object:
        with self._lock:
            hit = self._cache.get(key)
            if hit and time.monotonic() - hit[0] < self.ttl:
                return hit[1]
        try:
            value = read()
        except (CouchUnavailable, KeyError, ValueError, TypeError) as exc:
            log.debug("figure %s not available: %s", key, exc)
            value = None
        with self._lock:
            self._cache[key] = (time.monotonic(), value)
        return value

    def outbox_by_state(self) -> list[tuple[dict[str, str], float]] | None:
        def read() -> list[tuple[dict[str, str], float]]:
            by_state = Outbox(self.couch).figures()["by_state"]
            return [({"state": s}, float(by_state.get(s, 0))) for s in STATES]
        return self.cached("outbox", read)  # type: ignore[return-value]

    def hub(self) -> tuple[float | None, int] | None:
        """(seconds since the oldest grid's "data as of", grids never copied)."""
        def read() -> tuple[float | None, int]:
            grids = [g.id for g in Directory(self.couch).grids()]
            status = Hub(self.couch).status()
            times = [status[g].as_of for g in grids if g in status and status[g].as_of]
            never = len(grids) - len(times)
            if not times:
                return None, never
            oldest = datetime.fromisoformat(min(times).replace("Z", "+00:00"))
            return max(0.0, time.time() - oldest.timestamp()), never
        return self.cached("hub", read)  # type: ignore[return-value]

    def resolver_backlog(self) -> resolver_status.Backlog | None:
        return self.cached("resolver_backlog", lambda: resolver_status.backlog(  # type: ignore
            self.couch, timeout=FIGURES_TIMEOUT))

    def resolver_last_pass(self) -> float | None:
        return self.cached("resolver_pass", lambda: resolver_status.last_pass(  # type: ignore
            self.couch, timeout=FIGURES_TIMEOUT))


def install(couch: Couch) -> InstallationFigures:
    """Plug the installation's figures into /metrics (called once per app, after
    provisioning: like the push databases, the backlog view is installed here)."""
    resolver_status.ensure_backlog_view(couch)
    figures = InstallationFigures(couch, cache_seconds())
    metrics.register_gauge(
        "doorstep_push_outbox_deliveries",
        "Push deliveries in the outbox by state; pending + sending is the outbox depth.",
        figures.outbox_by_state)
    metrics.register_gauge(
        "doorstep_hub_lag_seconds",
        "Age of the oldest grid's copy in the hub: every change older than this is there.",
        lambda: (figures.hub() or (None, 0))[0])
    metrics.register_gauge(
        "doorstep_hub_grids_not_copied", "Grids whose database was never copied to the hub.",
        lambda: None if figures.hub() is None else float(figures.hub()[1]))  # type: ignore[index]
    metrics.register_gauge(
        "doorstep_resolver_backlog_households",
        "Households with conflicting revisions, waiting for the resolver (as of the hub copy).",
        lambda: _field(figures.resolver_backlog(), "households"))
    metrics.register_gauge(
        "doorstep_conflicted_other_documents",
        "Documents other than households with conflicting revisions: left for a person "
        "(append-only by design, so 0 unless something is wrong).",
        lambda: _field(figures.resolver_backlog(), "others"))
    metrics.register_gauge(
        "doorstep_resolver_last_pass_timestamp_seconds",
        "End of the resolver's last full pass over every grid database, Unix time.",
        figures.resolver_last_pass)
    return figures


def _field(value: object, name: str) -> float | None:
    return None if value is None else float(getattr(value, name))

"""What operators and load balancers ask the server: `/readyz` and `/metrics`.

`/healthz` (in server/app.py) says the process answers; a load balancer restarts it when it
does not. `/readyz` says this replica can serve: CouchDB answers our admin account and the
system databases exist, which is what provisioning leaves behind. A proxy sends traffic
only to ready replicas.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from server import metrics
from server.errors import CouchUnavailable
from sync import naming
from sync.couch import Couch
from sync.provision import COUCH_SYSTEM_DBS

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

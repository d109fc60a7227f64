"""The Starlette application: field app, replication gateway, API and console on one origin."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server import access, console, observability, pwa_routes, sessions
from server.api import auth as auth_api
from server.api import devices as devices_api
from server.gateway.endpoint import GatewayRoute
from server.jobs import Jobs
from server.metrics import GatewayMetrics
from server.push import routes as push_routes
from server.push import service as push_service
from server.security_headers import SecurityHeaders
from server.settings import VERSION, Settings, load_secrets
from sync import resolver
from sync.couch import Couch


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "version": VERSION})


def create_app(settings: Settings, couch: Couch) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.jobs.start()
        if settings.background:
            app.state.console.keep_warm()
        async with access.running(app):  # sessions, grid index, async CouchDB client
            yield
        app.state.console.close()
        await run_in_threadpool(app.state.push.stop)  # lets sends in flight finish
        await run_in_threadpool(app.state.jobs.stop)

    app = Starlette(routes=[Route("/healthz", healthz), *pwa_routes.routes(),
                            *observability.routes(),
                            *auth_api.routes(), *devices_api.routes(), GatewayRoute(),
                            console.mount(), *push_routes.routes()],
                    lifespan=lifespan)
    app.state.settings = settings
    app.state.couch = couch
    app.state.secrets = load_secrets(settings)
    access.install(app)  # login limits and gateway settings (server/security_settings.py)
    app.state.jobs = Jobs(couch, settings)  # background jobs under leases (sync/leases.py)
    app.state.jobs.add(sessions.PURGE_JOB, sessions.purge_step(couch),
                       interval=sessions.PURGE_INTERVAL)  # expired login sessions
    observability.install(couch)  # outbox and hub figures for /metrics
    app.state.jobs.add(resolver.JOB, resolver.job_step(couch), interval=resolver.INTERVAL)
    console.install(app)  # the supervisor console's state and its hub copy job
    push_service.install(app, couch)  # Web Push: keys, outbox worker, daily digest, API
    app.add_middleware(GatewayMetrics)
    app.add_middleware(SecurityHeaders, https=settings.https)
    return app

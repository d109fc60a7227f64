"""The Starlette application: field app, replication gateway, API and console on one origin."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server.settings import VERSION, Settings, load_secrets
from sync.couch import Couch


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "version": VERSION})


def create_app(settings: Settings, couch: Couch) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield

    app = Starlette(routes=[Route("/healthz", healthz)], lifespan=lifespan)
    app.state.settings = settings
    app.state.couch = couch
    app.state.secrets = load_secrets(settings)
    return app

"""The access layer's shared parts on `app.state`: sessions, login limits, grids, CouchDB.

`install` runs when the app is built, so a bad setting stops `doorstep serve` with one
line; `running` opens the async CouchDB connection for the app's lifetime (a lifespan
hook). Everything that needs a signed-in user (gateway, API, console) reads these:
`app.state.sessions`, `app.state.grids`, `app.state.upstream`, `app.state.login_limits`,
`app.state.security`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette

from server import security_settings
from server.gateway.grids import GridIndex
from server.gateway.upstream import Upstream
from server.login_limits import LoginLimits
from server.sessions import SessionStore
from sync import naming


def install(app: Starlette) -> None:
    security = security_settings.from_env()
    app.state.security = security
    app.state.login_limits = LoginLimits(security.login_failures_per_account,
                                         security.login_failures_per_address,
                                         security.login_window_seconds)


@contextlib.asynccontextmanager
async def running(app: Starlette) -> AsyncIterator[None]:
    couch, security = app.state.couch, app.state.security
    upstream = Upstream(couch.url, *couch.auth, timeout=security.upstream_timeout_seconds)
    app.state.upstream = upstream
    app.state.grids = GridIndex(couch)
    app.state.sessions = SessionStore(upstream, couch.name(naming.SESSIONS),
                                      app.state.secrets["session_key"], security,
                                      https=app.state.settings.https)
    try:
        yield
    finally:
        await upstream.aclose()

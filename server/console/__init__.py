"""The supervisor console at /console: server-rendered pages (Jinja2, autoescaped), htmx for
small interactions and Chart.js for charts, both served from our origin.

`mount()` gives the routes, `install(app)` the shared state and the background hub copy.
Every page is wrapped by `web.page` (session, console permission, CSRF); every grid or
scope it touches is checked by `server.authz`. Pages that span grids read the hub
(sync/hub.py) and say how fresh it is; writes go to the grid databases and are copied to
the hub at once.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Mount, Route

from server.console import (
    admin,
    assignments,
    conflicts,
    dashboard,
    export,
    households,
    needs,
    push_delivery,
    review,
    static,
)
from server.console.state import HUB_JOB, Console, hub_interval, timezone
from server.console.web import Ctx, page, redirect
from server.sessions import COOKIE


@page
async def home(ctx: Ctx) -> Response:
    return redirect("/console/dashboard")


@page
async def logout(ctx: Ctx) -> Response:
    sessions = ctx.app_state.sessions
    await sessions.end(ctx.request.cookies.get(COOKIE))
    response = redirect("/login")
    sessions.clear_cookie(ctx.request, response)
    return response


def mount() -> Mount:
    return Mount("/console", routes=[
        Route("/", home),
        Route("/logout", logout, methods=["POST"]),
        Route("/dashboard", dashboard.dashboard),
        *review.routes(),
        *assignments.routes(),
        *needs.routes(),
        *households.routes(),
        *conflicts.routes(),
        *export.routes(),
        *push_delivery.routes(),
        *admin.routes(),
        *static.routes(),
    ])


def install(app: Starlette) -> None:
    """Shared console state, and the hub copy as a background job (one replica at a time)."""
    app.state.console = Console(app.state.couch, timezone())
    app.state.jobs.add(HUB_JOB, app.state.console.job_step, interval=hub_interval())

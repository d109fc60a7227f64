"""Assignments: choose households of a grid (by filter or by hand), a worker, a due date and
a reason; see every assignment's status; cancel one."""

from __future__ import annotations

from datetime import datetime, timedelta

from starlette.responses import Response
from starlette.routing import Route

from server.console import scopes
from server.console.web import Ctx, Refused, page, redirect, render, url
from sync import accounts
from sync import console_actions as actions
from sync import console_queries as q

STATUSES = ("open", "overdue", "visited", "cancelled")
DUE_FILTERS = ("overdue", "week")


@page
async def listing(ctx: Ctx) -> Response:
    names = await ctx.run(ctx.console.names)
    scope = scopes.resolve(ctx, names, ctx.field("scope"))
    status_filter = ctx.field("status")
    if status_filter and status_filter not in STATUSES:
        raise Refused(400, ctx.t("console.error.bad_value", field="status"))
    config = await ctx.run(ctx.console.tag_config)
    period = q.Period.now(ctx.console.tz, config)
    snaps = await ctx.run(ctx.console.snapshots.get, scope.grid_ids, period)
    found = q.assignments(snaps, period, status_filter)
    found.sort(key=lambda pair: (STATUSES.index(pair[1]), pair[0].due))
    done = ctx.field("done")
    return render(
        ctx, "assignments.html", scope=scope, scopes=scopes.available(ctx, names),
        found=found, statuses=STATUSES, status_filter=status_filter,
        grid_names={g.id: g.name for g in scope.grids},
        as_of=q.as_of(snaps),
        flash=ctx.t(f"console.assignment.done_{done}", n=ctx.field("n", "0"))
        if done in ("created", "cancelled") else "",
    )


def _workers_of(couch: object, grid: str) -> list[accounts.Account]:
    return sorted((a for a in accounts.all_accounts(couch) if a.role == "worker" and a.active
                   and grid in a.grids), key=lambda a: a.name)


@page
async def chooser(ctx: Ctx) -> Response:
    """One grid's households, narrowed by filters, to tick and assign."""
    names = await ctx.run(ctx.console.names)
    scope = scopes.resolve(ctx, names, ctx.field("scope"))
    grid = ctx.grid(ctx.field("grid") or scope.grid_ids[0])
    config = await ctx.run(ctx.console.tag_config)
    period = q.Period.now(ctx.console.tz, config)
    (snap,) = await ctx.run(ctx.console.snapshots.get, [grid.id], period)
    building, tag, due = ctx.field("building"), ctx.field("tag"), ctx.field("due_state")
    if due and due not in DUE_FILTERS:
        raise Refused(400, ctx.t("console.error.bad_value", field="due_state"))
    rows = [
        d for d in q.due_states(snap, config, period)
        if (not tag or tag in d.tags) and (not due or d.status == due)
        and (not building or snap.households[d.household][2] == building)
    ]
    rows.sort(key=lambda d: d.household)
    workers = await ctx.run(_workers_of, ctx.couch, grid.id)
    return render(
        ctx, "assign.html", scope=scope, scopes=scopes.available(ctx, names), grid=grid,
        rows=rows, workers=workers, config=config, building=building, tag=tag, due=due,
        buildings=sorted({h[2] for h in snap.households.values()},
                         key=lambda b: (len(b), b)),
        due_filters=DUE_FILTERS, default_due=(period.today + timedelta(days=7)).isoformat(),
        as_of=None,
    )


@page
async def create(ctx: Ctx) -> Response:
    grid = ctx.grid(ctx.field("grid"))
    households = ctx.fields("household")
    db = actions.GridDb(ctx.couch, grid.id)
    today = datetime.now(ctx.console.tz).date()
    saved = await ctx.run(actions.assign, db, households, ctx.field("worker"), ctx.field("due"),
                          ctx.field("reason"), ctx.principal.name, ctx.authorize_in(grid), today)
    await ctx.run(ctx.console.copy, grid.id)
    return redirect(url("/assignments", scope=ctx.field("scope"), done="created", n=len(saved)))


@page
async def cancel(ctx: Ctx) -> Response:
    grid = ctx.grid(ctx.request.path_params["grid"])
    db = actions.GridDb(ctx.couch, grid.id)
    await ctx.run(actions.cancel_assignment, db, ctx.request.path_params["assignment"],
                  ctx.principal.name, ctx.authorize_in(grid))
    await ctx.run(ctx.console.copy, grid.id)
    return redirect(url("/assignments", scope=ctx.field("scope"), done="cancelled", n=1))


def routes() -> list[Route]:
    return [
        Route("/assignments", listing),
        Route("/assignments", create, methods=["POST"]),
        Route("/assignments/new", chooser),
        Route("/assignments/{grid}/{assignment}/cancel", cancel, methods=["POST"]),
    ]



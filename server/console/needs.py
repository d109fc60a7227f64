"""Needs raised at doors, followed to closure: dispatched to a person or a unit, claimed,
resolved, the resident's evaluation recorded, closed. Overdue needs come first."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.responses import Response
from starlette.routing import Route

from server.console import scopes
from server.console.web import Ctx, Refused, page, redirect, render, url
from sync import console_actions as actions
from sync import console_queries as q

EVALUATIONS = ("satisfied", "basically_satisfied", "unsatisfied")


@page
async def listing(ctx: Ctx) -> Response:
    names = await ctx.run(ctx.console.names)
    scope = scopes.resolve(ctx, names, ctx.field("scope"))
    state = ctx.field("state")
    if state and state not in q.NEED_STATES:
        raise Refused(400, ctx.t("console.error.bad_value", field="state"))
    config = await ctx.run(ctx.console.tag_config)
    period = q.Period.now(ctx.console.tz, config)
    snaps = await ctx.run(ctx.console.snapshots.get, scope.grid_ids, period)
    now = datetime.now(UTC)
    found = q.needs(snaps, now, state, overdue_only=ctx.field("overdue") == "1")
    done = ctx.field("done")
    return render(
        ctx, "needs.html", scope=scope, scopes=scopes.available(ctx, names), needs=found[:500],
        total=len(found), states=q.NEED_STATES, state=state, overdue=ctx.field("overdue"),
        now=now, evaluations=EVALUATIONS, grid_names={g.id: g.name for g in scope.grids},
        as_of=q.as_of(snaps),
        flash=ctx.t("console.need.done", event=ctx.t(f"console.need_state.{done}"))
        if done in q.NEED_STATES else "",
    )


@page
async def advance(ctx: Ctx) -> Response:
    """Record the next step of one need; where it stands is read from the hub, fresh."""
    grid = ctx.grid(ctx.request.path_params["grid"])
    need_id = ctx.request.path_params["need"]
    await ctx.run(ctx.console.copy, grid.id)
    config = await ctx.run(ctx.console.tag_config)
    period = q.Period.now(ctx.console.tz, config)
    # where the need stands decides what may follow: never from a previous snapshot
    (snap,) = await ctx.run(lambda: ctx.console.snapshots.get([grid.id], period, wait=60))
    need = next((n for n in snap.needs if n.need_id == need_id), None)
    if need is None:
        raise Refused(404, ctx.t("console.error.no_need"))
    event = ctx.field("event")
    evaluation = ctx.field("evaluation")
    if evaluation and evaluation not in EVALUATIONS:
        raise Refused(400, ctx.t("console.error.bad_value", field="evaluation"))
    db = actions.GridDb(ctx.couch, grid.id)
    await ctx.run(lambda: actions.need_event(
        db, need_id, need.household, need.state, event, ctx.principal.name,
        ctx.authorize_in(grid), to=ctx.field("to"),
        evaluation=evaluation if event == "evaluated" else "", note=ctx.field("note")))
    await ctx.run(ctx.console.copy, grid.id)
    return redirect(url("/needs", scope=ctx.field("scope"), state=ctx.field("filter_state"),
                        overdue=ctx.field("filter_overdue"), done=event))


def routes() -> list[Route]:
    return [Route("/needs", listing), Route("/needs/{grid}/{need}", advance, methods=["POST"])]

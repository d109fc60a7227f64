"""The review queue: synced visits awaiting review, one visit beside its household and
history, approve or return with a reason, and bulk approval."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from server.console import scopes
from server.console.web import Ctx, Refused, page, parse_day, redirect, render
from sync import console_actions as actions
from sync import console_queries as q

PAGE_SIZE = 100
DONE = ("approved", "returned", "bulk")  # flash messages a redirect may ask for


async def _snapshots(ctx: Ctx, scope: scopes.Scope, grid: str
                     ) -> tuple[list[q.GridSnapshot], q.Period]:
    config = await ctx.run(ctx.console.tag_config)
    period = q.Period.now(ctx.console.tz, config)
    grids = [ctx.grid(grid).id] if grid else scope.grid_ids
    return await ctx.run(ctx.console.snapshots.get, grids, period), period


@page
async def queue(ctx: Ctx) -> Response:
    names = await ctx.run(ctx.console.names)
    scope = scopes.resolve(ctx, names, ctx.field("scope"))
    grid = ctx.field("grid")
    if grid and grid not in scope.grid_ids:
        ctx.grid(grid)  # 404 or 403 for a grid that is not in the scope
        raise Refused(403, ctx.t("console.error.not_your_grid", grid=grid))
    outcome = ctx.field("outcome")
    if outcome and outcome not in q.OUTCOMES:
        raise Refused(400, ctx.t("console.error.bad_value", field="outcome"))
    flt = q.QueueFilter(grid, ctx.field("worker"), parse_day(ctx, "from"), parse_day(ctx, "to"),
                        outcome)
    snaps, period = await _snapshots(ctx, scope, grid)
    items = q.review_queue(snaps, period, flt)
    try:
        page_no = max(1, int(ctx.field("page", "1")))
    except ValueError:
        page_no = 1
    shown = items[(page_no - 1) * PAGE_SIZE: page_no * PAGE_SIZE]
    workers = sorted({v.author for s in snaps for v in s.visits})
    done = ctx.field("done")
    return render(
        ctx, "review.html", scope=scope, scopes=scopes.available(ctx, names), items=shown,
        total=len(items), page_no=page_no, pages=(len(items) + PAGE_SIZE - 1) // PAGE_SIZE,
        flt=flt, workers=workers, outcomes=q.OUTCOMES, period=period,
        grid_names={g.id: g.name for g in scope.grids}, as_of=q.as_of(snaps),
        flash=ctx.t(f"console.review.done_{done}", n=ctx.field("n", "0")) if done in DONE
        else "",
    )


@page
async def visit_page(ctx: Ctx) -> Response:
    grid = ctx.grid(ctx.request.path_params["grid"])
    visit_id = ctx.request.path_params["visit"]
    db = actions.GridDb(ctx.couch, grid.id)
    visit = await ctx.run(db.couch.get, db.name, visit_id)
    if visit is None or visit.get("type") != "visit":
        raise Refused(404, ctx.t("console.error.no_visit"))
    household = await ctx.run(db.couch.get, db.name, f"household:{visit['household']}")
    if household is None or household.get("_deleted"):
        household = await ctx.run(db.couch.get, ctx.console.hub.db,
                                  f"household:{visit['household']}")
    history = await ctx.run(q.household_history, ctx.couch, ctx.console.hub.db,
                            visit["household"])
    reviews = [d for d in history if d.get("type") == "review" and d.get("visit") == visit_id]
    review = await ctx.run(db.couch.get, db.name, f"review:{visit_id.split(':', 1)[1]}")
    if review and review not in reviews:
        reviews.append(review)
    amended_by = [d for d in history if d.get("type") == "visit" and d.get("amends") == visit_id]
    original = next((d for d in history if d.get("_id") == visit.get("amends")), None)
    returned = next((d for d in history if d.get("type") == "review" and original
                     and d.get("visit") == original["_id"]), None)
    config = await ctx.run(ctx.console.tag_config)
    return render(ctx, "visit.html", grid=grid, visit=visit, household=household,
                  history=history, reviews=reviews, amended_by=amended_by, original=original,
                  returned=returned, config=config, back=_back(ctx))


@page
async def visit_photo(ctx: Ctx) -> Response:
    grid = ctx.grid(ctx.request.path_params["grid"])
    visit_id = ctx.request.path_params["visit"]
    db = actions.GridDb(ctx.couch, grid.id)
    visit = await ctx.run(db.couch.get, db.name, visit_id)
    if visit is None or visit.get("type") != "visit" or "photo.jpg" not in (
            visit.get("_attachments") or {}):
        raise Refused(404, ctx.t("console.error.no_photo"))
    r = await ctx.run(ctx.couch.session.get,
                      f"{ctx.couch.url}/{db.name}/{visit_id}/photo.jpg", timeout=30)
    if r.status_code != 200:
        raise Refused(404, ctx.t("console.error.no_photo"))
    return Response(r.content, media_type="image/jpeg",
                    headers={"Cache-Control": "private, max-age=3600"})


def _back(ctx: Ctx) -> str:
    """Where to return after a decision: a console path the form carried, else the queue."""
    back = ctx.field("back")
    if back.startswith("/console/") and not back.startswith("//"):
        return back
    return "/console/review"


@page
async def decide(ctx: Ctx) -> Response:
    grid = ctx.grid(ctx.request.path_params["grid"])
    visit_id = ctx.request.path_params["visit"]
    decision = ctx.field("decision")
    db = actions.GridDb(ctx.couch, grid.id)
    await ctx.run(actions.review, db, visit_id, decision, ctx.field("reason"),
                  ctx.principal.name, ctx.authorize_in(grid))
    await ctx.run(ctx.console.copy, grid.id)
    if ctx.htmx:
        return render(ctx, "_decided.html", decision=decision, visit_id=visit_id)
    back = _back(ctx)
    sep = "&" if "?" in back else "?"
    return redirect(f"{back}{sep}done={'approved' if decision == 'approved' else 'returned'}")


@page
async def approve_many(ctx: Ctx) -> Response:
    """Bulk approval: every visit named must be in a grid the user may review, or none is."""
    chosen = []
    for value in ctx.fields("visit"):
        grid_id, _, visit_id = value.partition("/")
        if not visit_id.startswith("visit:"):
            raise Refused(400, ctx.t("console.error.bad_value", field="visit"))
        chosen.append((ctx.grid(grid_id), visit_id))
    if not chosen:
        raise Refused(400, ctx.t("console.review.none_chosen"))
    approved = 0
    for grid, visit_id in chosen:
        db = actions.GridDb(ctx.couch, grid.id)
        try:
            await ctx.run(actions.review, db, visit_id, "approved", "", ctx.principal.name,
                          ctx.authorize_in(grid))
            approved += 1
        except actions.ActionError as exc:
            if exc.status != 409:  # already reviewed by someone else: nothing to do
                raise
    for grid_id in sorted({g.id for g, _ in chosen}):
        await ctx.run(ctx.console.copy, grid_id)
    back = _back(ctx)
    sep = "&" if "?" in back else "?"
    return redirect(f"{back}{sep}done=bulk&n={approved}")


def routes() -> list[Route]:
    return [
        Route("/review", queue),
        Route("/review/approve", approve_many, methods=["POST"]),
        Route("/review/{grid}/{visit}", decide, methods=["POST"]),
        Route("/visit/{grid}/{visit}", visit_page),
        Route("/visit/{grid}/{visit}/photo", visit_photo),
    ]

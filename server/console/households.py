"""Finding a household across one's grids (name, phone, address), its page with the whole
history, and moving it to another grid."""

from __future__ import annotations

from urllib.parse import quote

from starlette.responses import Response
from starlette.routing import Route

from server import authz
from server.console.web import Ctx, Refused, page, redirect, render
from sync import console_queries as q
from sync import naming
from sync.couch import Couch
from sync.hub import Checkpoint, Hub
from sync.moves import move_household

MIN_QUERY = 1


@page
async def search(ctx: Ctx) -> Response:
    text = ctx.field("q")
    grids = {g.id: g for g in ctx.readable}
    found, more = ([], False)
    entries: dict[str, dict] = {}
    if len(text) >= MIN_QUERY:
        found, more = await ctx.run(q.search, ctx.couch, ctx.console.hub.db, text, set(grids))
        rows = await ctx.run(ctx.couch.all_docs, ctx.console.hub.db,
                             keys=[f"household:{f.household}" for f in found],
                             include_docs=True) if found else []
        entries = {r["doc"]["household_id"]: r["doc"] for r in rows if r.get("doc")}
    template = "_search_results.html" if ctx.htmx else "search.html"
    status = await ctx.run(ctx.console.hub.status)
    return render(ctx, template, text=text, found=found, more=more, entries=entries,
                  grid_names={g: grid.name for g, grid in grids.items()},
                  as_of=Hub.as_of(status.get(g) or Checkpoint(g, 0, None) for g in grids))


@page
async def household_page(ctx: Ctx) -> Response:
    grid = ctx.grid(ctx.request.path_params["grid"])
    hid = ctx.request.path_params["household"]
    db = naming.grid_db_name(grid.id, ctx.couch.prefix)
    household = await ctx.run(ctx.couch.get, db, f"household:{hid}")
    if household is None:  # never here, or moved away: a tombstone then says where to
        moved_to = await ctx.run(_moved_to, ctx.couch, db, hid)
        if moved_to and any(g.id == moved_to for g in ctx.readable):
            return redirect(f"/console/household/{moved_to}/{hid}")
        raise Refused(404, ctx.t("console.household.moved_to", grid=moved_to) if moved_to
                      else ctx.t("console.error.no_household"))
    if household.get("type") != "household":
        raise Refused(404, ctx.t("console.error.no_household"))
    history = await ctx.run(q.household_history, ctx.couch, ctx.console.hub.db, hid)
    config = await ctx.run(ctx.console.tag_config)
    targets = [g for g in ctx.readable
               if g.id != grid.id and authz.can_move_household(ctx.principal, grid, g) is None]
    done = ctx.field("done")
    return render(ctx, "household.html", grid=grid, household=household, history=history,
                  config=config, targets=targets,
                  flash=ctx.t("console.household.moved_here") if done == "moved" else "")


def _moved_to(couch: Couch, db: str, hid: str) -> str:
    status, leaves = couch.request("GET", f"{quote(db, safe='')}/household:{quote(hid)}",
                                   params={"open_revs": "all"})
    if status != 200 or not isinstance(leaves, list):
        return ""
    return next((leaf["ok"]["moved_to"] for leaf in leaves
                 if isinstance(leaf, dict) and (leaf.get("ok") or {}).get("moved_to")), "")


@page
async def move(ctx: Ctx) -> Response:
    source = ctx.grid(ctx.request.path_params["grid"])
    hid = ctx.request.path_params["household"]
    target = ctx.grid(ctx.field("to"))
    refusal = authz.can_move_household(ctx.principal, source, target)
    if refusal:
        raise Refused(403, refusal)
    await ctx.run(move_household, ctx.couch, hid, source.id, target.id, ctx.principal.name)
    for grid in (target.id, source.id):
        await ctx.run(ctx.console.copy, grid)
    return redirect(f"/console/household/{target.id}/{hid}?done=moved")


def routes() -> list[Route]:
    return [
        Route("/search", search),
        Route("/household/{grid}/{household}", household_page),
        Route("/household/{grid}/{household}/move", move, methods=["POST"]),
    ]

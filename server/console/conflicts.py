"""Conflicts the merge could not settle (two concurrent values of one field): list them,
pick a candidate or type a new value. The decision is a household edit stamped by the
supervisor (sync/clock.py `edit`, device "console"), so it syncs to every phone, and the
conflict record is closed."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from server import authz
from server.console import scopes
from server.console.web import Ctx, Refused, page, redirect, render, url
from sync import audit, clock, naming, schema
from sync import console_queries as q
from sync.console_actions import now_iso
from sync.couch import Couch, DocumentRejected
from sync.merge import derived_id

CONSOLE_DEVICE = "console"


@page
async def listing(ctx: Ctx) -> Response:
    names = await ctx.run(ctx.console.names)
    scope = scopes.resolve(ctx, names, ctx.field("scope"))
    config = await ctx.run(ctx.console.tag_config)
    period = q.Period.now(ctx.console.tz, config)
    snaps = await ctx.run(ctx.console.snapshots.get, scope.grid_ids, period)
    found = sorted((c for s in snaps for c in s.conflicts), key=lambda c: c.at)
    return render(ctx, "conflicts.html", scope=scope, scopes=scopes.available(ctx, names),
                  found=found, grid_names={g.id: g.name for g in scope.grids},
                  as_of=q.as_of(snaps),
                  flash=ctx.t("console.conflict.resolved") if ctx.field("done") else "")


def _read(couch: Couch, db: str, conflict_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    conflict = couch.get(db, conflict_id)
    if conflict is None or conflict.get("type") != "conflict":
        raise Refused(404, "no such conflict")
    household = couch.get(db, f"household:{conflict['household']}")
    if household is None:
        raise Refused(404, "the household is no longer in this grid")
    return conflict, household


@page
async def conflict_page(ctx: Ctx) -> Response:
    grid = ctx.grid(ctx.request.path_params["grid"])
    db = naming.grid_db_name(grid.id, ctx.couch.prefix)
    conflict, household = await ctx.run(_read, ctx.couch, db,
                                        ctx.request.path_params["conflict"])
    current = clock.get(household, conflict["path"])
    config = await ctx.run(ctx.console.tag_config)
    return render(ctx, "conflict.html", grid=grid, conflict=conflict, household=household,
                  current=None if current is clock.MISSING else current, show=_show,
                  config=config)


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _typed(text: str, like: Any) -> Any:
    """A typed value in the shape of the field: text stays text, anything else is JSON."""
    if isinstance(like, str) or like is None:
        return text
    try:
        return json.loads(text)
    except ValueError:
        raise Refused(400, "type the value as JSON, like the candidates show it") from None


@page
async def resolve(ctx: Ctx) -> Response:
    grid = ctx.grid(ctx.request.path_params["grid"])
    db = naming.grid_db_name(grid.id, ctx.couch.prefix)
    conflict, household = await ctx.run(_read, ctx.couch, db,
                                        ctx.request.path_params["conflict"])
    if conflict["state"] != "open":
        raise Refused(409, ctx.t("console.conflict.already"))
    choice = ctx.field("choice")
    candidates = conflict["candidates"]
    if choice == "typed":
        value = _typed(ctx.field("value"), candidates[0].get("value"))
        how = "typed"
    elif choice.isdigit() and int(choice) < len(candidates):
        value, how = candidates[int(choice)].get("value"), "picked"
    else:
        raise Refused(400, ctx.t("console.error.bad_value", field="choice"))
    await ctx.run(_settle, ctx, grid, db, conflict, household, value, how)
    await ctx.run(ctx.console.copy, grid.id)
    return redirect(url("/conflicts", scope=f"community:{grid.community}", done=1))


def _settle(ctx: Ctx, grid: Any, db: str, conflict: dict[str, Any], household: dict[str, Any],
            value: Any, how: str) -> None:
    """Write the household edit (if the value changes), its audit record, then close."""
    me, at, path = ctx.principal.name, now_iso(), conflict["path"]
    edited = clock.edit(household, path, value, me, CONSOLE_DEVICE, at)
    closed = {**conflict, "state": "resolved", "chosen": value, "resolution": how,
              "resolved_by": me, "resolved_at": at}
    writes = [(closed, conflict)]
    if edited != household:
        changes = audit.diff(household, edited)
        record = {"_id": derived_id("audit", "resolution", conflict["_id"]), "type": "audit",
                  "grid": grid.id, "household": conflict["household"], "source": "resolution",
                  "changes": changes, "author": me, "device": CONSOLE_DEVICE, "at": at}
        writes = [(edited, household), (record, None), *writes]
    for doc, old in writes:
        try:
            schema.validate(doc)
        except schema.SchemaError as exc:
            raise Refused(400, str(exc)) from None
        refusal = authz.can_write_doc(ctx.principal, grid, doc, old) if doc["type"] != "audit" \
            else None  # the audit record is the server's own account of the edit above
        if refusal:
            raise Refused(403, refusal)
    for doc, _ in writes:
        try:
            ctx.couch.put(db, doc)
        except DocumentRejected as exc:
            raise Refused(409, ctx.t("console.conflict.changed")) from exc


def routes() -> list[Route]:
    return [
        Route("/conflicts", listing),
        Route("/conflict/{grid}/{conflict}", conflict_page),
        Route("/conflict/{grid}/{conflict}", resolve, methods=["POST"]),
    ]

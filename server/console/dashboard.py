"""The dashboard of a scope: coverage this quarter per grid, overdue and special-care
households, visits per worker per day over 14 days, needs by state, and sync health (what
the hub received from each worker, and what their phones last reported: sync/devices.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.responses import Response

from server.console import scopes
from server.console.web import Ctx, page, render, script_json
from sync import console_queries as q
from sync.devices import PENDING_LATE, SYNC_LATE, Devices, sync_health


@page
async def dashboard(ctx: Ctx) -> Response:
    console = ctx.console
    names = await ctx.run(console.names)
    scope = scopes.resolve(ctx, names, ctx.field("scope"))
    config = await ctx.run(console.tag_config)
    period = q.Period.now(console.tz, config)
    status, seen = await ctx.run(console.hub.overview)
    snaps = await ctx.run(console.snapshots.get, scope.grid_ids, period, status)
    figures = await ctx.run(console.snapshots.figures, snaps, config, period)
    board = q.dashboard(snaps, config, period, figures=figures)
    devices = await ctx.run(Devices(ctx.couch).in_grids, scope.grid_ids)
    grid_names = {g.id: g.name for g in scope.grids}
    rows = _rows(board, scope, names) if scope.kind != "community" else board.grids
    return render(
        ctx, "dashboard.html", scope=scope, scopes=scopes.available(ctx, names), board=board,
        rows=rows, grid_names=grid_names, period=period, config=config,
        health=sync_health(board.workers, seen, devices), now=datetime.now(UTC),
        late_hours=PENDING_LATE // timedelta(hours=1), late_days=SYNC_LATE.days,
        as_of=q.as_of(snaps),
        charts=script_json(_charts(ctx, board, rows, grid_names, period)),
        outcomes=q.OUTCOMES, need_states=q.NEED_STATES,
    )


def _rows(board: q.Dashboard, scope: scopes.Scope, names: Any) -> list[q.GridCoverage]:
    """For a street or the county: one row per community rather than per grid."""
    community_of = {g.id: g.community for g in scope.grids}
    by_community: dict[str, q.GridCoverage] = {}
    for g in board.grids:
        c = community_of[g.grid]
        row = by_community.setdefault(c, q.GridCoverage(c))
        row.total += g.total
        row.visited += g.visited
        row.overdue += g.overdue
        row.special_care_overdue += g.special_care_overdue
        row.awaiting_review += g.awaiting_review
        row.open_conflicts += g.open_conflicts
        for k, n in g.by_outcome.items():
            row.by_outcome[k] = row.by_outcome.get(k, 0) + n
    for c, row in by_community.items():
        row.grid = names.communities.get(c, (c, ""))[0]
    return sorted(by_community.values(), key=lambda r: r.grid)


def _charts(ctx: Ctx, board: q.Dashboard, rows: list[q.GridCoverage],
            grid_names: dict[str, str], period: q.Period) -> dict[str, Any]:
    """Data for console.js to draw with Chart.js (labels already translated)."""
    return {
        "coverage": {
            "labels": [grid_names.get(r.grid, r.grid) for r in rows],
            "series": [
                *({"label": ctx.t(f"console.outcome.{o}"), "key": o,
                   "data": [r.by_outcome.get(o, 0) for r in rows]} for o in q.OUTCOMES),
                {"label": ctx.t("console.dashboard.not_visited"), "key": "not_visited",
                 "data": [r.total - r.visited for r in rows]},
            ],
        },
        "workers": {
            "labels": [d.strftime("%m-%d") for d in period.worker_days],
            "series": [{"label": ctx.people.get(w.worker, w.worker), "data": w.per_day}
                       for w in board.workers],
        },
        "needs": {
            "labels": [ctx.t(f"console.need_state.{s}") for s in q.NEED_STATES],
            "data": [board.needs_by_state.get(s, 0) for s in q.NEED_STATES],
        },
    }

"""Push delivery figures of a scope over the last 1, 7 or 30 days: the console page
/console/push and the JSON at /api/push/figures (docs/push.md, "Delivery figures").

Both answer through `web.page`, so they share the console's rules: supervisors and admins
only, a supervisor's scopes are her communities (`scopes.resolve` refuses any other with
403), bad input is a 400. The figures come straight from the outbox, not from the hub.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.console import scopes
from server.console.state import Names
from server.console.web import NO_STORE, Ctx, Refused, page, render
from sync import push_figures
from sync.directory import Grid
from sync.push_figures import OUTCOMES, Figures

# The dashboard's palette (console.js), so the same colour means the same kind of thing.
COLOURS = {"delivered": "#2f7d4f", "waiting": "#d08c2c", "failed": "#b5473a",
           "expired": "#7a6aa8", "interrupted": "#5d5d5d", "gone": "#bfbfbf"}


@dataclass(frozen=True)
class Segment:
    outcome: str
    n: int
    x: float  # percent of the bar
    width: float
    colour: str


def segments(counts: dict[str, int]) -> list[Segment]:
    """A stacked bar of outcomes, in percent of their sum (nothing when there is none)."""
    total = sum(counts.get(o, 0) for o in OUTCOMES)
    out, x = [], 0.0
    for o in OUTCOMES:
        n = counts.get(o, 0)
        if n and total:
            width = round(100 * n / total, 2)
            out.append(Segment(o, n, round(x, 2), width, COLOURS[o]))
            x += width
    return out


def duration(t: Callable[..., str]) -> Callable[[float | None], str]:
    """Seconds as people read them: 0.8 s, 42 s, 3.5 min, 2.1 h."""
    def show(seconds: float | None) -> str:
        if seconds is None:
            return "—"
        if seconds < 10:
            return t("console.push.seconds", n=f"{seconds:.1f}")
        if seconds < 120:
            return t("console.push.seconds", n=f"{seconds:.0f}")
        if seconds < 7200:
            return t("console.push.minutes", n=f"{seconds / 60:.1f}")
        return t("console.push.hours", n=f"{seconds / 3600:.1f}")

    return show


def _whole(ctx: Ctx, names: Names, scope: scopes.Scope) -> None:
    """Figures are kept per community, street and county, whole: a scope of which this user
    may read only part (a supervisor asking for her street) is not hers."""
    def inside(g: Grid) -> bool:
        if scope.kind == "community":
            return g.community == scope.id
        if scope.kind == "street":
            return names.communities.get(g.community, ("", ""))[1] == scope.id
        return True

    if sum(1 for g in ctx.grids if inside(g)) != len(scope.grids):
        raise Refused(403, ctx.t("console.error.not_your_scope", scope=scope.name))


async def _figures(ctx: Ctx) -> tuple[Names, scopes.Scope, Figures]:
    names = await ctx.run(ctx.console.names)
    scope = scopes.resolve(ctx, names, ctx.field("scope"))
    _whole(ctx, names, scope)
    days_text = ctx.field("days", str(push_figures.DEFAULT_DAYS))
    if days_text not in {str(d) for d in push_figures.PERIOD_DAYS}:
        raise Refused(400, ctx.t("console.push.bad_days",
                                 days=", ".join(map(str, push_figures.PERIOD_DAYS))))
    grids = {g.id: g.community for g in scope.grids}
    figures = await ctx.run(push_figures.scope_figures, ctx.couch, scope.value, grids,
                            int(days_text), time.time())
    return names, scope, figures


@page
async def listing(ctx: Ctx) -> Response:
    names, scope, figures = await _figures(ctx)
    return render(
        ctx, "push_delivery.html", scope=scope, scopes=scopes.available(ctx, names), f=figures,
        periods=push_figures.PERIOD_DAYS, kinds=push_figures.KINDS,
        outcomes=push_figures.OUTCOMES,
        community_names={c: n for c, (n, _) in names.communities.items()},
        grid_names={g.id: g.name for g in scope.grids},
        display_names={p.name: p.display_name for p in figures.people},
        outcome_of=push_figures.OUTCOME_OF, segments=segments, duration=duration(ctx.t),
    )


@page
async def api(ctx: Ctx) -> Response:
    names, scope, figures = await _figures(ctx)
    return JSONResponse({**figures.as_json(), "scope_name": scope.name,
                         "scopes": [s.value for s in scopes.available(ctx, names)]},
                        headers=NO_STORE)


def routes() -> list[Route]:
    return [Route("/push", listing)]

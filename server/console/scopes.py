"""Which grids a cross-grid page covers: a community, a street, or everything.

A supervisor chooses among their communities, an admin among every community and street
and the whole county. The grids of a scope are those `server.authz` lets the user read, so
a scope named in a URL that holds none of theirs is refused, not shown empty.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.console.state import Names
from server.console.web import Ctx, Refused
from sync.directory import Grid


@dataclass(frozen=True)
class Scope:
    kind: str  # community | street | all
    id: str
    name: str
    grids: tuple[Grid, ...]

    @property
    def value(self) -> str:
        return "all" if self.kind == "all" else f"{self.kind}:{self.id}"

    @property
    def grid_ids(self) -> list[str]:
        return [g.id for g in self.grids]


def _scope(ctx: Ctx, names: Names, kind: str, sid: str) -> Scope | None:
    readable = ctx.readable
    if kind == "all":
        return Scope("all", "", ctx.t("console.scope.all"), tuple(readable))
    if kind == "community" and sid in names.communities:
        grids = tuple(g for g in readable if g.community == sid)
        return Scope(kind, sid, names.communities[sid][0], grids)
    if kind == "street" and sid in names.streets:
        grids = tuple(g for g in readable
                      if names.communities.get(g.community, ("", ""))[1] == sid)
        return Scope(kind, sid, names.streets[sid], grids)
    return None


def available(ctx: Ctx, names: Names) -> list[Scope]:
    """The scopes to offer, widest first (for an admin)."""
    out = []
    if ctx.principal.role == "admin":
        out.append(_scope(ctx, names, "all", ""))
        out += [_scope(ctx, names, "street", s) for s in sorted(names.streets)]
    out += [_scope(ctx, names, "community", c) for c in sorted(names.communities)]
    return [s for s in out if s is not None and s.grids]


def resolve(ctx: Ctx, names: Names, value: str) -> Scope:
    """The scope a page was asked for, or the user's first; refused when not theirs."""
    if not value:
        offered = available(ctx, names)
        if not offered:
            raise Refused(403, ctx.t("console.error.no_scope"))
        return offered[0]
    kind, _, sid = value.partition(":")
    scope = _scope(ctx, names, kind, sid)
    if scope is None:
        raise Refused(404, ctx.t("console.error.no_such_scope", scope=value))
    if not scope.grids:
        raise Refused(403, ctx.t("console.error.not_your_scope", scope=scope.name))
    return scope

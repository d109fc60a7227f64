"""Export of visits, households and needs for a chosen scope and period, as CSV or XLSX,
streamed (sync/exporter.py keeps memory flat)."""

from __future__ import annotations

from datetime import date

from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from server.console import scopes
from server.console.web import Ctx, Refused, page, parse_day, render
from sync import console_queries as q
from sync import exporter
from sync.hub import Checkpoint, Hub

MEDIA = {"csv": "text/csv; charset=utf-8",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


@page
async def form(ctx: Ctx) -> Response:
    names = await ctx.run(ctx.console.names)
    scope = scopes.resolve(ctx, names, ctx.field("scope"))
    config = await ctx.run(ctx.console.tag_config)
    period = q.Period.now(ctx.console.tz, config)
    status = await ctx.run(ctx.console.hub.status)
    return render(ctx, "export.html", scope=scope, scopes=scopes.available(ctx, names),
                  kinds=exporter.KINDS, formats=exporter.FORMATS,
                  day_from=period.quarter_start.isoformat(), day_to=period.today.isoformat(),
                  as_of=Hub.as_of(status.get(g) or Checkpoint(g, 0, None)
                                  for g in scope.grid_ids))


@page
async def download(ctx: Ctx) -> Response:
    names = await ctx.run(ctx.console.names)
    scope = scopes.resolve(ctx, names, ctx.field("scope"))
    kind, fmt = ctx.field("kind"), ctx.field("format")
    if kind not in exporter.KINDS:
        raise Refused(400, ctx.t("console.error.bad_value", field="kind"))
    if fmt not in exporter.FORMATS:
        raise Refused(400, ctx.t("console.error.bad_value", field="format"))
    day_from: date | None = parse_day(ctx, "from")
    day_to: date | None = parse_day(ctx, "to")
    if day_from is None or day_to is None or day_to < day_from:
        raise Refused(400, ctx.t("console.export.bad_period"))
    spec = exporter.ExportSpec(kind, tuple(scope.grid_ids), day_from, day_to, ctx.console.tz)
    config = await ctx.run(ctx.console.tag_config)

    def label(word: str, code: str) -> str:
        return ctx.t(f"console.{word}.{code}")

    header = exporter.headers(spec, lambda c: ctx.t(f"console.export.col.{c}"))
    body = exporter.rows(ctx.couch, ctx.console.hub.db, spec, config, label)
    stream = (exporter.csv_stream(header, body) if fmt == "csv"
              else exporter.xlsx_stream(header, body, ctx.t(f"console.export.{kind}")))
    name = f"doorstep-{kind}-{scope.value.replace(':', '-')}-{day_from}-{day_to}.{fmt}"
    return StreamingResponse(stream, media_type=MEDIA[fmt], headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


def routes() -> list[Route]:
    return [Route("/export", form), Route("/export/file", download)]

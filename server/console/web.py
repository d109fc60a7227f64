"""What every console page shares: who is asking, in which language, the CSRF token, the
grids they may see, rendering, and the answers for refusals and errors.

Every handler is wrapped by `page`: it resolves the session (server/sessions.py), asks
`server.authz` whether the user may use the console at all, checks the CSRF token of every
POST, and turns a refusal into a 4xx answer — an HTML page for a browser, JSON
{"error", "reason"} for anything else. A handler never sees an unauthenticated request.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from server import authz, i18n
from server.errors import CouchUnavailable
from server.gateway.upstream import UpstreamError
from server.sessions import COOKIE
from sync.console_actions import ActionError
from sync.console_queries import parse_time
from sync.directory import Grid

log = logging.getLogger("doorstep.console")

TEMPLATES = Path(__file__).resolve().parent / "templates"
NO_STORE = {"Cache-Control": "no-store"}
MAX_FORM_FIELDS = 5000  # a bulk approval of a long queue, with room to spare

# Documents are rendered as they are stored, and a field a document lacks is simply empty.
env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True,
                  lstrip_blocks=True)


class Refused(Exception):
    """Stop handling and answer `status` with `reason` (and the error word)."""

    ERRORS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 409: "conflict", 413: "too_large",
              502: "bad_gateway"}

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# --- CSRF -------------------------------------------------------------------------------------


def csrf_token(secret: str, session_cookie: str) -> str:
    """A token bound to the session: valid for every form of this session, for no other."""
    mac = hmac.new(secret.encode(), b"console-csrf\0" + session_cookie.encode(), hashlib.sha256)
    return mac.hexdigest()


def csrf_valid(secret: str, session_cookie: str, submitted: str) -> bool:
    return bool(submitted) and hmac.compare_digest(csrf_token(secret, session_cookie), submitted)


# --- the request context ----------------------------------------------------------------------


@dataclass
class Ctx:
    request: Request
    principal: authz.Principal
    locale: str
    csrf: str
    grids: list[Grid]  # every grid in the directory (authz filters what is shown)
    form: FormData | None = None
    people: dict[str, str] = dataclasses.field(default_factory=dict)  # account → display name

    @property
    def app_state(self) -> Any:
        return self.request.app.state

    @property
    def console(self) -> Any:
        return self.request.app.state.console

    @property
    def couch(self) -> Any:
        return self.request.app.state.couch

    @property
    def readable(self) -> list[Grid]:
        return authz.readable_grids(self.principal, self.grids)

    def t(self, key: str, **params: object) -> str:
        return i18n.translate(self.locale, key, **params)

    def grid(self, grid_id: str) -> Grid:
        """A grid this user may read, or a refusal (404 unknown, 403 not theirs)."""
        grid = next((g for g in self.grids if g.id == grid_id), None)
        if grid is None:
            raise Refused(404, self.t("console.error.no_grid", grid=grid_id))
        if not authz.can_read_grid(self.principal, grid):
            raise Refused(403, self.t("console.error.not_your_grid", grid=grid_id))
        return grid

    def authorize_in(self, grid: Grid) -> Callable[[dict[str, Any]], str | None]:
        """The per-document write check the console's actions ask before writing."""
        return lambda doc: authz.can_write_doc(self.principal, grid, doc, None)

    def field(self, name: str, default: str = "") -> str:
        source = self.form if self.form is not None else self.request.query_params
        value = source.get(name, default)
        return value.strip() if isinstance(value, str) else default

    def fields(self, name: str) -> list[str]:
        source = self.form if self.form is not None else self.request.query_params
        return [v.strip() for v in source.getlist(name) if isinstance(v, str) and v.strip()]

    @property
    def htmx(self) -> bool:
        return self.request.headers.get("hx-request") == "true"

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Blocking CouchDB work, off the event loop."""
        return await run_in_threadpool(fn, *args, **kwargs)


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


# --- rendering --------------------------------------------------------------------------------


def local_time(ctx: Ctx, value: str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if not value:
        return ""
    try:
        return parse_time(value).astimezone(ctx.console.tz).strftime(fmt)
    except ValueError:
        return value


def render(ctx: Ctx, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    other = "en" if ctx.locale == "zh-CN" else "zh-CN"
    keep = [(k, v) for k, v in ctx.request.query_params.multi_items() if k != "lang"]
    page = env.get_template(template).render(
        t=ctx.t, locale=ctx.locale, other_locale=other, me=ctx.principal, csrf=ctx.csrf,
        path=ctx.request.url.path, lang_query=urlencode([*keep, ("lang", other)]),
        is_admin=authz.can_administer(ctx.principal) is None, flash=values.pop("flash", ""),
        query_string=ctx.request.url.query,
        page_query=lambda n: urlencode([*[(k, v) for k, v in ctx.request.query_params.multi_items()
                                          if k != "page"], ("page", n)]),
        when=lambda v, fmt="%Y-%m-%d %H:%M": local_time(ctx, v, fmt),
        person=lambda name: ctx.people.get(name, name) if name else "",
        url=url, **values,
    )
    response = HTMLResponse(page, status_code=status, headers=NO_STORE)
    if ctx.request.query_params.get("lang"):
        response.set_cookie(i18n.COOKIE, ctx.locale, max_age=365 * 24 * 3600, path="/",
                            samesite="lax")
    return response


def url(path: str, **params: Any) -> str:
    """A console URL with a query; empty values left out."""
    clean = {k: v for k, v in params.items() if v not in (None, "", [])}
    return f"/console{path}" + (f"?{urlencode(clean, doseq=True)}" if clean else "")


def script_json(value: Any) -> str:
    """JSON to embed in a <script type="application/json"> block: no "</script>" breaks out."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303, headers=NO_STORE)


def refusal(request: Request, status: int, reason: str, locale: str) -> Response:
    error = Refused.ERRORS.get(status, "error")
    if wants_html(request):
        page = env.get_template("error.html").render(
            t=i18n.translator(locale), locale=locale, status=status, reason=reason)
        return HTMLResponse(page, status_code=status, headers=NO_STORE)
    return JSONResponse({"error": error, "reason": reason}, status_code=status,
                        headers=NO_STORE)


# --- the wrapper ------------------------------------------------------------------------------

Handler = Callable[[Ctx], Awaitable[Response]]


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        locale = i18n.negotiate(request)
        cookie = request.cookies.get(COOKIE, "")
        try:
            check = await request.app.state.sessions.check(cookie or None)
        except UpstreamError as exc:
            return refusal(request, exc.status, exc.body["reason"], locale)
        if check.principal is None:
            if request.method == "GET" and wants_html(request):
                return redirect("/login?next=" + quote(str(request.url.path) + (
                    f"?{request.url.query}" if request.url.query else ""), safe=""))
            return refusal(request, 401, check.reason, locale)
        principal = check.principal
        try:
            denied = authz.can_use_console(principal)
            if denied:
                raise Refused(403, denied)
            grids = await request.app.state.grids.all()
            ctx = Ctx(request, principal, locale,
                      csrf_token(request.app.state.secrets["session_key"], cookie), grids)
            if request.method == "POST":
                ctx.form = await request.form(max_fields=MAX_FORM_FIELDS)
                if not csrf_valid(request.app.state.secrets["session_key"], cookie,
                                  str(ctx.form.get("csrf", ""))):
                    raise Refused(403, i18n.translate(locale, "console.error.csrf"))
            else:
                ctx.people = (await ctx.run(request.app.state.console.names)).people
            response = await handler(ctx)
        except Refused as exc:
            response = refusal(request, exc.status, exc.reason, locale)
        except ActionError as exc:
            response = refusal(request, exc.status, exc.reason, locale)
        except (CouchUnavailable, UpstreamError) as exc:
            log.warning("console %s %s: %s", request.method, request.url.path, exc)
            response = refusal(request, 502, i18n.translate(locale, "console.error.couch"),
                               locale)
        if check.renewed:
            request.app.state.sessions.set_cookie(request, response, cookie)
        return response

    return endpoint


def parse_day(ctx: Ctx, name: str) -> Any:
    """An optional date field; a malformed one is a 400, not an empty filter."""
    text = ctx.field(name)
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise Refused(400, ctx.t("console.error.bad_date", field=name)) from None

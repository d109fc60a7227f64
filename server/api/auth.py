"""Logging in and out: `/api/login`, `/api/logout`, `/api/me` and the server's `/login` page.

The password is checked by CouchDB (`POST /_session` with the user's own name and password;
we keep none of CouchDB's cookies), then the account's Doorstep roles and active flag by
us, and a session of our own is issued (server/sessions.py).

Cross-site request forgery: the session cookie is SameSite=Lax, so other sites' forms and
scripts do not send it with a POST. On top, the JSON endpoints that change state accept
only `Content-Type: application/json`, which a cross-site form cannot send and a
cross-site script cannot send without a CORS preflight we never grant. The HTML form
carries a token that must match a signed cookie (double submit).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from itsdangerous import BadSignature, Signer
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from server import authz, i18n
from server.errors import CouchUnavailable
from server.gateway.upstream import UpstreamError
from server.push import routes as push_routes
from server.sessions import COOKIE, SessionCheck
from server.settings import VERSION
from sync.accounts import Account

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
templates = Jinja2Templates(directory=TEMPLATES)
CSRF_COOKIE = "doorstep_login_csrf"
NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True)
class LoginOutcome:
    principal: authz.Principal | None
    status: int = 200
    error: str = ""
    message_key: str = ""
    retry_after: int | None = None


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


async def log_in(request: Request, name: str, password: str) -> LoginOutcome:
    """Check a name and password; count failures; never say which of the two was wrong."""
    state = request.app.state
    address = client_address(request)
    wait = state.login_limits.retry_after(name, address)
    if wait is not None:
        return LoginOutcome(None, 429, "too_many_requests", "login.rate_limited", wait)
    try:
        status, _ = await state.upstream.json(
            "POST", "/_session", body={"name": name, "password": password}, admin=False,
            retry=False)
        if status in (400, 401):
            state.login_limits.failed(name, address)
            return LoginOutcome(None, 401, "unauthorized", "login.failed")
        if status != 200:
            return LoginOutcome(None, 502, "bad_gateway", "login.unavailable")
        status, user = await state.upstream.json(
            "GET", "/_users/" + quote(f"org.couchdb.user:{name}", safe=""))
    except UpstreamError:
        return LoginOutcome(None, 502, "bad_gateway", "login.unavailable")
    if status != 200 or not isinstance(user, dict):
        return LoginOutcome(None, 403, "forbidden", "login.no_role")
    principal = authz.Principal.from_account(Account.from_doc(user))
    if not principal.active:
        return LoginOutcome(None, 403, "forbidden", "login.deactivated")
    if not principal.role:
        return LoginOutcome(None, 403, "forbidden", "login.no_role")
    state.login_limits.succeeded(name)
    return LoginOutcome(principal)


async def me_payload(request: Request, principal: authz.Principal) -> dict[str, Any]:
    try:
        grids = authz.readable_grids(principal, await request.app.state.grids.all())
    except CouchUnavailable:
        raise UpstreamError(502, "bad_gateway", "CouchDB is unreachable; try again later"
                            ) from None
    return {
        "name": principal.name,
        "display_name": principal.display_name,
        "role": principal.role,
        "roles": principal.roles,
        "grids": [{"id": g.id, "name": g.name, "community": g.community, "db": g.db}
                  for g in grids],
        "version": VERSION,
    }


def _json_error(status: int, error: str, reason: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": error, "reason": reason}, status_code=status,
                        headers={**NO_STORE, **headers})


def _is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == (
        "application/json")


# --- JSON API -----------------------------------------------------------------------------


async def api_login(request: Request) -> Response:
    if not _is_json(request):
        return _json_error(415, "bad_content_type", "Content-Type must be application/json")
    try:
        body = await request.json()
    except (ValueError, ClientDisconnect):
        return _json_error(400, "bad_request", "the body is not valid JSON")
    name = body.get("name") if isinstance(body, dict) else None
    password = body.get("password") if isinstance(body, dict) else None
    if not (isinstance(name, str) and isinstance(password, str) and name.strip() and password
            and len(name) <= 64 and len(password) <= 1024):
        return _json_error(400, "bad_request", "name and password are required")
    outcome = await log_in(request, name.strip().lower(), password)
    if outcome.principal is None:
        headers = {"Retry-After": str(outcome.retry_after)} if outcome.retry_after else {}
        return _json_error(outcome.status, outcome.error,
                           i18n.translate("en", outcome.message_key,
                                          seconds=outcome.retry_after or 0), **headers)
    try:
        response = JSONResponse(await me_payload(request, outcome.principal), headers=NO_STORE)
        cookie = await request.app.state.sessions.create(
            outcome.principal, address=client_address(request),
            agent=request.headers.get("user-agent", ""))
    except UpstreamError as exc:
        return _json_error(exc.status, exc.body["error"], exc.body["reason"])
    request.app.state.sessions.set_cookie(request, response, cookie)
    return response


async def api_logout(request: Request) -> Response:
    if not _is_json(request):
        return _json_error(415, "bad_content_type", "Content-Type must be application/json")
    sessions = request.app.state.sessions
    await push_routes.forget_session(request)  # no more notifications to this device
    try:
        await sessions.end(request.cookies.get(COOKIE))
    except UpstreamError as exc:
        return _json_error(exc.status, exc.body["error"], exc.body["reason"])
    response = JSONResponse({"ok": True}, headers=NO_STORE)
    sessions.clear_cookie(request, response)
    return response


async def api_me(request: Request) -> Response:
    sessions = request.app.state.sessions
    try:
        check: SessionCheck = await sessions.check(request.cookies.get(COOKIE))
        if check.principal is None:
            return _json_error(401, "unauthorized", check.reason)
        response = JSONResponse(await me_payload(request, check.principal), headers=NO_STORE)
    except UpstreamError as exc:
        return _json_error(exc.status, exc.body["error"], exc.body["reason"])
    if check.renewed:
        sessions.set_cookie(request, response, request.cookies[COOKIE])
    return response


# --- the HTML login page ------------------------------------------------------------------


def _csrf_signer(request: Request) -> Signer:
    return Signer(request.app.state.secrets["session_key"], salt="doorstep-login-csrf")


def _safe_next(value: str | None) -> str:
    """Only a path on this site: never `//host` or an absolute URL (open redirect)."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return "/"


def _page(request: Request, locale: str, *, status: int = 200, error: str = "",
          name: str = "", next_path: str = "/", headers: dict[str, str] | None = None
          ) -> Response:
    token = secrets.token_urlsafe(24)
    response = templates.TemplateResponse(
        request, "login.html",
        {"t": i18n.translator(locale), "locale": locale,
         "other_locale": "en" if locale == "zh-CN" else "zh-CN", "csrf": token,
         "error": error, "name": name, "next": next_path},
        status_code=status, headers={**NO_STORE, **(headers or {})},
    )
    response.set_cookie(CSRF_COOKIE, _csrf_signer(request).sign(token).decode(), path="/login",
                        httponly=True, samesite="strict",
                        secure=request.app.state.settings.https or request.url.scheme == "https")
    response.set_cookie(i18n.COOKIE, locale, max_age=365 * 24 * 3600, path="/", samesite="lax")
    return response


async def login_page(request: Request) -> Response:
    return _page(request, i18n.negotiate(request),
                 next_path=_safe_next(request.query_params.get("next")))


async def login_submit(request: Request) -> Response:
    try:
        form = await request.form()
    except ClientDisconnect:
        return Response(status_code=400)  # the browser is gone; nobody reads this
    locale = i18n.pick(str(form.get("lang", ""))) or i18n.negotiate(request)
    next_path = _safe_next(str(form.get("next", "")))
    name = str(form.get("name", "")).strip().lower()
    password = str(form.get("password", ""))
    try:
        expected = _csrf_signer(request).unsign(request.cookies.get(CSRF_COOKIE, "")).decode()
    except BadSignature:
        expected = None
    if not expected or not secrets.compare_digest(expected, str(form.get("csrf", ""))):
        return _page(request, locale, status=403, error=i18n.translate(locale,
                     "login.expired_form"), name=name, next_path=next_path)
    if not name or not password or len(name) > 64 or len(password) > 1024:
        return _page(request, locale, status=400, error=i18n.translate(locale, "login.missing"),
                     name=name, next_path=next_path)
    outcome = await log_in(request, name, password)
    if outcome.principal is None:
        headers = {"Retry-After": str(outcome.retry_after)} if outcome.retry_after else {}
        message = i18n.translate(locale, outcome.message_key, seconds=outcome.retry_after or 0)
        return _page(request, locale, status=outcome.status, error=message, name=name,
                     next_path=next_path, headers=headers)
    try:
        cookie = await request.app.state.sessions.create(
            outcome.principal, address=client_address(request),
            agent=request.headers.get("user-agent", ""))
    except UpstreamError:
        return _page(request, locale, status=502, name=name, next_path=next_path,
                     error=i18n.translate(locale, "login.unavailable"))
    response = RedirectResponse(next_path, status_code=303, headers=NO_STORE)
    request.app.state.sessions.set_cookie(request, response, cookie)
    response.delete_cookie(CSRF_COOKIE, path="/login")
    return response


async def login_css(request: Request) -> Response:
    return FileResponse(TEMPLATES / "login.css", media_type="text/css; charset=utf-8")


def routes() -> list[Route]:
    return [
        Route("/api/login", api_login, methods=["POST"]),
        Route("/api/logout", api_logout, methods=["POST"]),
        Route("/api/me", api_me, methods=["GET"]),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login_submit, methods=["POST"]),
        Route("/login.css", login_css, methods=["GET"]),
    ]

"""The push API: the VAPID public key, this device's subscription, delivery figures.

    GET    /api/push/vapid-public-key          anyone: the browser's applicationServerKey
    GET    /api/push/subscriptions?endpoint=…  signed in: does this device get notifications?
    POST   /api/push/subscriptions             signed in: {subscription, device, lang}
    DELETE /api/push/subscriptions             signed in: {endpoint} (only one's own)
    GET    /api/push/figures?scope&days        supervisors and admins: delivery figures of
                                               one of their scopes (server/console/push_delivery.py)
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from server.authz import Principal
from server.console import push_delivery
from server.errors import CouchUnavailable
from server.gateway.upstream import UpstreamError
from server.push.subscriptions import InvalidSubscription, parse
from server.sessions import COOKIE, SessionStore

log = logging.getLogger("doorstep.push.api")

MAX_BODY = 8 * 1024


def error(status: int, error: str, reason: str) -> JSONResponse:
    return JSONResponse({"error": error, "reason": reason}, status)


def session_key(cookie: str) -> str:
    """Names a login session without revealing its cookie; logout removes by this key."""
    return hashlib.sha256(cookie.encode()).hexdigest()[:32]


async def forget_session(request: Request) -> None:
    """At logout: the device of this session gets no more notifications (other devices do)."""
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return
    try:
        check = await request.app.state.sessions.check(cookie)
        if check.principal is not None:
            await run_in_threadpool(request.app.state.push.subscriptions.remove,
                                    check.principal.name, session=session_key(cookie))
    except (CouchUnavailable, UpstreamError) as exc:
        # The phone drops its subscription when it logs out too; the push service then
        # answers 410 and the outbox deletes ours.
        log.warning("logout: subscriptions of the session not removed (%s)", exc)


class _Refused(Exception):
    def __init__(self, response: JSONResponse) -> None:
        self.response = response


async def _principal(request: Request) -> Principal:
    sessions: SessionStore = request.app.state.sessions
    check = await sessions.check(request.cookies.get(COOKIE))
    if check.principal is None:
        raise _Refused(error(401, "unauthorized", check.reason))
    return check.principal


async def _json(request: Request) -> dict[str, Any]:
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise _Refused(error(415, "unsupported_media_type", "send JSON (application/json)"))
    body = await request.body()
    if len(body) > MAX_BODY:
        raise _Refused(error(413, "too_large", f"the body must be at most {MAX_BODY} bytes"))
    try:
        data = json.loads(body)
    except ValueError:
        raise _Refused(error(400, "bad_request", "the body is not valid JSON")) from None
    if not isinstance(data, dict):
        raise _Refused(error(400, "bad_request", "the body must be a JSON object"))
    return data


def _text(data: dict[str, Any], name: str, limit: int) -> str:
    value = data.get(name, "")
    if not isinstance(value, str) or len(value) > limit:
        raise _Refused(error(400, "bad_request", f"{name} must be text of at most {limit} "
                                                 "characters"))
    return value


def _handled(handler: Any) -> Any:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except _Refused as refused:
            return refused.response

    return endpoint


async def vapid_public_key(request: Request) -> Response:
    return JSONResponse({"public_key": request.app.state.push.keys.public_key})


async def subscription_state(request: Request) -> Response:
    principal = await _principal(request)
    endpoint = request.query_params.get("endpoint", "")
    mine = await run_in_threadpool(request.app.state.push.subscriptions.for_user, principal.name)
    return JSONResponse({"subscribed": any(s["endpoint"] == endpoint for s in mine),
                         "devices": len(mine)})


async def subscribe(request: Request) -> Response:
    principal = await _principal(request)
    data = await _json(request)
    push = request.app.state.push
    try:
        sub = parse(data.get("subscription"), allow_http=push.config.allow_http_endpoints)
    except InvalidSubscription as exc:
        return error(400, "bad_request", str(exc))
    device = _text(data, "device", 64)
    lang = _text(data, "lang", 16)
    doc = await run_in_threadpool(
        push.subscriptions.save, principal.name, sub, device=device, lang=lang,
        session=session_key(request.cookies.get(COOKIE, "")))
    return JSONResponse({"ok": True, "id": doc["_id"]}, 201)


async def unsubscribe(request: Request) -> Response:
    principal = await _principal(request)
    data = await _json(request)
    endpoint = _text(data, "endpoint", 2048)
    if not endpoint:
        return error(400, "bad_request", "endpoint is required")
    removed = await run_in_threadpool(request.app.state.push.subscriptions.remove,
                                      principal.name, endpoint=endpoint)
    return JSONResponse({"ok": True, "removed": removed})


def routes() -> list[BaseRoute]:
    return [
        Route("/api/push/vapid-public-key", _handled(vapid_public_key), methods=["GET"]),
        Route("/api/push/subscriptions", _handled(subscription_state), methods=["GET"]),
        Route("/api/push/subscriptions", _handled(subscribe), methods=["POST"]),
        Route("/api/push/subscriptions", _handled(unsubscribe), methods=["DELETE"]),
        # Scoped as the console's pages are: a supervisor sees her communities only.
        Route("/api/push/figures", push_delivery.api, methods=["GET"]),
    ]

"""`POST /api/device-status`: a worker's phone says how its sync is going.

    {"device": "dev-1a2b3c4d-5e6f", "app_version": "3f9a2b7c01de", "pending": 12,
     "pending_visits": 5, "last_sync": "2026-03-02T01:14:00.000Z", "last_error": "network"}

The user is the session's, never the body's: a phone reports only for its own worker. The
body is checked strictly (no other keys, types, bounds) and refused whole with 400
{"error", "reason"}; nothing is stored then. Like the other JSON endpoints that change
state it accepts only `Content-Type: application/json`, which a cross-site form cannot send
(docs/security.md, "Cross-site requests"). Stored by sync/devices.py, shown on the console
dashboard.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.authz import WORKER
from server.errors import CouchUnavailable
from server.gateway.upstream import UpstreamError
from server.sessions import COOKIE
from sync.devices import ERROR_KINDS, DeviceReport, Devices

MAX_BODY = 2048
MAX_PENDING = 10_000_000
FIELDS = frozenset({"device", "app_version", "pending", "pending_visits", "last_sync",
                    "last_error"})
DEVICE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
VERSION = re.compile(r"^[A-Za-z0-9._+-]{0,32}$")
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
NO_STORE = {"Cache-Control": "no-store"}


class InvalidReport(ValueError):
    pass


def _error(status: int, error: str, reason: str) -> JSONResponse:
    return JSONResponse({"error": error, "reason": reason}, status_code=status,
                        headers=NO_STORE)


def _count(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    # bool is an int in Python; JSON true is not a count.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_PENDING:
        raise InvalidReport(f"{name} must be a whole number from 0 to {MAX_PENDING}")
    return value


def _time(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not TIME.match(value):
        raise InvalidReport(f"{name} must be null or a UTC time like 2026-03-02T01:14:00.000Z")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidReport(f"{name} is not a real date and time") from None
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(body: Any) -> DeviceReport:
    """The report a phone sent, checked; raises InvalidReport naming what is wrong."""
    if not isinstance(body, dict):
        raise InvalidReport("the body must be a JSON object")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise InvalidReport(f"unknown field(s): {', '.join(unknown)[:200]}")
    missing = sorted(FIELDS - set(body))
    if missing:
        raise InvalidReport(f"missing field(s): {', '.join(missing)}")
    device = body["device"]
    if not isinstance(device, str) or not DEVICE.match(device):
        raise InvalidReport("device must be 1-64 letters, digits, '-' or '_'")
    version = body["app_version"]
    if not isinstance(version, str) or not VERSION.match(version):
        raise InvalidReport("app_version must be at most 32 letters, digits, '.', '_', '+' "
                            "or '-'")
    pending, visits = _count(body, "pending"), _count(body, "pending_visits")
    if visits > pending:
        raise InvalidReport("pending_visits cannot exceed pending")
    error = body["last_error"]
    if error is not None and error not in ERROR_KINDS:
        raise InvalidReport(f"last_error must be null or one of {', '.join(ERROR_KINDS)}")
    return DeviceReport(device, version, pending, visits, _time(body["last_sync"], "last_sync"),
                        error)


async def _body(request: Request) -> bytes | None:
    """The body, or None once it grows past MAX_BODY (the rest is never read into memory)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def device_status(request: Request) -> Response:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != (
            "application/json"):
        return _error(415, "bad_content_type", "Content-Type must be application/json")
    sessions = request.app.state.sessions
    try:
        check = await sessions.check(request.cookies.get(COOKIE))
    except UpstreamError as exc:
        return _error(exc.status, exc.body["error"], exc.body["reason"])
    if check.principal is None:
        return _error(401, "unauthorized", check.reason)
    principal = check.principal
    if principal.role != WORKER:
        return _error(403, "forbidden", "only a worker's field app reports its sync status")
    try:
        raw = await _body(request)
    except ClientDisconnect:
        return Response(status_code=400)  # the phone is gone; nobody reads this
    if raw is None:
        return _error(413, "too_large", f"the body must be at most {MAX_BODY} bytes")
    try:
        report = parse(json.loads(raw))
    except ValueError as exc:  # InvalidReport, or JSON that does not parse
        reason = str(exc) if isinstance(exc, InvalidReport) else "the body is not valid JSON"
        return _error(400, "bad_request", reason)
    try:
        await run_in_threadpool(Devices(request.app.state.couch).save, principal.name,
                                principal.grids, report)
    except CouchUnavailable:
        return _error(502, "bad_gateway", "CouchDB is unreachable; try again later")
    response = JSONResponse({"ok": True}, headers=NO_STORE)
    if check.renewed:
        sessions.set_cookie(request, response, request.cookies[COOKIE])
    return response


def routes() -> list[Route]:
    return [Route("/api/device-status", device_status, methods=["POST"])]

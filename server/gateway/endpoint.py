"""The gateway as one ASGI app, serving everything under `/couch` (`GatewayRoute`).

Order of checks, cheapest and most general first: a valid session (401), an endpoint on the
allow-list with allowed parameters (403/400), a database that is one of the user's grids
(403), a body within the size limit (413) and well-formed (400/415), then per endpoint the
write validation, and only then CouchDB. Every refusal is JSON `{"error", "reason"}`, as
CouchDB's own are, so PouchDB reports it like any CouchDB error.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

from server import authz
from server.errors import CouchUnavailable
from server.gateway import local, proxy, routes, writes
from server.gateway.grids import GridIndex
from server.gateway.routes import Refused, Target, bad_request, forbidden
from server.gateway.upstream import Upstream, UpstreamError
from server.security_settings import SecuritySettings
from server.sessions import COOKIE, SessionStore
from sync.directory import Grid

PREFIX = "/couch"


class GatewayRoute(BaseRoute):
    """Everything under `/couch`, whatever the path holds.

    Not a `Mount`: its pattern does not match a path with a decoded newline (`%0A`) in it,
    which would then fall through to a plain-text 404 instead of the gateway's JSON.
    """

    def __init__(self) -> None:
        self.app = Gateway()

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == PREFIX or path.startswith(PREFIX + "/")):
            return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class Gateway:
    """Reads its collaborators from `app.state` (set up by `server.access`)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await self.handle(request)
        except ClientDisconnect:
            return  # the browser went away while sending its body: nobody to answer
        except Refused as exc:
            response = _error(exc.status, exc.error, exc.reason)
        except UpstreamError as exc:
            response = _error(exc.status, exc.body["error"], exc.body["reason"])
        except CouchUnavailable:
            response = _error(502, "bad_gateway", "CouchDB is unreachable; try again later")
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        state = request.app.state
        sessions: SessionStore = state.sessions
        check = await sessions.check(request.cookies.get(COOKIE))
        if check.principal is None:
            return _error(401, "unauthorized", check.reason)
        raw_path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
        raw_path = raw_path.split("?", 1)[0]
        if not raw_path.startswith(PREFIX):
            raise forbidden("not a gateway path")
        target = routes.parse(request.method, raw_path[len(PREFIX):])
        params = routes.check_query(target, request.url.query)
        grid = await self._grid(request, check.principal, target)
        response = await _HANDLERS[target.kind](
            _Call(request, state.upstream, state.security, check.principal, target, grid, params))
        if check.renewed:
            sessions.set_cookie(request, response, request.cookies[COOKIE])
        return response

    async def _grid(self, request: Request, principal: authz.Principal,
                    target: Target) -> Grid | None:
        if target.db is None:
            return None
        grids: GridIndex = request.app.state.grids
        grid = await grids.by_db(target.db)
        if grid is None or not authz.can_read_grid(principal, grid):
            raise forbidden(f"{target.db} is not one of your grid databases")
        if target.writes:
            refusal = authz.can_sync_write(principal, grid)
            if refusal:
                raise forbidden(refusal)
        return grid


class _Call:
    """Everything one request's handler needs."""

    def __init__(self, request: Request, upstream: Upstream, security: SecuritySettings,
                 principal: authz.Principal, target: Target, grid: Grid | None,
                 params: list[tuple[str, str]]) -> None:
        self.request = request
        self.upstream = upstream
        self.security = security
        self.principal = principal
        self.target = target
        self.grid = grid
        self.params = params

    def path(self, *parts: str) -> str:
        """The upstream path: the database and `parts`, encoded, with the checked query."""
        segments = [quote(self.target.db or "", safe="")] if self.target.db else []
        path = "/" + "/".join(segments + [quote(p, safe="") for p in parts])
        query = routes.encode_query(self.params)
        return f"{path}?{query}" if query else path

    async def body(self, limit: int | None = None) -> bytes:
        limit = limit or self.security.max_body_bytes
        declared = self.request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        media = self.request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            raise Refused(415, "bad_content_type", "Content-Type must be application/json")
        chunks, size = [], 0
        async for chunk in self.request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        return b"".join(chunks)

    async def json_body(self, limit: int | None = None) -> Any:
        return routes.loads(await self.body(limit))


def _too_large(limit: int) -> Refused:
    return Refused(413, "too_large", f"the request body is larger than {limit} bytes")


def _error(status: int, error: str, reason: str) -> Response:
    return Response(json.dumps({"error": error, "reason": reason}), status_code=status,
                    media_type="application/json", headers={"Cache-Control": "no-store"})


# --- handlers, one per kind ---------------------------------------------------------------


async def _passthrough(call: _Call) -> Response:
    """Reads, forwarded as they are; a body is checked first."""
    body = None
    if call.request.method == "POST":
        parsed = await call.json_body()
        routes.BODY_CHECKS[call.target.kind](parsed)
        body = json.dumps(parsed, separators=(",", ":")).encode()
    feed = call.target.kind == "changes" and routes.feed_of(call.params) in routes.FEEDS
    timeout = None
    if feed:
        timeout = call.upstream.feed_timeout(max(60.0, 3 * routes.heartbeat_seconds(call.params)))
    parts = _doc_parts(call.target)
    return await proxy.forward(call.upstream, call.request, call.path(*parts), body=body,
                               feed=feed, retry=True, timeout=timeout)


def _doc_parts(target: Target) -> list[str]:
    if target.kind in ("db_info", "root"):
        return []
    if target.kind in ("doc_get", "attachment_get"):
        assert target.doc_id is not None
        parts = target.doc_id.split("/", 1) if target.doc_id.startswith("_design/") else [
            target.doc_id]
        return parts + ([target.attachment] if target.attachment else [])
    return ["_" + target.kind]  # _changes, _revs_diff, _bulk_get, _all_docs


async def _local_get(call: _Call) -> Response:
    assert call.target.db and call.target.doc_id
    user, client_id = call.principal.name, call.target.doc_id
    status, body = await call.upstream.json(
        "GET", local.upstream_path(call.target.db, user, client_id))
    return proxy.json_response(call.request, status, local.to_client(body, user, client_id))


async def _local_put(call: _Call) -> Response:
    assert call.target.db and call.target.doc_id
    user, client_id = call.principal.name, call.target.doc_id
    doc = await call.json_body(local.MAX_BYTES)
    problem = local.to_store(doc, user, client_id)
    if problem:
        raise bad_request(problem)
    status, body = await call.upstream.json(
        "PUT", local.upstream_path(call.target.db, user, client_id), body=doc, retry=False)
    return proxy.json_response(call.request, status, local.to_client(body, user, client_id))


async def _bulk_docs(call: _Call) -> Response:
    assert call.target.db and call.grid
    payload = await call.json_body()
    if not isinstance(payload, dict) or not isinstance(payload.get("docs"), list):
        raise bad_request("_bulk_docs takes {\"docs\": [...]}")
    if set(payload) - {"docs", "new_edits"}:
        raise bad_request("_bulk_docs takes only docs and new_edits")
    new_edits = payload.get("new_edits", True)
    if not isinstance(new_edits, bool):
        raise bad_request("new_edits must be true or false")
    verdicts = await writes.review(call.upstream, call.target.db, call.principal, call.grid,
                                   payload["docs"], new_edits)
    accepted = [v for v in verdicts if v.body is not None]
    upstream_results: list[Any] = []
    if accepted:
        body = (b'{"docs":[' + b",".join(v.body for v in accepted if v.body) + b"]"
                + (b',"new_edits":false}' if not new_edits else b"}"))
        response = await call.upstream.send(
            "POST", call.path("_bulk_docs"), content=body,
            headers={"Content-Type": "application/json"}, retry=not new_edits)
        if response.status_code not in (201, 202):
            return _upstream_json(call.request, response)
        upstream_results = response.json()
    if not new_edits:  # CouchDB lists only failures for replicated writes
        failed = {r.get("id") for r in upstream_results}
        stored = [(v, v.doc["_rev"]) for v in accepted if v.doc_id not in failed]
        results = list(upstream_results) + [v.rejection() for v in verdicts if v.reason]
    else:
        # Matched by id, not position: pouchdb-server sometimes answers out of order.
        answers = _answers_by_doc(accepted, upstream_results)
        stored = [(v, a["rev"]) for v, a in zip(accepted, answers, strict=True) if a.get("ok")]
        by_verdict = {id(v): a for v, a in zip(accepted, answers, strict=True)}
        results = [v.rejection() if v.reason else by_verdict[id(v)] for v in verdicts]
    await _audit(call, stored)
    return proxy.json_response(call.request, 201, results)


def _answers_by_doc(accepted: list[writes.Verdict], upstream: list[dict[str, Any]]
                    ) -> list[dict[str, Any]]:
    """CouchDB's answer for each accepted document, in the order they were sent."""
    pending: dict[Any, list[dict[str, Any]]] = {}
    for answer in upstream:
        pending.setdefault(answer.get("id"), []).append(answer)
    missing = {"error": "unknown_error", "reason": "CouchDB gave no answer for this document"}
    return [pending[v.doc_id].pop(0) if pending.get(v.doc_id) else {"id": v.doc_id, **missing}
            for v in accepted]


async def _audit(call: _Call, stored: list[tuple[writes.Verdict, str]]) -> None:
    assert call.target.db
    records = writes.audit_records(call.principal.name, stored)
    if records:
        await writes.store_audit(call.upstream, call.target.db, records)


async def _doc_put(call: _Call) -> Response:
    assert call.target.db and call.grid and call.target.doc_id
    doc = await call.json_body()
    if isinstance(doc, dict):
        if doc.setdefault("_id", call.target.doc_id) != call.target.doc_id:
            raise bad_request("the _id in the body must match the URL")
        if "rev" in dict(call.params) and "_rev" not in doc:
            doc["_rev"] = dict(call.params)["rev"]
    new_edits = dict(call.params).get("new_edits", "true") == "true"
    [verdict] = await writes.review(call.upstream, call.target.db, call.principal, call.grid,
                                    [doc], new_edits)
    if verdict.reason:
        raise forbidden(verdict.reason)
    response = await call.upstream.send(
        "PUT", call.path(call.target.doc_id), content=verdict.body,
        headers={"Content-Type": "application/json"}, retry=not new_edits)
    if response.status_code in (201, 202):
        rev = verdict.doc.get("_rev") if not new_edits else response.json().get("rev")
        await _audit(call, [(verdict, rev)])
    return _upstream_json(call.request, response)


def _upstream_json(request: Request, response: Any) -> Response:
    try:
        body = response.json()
    except ValueError:
        body = {"error": "bad_gateway", "reason": "CouchDB sent an answer that is not JSON"}
        return proxy.json_response(request, 502, body)
    headers = {k: v for k, v in response.headers.items() if k.lower() == "etag"}
    return proxy.json_response(request, response.status_code, body, headers)


_HANDLERS = {
    "root": _passthrough,
    "db_info": _passthrough,
    "changes": _passthrough,
    "revs_diff": _passthrough,
    "bulk_get": _passthrough,
    "all_docs": _passthrough,
    "doc_get": _passthrough,
    "attachment_get": _passthrough,
    "local_get": _local_get,
    "local_put": _local_put,
    "bulk_docs": _bulk_docs,
    "doc_put": _doc_put,
}

"""Login sessions: our own signed cookie, backed by a document in `doorstep_sessions`.

CouchDB's own sessions last minutes (600 s by default) and would lock out a worker who was
offline for a week, so after checking the password once we issue our own: a random token
in an HttpOnly, SameSite=Lax cookie, signed with the server's `session_key` so a forged
cookie costs no database read. The database keeps `session:<sha256 of the token>` (never
the token itself) with the user and an expiry 30 days ahead, pushed forward on use (at most
once a day, so a syncing phone does not write on every request). Logout deletes the
document, which ends the session on every replica.

Each replica remembers a session it has checked for `DOORSTEP_SESSION_CACHE_SECONDS`
(default 10 s), with the account behind it. The trade-off: a logout made on another
replica, or a deactivation, takes effect here within that time; a logout made here takes
effect at once. Expiry is checked on every request.

A session nobody presents again (a phone reset, a browser cleared) is deleted by the hourly
background job `session-purge`, so the database holds only live sessions.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from itsdangerous import BadSignature, Signer
from starlette.requests import Request
from starlette.responses import Response

from server.authz import Principal
from server.gateway.upstream import Upstream, UpstreamError
from server.security_settings import SecuritySettings
from sync import naming
from sync.accounts import Account
from sync.couch import Couch
from sync.leases import Lease

COOKIE = "doorstep_session"
PURGE_JOB = "session-purge"
PURGE_INTERVAL = 3600.0


@dataclass(frozen=True)
class SessionCheck:
    """The outcome of reading a request's session: a principal, or why there is none."""

    principal: Principal | None
    reason: str = ""
    renewed: bool = False  # the expiry moved forward: send the cookie again


@dataclass
class _Entry:
    doc: dict[str, Any]
    principal: Principal
    checked_at: float = field(default_factory=time.monotonic)


class SessionStore:
    MAX_CACHED = 50_000

    def __init__(self, upstream: Upstream, db: str, key: str, config: SecuritySettings,
                 https: bool = False) -> None:
        self.upstream = upstream
        self.db = quote(db, safe="")
        self.signer = Signer(key, salt="doorstep-session")
        self.config = config
        self.https = https
        self._cache: dict[str, _Entry] = {}

    # -- lifecycle -------------------------------------------------------------------------

    async def create(self, principal: Principal, *, address: str = "", agent: str = "") -> str:
        """Store a new session; return the cookie value."""
        token = secrets.token_urlsafe(32)
        now = time.time()
        doc = {
            "_id": _doc_id(token),
            "type": "session",
            "user": principal.name,
            "created_at": _iso(now),
            "renewed_at": now,
            "expires_at": now + self.config.session_seconds,
            "address": address[:64],
            "agent": agent[:200],
        }
        status, body = await self.upstream.json("PUT", self._path(doc["_id"]), body=doc,
                                                retry=False)
        if status not in (201, 202):
            raise UpstreamError(502, "bad_gateway", f"could not store the session ({status})")
        doc["_rev"] = body["rev"]
        self._remember(doc["_id"], _Entry(doc, principal))
        return self.signer.sign(token).decode()

    async def check(self, cookie: str | None) -> SessionCheck:
        token = self._token(cookie)
        if token is None:
            return SessionCheck(None, "log in first")
        key = _doc_id(token)
        entry = self._cache.get(key)
        stale_after = self.config.session_cache_seconds
        if entry is None or time.monotonic() - entry.checked_at >= stale_after:
            entry = await self._load(key)
            if entry is None:
                return SessionCheck(None, "your session has ended; log in again")
        now = time.time()
        if entry.doc["expires_at"] <= now:
            await self._delete(key, entry.doc)
            return SessionCheck(None, "your session has expired; log in again")
        if not entry.principal.active or not entry.principal.role:
            await self._delete(key, entry.doc)
            return SessionCheck(None, "this account has been deactivated")
        renewed = False
        if now - entry.doc["renewed_at"] >= self.config.session_renew_seconds:
            renewed = await self._renew(key, entry, now)
        return SessionCheck(entry.principal, renewed=renewed)

    async def end(self, cookie: str | None) -> None:
        token = self._token(cookie)
        if token is None:
            return
        key = _doc_id(token)
        entry = self._cache.get(key) or await self._load(key)
        if entry is not None:
            await self._delete(key, entry.doc)

    # -- cookies ---------------------------------------------------------------------------

    def set_cookie(self, request: Request, response: Response, value: str) -> None:
        response.set_cookie(
            COOKIE, value, max_age=int(self.config.session_seconds), path="/", httponly=True,
            samesite="lax", secure=self.https or request.url.scheme == "https",
        )

    def clear_cookie(self, request: Request, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax",
                               secure=self.https or request.url.scheme == "https")

    # -- internals -------------------------------------------------------------------------

    def _token(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            return self.signer.unsign(cookie).decode()
        except (BadSignature, UnicodeDecodeError):
            return None

    def _path(self, doc_id: str) -> str:
        return f"/{self.db}/{quote(doc_id, safe='')}"

    async def _load(self, key: str) -> _Entry | None:
        status, doc = await self.upstream.json("GET", self._path(key))
        self._cache.pop(key, None)
        if status == 404:
            return None
        if status != 200 or not isinstance(doc, dict):
            raise UpstreamError(502, "bad_gateway", f"could not read the session ({status})")
        status, user = await self.upstream.json(
            "GET", "/_users/" + quote(f"org.couchdb.user:{doc['user']}", safe=""))
        if status == 404:
            principal = Principal(doc["user"], doc["user"], "", active=False)
        elif status != 200:
            raise UpstreamError(502, "bad_gateway", f"could not read the account ({status})")
        else:
            principal = Principal.from_account(Account.from_doc(user))
        entry = _Entry(doc, principal)
        self._remember(key, entry)
        return entry

    async def _renew(self, key: str, entry: _Entry, now: float) -> bool:
        previous = entry.doc
        doc = {**previous, "renewed_at": now, "expires_at": now + self.config.session_seconds}
        entry.doc = doc  # concurrent requests of this device do not renew again
        status, body = await self.upstream.json("PUT", self._path(key), body=doc, retry=False)
        if status in (201, 202):
            doc["_rev"] = body["rev"]
            return True
        # Another replica renewed first (409) or the session was ended meanwhile: re-read.
        self._cache.pop(key, None)
        return False

    async def _delete(self, key: str, doc: dict[str, Any]) -> None:
        self._cache.pop(key, None)
        status, _ = await self.upstream.json(
            "DELETE", f"{self._path(key)}?rev={quote(doc['_rev'], safe='')}", retry=False)
        if status == 409:  # renewed elsewhere meanwhile: delete the current revision
            status, current = await self.upstream.json("GET", self._path(key))
            if status == 200:
                await self.upstream.json(
                    "DELETE", f"{self._path(key)}?rev={quote(current['_rev'], safe='')}",
                    retry=False)

    def _remember(self, key: str, entry: _Entry) -> None:
        if len(self._cache) >= self.MAX_CACHED:
            cutoff = time.monotonic() - self.config.session_cache_seconds
            self._cache = {k: e for k, e in self._cache.items() if e.checked_at > cutoff}
            while len(self._cache) >= self.MAX_CACHED:
                del self._cache[next(iter(self._cache))]
        self._cache[key] = entry


def _doc_id(token: str) -> str:
    return "session:" + hashlib.sha256(token.encode()).hexdigest()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def purge_expired(couch: Couch, now: float | None = None, batch: int = 500) -> int:
    """Delete the stored sessions that have expired; returns how many."""
    now = time.time() if now is None else now
    db = couch.name(naming.SESSIONS)
    rows = couch.all_docs(db, startkey="session:", endkey="session:\ufff0", include_docs=True)
    expired = [{"_id": r["id"], "_rev": r["doc"]["_rev"], "_deleted": True} for r in rows
               if r["doc"].get("expires_at", 0) <= now]
    for i in range(0, len(expired), batch):
        couch.bulk_docs(db, expired[i:i + batch])
    return len(expired)


def purge_step(couch: Couch) -> Callable[[Lease], None]:
    def step(lease: Lease) -> None:
        purge_expired(couch)

    return step

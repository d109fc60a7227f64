"""The async connection to CouchDB, with the server's admin credentials.

Pooled connections expire after 4 s because pouchdb-server (Node) closes idle ones after
5 s; a request that still meets a closed connection is retried once when it is safe to
repeat. Transport failures become `UpstreamError`s carrying the status and JSON body the
browser should see: 502 when CouchDB is unreachable, 504 when it does not answer in time.

At most 16 short requests wait on CouchDB at once; more would not make it faster. The
others queue on a semaphore here, not in httpcore's pool, whose bookkeeping walks every
queued request and every connection (some of it twice over) each time one finishes: with
hundreds of phones syncing at once that costs more CPU than the proxying itself. For the
same reason the connections are spread over a few small pools. Change feeds, which hold a
connection for minutes, each get their own connection outside that limit.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import sys
from typing import Any

import anyio
import httpx

logging.getLogger("httpx").setLevel(logging.WARNING)  # not one log line per proxied request

try:
    import sniffio  # noqa: F401
except ImportError:
    # httpcore imports sniffio each time it takes a lock (~17 times per request); when it is
    # not installed, each attempt searches sys.path again. Remember that it is missing.
    sys.modules["sniffio"] = None  # type: ignore[assignment]

CONCURRENT = 16  # requests waiting on CouchDB at once; its one Node thread gains nothing more
POOLS = 4  # httpcore's pool bookkeeping grows with the square of its size: several small ones

# Errors that mean "the connection died before an answer", where one retry is safe.
_STALE = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class UpstreamError(Exception):
    def __init__(self, status: int, error: str, reason: str) -> None:
        super().__init__(f"{status} {error}: {reason}")
        self.status = status
        self.body = {"error": error, "reason": reason}


class Upstream:
    def __init__(self, url: str, user: str, password: str, timeout: float) -> None:
        self.url = url.rstrip("/")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.admin_headers = {"Authorization": f"Basic {token}"}
        self.seconds = timeout
        self.timeout = httpx.Timeout(timeout, connect=5.0)
        # Transports rather than clients: a proxy needs none of a client's cookies,
        # redirects or auth flows, and skipping them saves CPU on every request. Above all
        # no cookie is ever kept: CouchDB prefers a session cookie to our admin header, so a
        # user's cookie from a login check must never ride on a later request.
        self.pools = [httpx.AsyncHTTPTransport(limits=httpx.Limits(
            max_connections=None, max_keepalive_connections=8, keepalive_expiry=4.0))
            for _ in range(POOLS)]
        self.turn = itertools.cycle(self.pools)
        self.slots = anyio.Semaphore(CONCURRENT)
        self.feeds = httpx.AsyncHTTPTransport(limits=httpx.Limits(
            max_connections=None, max_keepalive_connections=0))

    async def aclose(self) -> None:
        for transport in (*self.pools, self.feeds):
            await transport.aclose()

    async def send(self, method: str, target: str, *, content: bytes | None = None,
                   headers: dict[str, str] | None = None, stream: bool = False,
                   admin: bool = True, retry: bool = False, feed: bool = False,
                   timeout: httpx.Timeout | None = None) -> httpx.Response:
        """Send `method target` (an encoded path with its query); retry once when `retry`.

        With `stream`, the caller reads the body and must close the response.
        """
        transport = self.feeds if feed else next(self.turn)
        all_headers = {"Accept": "application/json", "Accept-Encoding": "identity",
                       **(headers or {}), **(self.admin_headers if admin else {})}
        extensions = {"timeout": (timeout or self.timeout).as_dict()}
        attempts = 2 if retry else 1
        for attempt in range(attempts):
            request = httpx.Request(method, self.url + target, content=content,
                                    headers=all_headers, extensions=extensions)
            try:
                if feed:
                    response = await transport.handle_async_request(request)
                else:
                    async with self.slots:  # until the answer's headers are here
                        response = await transport.handle_async_request(request)
                response.request = request
                if not stream:
                    try:
                        await response.aread()
                    finally:
                        await response.aclose()
                return response
            except httpx.TimeoutException:
                raise UpstreamError(504, "gateway_timeout",
                                    "CouchDB did not answer in time; try again") from None
            except _STALE:
                if attempt + 1 < attempts:
                    continue
                raise UpstreamError(502, "bad_gateway",
                                    "CouchDB closed the connection; try again") from None
            except httpx.TransportError:
                raise UpstreamError(502, "bad_gateway",
                                    "CouchDB is unreachable; try again later") from None
        raise AssertionError("unreachable")

    def feed_timeout(self, read_seconds: float) -> httpx.Timeout:
        """A change feed may be silent between heartbeats for longer than a normal answer."""
        return httpx.Timeout(self.seconds, read=read_seconds, connect=5.0)

    async def json(self, method: str, path: str, *, body: Any = None, admin: bool = True,
                   retry: bool = True) -> tuple[int, Any]:
        """One JSON request; returns (status, decoded body or None)."""
        content = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if content is not None else {}
        response = await self.send(method, path, content=content, headers=headers,
                                   admin=admin, retry=retry)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

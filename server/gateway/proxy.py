"""Forwarding to CouchDB and streaming the answer back, faithfully and compressed.

Status, body and the headers PouchDB looks at (Content-Type, ETag, Cache-Control) pass
through unchanged; CouchDB's cookies, its Location (an internal address) and hop-by-hop
headers do not. Bodies stream in both directions as they arrive, so a change feed reaches
the phone line by line.

Compression: when the browser accepts gzip we ask CouchDB for gzip too and pass its bytes
through (pouchdb-server compresses in its own process); when CouchDB answers uncompressed
(Apache CouchDB does not compress) we compress here. Longpoll and continuous feeds are never
compressed, in either hop: pouchdb-server buffers a compressed continuous feed forever,
and a compressor holds back the heartbeats that keep a quiet feed alive.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from server.gateway.upstream import Upstream

PASSED_HEADERS = ("content-type", "etag", "cache-control", "x-couch-request-id",
                  "x-couchdb-body-time")
COMPRESSIBLE = ("application/json", "text/plain")
MIN_COMPRESS_BYTES = 1024
GZIP_LEVEL = 5  # near level 9's size on JSON for a third of the CPU


def accepts_gzip(request: Request) -> bool:
    for part in request.headers.get("accept-encoding", "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


async def forward(upstream: Upstream, request: Request, target: str, *,
                  body: bytes | None = None, feed: bool = False, retry: bool = False,
                  timeout: httpx.Timeout | None = None) -> Response:
    """Send the request on to CouchDB and stream its answer to the browser."""
    gzip_ok = accepts_gzip(request) and not feed
    headers = {"Accept": request.headers.get("accept", "application/json"),
               "Accept-Encoding": "gzip" if gzip_ok else "identity"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if "if-none-match" in request.headers:
        headers["If-None-Match"] = request.headers["if-none-match"]
    upstream_response = await upstream.send(request.method, target, content=body,
                                            headers=headers, stream=True, retry=retry,
                                            feed=feed, timeout=timeout)
    out = {k: v for k, v in upstream_response.headers.items() if k.lower() in PASSED_HEADERS}
    out["Vary"] = "Accept-Encoding"
    chunks = _raw(upstream_response)
    encoding = upstream_response.headers.get("content-encoding", "").lower()
    length = upstream_response.headers.get("content-length")
    if encoding == "gzip":
        out["Content-Encoding"] = "gzip"
        if length:
            out["Content-Length"] = length
    elif gzip_ok and _worth_compressing(upstream_response, length):
        out["Content-Encoding"] = "gzip"
        chunks = _gzip(chunks)
    elif length and not encoding:
        out["Content-Length"] = length
    return StreamingResponse(chunks, status_code=upstream_response.status_code, headers=out)


def _worth_compressing(response: httpx.Response, length: str | None) -> bool:
    if response.status_code in (204, 304) or response.request.method == "HEAD":
        return False
    if not response.headers.get("content-type", "").startswith(COMPRESSIBLE):
        return False
    return length is None or int(length) >= MIN_COMPRESS_BYTES


async def _raw(response: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_raw():
            yield chunk
    except httpx.HTTPError:
        return  # CouchDB went away mid-answer: end the body; the client sees it cut short
    finally:
        with anyio.CancelScope(shield=True):
            await response.aclose()


async def _gzip(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    async for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()


def json_response(request: Request, status: int, body: Any,
                  headers: dict[str, str] | None = None) -> Response:
    """A JSON answer the gateway makes itself, compressed like CouchDB's when it is large."""
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    out = {"Vary": "Accept-Encoding", **(headers or {})}
    if len(data) >= MIN_COMPRESS_BYTES and accepts_gzip(request):
        compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
        data = compressor.compress(data) + compressor.flush()
        out["Content-Encoding"] = "gzip"
    return Response(data, status_code=status, headers=out, media_type="application/json")

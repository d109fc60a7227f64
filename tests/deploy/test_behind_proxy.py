"""Behind the TLS proxy: strict headers, HSTS and Secure cookies, and forwarded headers
believed only from the configured proxy addresses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from server.security_headers import SecurityHeaders
from tests.conftest import RunningServer, start_server


@pytest.fixture
def proxied(couch_server, couch, prefix: str, tmp_path: Path) -> Iterator[RunningServer]:
    """A server configured for HTTPS behind a proxy at 127.0.0.1 (where the test connects from)."""
    s = start_server(couch_server, prefix, tmp_path / "proxied",
                     {"DOORSTEP_HTTPS": "1", "DOORSTEP_TRUSTED_PROXIES": "127.0.0.1"})
    yield s
    s.stop()


@pytest.fixture
def elsewhere(couch_server, couch, prefix: str, tmp_path: Path) -> Iterator[RunningServer]:
    """The same, but its proxy is another host: our requests come from an untrusted peer."""
    s = start_server(couch_server, prefix, tmp_path / "elsewhere",
                     {"DOORSTEP_HTTPS": "1", "DOORSTEP_TRUSTED_PROXIES": "10.1.2.3"})
    yield s
    s.stop()


FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}


def test_every_answer_carries_a_strict_policy(server: RunningServer) -> None:
    with server.client() as http:
        for path in ("/healthz", "/readyz", "/metrics", "/no-such-page"):
            csp = http.get(path).headers["content-security-policy"]
            assert "default-src 'self'" in csp and "script-src 'self'" in csp
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
            assert "worker-src 'self'" in csp and "connect-src 'self'" in csp
            assert "frame-ancestors 'none'" in csp


def test_hsts_only_when_served_over_https(server: RunningServer, proxied: RunningServer) -> None:
    with server.client() as http:
        assert "strict-transport-security" not in http.get("/healthz").headers
    with proxied.client() as http:
        assert http.get("/healthz").headers["strict-transport-security"].startswith("max-age=")


def test_forwarded_headers_from_the_trusted_proxy_are_believed(proxied: RunningServer) -> None:
    # An absolute URL the server builds (here: the redirect to the canonical path) takes the
    # scheme the proxy reports.
    with proxied.client() as http:
        r = http.get("/readyz/", headers=FORWARDED)
    assert r.status_code in (301, 307, 308)
    assert r.headers["location"].startswith("https://")


def test_forwarded_headers_from_anyone_else_are_ignored(elsewhere: RunningServer,
                                                        server: RunningServer) -> None:
    for s in (elsewhere, server):  # a proxy elsewhere, or no proxy configured at all
        with s.client() as http:
            r = http.get("/readyz/", headers=FORWARDED)
        assert r.status_code in (301, 307, 308)
        assert r.headers["location"].startswith("http://127.0.0.1:"), r.headers["location"]


def _cookie_app(https: bool) -> TestClient:
    async def login(request: Request) -> JSONResponse:
        r = JSONResponse({"ok": True})
        r.set_cookie("doorstep_session", "abc", httponly=True, samesite="strict")
        r.set_cookie("already", "x", secure=True)
        return r

    # TestClient runs the app in its own thread: the test run's Playwright driver holds
    # an event loop in this one, so asyncio.run() is not available here.
    return TestClient(SecurityHeaders(Starlette(routes=[Route("/login", login)]), https=https))


@pytest.mark.parametrize("https", [True, False])
def test_cookies_are_secure_behind_https_whoever_set_them(https: bool) -> None:
    with _cookie_app(https) as http:
        cookies = http.get("/login").headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("doorstep_session="))
    assert ("Secure" in session) is https
    assert "HttpOnly" in session
    already = next(c for c in cookies if c.startswith("already="))
    assert already.lower().count("secure") == 1

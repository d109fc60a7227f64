"""Behind the TLS proxy: strict headers, HSTS and Secure cookies, and forwarded headers
believed only from the configured proxy addresses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from server import i18n
from server.api.auth import CSRF_COOKIE
from server.sessions import COOKIE as SESSION_COOKIE
from sync import accounts
from sync.couch import Couch
from tests.conftest import RunningServer, start_server, unique_name


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


def set_cookies(s: RunningServer, couch: Couch) -> dict[str, str]:
    """Every cookie a browser gets from the login page and a login, by name."""
    name = unique_name("w_proxy")
    _, password = accounts.create(couch, name, "worker", grids=["G1"])
    with s.client() as http:
        page = http.get("/login").headers.get_list("set-cookie")
        login = http.post("/api/login", json={"name": name, "password": password})
    assert login.status_code == 200, login.text
    return {c.split("=", 1)[0]: c for c in [*page, *login.headers.get_list("set-cookie")]}


def test_cookies_are_secure_behind_https_whoever_set_them(server: RunningServer,
                                                          proxied: RunningServer,
                                                          couch: Couch) -> None:
    for s, https in ((proxied, True), (server, False)):
        cookies = set_cookies(s, couch)
        # The session and the login form's token are set Secure by their own code behind
        # HTTPS; the language cookie is set without it, and the middleware adds it.
        for name in (SESSION_COOKIE, CSRF_COOKIE, i18n.COOKIE):
            flags = [p.strip().lower() for p in cookies[name].split(";")[1:]]
            assert flags.count("secure") == (1 if https else 0), cookies[name]
        assert "HttpOnly" in cookies[SESSION_COOKIE] and "HttpOnly" in cookies[CSRF_COOKIE]

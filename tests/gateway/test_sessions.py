"""Logging in, staying logged in for weeks, logging out, and being refused.

Most tests use the module's shared server; expiry, renewal, rate limits and the Secure flag
use a second server with tiny limits (a 3-second session, 3 failures per account).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from http.cookies import SimpleCookie

import httpx
import pytest

from server import sessions
from sync import accounts, naming
from tests.conftest import CouchServer, RunningServer, start_server
from tests.gateway.conftest import PASSWORD, World


def _set_cookie(response: httpx.Response, name: str = "doorstep_session") -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        jar.load(header)
    assert name in jar, response.headers
    return jar


def _login(server: RunningServer, name: str, password: str = PASSWORD, **kw: object
           ) -> httpx.Response:
    return httpx.post(server.url + "/api/login", json={"name": name, "password": password},
                      timeout=30, **kw)  # type: ignore[arg-type]


def test_login_issues_an_httponly_lax_cookie_for_30_days(world: World) -> None:
    r = _login(world.server, world.names["w1"])
    assert r.status_code == 200, r.text
    morsel = _set_cookie(r)["doorstep_session"]
    assert morsel["httponly"] and morsel["samesite"].lower() == "lax"
    assert int(morsel["max-age"]) == 30 * 24 * 3600 and morsel["path"] == "/"
    assert not morsel["secure"]  # plain http here; see the https test below
    assert r.headers["cache-control"] == "no-store"


def test_me_describes_the_user_and_their_grids(world: World) -> None:
    me = world.login("w1").get("/api/me")
    assert me.status_code == 200
    body = me.json()
    assert body["name"] == world.names["w1"] and body["display_name"] == "w1 测试"
    assert body["role"] == "worker" and body["roles"] == ["worker", "grid:G1"]
    assert body["grids"] == [{"id": "G1", "name": "第一网格", "community": "C1",
                              "db": naming.grid_db_name("G1", world.couch.prefix)}]
    assert body["version"]
    supervisor = world.login("sup1").get("/api/me").json()
    assert [g["id"] for g in supervisor["grids"]] == ["G1", "G2"]
    admin = world.login("adm").get("/api/me").json()
    assert [g["id"] for g in admin["grids"]] == ["G1", "G2", "G9"]


def test_wrong_passwords_and_unknown_users_get_the_same_answer(world: World) -> None:
    wrong = _login(world.server, world.names["w2"], "not-the-password")
    nobody = _login(world.server, "no-such-user-x", "whatever-123")
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json() == nobody.json()
    assert "set-cookie" not in wrong.headers
    assert httpx.get(world.server.url + "/api/me").status_code == 401


def test_deactivated_accounts_cannot_log_in(world: World) -> None:
    name = world.add_account("quit", "worker", ["G2"])
    accounts.deactivate(world.couch, name)
    r = _login(world.server, name)
    assert r.status_code == 403 and "deactivated" in r.json()["reason"]


def test_login_needs_json_so_other_sites_cannot_post_it(world: World) -> None:
    r = httpx.post(world.server.url + "/api/login",
                   data={"name": world.names["w1"], "password": PASSWORD})
    assert r.status_code == 415
    r = httpx.post(world.server.url + "/api/login", json={"name": world.names["w1"]})
    assert r.status_code == 400
    client = world.login("w1")
    r = client.post("/api/logout", content=b"{}", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert client.get("/api/me").status_code == 200  # still logged in


def test_logout_ends_the_session_on_the_server(world: World) -> None:
    phone = world.login("w2")
    stolen = world.server.client(cookies=dict(phone.cookies))
    assert stolen.get("/api/me").status_code == 200
    db = world.db("G2")
    assert phone.post("/api/logout", json={}).status_code == 200
    assert "doorstep_session" not in phone.cookies
    for client in (phone, stolen):
        assert client.get("/api/me").status_code == 401
        r = client.get(f"/couch/{db}/")
        assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    sessions = naming.system_db(naming.SESSIONS, world.couch.prefix)
    left = world.couch.view(sessions, "sessions", "by_user", key=world.names["w2"])["rows"]
    assert left == []  # the stored session is gone, not just the cookie


def test_forged_or_tampered_cookies_are_refused(world: World) -> None:
    good = world.login("w1").cookies["doorstep_session"]
    token, _, signature = good.rpartition(".")
    other = "B" if token[-1] == "A" else "A"  # the tampered token must differ from the real one
    for forged in ("abc", good + "x", f"{token[:-1]}{other}.{signature}", f"{token}.{'A' * 27}"):
        r = httpx.get(world.server.url + "/api/me", cookies={"doorstep_session": forged})
        assert r.status_code == 401, forged


# --- a server with tiny limits --------------------------------------------------------------


@pytest.fixture(scope="module")
def short(world: World, couch_server: CouchServer, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[RunningServer]:
    """Same databases and accounts, but sessions of 3 s and 3 failures per account."""
    server = start_server(couch_server, world.couch.prefix,
                          tmp_path_factory.mktemp("short-server"), {
                              "DOORSTEP_SESSION_SECONDS": "3",
                              "DOORSTEP_SESSION_CACHE_SECONDS": "0",
                              "DOORSTEP_LOGIN_FAILURES_PER_ACCOUNT": "3",
                              "DOORSTEP_LOGIN_FAILURES_PER_ADDRESS": "6",
                              "DOORSTEP_LOGIN_WINDOW_SECONDS": "3",
                              "DOORSTEP_HTTPS": "1",
                              "DOORSTEP_BACKGROUND": "0",
                          })
    try:
        yield server
    finally:
        server.stop()


def _cookie_header(response: httpx.Response) -> dict[str, str]:
    return {"Cookie": f"doorstep_session={_set_cookie(response)['doorstep_session'].value}"}


def test_cookie_is_secure_behind_https(world: World, short: RunningServer) -> None:
    r = _login(short, world.names["w1"])
    assert r.status_code == 200
    assert _set_cookie(r)["doorstep_session"]["secure"]


def test_an_unused_session_expires(world: World, short: RunningServer) -> None:
    headers = _cookie_header(_login(short, world.names["w1"]))
    assert httpx.get(short.url + "/api/me", headers=headers).status_code == 200
    time.sleep(3.3)
    r = httpx.get(short.url + "/api/me", headers=headers)
    assert r.status_code == 401 and "expired" in r.json()["reason"]
    r = httpx.get(f"{short.url}/couch/{world.db('G1')}/", headers=headers)
    assert r.status_code == 401


def test_a_session_in_use_is_renewed(world: World, short: RunningServer) -> None:
    """Used every second for twice its lifetime, it never expires; the cookie is re-sent."""
    headers = _cookie_header(_login(short, world.names["w1"]))
    renewed = 0
    for _ in range(7):
        time.sleep(0.9)
        r = httpx.get(f"{short.url}/couch/{world.db('G1')}/", headers=headers)
        assert r.status_code == 200, r.text
        renewed += "doorstep_session" in r.headers.get("set-cookie", "")
    assert renewed >= 5


def test_failed_logins_are_limited_per_account(world: World, short: RunningServer) -> None:
    name = world.add_account("guessed", "worker", ["G1"])
    for _ in range(3):
        assert _login(short, name, "wrong-password").status_code == 401
    r = _login(short, name)  # the right password, but the account is locked for now
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 3
    assert r.json()["error"] == "too_many_requests"
    assert _login(short, world.names["w2"]).status_code == 200  # others are not affected
    time.sleep(int(r.headers["retry-after"]) + 0.2)
    assert _login(short, name).status_code == 200


def test_failed_logins_are_limited_per_address(world: World, short: RunningServer) -> None:
    time.sleep(3.1)  # let earlier tests' failures leave the window
    for i in range(6):
        assert _login(short, f"spray-{i}-x", "wrong-password").status_code == 401
    r = _login(short, world.names["w9"])
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


def test_expired_sessions_are_purged_and_live_ones_kept(world: World) -> None:
    name = world.add_account("purged", "worker", ["G1"])
    assert _login(world.server, name).status_code == 200
    db = naming.system_db(naming.SESSIONS, world.couch.prefix)
    [stale] = world.couch.view(db, "sessions", "by_user", key=name, include_docs=True)["rows"]
    world.couch.put(db, {**stale["doc"], "expires_at": time.time() - 1})
    live = world.server.client()
    assert live.post("/api/login", json={"name": name, "password": PASSWORD}).status_code == 200
    assert sessions.purge_expired(world.couch) >= 1
    left = world.couch.view(db, "sessions", "by_user", key=name)["rows"]
    assert len(left) == 1 and left[0]["id"] != stale["id"]
    assert live.get("/api/me").status_code == 200

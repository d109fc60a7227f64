"""The push API on a real server over HTTP: keys, subscriptions, logout, figures."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator

import httpx
import pytest

from sync import accounts
from sync.couch import Couch
from sync.push_outbox import ensure_push_db
from tests.conftest import CouchServer, RunningServer, start_server, unique_name
from tests.push.conftest import subscribe
from tests.push.standin import PushStandin

PUSH_ENV = {"DOORSTEP_PUSH_ALLOW_HTTP": "1", "DOORSTEP_PUSH_POLL": "0.1"}


@pytest.fixture
def push_server(couch_server: CouchServer, couch: Couch, community, prefix: str,
                tmp_path) -> Iterator[RunningServer]:
    s = start_server(couch_server, prefix, tmp_path / "var", PUSH_ENV)
    try:
        yield s
    finally:
        s.stop()


def login(server: RunningServer, couch: Couch, role: str = "worker", **scope) -> httpx.Client:
    name = unique_name("u")
    if role == "worker":
        scope.setdefault("grids", ["G1"])
    if role == "supervisor":
        scope.setdefault("communities", ["C1"])
    accounts.create(couch, name, role, password="password1", **scope)
    client = server.client()
    r = client.post("/api/login", json={"name": name, "password": "password1"})
    assert r.status_code == 200, r.text
    client.name = name  # type: ignore[attr-defined]
    return client


def test_the_vapid_key_is_made_once_kept_secret_and_served(couch_server, couch, community,
                                                           prefix, tmp_path):
    var = tmp_path / "var"
    first = start_server(couch_server, prefix, var, PUSH_ENV)
    try:
        key = first.client().get("/api/push/vapid-public-key").json()["public_key"]
    finally:
        first.stop()
    secrets = var / "secrets.json"
    assert stat.S_IMODE(os.stat(secrets).st_mode) == 0o600
    assert "vapid_private_key" in json.loads(secrets.read_text())
    again = start_server(couch_server, prefix, var, PUSH_ENV)
    try:
        assert again.client().get("/api/push/vapid-public-key").json()["public_key"] == key
    finally:
        again.stop()
    assert len(key) == 87  # 65 bytes, base64url: an uncompressed P-256 point


def test_subscribing_needs_a_session_and_a_well_formed_subscription(push_server, couch):
    ensure_push_db(couch)
    with PushStandin() as standin:
        sub = standin.device("phone").subscription()
    anonymous = push_server.client()
    r = anonymous.post("/api/push/subscriptions", json={"subscription": sub})
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"

    client = login(push_server, couch)
    bad = [
        ({"subscription": {**sub, "keys": {"p256dh": "abc", "auth": sub["keys"]["auth"]}}},
         "keys.p256dh"),
        ({"subscription": {"endpoint": sub["endpoint"]}}, "keys"),
        ({"subscription": {**sub, "endpoint": "ftp://push.example/x"}}, "endpoint"),
        ({"subscription": sub, "device": "x" * 65}, "device"),
        ([1, 2], "object"),
    ]
    for body, word in bad:
        r = client.post("/api/push/subscriptions", json=body)
        assert r.status_code == 400, body
        assert word in r.json()["reason"]
    r = client.post("/api/push/subscriptions", content=b"{}",
                    headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    state = client.get("/api/push/subscriptions", params={"endpoint": sub["endpoint"]}).json()
    assert state == {"subscribed": False, "devices": 0}


def test_turning_on_and_off_and_logout_removing_only_that_devices_subscription(
        push_server, couch):
    with PushStandin() as standin:
        phone = standin.device("phone").subscription()
        tablet = standin.device("tablet").subscription()
    on_phone = login(push_server, couch)
    on_tablet = push_server.client()
    assert on_tablet.post("/api/login", json={"name": on_phone.name,  # type: ignore[attr-defined]
                                              "password": "password1"}).status_code == 200
    for client, sub, device in ((on_phone, phone, "dev-phone"), (on_tablet, tablet, "dev-tab")):
        r = client.post("/api/push/subscriptions",
                        json={"subscription": sub, "device": device, "lang": "zh-CN"})
        assert r.status_code == 201, r.text

    def state(client: httpx.Client, sub: dict) -> dict:
        return client.get("/api/push/subscriptions", params={"endpoint": sub["endpoint"]}).json()

    assert state(on_phone, phone) == {"subscribed": True, "devices": 2}
    r = on_tablet.request("DELETE", "/api/push/subscriptions",
                          json={"endpoint": tablet["endpoint"]})
    assert r.json()["removed"] == 1
    assert state(on_phone, tablet) == {"subscribed": False, "devices": 1}
    # Another user cannot remove someone else's device.
    stranger = login(push_server, couch)
    r = stranger.request("DELETE", "/api/push/subscriptions", json={"endpoint": phone["endpoint"]})
    assert r.json()["removed"] == 0
    assert state(on_phone, phone)["subscribed"] is True

    on_tablet.post("/api/push/subscriptions", json={"subscription": tablet, "device": "dev-tab"})
    assert on_phone.post("/api/logout", json={}).status_code == 200
    assert state(on_tablet, phone) == {"subscribed": False, "devices": 1}
    assert state(on_tablet, tablet)["subscribed"] is True


def test_delivery_figures_are_for_supervisors_and_admins(push_server, couch):
    worker = login(push_server, couch)
    with PushStandin() as standin:  # a worker of the supervisor's community
        subscribe(couch, standin, worker.name, "phone")
    r = worker.get("/api/push/figures")
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    supervisor = login(push_server, couch, "supervisor")
    figures = supervisor.get("/api/push/figures").json()
    assert figures["subscriptions"] == 1
    assert set(figures["by_state"]) >= {"pending", "sent", "failed", "gone"}

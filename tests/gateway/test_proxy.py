"""The proxy itself: feeds stream, answers are compressed and faithful, bodies are limited,
and CouchDB going away (or hanging) gives clean JSON errors, with recovery when it is back.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from server.embedded_couch import EmbeddedCouch, free_port
from server.settings import Settings
from tests.conftest import CouchServer, RunningServer, start_server
from tests.gateway import factories
from tests.gateway.conftest import ACCOUNTS, PASSWORD, World, build_world


@pytest.fixture(scope="module")
def w1(world: World) -> httpx.Client:
    return world.login("w1")


def test_continuous_feed_streams_heartbeats_and_changes_as_they_happen(
        world: World, w1: httpx.Client) -> None:
    db = world.db("G1")
    doc = factories.visit("G1", world.households["G1"], world.names["w1"])
    writer = threading.Timer(1.0, lambda: world.couch.put(db, dict(doc)))
    lines: list[bytes] = []
    started = time.monotonic()
    # Accept-Encoding: gzip, as a browser sends it (pouchdb-server buffers a gzip feed forever)
    with w1.stream("GET", f"/couch/{db}/_changes?feed=continuous&since=now&heartbeat=300",
                   headers={"Accept-Encoding": "gzip"}) as r:
        assert r.status_code == 200
        assert "content-encoding" not in r.headers
        writer.start()
        for line in r.iter_lines():
            lines.append(line.encode())
            if doc["_id"].encode() in line.encode() or time.monotonic() - started > 15:
                break
    writer.cancel()
    changes = [json.loads(line) for line in lines if line.strip()]
    assert [c["id"] for c in changes] == [doc["_id"]]
    assert len(lines) - len(changes) >= 2  # heartbeats (empty lines) came while waiting
    assert time.monotonic() - started < 10


def test_longpoll_returns_when_a_change_arrives(world: World, w1: httpx.Client) -> None:
    db = world.db("G1")
    doc = factories.visit("G1", world.households["G1"], world.names["w1"])
    threading.Timer(1.0, lambda: world.couch.put(db, dict(doc))).start()
    started = time.monotonic()
    r = w1.get(f"/couch/{db}/_changes?feed=longpoll&since=now&heartbeat=500",
               headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200
    assert [c["id"] for c in r.json()["results"]] == [doc["_id"]]
    assert time.monotonic() - started < 10


def test_answers_are_gzipped_when_the_client_accepts_it(world: World, w1: httpx.Client) -> None:
    db, hid, me = world.db("G1"), world.households["G1"], world.names["w1"]
    docs = [factories.visit("G1", hid, me) for _ in range(40)]
    raw = httpx.Client(base_url=world.server.url, cookies=w1.cookies, timeout=30)
    pushed = raw.post(f"/couch/{db}/_bulk_docs", json={"docs": docs},
                      headers={"Accept-Encoding": "gzip"})
    assert pushed.status_code == 201
    assert pushed.headers["content-encoding"] == "gzip"  # made by the gateway itself
    assert len(pushed.json()) == 40
    for path in (f"/couch/{db}/_all_docs?include_docs=true", f"/couch/{db}/_changes"):
        zipped = raw.get(path, headers={"Accept-Encoding": "gzip"})
        plain = raw.get(path, headers={"Accept-Encoding": "identity"})
        assert zipped.headers["content-encoding"] == "gzip"
        assert "content-encoding" not in plain.headers
        assert zipped.json() == plain.json()
        assert zipped.num_bytes_downloaded < len(plain.content) / 2  # smaller on the wire


def test_headers_stay_faithful_and_couchdb_internals_stay_inside(world: World,
                                                                 w1: httpx.Client) -> None:
    db, hid = world.db("G1"), world.households["G1"]
    path = f"/couch/{db}/household:{hid}"
    r = w1.get(path)
    direct = world.couch.session.get(f"{world.couch.url}/{db}/household:{hid}")
    assert r.status_code == 200 and r.json() == direct.json()
    assert r.headers["etag"] == direct.headers["etag"]
    assert w1.get(path, headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    visit = factories.visit("G1", hid, world.names["w1"])
    put = w1.put(f"/couch/{db}/{visit['_id']}", json=visit)
    assert put.status_code == 201
    assert "location" not in put.headers  # CouchDB's own address is not ours to show
    assert "set-cookie" not in put.headers
    missing = w1.get(f"/couch/{db}/visit:nothing-here")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_checkpoints_are_private_to_each_user(world: World, w1: httpx.Client) -> None:
    db = world.db("G1")
    admin = world.login("adm")
    assert w1.put(f"/couch/{db}/_local/shared-id", json={"last_seq": 7}).status_code == 201
    r = admin.get(f"/couch/{db}/_local/shared-id")
    assert r.status_code == 404  # the admin has no checkpoint of that name
    r = admin.put(f"/couch/{db}/_local/shared-id", json={"last_seq": 99})
    assert r.status_code == 201 and r.json()["id"] == "_local/shared-id"
    mine = w1.get(f"/couch/{db}/_local/shared-id").json()
    assert mine["last_seq"] == 7 and mine["_id"] == "_local/shared-id"
    r = w1.put(f"/couch/{db}/_local/shared-id", json={"_id": "_local/other", "last_seq": 1})
    assert r.status_code == 400


def test_idle_pooled_connections_are_retried(world: World, w1: httpx.Client) -> None:
    """pouchdb-server drops idle keep-alive connections after 5 s; nobody may notice."""
    db = world.db("G1")
    assert w1.get(f"/couch/{db}/").status_code == 200
    time.sleep(5.5)
    for _ in range(3):
        assert w1.get(f"/couch/{db}/_changes?limit=1").status_code == 200


def test_checkpoint_bodies_are_small(world: World, w1: httpx.Client) -> None:
    r = w1.put(f"/couch/{world.db('G1')}/_local/big", json={"pad": "x" * 70_000})
    assert r.status_code == 413 and r.json()["error"] == "too_large"


# --- a server of our own, on a CouchDB of our own, to stop and to freeze --------------------


@dataclass
class Own:
    embedded: EmbeddedCouch  # replaced when a test restarts CouchDB
    server: RunningServer
    world: World


@pytest.fixture(scope="module")
def own(couch_server: CouchServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Own]:
    var = tmp_path_factory.mktemp("own-couch")
    embedded = EmbeddedCouch(Settings(var_dir=var), port=free_port())
    embedded.start()
    own_couch = CouchServer(embedded.url, embedded.user, embedded.password, embedded)
    couch, names, households = build_world(own_couch, var)
    server = start_server(own_couch, couch.prefix, var / "server", {
        "DOORSTEP_GATEWAY_MAX_BODY_BYTES": "20000",
        "DOORSTEP_GATEWAY_TIMEOUT_SECONDS": "1",
        "DOORSTEP_SESSION_CACHE_SECONDS": "0",
        "DOORSTEP_BACKGROUND": "0",
    })
    w = World(couch, server, names, households)
    w.add_account("w1", *ACCOUNTS["w1"])
    it = Own(embedded, server, w)
    try:
        yield it
    finally:
        server.stop()
        it.embedded.stop()


def test_request_bodies_are_limited(own: Own) -> None:
    w = own.world
    client, db = w.login("w1"), w.db("G1")
    docs = [factories.visit("G1", w.households["G1"], w.names["w1"], notes="长" * 500)
            for _ in range(20)]
    r = client.post(f"/couch/{db}/_bulk_docs", json={"docs": docs})
    assert r.status_code == 413 and r.json()["error"] == "too_large"

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted while it arrives
        yield b'{"docs": ['
        for i in range(100):
            yield json.dumps(docs[i % 20]).encode() + b","
        yield b"{}]}"

    r = client.post(f"/couch/{db}/_bulk_docs", content=chunked(),
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert client.post(f"/couch/{db}/_bulk_docs", json={"docs": docs[:5]}).status_code == 201
    assert w.couch.get(db, docs[5]["_id"]) is None


def test_couchdb_down_gives_502_and_recovers(own: Own) -> None:
    w, stopped = own.world, own.embedded
    client, db = w.login("w1"), w.db("G1")
    assert client.get(f"/couch/{db}/").status_code == 200
    stopped.stop()
    try:
        for method, path, body in [("GET", f"/couch/{db}/", None),
                                   ("GET", f"/couch/{db}/_changes", None),
                                   ("POST", f"/couch/{db}/_bulk_docs", {"docs": []}),
                                   ("GET", "/api/me", None)]:
            r = client.request(method, path, json=body)
            assert r.status_code in (502, 503), (path, r.status_code, r.text)
            assert r.json()["error"] and r.json()["reason"], path
        r = httpx.post(own.server.url + "/api/login", json={"name": w.names["w1"],
                                                            "password": PASSWORD})
        assert r.status_code == 502 and r.json()["error"] == "bad_gateway"
    finally:  # the same data on the same port, as a restarted CouchDB would be
        own.embedded = EmbeddedCouch(Settings(var_dir=stopped.data_dir.parent),
                                     port=stopped.port)
        own.embedded.start()
    assert client.get(f"/couch/{db}/").status_code == 200  # same session, no new login
    visit = factories.visit("G1", w.households["G1"], w.names["w1"])
    r = client.post(f"/couch/{db}/_bulk_docs", json={"docs": [visit]})
    assert r.status_code == 201 and r.json()[0]["ok"]


def test_a_frozen_couchdb_gives_504(own: Own) -> None:
    w, pid = own.world, own.embedded.pid
    client, db = w.login("w1"), w.db("G1")
    assert pid
    os.kill(pid, signal.SIGSTOP)
    try:
        r = client.get(f"/couch/{db}/_all_docs")
        assert r.status_code == 504 and r.json()["error"] == "gateway_timeout"
    finally:
        os.kill(pid, signal.SIGCONT)
    assert client.get(f"/couch/{db}/_all_docs").status_code == 200


def test_odd_paths_still_get_the_gateways_json(world: World, w1: httpx.Client) -> None:
    db = world.db("G1")
    for path, status, error in ((f"/couch/{db}/%0A", 404, "not_found"),
                                (f"/couch/{db}%0A/", 403, "forbidden"),
                                ("/couch/%0A/_changes", 403, "forbidden"),
                                ("/couch", 200, None)):
        r = w1.get(path)
        assert r.status_code == status, (path, r.text)
        assert r.json().get("error") == error, path
    anonymous = httpx.get(world.server.url + f"/couch/{db}/%0A")
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "unauthorized"


def test_a_client_that_hangs_up_mid_body_leaves_no_error(world: World, w1: httpx.Client) -> None:
    host, port = world.server.url.removeprefix("http://").split(":")
    cookie = w1.cookies["doorstep_session"]
    for path in (f"/couch/{world.db('G1')}/_bulk_docs", "/api/login"):
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      f"Cookie: doorstep_session={cookie}\r\nContent-Length: 100000\r\n\r\n"
                      '{"docs": ['.encode())
    time.sleep(1.0)
    assert w1.get(f"/couch/{world.db('G1')}/").status_code == 200
    assert "Exception in ASGI application" not in world.server.log.read_text()

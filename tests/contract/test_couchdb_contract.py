"""The CouchDB contract: every endpoint and parameter Doorstep's code uses, each checked.

Runs against the embedded pouchdb-server by default. With DOORSTEP_COUCHDB_URL,
DOORSTEP_COUCHDB_USER and DOORSTEP_COUCHDB_PASSWORD set (a server admin), the same module
runs unchanged against that server, which is how we check Apache CouchDB 3:

    DOORSTEP_COUCHDB_URL=http://127.0.0.1:5984 DOORSTEP_COUCHDB_USER=admin \\
    DOORSTEP_COUCHDB_PASSWORD=… .venv/bin/pytest tests/contract

A check asserts only what both backends must do for our code to be right, never what one
of them happens to do (../shared/FACTS.md): sequences are passed back opaque, never
compared or parsed; `_bulk_docs` with `new_edits=false` is judged by what it stored, not
by its answer (CouchDB answers `[]`); and nothing here may rely on `_security` being
enforced, since pouchdb-server does not enforce it (the gateway does). The last tests keep
the table honest: every entry has a check, and the code names no CouchDB endpoint that is
missing from the table.
"""

from __future__ import annotations

import base64
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from sync import accounts
from sync.couch import Couch
from sync.resolver_status import BACKLOG_DESIGN

ROOT = Path(__file__).resolve().parents[2]

# endpoint (method, path shape, parameters) → who relies on it
ENDPOINTS: dict[str, str] = {
    "GET /_session (admin basic auth)": "sync/couch.py Couch.check, server/observability.py",
    "POST /_session {name, password}": "server/api/auth.py: the user's own password check",
    "GET /_all_dbs": "deploy/backup/couch_backup.py",
    "PUT /{db}": "sync/couch.py ensure_db (201 created, 412 exists)",
    "PUT /_users, PUT /_replicator": "sync/provision.py (CouchDB 3 single node lacks them)",
    "HEAD /{db}": "sync/couch.py exists, server/observability.py readiness",
    "GET /{db}": "gateway db_info, deploy/backup (doc_count)",
    "GET /{db}/_security": "sync/couch.py ensure_security, deploy/backup",
    "PUT /{db}/_security": "sync/couch.py ensure_security, deploy/backup/couch_restore.py",
    "GET /{db}/{doc}": "sync/couch.py get (404 when missing)",
    "GET /{db}/{doc}?conflicts=true": "sync/leases.py, sync/moves.py, gateway doc_get",
    "GET /{db}/{doc}?rev&revs=true&attachments=true": "gateway doc_get, couch_restore verify",
    "GET /{db}/{doc}?open_revs=all": "gateway doc_get (PouchDB replication)",
    "PUT /{db}/{doc} (409 on a stale _rev)": "sync/couch.py put, sync/leases.py",
    "DELETE /{db}/{doc}?rev": "sync/leases.py (conflict repair)",
    "GET /{db}/{doc}/{attachment}?rev": "gateway attachment_get (visit photos)",
    "POST /{db}/_bulk_docs": "sync/couch.py bulk_docs (per-document conflicts)",
    "POST /{db}/_bulk_docs new_edits=false": "sync/resolver.py, sync/hub.py, gateway, restore",
    "GET /{db}/_all_docs?startkey&endkey&include_docs&limit": "sync/directory.py, accounts",
    "POST /{db}/_all_docs?include_docs {keys}": "gateway writes, push, import, demo",
    "GET /{db}/_design/{ddoc}/_view/{view}?startkey&endkey&limit&include_docs": "console, push",
    "GET /{db}/_design/{ddoc}/_view/{view}?group_level (reduce)": "sync/push_outbox.py figures",
    "built-in reduce _count, _stats": "sync/design.py, sync/push_outbox.py design documents",
    "map functions see doc._conflicts": "sync/resolver_status.py (the resolver backlog view)",
    "POST /{db}/_design/{ddoc}/_view/{view} {keys}": "server/push/subscriptions.py",
    "GET /{db}/_changes?style=all_docs&since&limit": "sync/resolver.py, sync/hub.py, backup",
    "GET /{db}/_changes?filter=_doc_ids&doc_ids": "gateway changes (PouchDB doc_ids)",
    "GET /{db}/_changes?feed=longpoll&since&heartbeat": "gateway changes (live replication)",
    "POST /{db}/_revs_diff": "sync/hub.py, gateway (PouchDB replication)",
    "POST /{db}/_bulk_get?revs=true": "sync/resolver.py, sync/hub.py, gateway",
    "POST /{db}/_bulk_get?revs=true&attachments=true": "deploy/backup/couch_backup.py",
    "PUT /{db}/_local/{id}, GET /{db}/_local/{id}": "resolver/hub checkpoints, gateway local",
    "PUT /_users/org.couchdb.user:{name}": "sync/accounts.py",
    "GET /_users/_all_docs?include_docs": "sync/accounts.py all_accounts",
}

# CouchDB's own path segments (documented API); the scan below looks for these in our code.
COUCH_SEGMENTS = {
    "_session", "_all_dbs", "_dbs_info", "_active_tasks", "_cluster_setup", "_membership",
    "_up", "_uuids", "_replicate", "_scheduler", "_node", "_config", "_stats", "_utils",
    "_users", "_replicator", "_global_changes", "_security", "_changes", "_bulk_docs",
    "_bulk_get", "_all_docs", "_design", "_view", "_find", "_index", "_explain", "_revs_diff",
    "_missing_revs", "_local", "_local_docs", "_design_docs", "_compact", "_view_cleanup",
    "_ensure_full_commit", "_purge", "_revs_limit", "_shards", "_partition", "_search",
    "_show", "_list", "_update", "_rewrite", "_reshard", "_db_updates", "_prometheus",
}
# Named by the gateway only to refuse them to browsers, with a reason.
REFUSED = {"_find", "_index", "_explain", "_compact", "_view_cleanup", "_purge"}
# Used only by the deployment tools against a real CouchDB 3 (pouchdb-server has none).
DEPLOY_ONLY = {"_up", "_cluster_setup", "_membership"}


@dataclass(frozen=True)
class Backend:
    url: str
    user: str
    password: str
    real: bool  # Apache CouchDB named by DOORSTEP_COUCHDB_URL, not the embedded stand-in


@pytest.fixture(scope="module")
def backend(request: pytest.FixtureRequest) -> Backend:
    url = os.environ.get("DOORSTEP_COUCHDB_URL")
    if url:
        return Backend(url.rstrip("/"), os.environ.get("DOORSTEP_COUCHDB_USER", ""),
                       os.environ.get("DOORSTEP_COUCHDB_PASSWORD", ""), True)
    server = request.getfixturevalue("couch_server")
    return Backend(server.url, server.user, server.password, False)


@pytest.fixture
def couch(backend: Backend) -> Couch:
    return Couch(backend.url, backend.user, backend.password)


@pytest.fixture
def db(couch: Couch) -> Iterator[str]:
    name = f"contract_{uuid.uuid4().hex[:10]}"
    assert couch.ensure_db(name) is True
    yield name
    couch.request("DELETE", name)


CHECKS: dict[str, Callable[..., None]] = {}


def covers(*endpoints: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def register(fn: Callable[..., None]) -> Callable[..., None]:
        for e in endpoints:
            assert e in ENDPOINTS, e
        CHECKS[fn.__name__] = fn
        fn.endpoints = endpoints  # type: ignore[attr-defined]
        return fn
    return register


def path(db: str, *parts: str) -> str:
    return "/".join([quote(db, safe=""), *(quote(p, safe="") for p in parts)])


# -- the checks ------------------------------------------------------------------------------


@covers("GET /_session (admin basic auth)", "GET /_all_dbs", "PUT /{db}", "HEAD /{db}",
        "GET /{db}", "PUT /_users, PUT /_replicator")
def check_server_and_databases(couch: Couch, db: str, backend: Backend) -> None:
    assert "_admin" in couch.check()["userCtx"]["roles"]
    for system in ("_users", "_replicator"):  # provisioning's first step, on any backend
        couch.ensure_db(system)
        assert couch.exists(system)
    assert couch.ensure_db(db) is False, "412 for a database that exists"
    assert couch.exists(db) and not couch.exists(db + "_missing")
    status, info = couch.request("GET", path(db))
    assert status == 200 and info["doc_count"] == 0 and "update_seq" in info
    _, dbs = couch.request("GET", "_all_dbs")
    assert db in dbs and "_users" in dbs


@covers("GET /{db}/_security", "PUT /{db}/_security")
def check_security_round_trip(couch: Couch, db: str, backend: Backend) -> None:
    security = {"admins": {"names": [], "roles": ["_admin"]},
                "members": {"names": [], "roles": ["_admin"]}}
    assert couch.ensure_security(db, security) is True
    assert couch.ensure_security(db, security) is False, "read back equal"


@covers("GET /{db}/{doc}", "PUT /{db}/{doc} (409 on a stale _rev)", "DELETE /{db}/{doc}?rev",
        "GET /{db}/{doc}?conflicts=true")
def check_documents_and_optimistic_concurrency(couch: Couch, db: str, backend: Backend) -> None:
    assert couch.get(db, "lease:x") is None
    first = couch.put(db, {"_id": "lease:x", "holder": "a"})
    stale = dict(first)
    second = couch.put(db, {**first, "holder": "b"})
    status, _ = couch.request("PUT", path(db, "lease:x"), body={**stale, "holder": "c"})
    assert status == 409
    got = couch.get(db, "lease:x", conflicts=True)
    assert got["holder"] == "b" and got["_rev"] == second["_rev"] and "_conflicts" not in got
    status, _ = couch.request("DELETE", path(db, "lease:x"), params={"rev": got["_rev"]})
    assert status in (200, 202) and couch.get(db, "lease:x") is None


@covers("POST /{db}/_bulk_docs new_edits=false", "GET /{db}/{doc}?conflicts=true",
        "DELETE /{db}/{doc}?rev", "GET /{db}/{doc}?open_revs=all")
def check_replicated_writes_keep_revisions_and_conflicts(couch: Couch, db: str,
                                                         backend: Backend) -> None:
    leaves = [{"_id": "household:h1", "_rev": f"2-{c * 32}", "phone": c,
               "_revisions": {"start": 2, "ids": [c * 32, "0" * 32]}} for c in "ab"]
    couch.bulk_docs(db, leaves, new_edits=False)
    couch.bulk_docs(db, leaves, new_edits=False)  # the same revisions again: no change
    doc = couch.get(db, "household:h1", conflicts=True)
    assert doc["_rev"] == "2-" + "b" * 32, "the higher revision id wins on both backends"
    assert doc["_conflicts"] == ["2-" + "a" * 32]
    status, body = couch.request("GET", path(db, "household:h1"),
                                 params={"open_revs": "all", "revs": True})
    assert status == 200
    assert sorted(r["ok"]["_rev"] for r in body) == sorted(d["_rev"] for d in leaves)
    couch.request("DELETE", path(db, "household:h1"), params={"rev": "2-" + "a" * 32})
    assert "_conflicts" not in couch.get(db, "household:h1", conflicts=True)


@covers("POST /{db}/_bulk_docs")
def check_bulk_docs_reports_each_conflict(couch: Couch, db: str, backend: Backend) -> None:
    couch.put(db, {"_id": "d1", "n": 1})
    result = couch.bulk_docs(db, [{"_id": "d1", "n": 2}, {"_id": "d2", "n": 1}])
    by_id = {r["id"]: r for r in result}
    assert by_id["d1"].get("error") == "conflict"
    assert by_id["d2"].get("ok") is True and by_id["d2"]["rev"].startswith("1-")


@covers("GET /{db}/_all_docs?startkey&endkey&include_docs&limit",
        "POST /{db}/_all_docs?include_docs {keys}")
def check_all_docs_ranges_and_keys(couch: Couch, db: str, backend: Backend) -> None:
    couch.bulk_docs(db, [{"_id": f"grid:{g}", "name": g} for g in ("G1", "G2", "G3")]
                    + [{"_id": "street:S1", "name": "s"}])
    rows = couch.all_docs(db, startkey="grid:", endkey="grid:\ufff0", include_docs=True)
    assert [r["doc"]["name"] for r in rows] == ["G1", "G2", "G3"]
    assert len(couch.all_docs(db, startkey="grid:", limit=2)) == 2
    gone = couch.get(db, "grid:G2")
    couch.request("DELETE", path(db, "grid:G2"), params={"rev": gone["_rev"]})
    status, body = couch.request("POST", path(db, "_all_docs"), params={"include_docs": True},
                                 body={"keys": ["grid:G1", "grid:G2", "grid:none"]})
    assert status == 200
    found, deleted, missing = body["rows"]
    assert found["doc"]["name"] == "G1"
    assert deleted["value"]["deleted"] is True and deleted["value"]["rev"].startswith("2-")
    assert missing.get("error") == "not_found"


VIEW_DDOC = {
    "_id": "_design/t", "language": "javascript",
    "views": {
        "by_state": {"map": "function (doc) { if (doc.state) emit([doc.state, doc.kind],"
                            " doc.n); }", "reduce": "_stats"},
        "by_user": {"map": "function (doc) { if (doc.user) emit(doc.user, null); }",
                    "reduce": "_count"},
    },
}


@covers("GET /{db}/_design/{ddoc}/_view/{view}?startkey&endkey&limit&include_docs",
        "GET /{db}/_design/{ddoc}/_view/{view}?group_level (reduce)",
        "POST /{db}/_design/{ddoc}/_view/{view} {keys}", "built-in reduce _count, _stats")
def check_views(couch: Couch, db: str, backend: Backend) -> None:
    couch.put(db, dict(VIEW_DDOC))
    couch.bulk_docs(db, [
        {"_id": "a", "state": "pending", "kind": "digest", "n": 1, "user": "u1"},
        {"_id": "b", "state": "pending", "kind": "digest", "n": 2, "user": "u2"},
        {"_id": "c", "state": "sent", "kind": "assignment", "n": 5, "user": "u1"},
    ])
    body = couch.view(db, "t", "by_state", reduce=False, startkey=["pending"],
                      endkey=["pending", {}], include_docs=True, limit=5)
    assert [r["doc"]["_id"] for r in body["rows"]] == ["a", "b"]
    grouped = couch.view(db, "t", "by_state", group_level=2)["rows"]
    assert {tuple(r["key"]): (r["value"]["count"], r["value"]["sum"]) for r in grouped} == {
        ("pending", "digest"): (2, 3), ("sent", "assignment"): (1, 5)}
    assert couch.view(db, "t", "by_user")["rows"][0]["value"] == 3
    status, body = couch.request("POST", f"{quote(db, safe='')}/_design/t/_view/by_user",
                                 params={"include_docs": True, "reduce": False},
                                 body={"keys": ["u1"]})
    assert status == 200 and sorted(r["id"] for r in body["rows"]) == ["a", "c"]


@covers("map functions see doc._conflicts")
def check_views_see_conflicts(couch: Couch, db: str, backend: Backend) -> None:
    couch.put(db, dict(BACKLOG_DESIGN))
    couch.bulk_docs(db, [{"_id": "household:h1", "_rev": f"2-{c * 32}", "type": "household",
                          "_revisions": {"start": 2, "ids": [c * 32, "0" * 32]}} for c in "ab"]
                    + [{"_id": "visit:v1", "_rev": "1-" + "c" * 32, "type": "visit"}],
                    new_edits=False)
    counts = couch.view(db, "resolver", "backlog", group_level=1)["rows"]
    assert counts == [{"key": ["household"], "value": 1}]
    couch.request("DELETE", path(db, "household:h1"), params={"rev": "2-" + "a" * 32})
    assert couch.view(db, "resolver", "backlog", group_level=1)["rows"] == [], "merged: gone"


@covers("GET /{db}/_changes?style=all_docs&since&limit",
        "GET /{db}/_changes?filter=_doc_ids&doc_ids")
def check_changes_pages_with_opaque_sequences(couch: Couch, db: str, backend: Backend) -> None:
    couch.bulk_docs(db, [{"_id": f"v{i}"} for i in range(5)])
    couch.bulk_docs(db, [{"_id": "c", "_rev": f"1-{c * 32}"} for c in "xy"], new_edits=False)
    seen: dict[str, int] = {}
    since: Any = 0
    for _ in range(10):
        status, body = couch.request("GET", path(db, "_changes"),
                                     params={"style": "all_docs", "since": since, "limit": 2})
        assert status == 200
        if not body["results"]:
            break
        for row in body["results"]:
            seen[row["id"]] = len(row["changes"])
        since = body["last_seq"]  # passed back as it came: never parsed or compared
    assert seen == {**{f"v{i}": 1 for i in range(5)}, "c": 2}
    status, body = couch.request("GET", path(db, "_changes"),
                                 params={"filter": "_doc_ids", "doc_ids": ["v3"]})
    assert status == 200 and [r["id"] for r in body["results"]] == ["v3"]


@covers("GET /{db}/_changes?feed=longpoll&since&heartbeat")
def check_longpoll_answers_at_once_when_there_are_changes(couch: Couch, db: str,
                                                          backend: Backend) -> None:
    # Only with changes pending: pouchdb-server ignores `timeout` and would hold an empty
    # longpoll open (FACTS.md), so the gateway never relies on it returning by itself.
    couch.put(db, {"_id": "v1"})
    status, body = couch.request("GET", path(db, "_changes"),
                                 params={"feed": "longpoll", "since": 0, "heartbeat": 10000},
                                 timeout=20)
    assert status == 200 and [r["id"] for r in body["results"]] == ["v1"]


@covers("POST /{db}/_revs_diff", "POST /{db}/_bulk_get?revs=true",
        "POST /{db}/_bulk_get?revs=true&attachments=true",
        "GET /{db}/{doc}?rev&revs=true&attachments=true", "GET /{db}/{doc}/{attachment}?rev")
def check_replication_reads(couch: Couch, db: str, backend: Backend) -> None:
    photo = bytes(range(256)) * 4
    doc = couch.put(db, {"_id": "visit:1", "type": "visit", "_attachments": {
        "photo.jpg": {"content_type": "image/jpeg", "data": base64.b64encode(photo).decode()}}})
    rev = doc["_rev"]
    status, diff = couch.request("POST", path(db, "_revs_diff"),
                                 body={"visit:1": [rev, "1-" + "f" * 32]})
    assert status == 200 and diff["visit:1"]["missing"] == ["1-" + "f" * 32]
    status, got = couch.request("POST", path(db, "_bulk_get"), params={"revs": True},
                                body={"docs": [{"id": "visit:1", "rev": rev},
                                               {"id": "nope", "rev": "1-" + "e" * 32}]})
    assert status == 200
    ok, missing = got["results"]
    assert ok["docs"][0]["ok"]["_revisions"]["start"] == 1
    assert ok["docs"][0]["ok"]["_attachments"]["photo.jpg"]["stub"] is True
    # CouchDB answers {"error": …}, pouchdb-server {"missing": rev}: the code only asks "ok?"
    assert "ok" not in missing["docs"][0]
    _, full = couch.request("POST", path(db, "_bulk_get"),
                            params={"revs": True, "attachments": True},
                            body={"docs": [{"id": "visit:1", "rev": rev}]})
    att = full["results"][0]["docs"][0]["ok"]["_attachments"]["photo.jpg"]
    assert base64.b64decode(att["data"]) == photo
    one = couch.get(db, "visit:1", rev=rev, revs=True, attachments=True)
    assert base64.b64decode(one["_attachments"]["photo.jpg"]["data"]) == photo
    raw = couch.session.get(f"{couch.url}/{path(db, 'visit:1', 'photo.jpg')}",
                            params={"rev": rev}, timeout=10)
    assert raw.status_code == 200 and raw.content == photo


@covers("PUT /{db}/_local/{id}, GET /{db}/_local/{id}")
def check_local_documents_stay_out_of_replication(couch: Couch, db: str,
                                                  backend: Backend) -> None:
    local = f"{quote(db, safe='')}/_local/resolver-checkpoint"
    status, _ = couch.request("PUT", local, body={"since": 0})
    assert status in (201, 202)
    status, doc = couch.request("GET", local)
    assert status == 200 and doc["since"] == 0
    status, _ = couch.request("PUT", local, body={"since": 1, "_rev": doc["_rev"]})
    assert status in (201, 202)
    assert couch.all_docs(db) == []
    _, changes = couch.request("GET", path(db, "_changes"))
    assert changes["results"] == []


@covers("PUT /_users/org.couchdb.user:{name}", "GET /_users/_all_docs?include_docs",
        "POST /_session {name, password}")
def check_accounts_and_password_check(couch: Couch, db: str, backend: Backend) -> None:
    name = f"contract{uuid.uuid4().hex[:8]}"
    account, password = accounts.create(couch, name, "worker", grids=["G1"])
    try:
        assert name in {a.name for a in accounts.all_accounts(couch)}
        ok = httpx.post(f"{backend.url}/_session", json={"name": name, "password": password})
        assert ok.status_code == 200 and ok.json()["name"] == name
        assert "grid:G1" in ok.json()["roles"]
        bad = httpx.post(f"{backend.url}/_session", json={"name": name, "password": "wrong-pw"})
        assert bad.status_code == 401
    finally:
        doc = accounts.get(couch, name)
        couch.request("DELETE", f"_users/{quote('org.couchdb.user:' + name, safe='')}",
                      params={"rev": doc["_rev"]})


# -- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_contract(check: str, couch: Couch, db: str, backend: Backend) -> None:
    CHECKS[check](couch, db, backend)


def test_every_endpoint_in_the_table_has_a_check() -> None:
    checked = {e for fn in CHECKS.values() for e in fn.endpoints}  # type: ignore[attr-defined]
    assert set(ENDPOINTS) - checked == set()


def test_the_code_uses_no_endpoint_missing_from_the_table() -> None:
    listed = {seg for e in ENDPOINTS for seg in re.findall(r"_[a-z_]+", e.split(" ")[1])}
    listed |= {seg for e in ENDPOINTS for seg in re.findall(r"(?<![a-z])_[a-z_]+", e)}
    files = [*ROOT.glob("server/**/*.py"), *ROOT.glob("sync/**/*.py"),
             *ROOT.glob("deploy/**/*.py")]
    used: dict[str, set[str]] = {}
    for f in files:
        for seg in re.findall(r"(?<![A-Za-z0-9_])(_[a-z_]+)(?=[/\"'?}\s])", f.read_text()):
            if seg in COUCH_SEGMENTS:
                used.setdefault(seg, set()).add(str(f.relative_to(ROOT)))
    unlisted = {s: sorted(w) for s, w in used.items()
                if s not in listed | REFUSED | DEPLOY_ONLY}
    assert unlisted == {}, "add these to ENDPOINTS with a check"


def test_deployment_endpoints_of_a_real_couchdb(couch: Couch, backend: Backend) -> None:
    """What deploy/ uses only against Apache CouchDB 3: pouchdb-server has none of it."""
    if not backend.real:
        pytest.skip("needs Apache CouchDB 3: set DOORSTEP_COUCHDB_URL (pouchdb-server has "
                    "no _up, _cluster_setup or _membership)")
    assert couch.request("GET", "_up")[0] == 200
    status, state = couch.request("GET", "_cluster_setup")
    assert status == 200 and "state" in state
    status, members = couch.request("GET", "_membership")
    assert status == 200 and members["cluster_nodes"]
    _, welcome = couch.request("GET", "")
    assert welcome["couchdb"] == "Welcome" and welcome["version"].startswith("3.")

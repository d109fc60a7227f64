"""The authorization matrix: every principal × endpoint × method × grid, each cell asserted.

Principals: anonymous, an expired session, a deactivated account, a worker of G1, a
supervisor of community C1 (grids G1 and G2), an admin. Grids: G1, G2 (same community as
G1) and G9 (the other community). The expected status of each cell comes from the rules
written out in `expected` below (docs/security.md says them in words), not from the code
under test.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from sync import accounts, naming
from tests.conftest import CouchServer
from tests.gateway import factories, households
from tests.gateway.conftest import World

PHOTO = base64.b64encode(b"\xff\xd8\xff\xe0" + b"jpeg" * 100).decode()


@dataclass(frozen=True)
class Ctx:
    user: str
    grid: str
    db: str
    household: str
    photo_visit: str
    prefix: str


Body = Callable[[Ctx], Any] | None


@dataclass(frozen=True)
class Op:
    name: str
    method: str
    path: str  # under /couch; {db}, {doc}, {photo_visit}, {prefix} are filled in
    kind: str  # server | read | local | write | forbidden
    ok: int = 200
    body: Body = None


def _visits(c: Ctx) -> dict[str, Any]:
    return {"docs": [factories.visit(c.grid, c.household, c.user)]}


SERVER_OPS = [
    Op("server root", "GET", "/", "server"),
    Op("list databases", "GET", "/_all_dbs", "forbidden"),
    Op("users database", "GET", "/_users/_all_docs", "forbidden"),
    Op("write a user", "PUT", "/_users/org.couchdb.user:intruder", "forbidden",
       body=lambda c: {"name": "intruder", "roles": ["_admin"], "type": "user",
                       "password": "x"}),
    Op("configuration", "GET", "/_config", "forbidden"),
    Op("node configuration", "GET", "/_node/_local/_config", "forbidden"),
    Op("replicate", "POST", "/_replicate", "forbidden",
       body=lambda c: {"source": c.db, "target": "stolen"}),
    Op("CouchDB session", "GET", "/_session", "forbidden"),
    Op("uuids", "GET", "/_uuids", "forbidden"),
    Op("active tasks", "GET", "/_active_tasks", "forbidden"),
    Op("create a database", "PUT", "/newdb_matrix", "forbidden"),
    Op("hub database", "GET", "/{prefix}doorstep_hub/_all_docs", "forbidden"),
    Op("sessions database", "GET", "/{prefix}doorstep_sessions/_all_docs", "forbidden"),
    Op("directory database", "GET", "/{prefix}doorstep_directory/", "forbidden"),
]

DB_OPS = [
    # what PouchDB replication needs
    Op("database info", "GET", "/{db}/", "read"),
    Op("database info (HEAD)", "HEAD", "/{db}", "read"),
    Op("changes", "GET", "/{db}/_changes?style=all_docs&since=0&limit=100", "read"),
    Op("changes longpoll", "GET", "/{db}/_changes?feed=longpoll&since=0&heartbeat=10000",
       "read"),
    Op("changes by doc ids", "POST", "/{db}/_changes?filter=_doc_ids", "read",
       body=lambda c: {"doc_ids": [f"household:{c.household}"]}),
    Op("revs diff", "POST", "/{db}/_revs_diff", "read",
       body=lambda c: {f"household:{c.household}": ["1-abc"]}),
    Op("bulk get", "POST", "/{db}/_bulk_get?revs=true&latest=true", "read",
       body=lambda c: {"docs": [{"id": f"household:{c.household}"}]}),
    Op("all docs", "GET", "/{db}/_all_docs?include_docs=true", "read"),
    Op("all docs by keys", "POST", "/{db}/_all_docs", "read",
       body=lambda c: {"keys": [f"household:{c.household}"]}),
    Op("document", "GET", "/{db}/{doc}", "read"),
    Op("document (HEAD)", "HEAD", "/{db}/{doc}", "read"),
    Op("document open_revs", "GET", "/{db}/{doc}?revs=true&open_revs=all", "read"),
    Op("design document", "GET", "/{db}/_design/grid", "read"),
    Op("photo attachment", "GET", "/{db}/{photo_visit}/photo.jpg", "read"),
    Op("checkpoint write", "PUT", "/{db}/_local/matrix-checkpoint", "local", 201,
       body=lambda c: {"last_seq": 3, "by": c.user}),
    Op("checkpoint read", "GET", "/{db}/_local/matrix-checkpoint", "local"),
    Op("push documents", "POST", "/{db}/_bulk_docs", "write", 201, body=_visits),
    Op("put a document", "PUT", "/{db}/visit:matrix-{user}", "write", 201,
       body=lambda c: {**factories.visit(c.grid, c.household, c.user),
                       "_id": f"visit:matrix-{c.user}"}),
    Op("add a household found at a door", "POST", "/{db}/_bulk_docs", "write", 201,
       body=lambda c: {"docs": [households.found_at_door(
           c.grid, c.user, str(uuid.uuid4().int % 9000 + 1000))]}),
    # everything else
    Op("selector filter", "GET", "/{db}/_changes?filter=_selector", "forbidden"),
    Op("selector in body", "POST", "/{db}/_changes", "forbidden",
       body=lambda c: {"selector": {"type": "visit"}}),
    Op("design filter", "GET", "/{db}/_changes?filter=grid/f", "forbidden"),
    Op("view filter", "GET", "/{db}/_changes?filter=_view&view=grid/by_type", "forbidden"),
    Op("eventsource feed", "GET", "/{db}/_changes?feed=eventsource", "forbidden"),
    Op("read security", "GET", "/{db}/_security", "forbidden"),
    Op("write security", "PUT", "/{db}/_security", "forbidden",
       body=lambda c: {"members": {"names": [], "roles": []}}),
    Op("find", "POST", "/{db}/_find", "forbidden", body=lambda c: {"selector": {}}),
    Op("create index", "POST", "/{db}/_index", "forbidden",
       body=lambda c: {"index": {"fields": ["type"]}}),
    Op("list indexes", "GET", "/{db}/_index", "forbidden"),
    Op("explain", "POST", "/{db}/_explain", "forbidden", body=lambda c: {"selector": {}}),
    Op("compact", "POST", "/{db}/_compact", "forbidden", body=lambda c: {}),
    Op("view cleanup", "POST", "/{db}/_view_cleanup", "forbidden", body=lambda c: {}),
    Op("purge", "POST", "/{db}/_purge", "forbidden", body=lambda c: {c.household: ["1-a"]}),
    Op("revs limit", "PUT", "/{db}/_revs_limit", "forbidden", body=lambda c: 1),
    Op("full commit", "POST", "/{db}/_ensure_full_commit", "forbidden", body=lambda c: {}),
    Op("design docs list", "GET", "/{db}/_design_docs", "forbidden"),
    Op("local docs list", "GET", "/{db}/_local_docs", "forbidden"),
    Op("missing revs", "POST", "/{db}/_missing_revs", "forbidden", body=lambda c: {}),
    Op("query a view", "GET", "/{db}/_design/grid/_view/by_type", "forbidden"),
    Op("write a design document", "PUT", "/{db}/_design/evil", "forbidden",
       body=lambda c: {"validate_doc_update": "function(){}"}),
    Op("delete a design document", "DELETE", "/{db}/_design/grid?rev=1-a", "forbidden"),
    Op("create the database", "PUT", "/{db}", "forbidden"),
    Op("delete the database", "DELETE", "/{db}", "forbidden"),
    Op("post a document", "POST", "/{db}", "forbidden",
       body=lambda c: factories.visit(c.grid, c.household, c.user)),
    Op("delete a document", "DELETE", "/{db}/{doc}?rev=1-a", "forbidden"),
    Op("put an attachment", "PUT", "/{db}/{photo_visit}/photo.jpg", "forbidden",
       body=lambda c: {}),
    Op("delete a checkpoint", "DELETE", "/{db}/_local/matrix-checkpoint", "forbidden"),
    Op("local doc via bulk get", "POST", "/{db}/_bulk_get", "forbidden",
       body=lambda c: {"docs": [{"id": "_local/matrix-checkpoint"}]}),
    Op("local doc via all docs", "POST", "/{db}/_all_docs", "forbidden",
       body=lambda c: {"keys": ["_local/matrix-checkpoint"]}),
    Op("local doc via all docs keys", "GET",
       '/{db}/_all_docs?keys=["_local/matrix-checkpoint"]', "forbidden"),
    Op("local doc via revs diff", "POST", "/{db}/_revs_diff", "forbidden",
       body=lambda c: {"_local/matrix-checkpoint": ["0-1"]}),
    Op("replicate the database", "POST", "/{db}/_replicate", "forbidden", body=lambda c: {}),
]

GRIDS = ("G1", "G2", "G9")
PRINCIPALS = ("anonymous", "expired", "deactivated", "worker", "supervisor", "admin")


def expected(who: str, grid: str, op: Op) -> int:
    """The rules, written out independently of server/authz.py."""
    if who in ("anonymous", "expired", "deactivated"):
        return 401
    if op.kind == "forbidden":
        return 403
    if op.kind == "server":
        return op.ok
    readable = (who == "admin" or (who == "worker" and grid == "G1")
                or (who == "supervisor" and grid in ("G1", "G2")))
    if not readable:
        return 403
    if op.kind == "write":
        return op.ok if who == "worker" else 403
    return op.ok


def _session_of(world: World, key: str) -> httpx.Client:
    return world.login(key)


def _expire(world: World, user: str) -> None:
    """Let a session's 30 days pass: move its stored expiry into the past."""
    db = naming.system_db(naming.SESSIONS, world.couch.prefix)
    rows = world.couch.view(db, "sessions", "by_user", key=user, include_docs=True)["rows"]
    assert rows, "the login stored no session"
    for row in rows:
        doc = row["doc"]
        doc["expires_at"] = time.time() - 1
        world.couch.put(db, doc)


@pytest.fixture(scope="module")
def clients(world: World) -> dict[str, httpx.Client]:
    world.add_account("gone", "worker", ["G1"])
    world.add_account("old", "worker", ["G1"])
    out = {"anonymous": world.server.client()}
    out["deactivated"] = world.login("gone")
    accounts.deactivate(world.couch, world.names["gone"])
    out["expired"] = world.login("old")
    _expire(world, world.names["old"])
    out["worker"] = world.login("w1")
    out["supervisor"] = world.login("sup1")
    out["admin"] = world.login("adm")
    time.sleep(0.5)  # longer than the server's session cache (0.3 s in conftest)
    return out


def _user(world: World, who: str) -> str:
    key = {"worker": "w1", "supervisor": "sup1", "admin": "adm", "deactivated": "gone",
           "expired": "old"}.get(who)
    return world.names[key] if key else "nobody"


def test_authorization_matrix(world: World, clients: dict[str, httpx.Client],
                              couch_server: CouchServer, capsys: pytest.CaptureFixture[str]
                              ) -> None:
    photo_visits = {}
    for grid in GRIDS:
        v = factories.visit(grid, world.households[grid], "seed")
        v["_attachments"] = {"photo.jpg": {"content_type": "image/jpeg", "data": PHOTO}}
        world.couch.put(world.db(grid), v)
        photo_visits[grid] = v["_id"]
    restarts_before = couch_server.embedded.restarts
    failures, cases, refused_writes = [], 0, []

    def check(who: str, grid: str, op: Op) -> None:
        nonlocal cases
        ctx = Ctx(_user(world, who), grid, world.db(grid), world.households[grid],
                  photo_visits[grid], world.couch.prefix)
        path = "/couch" + op.path.format(db=ctx.db, doc=f"household:{ctx.household}",
                                         photo_visit=ctx.photo_visit, prefix=ctx.prefix,
                                         user=ctx.user)
        body = op.body(ctx) if op.body else None
        r = clients[who].request(op.method, path, json=body)
        want = expected(who, grid, op)
        cases += 1
        problem = None
        if r.status_code != want:
            problem = f"got {r.status_code} {r.text[:160]}"
        elif r.status_code >= 400 and op.method != "HEAD":
            err = r.json()
            if not (isinstance(err.get("error"), str) and isinstance(err.get("reason"), str)):
                problem = f"error body is not {{error, reason}}: {r.text[:160]}"
        elif op.kind == "write" and want == 201:
            results = r.json() if op.method == "POST" else [r.json()]
            if not all(x.get("ok") for x in results):
                problem = f"write not stored: {r.text[:160]}"
        elif op.kind == "local" and op.method == "GET" and r.json().get("by") != ctx.user:
            problem = f"read someone else's checkpoint: {r.text[:160]}"
        if problem:
            failures.append(f"{who} / {grid} / {op.name} ({op.method} {path}): expected "
                            f"{want}, {problem}")
        if op.kind == "write" and want != 201 and isinstance(body, dict):
            refused_writes.append((ctx.db, (body.get("docs") or [body])[0]["_id"]))

    for who in PRINCIPALS:
        for op in SERVER_OPS:
            check(who, "G1", op)
        for grid in GRIDS:
            for op in DB_OPS:
                check(who, grid, op)

    with capsys.disabled():
        print(f"\nauthorization matrix: {cases} cases checked, {len(failures)} failed")
    assert not failures, "\n".join(failures)
    assert cases == len(PRINCIPALS) * (len(SERVER_OPS) + len(GRIDS) * len(DB_OPS))
    for db, doc_id in refused_writes:  # nothing refused was stored anyway
        assert world.couch.get(db, doc_id) is None, (db, doc_id)
    assert world.couch.get(world.db("G1"), "_design/evil") is None
    assert world.couch.request("GET", "_users/org.couchdb.user:intruder")[0] == 404
    assert couch_server.embedded.restarts == restarts_before, "a request crashed CouchDB"

"""The resolver on the real embedded CouchDB: merging, idempotence, concurrency, crashes.

Conflicts are made the way replication makes them: concurrent revisions pushed with
`new_edits=false`. "Settled" below means exactly what a user needs: every household has
one live revision, and it is the one merge every resolver computes (so nothing was merged
twice), and every conflict and audit record exists exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from sync import audit, clock, merge, naming, resolver, schema
from sync.couch import Couch
from tests.conftest import ROOT, Community, CouchServer, RunningServer

T_WORKER = "2026-11-20T09:10:00Z"
T_BOSS = "2026-11-20T09:20:00Z"


def household(grid: str, hid: str) -> dict[str, Any]:
    return {
        "_id": f"household:{hid}", "type": "household", "grid": grid, "household_id": hid,
        "address": {"building": "1", "unit": "1", "floor": 3, "room": hid[-4:]},
        "housing": "owner", "residency": "registered", "tags": [], "phone": "", "note": "",
        "members": {"m1": {"name": "王秀英", "status": "present"}}, "clock": {},
        "created_at": "2026-09-01T00:00:00Z",
    }


def revision(body: dict[str, Any], pos: int, history: list[str]) -> dict[str, Any]:
    return {**body, "_rev": f"{pos}-{history[0]}", "_revisions": {"start": pos, "ids": history}}


def push_conflicts(couch: Couch, db: str, grid: str, count: int, first: int = 0
                   ) -> dict[str, list[dict[str, Any]]]:
    """`count` households, each edited offline by a worker and by a supervisor, both synced.

    They disagree on `note` (a real conflict) and each changed one more field of its own.
    Returns the live leaves of each, as the resolver will read them.
    """
    leaves: dict[str, list[dict[str, Any]]] = {}
    for i in range(first, first + count):
        base = household(grid, f"{grid}-1-1-{i:04d}")
        root = uuid.uuid4().hex
        worker = clock.edit(base, "phone", f"1380013{i:04d}", "w_zhang", "dev-w", T_WORKER)
        worker = clock.edit(worker, "note", f"worker note {i}", "w_zhang", "dev-w", T_WORKER)
        boss = clock.edit(base, "housing", "rented", "s_li", "dev-s", T_BOSS)
        boss = clock.edit(boss, "note", f"supervisor note {i}", "s_li", "dev-s", T_BOSS)
        leaves[base["_id"]] = [revision(worker, 2, [uuid.uuid4().hex, root]),
                               revision(boss, 2, [uuid.uuid4().hex, root])]
    docs = [d for pair in leaves.values() for d in pair]
    assert couch.bulk_docs(db, docs, new_edits=False) == []
    return leaves


def expected(leaves: dict[str, list[dict[str, Any]]]) -> dict[str, resolver.Resolution]:
    return {doc_id: resolver.merge_leaves(live) for doc_id, live in leaves.items()}


def record_ids(couch: Couch, db: str) -> list[str]:
    rows = couch.all_docs(db)
    return sorted(r["id"] for r in rows if r["id"].startswith(("conflict:", "audit:")))


def assert_settled(couch: Couch, db: str, plans: dict[str, resolver.Resolution]) -> None:
    for doc_id, plan in plans.items():
        merged = next(r for r in plan.revisions if not r.get("_deleted"))
        doc = couch.get(db, doc_id, conflicts=True)
        assert "_conflicts" not in doc, f"{doc_id} is still in conflict"
        assert doc["_rev"] == merged["_rev"], f"{doc_id} was not merged exactly once"
        assert merge.strip(doc) == merge.strip(merged)
        _, leaves = couch.request("GET", f"{db}/{doc_id}", params={"open_revs": "all"})
        assert sorted(e["ok"]["_rev"] for e in leaves) == sorted(r["_rev"] for r in plan.revisions)
    wanted = sorted(r["_id"] for plan in plans.values() for r in plan.records)
    assert record_ids(couch, db) == wanted


def grid_db(couch: Couch, grid: str = "G1") -> str:
    return naming.grid_db_name(grid, couch.prefix)


# -- merging -----------------------------------------------------------------------------------


def test_each_conflicted_household_becomes_one_merged_entry(couch: Couch,
                                                           community: Community) -> None:
    db = grid_db(couch)
    leaves = push_conflicts(couch, db, "G1", 5)
    stats = resolver.Resolver(couch).run_once()[db]
    assert (stats.merged, stats.conflicts) == (5, 5)
    plans = expected(leaves)
    assert_settled(couch, db, plans)
    doc = couch.get(db, "household:G1-1-1-0003")
    assert (doc["phone"], doc["housing"], doc["note"]) == (
        "13800130003", "rented", "supervisor note 3")  # worker's, supervisor's, the later one
    schema.validate(doc)
    [row] = couch.view(db, "grid", "open_conflicts", key="G1-1-1-0003", include_docs=True)["rows"]
    record = row["doc"]
    assert record["path"] == "note" and record["state"] == "open"
    assert [c["value"] for c in record["candidates"]] == ["supervisor note 3", "worker note 3"]
    trail = audit.history(couch, db, "G1-1-1-0003")
    assert trail and all(r["source"] == "merge" for r in trail)
    changed = {c["path"]: (c["old"], c["new"]) for r in trail for c in r["changes"]}
    assert changed.get("phone", changed.get("housing")) in {("", "13800130003"),
                                                            ("owner", "rented")}


def test_a_second_pass_and_a_pass_from_scratch_change_nothing(couch: Couch,
                                                             community: Community) -> None:
    db = grid_db(couch)
    plans = expected(push_conflicts(couch, db, "G1", 4))
    resolver.Resolver(couch).run_once()
    before = couch.all_docs(db)
    assert resolver.Resolver(couch).run_once()[db].merged == 0
    checkpoint = couch.get(db, resolver.CHECKPOINT)
    couch.request("DELETE", f"{db}/{resolver.CHECKPOINT}", params={"rev": checkpoint["_rev"]})
    again = resolver.Resolver(couch).run_once()[db]
    assert (again.merged, again.conflicts, again.audits) == (0, 0, 0)
    assert couch.all_docs(db) == before
    assert_settled(couch, db, plans)


def test_a_later_edit_on_one_phone_conflicts_again_and_is_merged_again(
        couch: Couch, community: Community) -> None:
    db = grid_db(couch)
    [(doc_id, live)] = push_conflicts(couch, db, "G1", 1).items()
    resolver.Resolver(couch).run_once()
    # The worker's phone had not synced the merge and edits its own branch again.
    worker = live[0]
    again = clock.edit(merge.strip(worker), "members.m1.status", "moved_out", "w_zhang",
                       "dev-w", "2026-11-20T10:00:00Z")
    ids = worker["_revisions"]["ids"]
    couch.bulk_docs(db, [revision(again, 3, [uuid.uuid4().hex, *ids])], new_edits=False)
    stats = resolver.Resolver(couch).run_once()[db]
    assert (stats.merged, stats.conflicts) == (1, 0)
    doc = couch.get(db, doc_id, conflicts=True)
    assert "_conflicts" not in doc
    assert (doc["members"]["m1"]["status"], doc["housing"]) == ("moved_out", "rented")


# -- safety ------------------------------------------------------------------------------------


@pytest.mark.parametrize("crash", ["half_the_records", "records", "merged_revisions",
                                   "everything_but_the_checkpoint"])
def test_a_crash_at_any_step_resumes_to_the_same_result(couch: Couch, community: Community,
                                                       crash: str) -> None:
    db = grid_db(couch)
    plans = expected(push_conflicts(couch, db, "G1", 3))
    # Write what a resolver would have written before it died (the plan is deterministic).
    records = [r for p in plans.values() for r in p.records]
    merged = [r for p in plans.values() for r in p.revisions if not r.get("_deleted")]
    deletions = [r for p in plans.values() for r in p.revisions if r.get("_deleted")]
    couch.bulk_docs(db, records[: len(records) // 2] if crash == "half_the_records" else records)
    if crash in ("merged_revisions", "everything_but_the_checkpoint"):
        couch.bulk_docs(db, merged, new_edits=False)
    if crash == "everything_but_the_checkpoint":
        couch.bulk_docs(db, deletions, new_edits=False)
    resolver.Resolver(couch).run_once()
    assert_settled(couch, db, plans)


def test_two_resolvers_at_once_write_each_merge_once(couch_server: CouchServer, couch: Couch,
                                                     community: Community) -> None:
    db = grid_db(couch)
    plans = expected(push_conflicts(couch, db, "G1", 150))
    start = threading.Barrier(2)
    results: list[resolver.Stats] = []

    def run() -> None:
        own = Couch(couch_server.url, couch_server.user, couch_server.password, couch.prefix)
        start.wait()
        results.append(resolver.Resolver(own, batch_size=20).resolve_db(db))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 2
    assert_settled(couch, db, plans)
    # Each record was created by exactly one of the two; the other found it there.
    assert sum(s.conflicts for s in results) == 150


def run_cli(couch_server: CouchServer, prefix: str, var: Path, *args: str
            ) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DOORSTEP_COUCHDB_URL": couch_server.url,
           "DOORSTEP_COUCHDB_USER": couch_server.user,
           "DOORSTEP_COUCHDB_PASSWORD": couch_server.password,
           "DOORSTEP_DB_PREFIX": prefix, "DOORSTEP_VAR": str(var)}
    return subprocess.Popen([sys.executable, "-m", "server.cli", "resolve", *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_resolver_killed_mid_run_and_restarted_loses_nothing(
        couch_server: CouchServer, couch: Couch, community: Community, prefix: str,
        tmp_path: Path) -> None:
    db = grid_db(couch)
    plans = expected(push_conflicts(couch, db, "G1", 300))
    proc = run_cli(couch_server, prefix, tmp_path, "--once", "--batch-size", "20")
    try:
        deadline = time.monotonic() + 60
        while couch.get(db, resolver.CHECKPOINT) is None and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)  # at the first checkpoint: inside a later batch
    finally:
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    rows = couch.all_docs(db, startkey="household:", endkey="household:\ufff0",
                          include_docs=True, conflicts=True)
    still = sum(1 for r in rows if "_conflicts" in r["doc"])
    assert 0 < still < 300, "the kill should have landed in the middle of the run"

    restart = run_cli(couch_server, prefix, tmp_path, "--once")
    out, err = restart.communicate(timeout=120)
    assert restart.returncode == 0, err.decode()
    assert "resolved" in out.decode()
    assert_settled(couch, db, plans)


def test_the_command_refuses_a_bad_batch_size_in_one_line(couch_server: CouchServer,
                                                          couch: Couch, prefix: str,
                                                          tmp_path: Path) -> None:
    proc = run_cli(couch_server, prefix, tmp_path, "--once", "--batch-size", "0")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.decode().strip().splitlines() == [
        "doorstep: --batch-size must be at least 1, got 0"]


# -- what is not an ordinary merge -------------------------------------------------------------


def test_an_edit_made_after_a_move_is_kept_beside_the_moved_entry(couch: Couch,
                                                                  community: Community) -> None:
    old_db, new_db = grid_db(couch, "G1"), grid_db(couch, "G2")
    base = household("G1", "G1-1-1-0001")
    root = uuid.uuid4().hex
    couch.bulk_docs(old_db, [revision(base, 1, [root])], new_edits=False)
    # The server moved it to G2 (copy, then a deletion marked moved_to) ...
    couch.put(new_db, {**merge.strip(base), "grid": "G2"})
    moved_rev = uuid.uuid4().hex
    tombstone = {"_id": base["_id"], "_deleted": True, "moved_to": "G2"}
    couch.bulk_docs(old_db, [revision(tombstone, 2, [moved_rev, root])], new_edits=False)
    # ... while an offline phone still edited it in G1.
    stray = clock.edit(base, "phone", "13800138000", "w_zhang", "dev-w", T_WORKER)
    couch.bulk_docs(old_db, [revision(stray, 2, [uuid.uuid4().hex, root])], new_edits=False)
    assert couch.get(old_db, base["_id"])["phone"] == "13800138000"  # the edit revived it

    stats = resolver.Resolver(couch).run_once()
    assert stats[old_db].moved == 1
    assert couch.get(old_db, base["_id"]) is None  # gone from G1 on every device again
    assert couch.get(new_db, base["_id"])["phone"] == ""  # the move wins
    [row] = couch.view(new_db, "grid", "open_conflicts", key="G1-1-1-0001",
                       include_docs=True)["rows"]
    assert row["doc"]["grid"] == "G2" and row["doc"]["path"] == "phone"
    assert [c["value"] for c in row["doc"]["candidates"]] == ["", "13800138000"]
    assert resolver.Resolver(couch).run_once()[old_db].moved == 0


def test_a_conflicted_append_only_document_is_left_for_a_person(couch: Couch,
                                                                community: Community) -> None:
    db = grid_db(couch)
    visit = {"_id": "visit:v1", "type": "visit", "grid": "G1", "household": "G1-1-1-0001",
             "author": "w_zhang", "device": "dev-w", "created_at": T_WORKER,
             "visited_at": T_WORKER, "outcome": "met", "visit_type": "sweep"}
    root = uuid.uuid4().hex
    couch.bulk_docs(db, [revision({**visit, "notes": "a"}, 2, [uuid.uuid4().hex, root]),
                         revision({**visit, "notes": "b"}, 2, [uuid.uuid4().hex, root])],
                    new_edits=False)
    assert resolver.Resolver(couch).run_once()[db].left_alone == 1
    assert len(couch.get(db, "visit:v1", conflicts=True)["_conflicts"]) == 1


# -- in the server -----------------------------------------------------------------------------


def test_the_server_resolves_in_the_background(server: RunningServer, couch: Couch) -> None:
    db = grid_db(couch)
    [doc_id] = push_conflicts(couch, db, "G1", 1)
    deadline = time.monotonic() + 30
    while "_conflicts" in couch.get(db, doc_id, conflicts=True):
        assert time.monotonic() < deadline, server.log.read_text()[-2000:]
        time.sleep(0.2)
    assert couch.get(db, doc_id)["note"] == "supervisor note 0"


def created(grid: str, hid: str, values: dict[str, Any], user: str, device: str, at: str
            ) -> dict[str, Any]:
    """A household added at the door, as the field app builds it: every field an edit of
    the worker's, stamped in `clock` (pwa/js/ledger.js `newHousehold`)."""
    doc: dict[str, Any] = {"_id": f"household:{hid}", "type": "household", "grid": grid,
                           "household_id": hid, "members": {}, "clock": {}, "created_at": at}
    for path, value in values.items():
        doc = clock.edit(doc, path, value, user, device, at)
    return doc


def test_two_phones_adding_the_same_address_offline_are_merged_field_by_field(
        couch: Couch, community: Community) -> None:
    """Two first revisions with no common ancestor (a worker and her cover both found the
    family that moved in): one entry, agreeing fields once, the disagreement kept."""
    db = grid_db(couch)
    hid = "G1-7-1-301"
    same = {"address": {"building": "7", "unit": "1", "floor": 3, "room": "301"},
            "housing": "rented", "residency": "floating", "members.m1.name": "陈新",
            "members.m1.relation": "户主", "members.m1.status": "present"}
    mine = created("G1", hid, {**same, "phone": "13800000001", "tags": []},
                   "w_zhang", "dev-w", T_WORKER)
    cover = created("G1", hid, {**same, "phone": "13900000002", "tags": ["floating"],
                                "note": "刚搬来"}, "w_cover", "dev-c", T_BOSS)
    leaves = [revision(mine, 1, [uuid.uuid4().hex]), revision(cover, 1, [uuid.uuid4().hex])]
    assert couch.bulk_docs(db, leaves, new_edits=False) == []

    stats = resolver.Resolver(couch).run_once()[db]

    assert (stats.merged, stats.conflicts) == (1, 2)  # phone and tags: both set, differently
    assert_settled(couch, db, {f"household:{hid}": resolver.merge_leaves(leaves)})
    doc = couch.get(db, f"household:{hid}", conflicts=True)
    schema.validate(doc)
    assert doc["members"] == {"m1": {"name": "陈新", "relation": "户主", "status": "present"}}
    assert (doc["phone"], doc["tags"], doc["note"]) == ("13900000002", ["floating"], "刚搬来")
    assert doc["clock"]["tags"]["by"] == "w_cover"
    assert doc["clock"]["address"]["vv"] == {"dev-c": clock.epoch_ms(T_BOSS),
                                             "dev-w": clock.epoch_ms(T_WORKER)}
    rows = couch.view(db, "grid", "open_conflicts", key=hid, include_docs=True)["rows"]
    kept = {r["doc"]["path"]: sorted(clock.canonical(c["value"]) for c in r["doc"]["candidates"])
            for r in rows}
    assert kept == {"phone": ['"13800000001"', '"13900000002"'], "tags": ['["floating"]', "[]"]}

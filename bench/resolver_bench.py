"""Conflict resolver: merges/s on 1,000 conflicted households, against baselines in the same run.

    .venv/bin/python bench/resolver_bench.py [--households 1000] [--runs 3]

Each run pushes, into a fresh grid database on a fresh embedded CouchDB (127.0.0.1 only),
households that a worker and a supervisor both edited offline (a base revision and two
concurrent leaves with `new_edits=false`, as replication leaves them; they disagree on one
field and each changed another), then times one resolver pass over the database:
reading the changes, fetching the leaves, merging, writing conflict and audit records, the
merged revisions and the deletions, and the checkpoint. Baselines, on the same leaves:

- raw I/O: fetching every leaf with `_bulk_get` and writing one revision and one deletion
  per household with `_bulk_docs` — the least any batched resolver must do;
- one by one: what a plain resolver does per household (GET `open_revs=all`, PUT the merged
  entry, DELETE the loser), on a sample of 200;
- the merge alone, in memory (CPU).

Prints the median of `--runs` runs. Bounded: at most 5,000 households and 5 runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.embedded_couch import EmbeddedCouch  # noqa: E402
from server.settings import Settings  # noqa: E402
from sync import clock, merge, resolver  # noqa: E402
from sync.couch import Couch  # noqa: E402

T_WORKER = "2026-11-20T09:10:00Z"
T_BOSS = "2026-11-20T09:20:00Z"


def conflicted(count: int) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for i in range(count):
        hid = f"G1-{i // 100}-1-{i % 100:04d}"
        base = {
            "_id": f"household:{hid}", "type": "household", "grid": "G1", "household_id": hid,
            "address": {"building": str(i // 100), "unit": "1", "floor": 3, "room": str(i)},
            "housing": "owner", "residency": "registered", "tags": ["elderly_alone"],
            "phone": "", "note": "",
            "members": {f"m{k}": {"name": f"居民{k}", "status": "present", "birth_year": 1950}
                        for k in range(3)},
            "clock": {}, "created_at": "2026-09-01T00:00:00Z",
        }
        root = uuid.uuid4().hex
        worker = clock.edit(base, "phone", f"1380013{i % 10000:04d}", "w_zhang", "dev-w",
                            T_WORKER)
        worker = clock.edit(worker, "note", f"worker {i}", "w_zhang", "dev-w", T_WORKER)
        boss = clock.edit(base, "members.m1.status", "moved_out", "s_li", "dev-s", T_BOSS)
        boss = clock.edit(boss, "note", f"supervisor {i}", "s_li", "dev-s", T_BOSS)
        out[base["_id"]] = [
            {**body, "_rev": f"2-{h}", "_revisions": {"start": 2, "ids": [h, root]}}
            for body, h in ((worker, uuid.uuid4().hex), (boss, uuid.uuid4().hex))
        ]
    return out


def fresh_db(couch: Couch, leaves: dict[str, list[dict[str, Any]]]) -> str:
    db = f"g_bench_{uuid.uuid4().hex[:8]}"
    couch.ensure_db(db)
    docs = [d for pair in leaves.values() for d in pair]
    for i in range(0, len(docs), 1000):
        couch.bulk_docs(db, docs[i:i + 1000], new_edits=False)
    return db


def timed(fn: Any, *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def resolver_pass(couch: Couch, db: str) -> None:
    stats = resolver.Resolver(couch).resolve_db(db)
    assert stats.merged == stats.conflicts, stats


def raw_io(couch: Couch, db: str, leaves: dict[str, list[dict[str, Any]]]) -> None:
    ids = list(leaves)
    for i in range(0, len(ids), resolver.BATCH_SIZE):
        batch = ids[i:i + resolver.BATCH_SIZE]
        wanted = [{"id": d["_id"], "rev": d["_rev"]} for x in batch for d in leaves[x]]
        status, body = couch.request("POST", f"{db}/_bulk_get", params={"revs": True},
                                     body={"docs": wanted})
        assert status == 200
        writes = []
        for result in body["results"]:
            for n, entry in enumerate(result["docs"]):
                doc = entry["ok"] if n == 0 else {"_id": entry["ok"]["_id"], "_deleted": True}
                h, history = uuid.uuid4().hex, entry["ok"]["_revisions"]["ids"]
                writes.append({**doc, "_rev": f"3-{h}",
                               "_revisions": {"start": 3, "ids": [h, *history]}})
        couch.bulk_docs(db, writes, new_edits=False)


def one_by_one(couch: Couch, db: str, ids: list[str]) -> None:
    for doc_id in ids:
        _, found = couch.request("GET", f"{db}/{doc_id}", params={"open_revs": "all"})
        live = [e["ok"] for e in found if not e["ok"].get("_deleted")]
        result = merge.merge(live)
        status, _ = couch.request("PUT", f"{db}/{doc_id}", body=result.doc)
        assert status == 201, status
        for leaf in live:
            if leaf["_rev"] != result.doc["_rev"]:
                couch.request("DELETE", f"{db}/{doc_id}", params={"rev": leaf["_rev"]})


def merge_all(pairs: list[list[dict[str, Any]]]) -> None:
    for pair in pairs:
        merge.merge(pair)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--households", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    households = max(10, min(args.households, 5000))
    runs = max(1, min(args.runs, 5))
    sample = min(200, households)

    with tempfile.TemporaryDirectory() as var:
        embedded = EmbeddedCouch(Settings(var_dir=Path(var)))
        embedded.start()
        try:
            couch = Couch(embedded.url, embedded.user, embedded.password)
            figures: dict[str, list[float]] = {k: [] for k in ("resolver", "raw", "single",
                                                                "merge")}
            for _ in range(runs):
                leaves = conflicted(households)
                db = fresh_db(couch, leaves)
                figures["resolver"].append(households / timed(resolver_pass, couch, db))
                db = fresh_db(couch, leaves)
                figures["raw"].append(households / timed(raw_io, couch, db, leaves))
                db = fresh_db(couch, leaves)
                ids = list(leaves)[:sample]
                figures["single"].append(sample / timed(one_by_one, couch, db, ids))
                figures["merge"].append(households / timed(merge_all, list(leaves.values())))
        finally:
            embedded.stop()

    med = {k: statistics.median(v) for k, v in figures.items()}
    print(f"conflicted households: {households} (2 leaves each), runs: {runs}, median")
    print(f"resolver pass            {med['resolver']:8.0f} merges/s")
    print(f"baseline raw I/O         {med['raw']:8.0f} households/s   "
          f"resolver = {med['resolver'] / med['raw']:.2f} x raw I/O")
    print(f"baseline one by one      {med['single']:8.0f} merges/s   "
          f"resolver = {med['resolver'] / med['single']:.1f} x one by one")
    print(f"merge alone (CPU)        {med['merge']:8.0f} merges/s   "
          f"resolver = {med['resolver'] / med['merge']:.2f} x merge alone")
    return 0


if __name__ == "__main__":
    sys.exit(main())

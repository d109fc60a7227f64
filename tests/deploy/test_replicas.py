"""Two `doorstep serve` processes on one CouchDB: the conflict resolver runs in one of them
at a time, conflicted households are merged once, and when the process running it is killed
the other takes over after the lease runs out."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sync import clock, naming
from sync.couch import Couch
from tests.conftest import CouchServer, RunningServer, start_server, wait_for

TTL = "3"  # seconds: the shortest lease the server accepts, so takeover is quick to see


def household(grid: str, hid: str) -> dict[str, Any]:
    return {
        "_id": f"household:{hid}", "type": "household", "grid": grid, "household_id": hid,
        "address": {"building": "3", "unit": "2", "floor": 5, "room": "502"},
        "housing": "owner", "residency": "registered", "tags": [], "phone": "", "note": "",
        "members": {"m1": {"name": "王秀英", "status": "present"}},
        "clock": {}, "created_at": "2026-09-01T00:00:00Z",
    }


def make_conflict(couch: Couch, grid: str, hid: str) -> str:
    """Two phones changed the same number offline, then both synced."""
    db = naming.grid_db_name(grid, couch.prefix)
    base = household(grid, hid)
    a = clock.edit(base, "phone", "13800138000", "w_zhang", "dev-a", "2026-11-20T09:05:00Z")
    b = clock.edit(base, "phone", "13900139000", "s_li", "dev-s", "2026-11-20T09:07:00Z")
    couch.bulk_docs(db, [{**a, "_rev": "1-" + "a" * 32}, {**b, "_rev": "1-" + "b" * 32}],
                    new_edits=False)
    return db


def records(couch: Couch, db: str, kind: str, hid: str) -> list[dict[str, Any]]:
    rows = couch.all_docs(db, startkey=f"{kind}:", endkey=f"{kind}:\ufff0", include_docs=True)
    return [r["doc"] for r in rows if r["doc"].get("household") == hid]


def job_figures(server: RunningServer) -> tuple[float, float]:
    """(lease held, steps run) of the resolver job, from the server's own /metrics."""
    text = httpx.get(server.url + "/metrics", timeout=5).text
    held = re.search(r'^doorstep_job_lease_held\{job="resolver"\} (\S+)$', text, re.M)
    steps = re.search(r'^doorstep_job_steps_total\{job="resolver"\} (\S+)$', text, re.M)
    assert held and steps, text
    return float(held.group(1)), float(steps.group(1))


@pytest.fixture
def replicas(couch_server: CouchServer, couch: Couch, community, prefix: str,
             tmp_path: Path) -> Iterator[list[RunningServer]]:
    env = {"DOORSTEP_LEASE_TTL": TTL}
    started = [start_server(couch_server, prefix, tmp_path / f"replica{i}", env) for i in (1, 2)]
    yield started
    for s in started:
        s.stop()


def test_one_replica_runs_the_resolver_and_the_other_takes_over_when_it_dies(
        replicas: list[RunningServer], couch: Couch) -> None:
    def holder() -> RunningServer | None:
        held = [s for s in replicas if job_figures(s)[0] == 1]
        assert len(held) <= 1, "two replicas hold the resolver lease at once"
        return held[0] if held else None

    first = wait_for(holder, "a replica to take the resolver lease", seconds=30)
    other = next(s for s in replicas if s is not first)
    lease = couch.get(couch.name(naming.LEASES), "lease:resolver")
    assert lease["holder"].split(":")[1] == str(first.process.pid)

    db = make_conflict(couch, "G1", "G1-3-2-502")
    wait_for(lambda: "_conflicts" not in couch.get(db, "household:G1-3-2-502", conflicts=True),
             "the conflict to be merged", seconds=30)
    merged = couch.get(db, "household:G1-3-2-502")
    assert merged["phone"] == "13900139000", "the later edit wins; the other is kept on record"
    for _ in range(10):  # the job keeps running on one side only
        assert holder() is first
        assert job_figures(other) == (0, 0), "the other replica never ran a step"
        time.sleep(0.3)
    conflicts = records(couch, db, "conflict", "G1-3-2-502")
    audits = records(couch, db, "audit", "G1-3-2-502")
    assert len(conflicts) == 1 and conflicts[0]["path"] == "phone"

    first.process.kill()  # SIGKILL: no release, the lease must run out
    first.process.wait(10)
    killed_at = time.monotonic()
    wait_for(lambda: job_figures(other)[0] == 1, "the surviving replica to take over", seconds=30)
    assert time.monotonic() - killed_at >= 0.5 * float(TTL), "not before the lease ran out"
    lease = couch.get(couch.name(naming.LEASES), "lease:resolver")
    assert lease["holder"].split(":")[1] == str(other.process.pid)
    assert lease["generation"] >= 2

    db2 = make_conflict(couch, "G2", "G2-1-1-101")  # no stuck job: new work gets done
    wait_for(lambda: "_conflicts" not in couch.get(db2, "household:G2-1-1-101", conflicts=True),
             "the survivor to merge a new conflict", seconds=30)
    wait_for(lambda: job_figures(other)[1] >= 3, "a few more passes by the survivor", seconds=30)
    assert records(couch, db, "conflict", "G1-3-2-502") == conflicts, "nothing merged twice"
    assert records(couch, db, "audit", "G1-3-2-502") == audits
    assert len(records(couch, db2, "conflict", "G2-1-1-101")) == 1

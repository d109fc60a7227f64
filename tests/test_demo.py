"""Demo data: deterministic for a seed, believable, scalable, and loaded once by `serve --demo`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from datetime import date, timedelta

import httpx

from server.embedded_couch import free_port
from sync import accounts, demo, naming, schema
from sync.couch import Couch
from sync.directory import Directory
from tests.conftest import ROOT, RunningServer

TODAY = date(2026, 11, 20)


def grid_docs(spec: demo.Spec) -> list[dict]:
    lay = demo.layout(spec)
    return [d for g in lay.grids for d in demo.generate_grid(spec, g, "supervisor1").docs()]


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data() -> None:
    spec = demo.Spec(seed=7, grids=2, households_per_grid=120, today=TODAY)
    first = grid_docs(spec)
    assert grid_docs(spec) == first
    other = grid_docs(demo.Spec(seed=8, grids=2, households_per_grid=120, today=TODAY))
    assert [d["_id"] for d in other] != [d["_id"] for d in first]


def test_a_grid_does_not_depend_on_how_many_grids_are_generated() -> None:
    small = demo.Spec(seed=3, grids=2, households_per_grid=50, today=TODAY)
    big = demo.Spec(seed=3, grids=20, households_per_grid=50, today=TODAY)
    g_small = demo.layout(small).grids[1]
    g_big = demo.layout(big).grids[1]
    assert demo.generate_grid(small, g_small, "s").households == \
        demo.generate_grid(big, g_big, "s").households


def test_a_community_is_believable() -> None:
    spec = demo.Spec(seed=1, grids=6, households_per_grid=380, visit_months=3, today=TODAY)
    lay = demo.layout(spec)
    households, visits, events, micro = [], [], [], []
    for g in lay.grids:
        c = demo.generate_grid(spec, g, "supervisor1")
        households += c.households
        visits += c.visits
        events += c.need_events
        sizes = Counter(h["micro_grid"] for h in c.households)
        micro += [sizes[mid] for mid, _ in c.micro_grids[:-1]]  # the last one may be partial
    schema.validate_all(households + visits + events)
    per_grid = Counter(h["grid"] for h in households)
    assert all(330 <= n <= 430 for n in per_grid.values()), per_grid
    special = sum(demo.is_special_care(h) for h in households) / len(households)
    assert 0.065 <= special <= 0.095, special
    assert all(30 <= n <= 101 for n in micro), micro
    names = [m["name"] for h in households for m in h["members"].values()]
    assert all(2 <= len(n) <= 4 and "\u4e00" <= n[0] <= "\u9fff" for n in names)
    assert len(set(names)) > len(names) / 4
    # Every occupied household was visited within the quarter, special care within a month.
    last: dict[str, str] = {}
    for v in visits:
        last[v["household"]] = max(last.get(v["household"], ""), v["visited_at"])
        assert v["author"] == f"worker{int(v['grid'][1:])}"
        assert v["visited_at"] < f"{TODAY}T00:00:00Z"
    month_ago = f"{TODAY - timedelta(days=32)}"
    for h in households:
        assert h["household_id"] in last
        if demo.is_special_care(h):
            assert last[h["household_id"]] >= month_ago, h["household_id"]
    outcomes = Counter(v["outcome"] for v in visits)
    assert 0.7 < outcomes["met"] / len(visits) < 0.85
    assert {"nobody_home", "refused", "vacant"} <= set(outcomes)
    loops = Counter(e["event"] for e in events)
    assert loops["raised"] > loops["closed"] > 0


def test_county_scale_layout() -> None:
    lay = demo.layout(demo.Spec(grids=270))
    assert len(lay.grids) == 270 and len({g.id for g in lay.grids}) == 270
    assert len(lay.communities) == 15 and len(lay.streets) == 3
    per_community = Counter(g.community for g in lay.grids)
    assert set(per_community.values()) == {18}
    assert len({(g.community, g.name) for g in lay.grids}) == 270


def _update_seqs(couch: Couch, dbs: list[str]) -> dict[str, object]:
    return {db: couch.request("GET", db)[1]["update_seq"] for db in dbs}


def test_ensure_demo_loads_once_with_working_accounts(couch: Couch) -> None:
    lines = demo.ensure_demo(couch)
    text = "\n".join(lines)
    for name in ("worker1", "worker2", "worker3", "cover1", "supervisor1", "admin"):
        assert name in text
    assert demo.DEMO_PASSWORD in text
    d = Directory(couch)
    assert [g.id for g in d.grids()] == ["G001", "G002", "G003"]
    assert len(d.entries("micro_grid")) >= 9
    cover = accounts.account(couch, "cover1")
    assert cover.role == "worker" and cover.grids == ("G002", "G003")
    assert accounts.account(couch, "supervisor1").communities == ("C01",)
    login = httpx.post(f"{couch.url}/_session", timeout=10,
                       json={"name": "worker1", "password": demo.DEMO_PASSWORD})
    assert login.status_code == 200 and "grid:G001" in login.json()["roles"]
    db = naming.grid_db_name("G001", couch.prefix)
    kinds = couch.view(db, "grid", "by_type", group=True)["rows"]
    counts = {r["key"]: r["value"] for r in kinds}
    assert 330 <= counts["household"] <= 430
    assert counts["visit"] > counts["household"]
    assert counts["need_event"] > 0

    dbs = [d.db] + [g.db for g in d.grids()]
    before = _update_seqs(couch, dbs)
    again = demo.ensure_demo(couch)
    assert len(again) == 1 and "already loaded" in again[0]
    assert _update_seqs(couch, dbs) == before


def test_ensure_demo_leaves_an_install_with_its_own_grids_alone(couch: Couch, community) -> None:
    lines = demo.ensure_demo(couch)
    assert len(lines) == 1 and "not loaded" in lines[0]
    assert Directory(couch).grid("G001") is None
    assert not couch.exists(naming.grid_db_name("G001", couch.prefix))


def test_load_writes_only_what_is_missing(couch: Couch) -> None:
    spec = demo.Spec(seed=2, grids=2, households_per_grid=40, visit_months=2, today=TODAY)
    first = demo.load(couch, spec, with_accounts=False)
    assert first.written == first.households + first.visits + first.need_events
    second = demo.load(couch, spec, with_accounts=False)
    assert second.written == 0 and second.households == first.households


def test_serve_demo_prints_the_accounts_and_the_url_and_they_log_in(couch_server, prefix,
                                                                    tmp_path) -> None:
    port = free_port()
    env = {**os.environ, "DOORSTEP_COUCHDB_URL": couch_server.url,
           "DOORSTEP_COUCHDB_USER": couch_server.user,
           "DOORSTEP_COUCHDB_PASSWORD": couch_server.password, "DOORSTEP_DB_PREFIX": prefix,
           "DOORSTEP_VAR": str(tmp_path / "var"), "DOORSTEP_PORT": str(port)}
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--demo"], cwd=ROOT,
                            env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while "Doorstep is running at" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.2)
        out = log.read_text()
        assert f"http://127.0.0.1:{port}/" in out
        assert "worker1" in out and "supervisor1" in out and demo.DEMO_PASSWORD in out
        login = httpx.post(f"{couch_server.url}/_session", timeout=10,
                           json={"name": "supervisor1", "password": demo.DEMO_PASSWORD})
        assert login.status_code == 200 and "community:C01" in login.json()["roles"]
    finally:
        RunningServer(f"http://127.0.0.1:{port}", proc, env, log).stop()

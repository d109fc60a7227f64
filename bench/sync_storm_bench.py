"""Morning sync storm: a county's workforce syncing through the gateway within one minute.

    .venv/bin/python bench/sync_storm_bench.py [--devices 600] [--grids 300] [--spread 60]

Setup (not timed): a fresh embedded CouchDB and a Doorstep server (one process, as one
replica runs); `--grids` grid databases of `--households` households each; one worker
account and one logged-in session per device, two devices per grid (so each pulls the
other's visits); each device starts "synced yesterday" (its checkpoints at the current
sequence).

The storm: every device starts at a random moment within `--spread` seconds and does what
PouchDB 9 does for one `sync()` (the requests were taken from a real Chromium session):
push — database info, checkpoint read, `_revs_diff`, `_bulk_docs` of `--visits` new visits
(new_edits=false), checkpoint write; then pull — checkpoint read, `_changes` since the
checkpoint, `_bulk_get` of what changed, checkpoint write. Devices are asyncio tasks in this
process (httpx), so the load generator shares the 2 cores with the server and CouchDB.

Baseline in the same run: the same storm straight against CouchDB first (admin basic
auth, no gateway), then through the gateway, each with fresh checkpoints.

Printed per run: devices completed / failed (any non-2xx answer, refused document or
timeout), request latency p50 / p95 / max over all requests and per endpoint, the storm's
wall time, CPU seconds and memory of the Doorstep server and of CouchDB during the storm.
Bounded: at most 2,000 devices, 30 s per request, each storm gives up after spread + 240 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack import ProcessUsage, Stack, stack, usage  # noqa: E402

from sync import accounts, demo, naming  # noqa: E402
from sync.directory import Directory  # noqa: E402
from sync.provision import provision_grid  # noqa: E402

PASSWORD = "storm-password-1"
AT = "2026-11-20T08:10:00Z"


@dataclass
class Device:
    name: str
    grid: str
    db: str
    households: list[str]
    cookie: str = ""
    push_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    pull_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    by_endpoint: dict[str, list[float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    completed: int = 0


def setup(s: Stack, devices: int, grids: int, households: int) -> list[Device]:
    spec = demo.Spec(seed=11, grids=grids, households_per_grid=households, visit_months=0,
                     today=date(2026, 11, 20))
    lay = demo.layout(spec)
    d = Directory(s.couch)
    for sid, name in lay.streets:
        d.add_street(sid, name)
    for cid, name, street, _ in lay.communities:
        d.add_community(cid, name, street)
    tags = d.tag_config()
    out = []
    for n, (plan, content) in enumerate(demo.ledgers(spec)):
        d.add_grid(plan.id, plan.name, plan.community)
        provision_grid(s.couch, plan.id, tags)
        db = naming.grid_db_name(plan.id, s.couch.prefix)
        s.couch.bulk_docs(db, content.households)
        ids = [h["household_id"] for h in content.households]
        for k in range(devices // grids + (1 if n < devices % grids else 0)):
            name = f"storm{n:03d}d{k}"
            accounts.create(s.couch, name, "worker", password=PASSWORD, grids=[plan.id])
            out.append(Device(name, plan.id, db, ids))
        print(f"\rsetup: {n + 1}/{grids} grids, {len(out)} devices", end="", flush=True)
    print()
    return out


async def prepare(client: httpx.AsyncClient, device: Device, direct: bool) -> None:
    """Log in and checkpoint at the current sequence: the state after yesterday's sync."""
    headers, base = {}, f"/{device.db}"
    if not direct:
        r = await client.post("/api/login", json={"name": device.name, "password": PASSWORD})
        r.raise_for_status()
        device.cookie = r.cookies["doorstep_session"]
        headers, base = {"Cookie": f"doorstep_session={device.cookie}"}, f"/couch/{device.db}"
    seq = (await client.get(f"{base}/", headers=headers)).json()["update_seq"]
    for rep in (device.push_id, device.pull_id):
        r = await client.put(f"{base}/_local/{rep}", headers=headers,
                             json={"last_seq": seq, "session_id": "yesterday",
                                   "replicator": "pouchdb", "version": 1,
                                   "history": [{"last_seq": seq, "session_id": "yesterday"}]})
        r.raise_for_status()


def visits(device: Device, count: int, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for _ in range(count):
        digest = uuid.uuid4().hex
        out.append({
            "_id": f"visit:{uuid.uuid4()}", "_rev": f"1-{digest}",
            "_revisions": {"start": 1, "ids": [digest]},
            "type": "visit", "grid": device.grid, "household": rng.choice(device.households),
            "author": device.name, "device": f"phone-{device.name}", "created_at": AT,
            "visited_at": AT, "outcome": rng.choice(["met", "met", "met", "nobody_home"]),
            "visit_type": "sweep", "notes": "身体状况良好", "needs": [], "ledger_changes": [],
            "gps": {"lat": 30.27, "lon": 120.15, "accuracy": 12.0}, "assignment": None,
            "amends": None, "app_version": "0.1.0",
        })
    return out


async def sync(client: httpx.AsyncClient, device: Device, delay: float, count: int,
               tally: Tally, rng: random.Random, direct: bool = False) -> None:
    await asyncio.sleep(delay)
    headers = {"Cookie": f"doorstep_session={device.cookie}", "Accept-Encoding": "gzip"}
    base = f"/couch/{device.db}"
    if direct:
        headers, base = {"Accept-Encoding": "gzip"}, f"/{device.db}"

    async def call(method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201)
                   ) -> Any:
        started = time.perf_counter()
        r = await client.request(method, base + path, json=body, headers=headers)
        took = time.perf_counter() - started
        tally.latencies.append(took)
        endpoint = f"{method} {path.split('?')[0].split('/')[1] or 'info'}"
        tally.by_endpoint.setdefault(endpoint, []).append(took)
        if r.status_code not in ok:
            raise RuntimeError(f"{method} {path.split('?')[0]} → {r.status_code} {r.text[:120]}")
        return r.json()

    try:
        # push
        await call("GET", "/")
        checkpoint = await call("GET", f"/_local/{device.push_id}")
        docs = visits(device, count, rng)
        await call("POST", "/_revs_diff", {d["_id"]: [d["_rev"]] for d in docs})
        refused = await call("POST", "/_bulk_docs", {"docs": docs, "new_edits": False})
        if refused:
            raise RuntimeError(f"_bulk_docs refused {len(refused)}: {refused[0]}")
        await call("PUT", f"/_local/{device.push_id}", {**checkpoint, "last_seq": count})
        # pull
        checkpoint = await call("GET", f"/_local/{device.pull_id}")
        changes = await call("GET", f"/_changes?style=all_docs&since={checkpoint['last_seq']}"
                                    "&limit=100")
        wanted = [{"id": c["id"], "rev": c["changes"][0]["rev"]} for c in changes["results"]]
        if wanted:
            got = await call("POST", "/_bulk_get?revs=true&latest=true", {"docs": wanted})
            if len(got["results"]) != len(wanted):
                raise RuntimeError("_bulk_get returned fewer documents than asked for")
        await call("PUT", f"/_local/{device.pull_id}",
                   {**checkpoint, "last_seq": changes["last_seq"]})
        tally.completed += 1
    except (RuntimeError, httpx.HTTPError) as exc:
        tally.failures.append(f"{device.name}: {type(exc).__name__}: {exc}")


Usage = tuple[ProcessUsage, ProcessUsage]


def both(s: Stack) -> Usage:
    return usage(s.server.pid), usage(s.embedded.pid or 0)


async def storm(s: Stack, devices: list[Device], spread: float, count: int,
                direct: bool = False) -> tuple[Tally, float, Usage, Usage]:
    # uvicorn closes idle connections after 5 s; let the pool drop them first, as browsers do
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=800,
                          keepalive_expiry=4)
    # each device sends its own cookie; the shared client must not keep any
    jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    async with httpx.AsyncClient(base_url=s.couch.url if direct else s.server_url, timeout=30,
                                 limits=limits, cookies=jar,
                                 auth=s.couch.auth if direct else None) as client:
        for i in range(0, len(devices), 50):
            await asyncio.gather(*(prepare(client, d, direct) for d in devices[i:i + 50]))
        tally = Tally()
        rng = random.Random(5)
        before = both(s)
        started = time.monotonic()
        tasks = [sync(client, d, rng.uniform(0, spread), count, tally, random.Random(i), direct)
                 for i, d in enumerate(devices)]
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=spread + 240)
        return tally, time.monotonic() - started, before, both(s)


def report(label: str, tally: Tally, wall: float, before: Usage, after: Usage) -> None:
    lat = sorted(tally.latencies)
    p50, p95 = statistics.median(lat), lat[int(len(lat) * 0.95)]
    print(f"{label}: completed {tally.completed}, failed {len(tally.failures)}, "
          f"storm took {wall:.1f} s")
    for line in tally.failures[:5]:
        print(f"  failure: {line}")
    print(f"  request latency over {len(lat)} requests: p50 {p50 * 1000:.0f} ms, "
          f"p95 {p95 * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms")
    for endpoint, times in sorted(tally.by_endpoint.items()):
        times.sort()
        print(f"    {endpoint:18s} p50 {statistics.median(times) * 1000:6.0f} ms, "
              f"p95 {times[int(len(times) * 0.95)] * 1000:6.0f} ms ({len(times)} requests)")
    for name, b, a in (("Doorstep server", before[0], after[0]),
                       ("CouchDB (pouchdb-server)", before[1], after[1])):
        cpu = a.cpu_seconds - b.cpu_seconds
        print(f"  {name}: {cpu:.1f} CPU s ({cpu / wall * 100:.0f}% of one core, "
              f"{cpu / len(lat) * 1000:.1f} ms per request), memory {a.rss_mb:.0f} MB, "
              f"peak {a.peak_mb:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=600)
    parser.add_argument("--grids", type=int, default=300)
    parser.add_argument("--households", type=int, default=100, help="per grid")
    parser.add_argument("--visits", type=int, default=10, help="pushed per device")
    parser.add_argument("--spread", type=float, default=60, help="seconds over which to start")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the same storm straight against CouchDB")
    args = parser.parse_args()
    if not 1 <= args.devices <= 2000 or not 1 <= args.grids <= args.devices:
        raise SystemExit("--devices must be 1..2000 and --grids 1..devices")
    modes = ["gateway"] if args.no_baseline else ["direct", "gateway"]
    results = {}
    with stack() as s:
        devices = setup(s, args.devices, args.grids, args.households)
        for mode in modes:
            for d in devices:  # a fresh pair of checkpoints per run
                d.push_id, d.pull_id = uuid.uuid4().hex, uuid.uuid4().hex
            results[mode] = asyncio.run(storm(s, devices, args.spread, args.visits,
                                              direct=mode == "direct"))
        stored = sum(len(s.couch.all_docs(db, startkey="visit:", endkey="visit:\ufff0"))
                     for db in sorted({d.db for d in devices}))
    print(f"{args.devices} devices on {args.grids} grids, {args.visits} visits each, "
          f"starting within {args.spread:.0f} s; visits stored {stored} of "
          f"{args.devices * args.visits * len(modes)}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for mode in modes:
        report({"direct": "baseline, straight to CouchDB", "gateway": "through the gateway"}[
            mode], *results[mode])
    gateway = sorted(results["gateway"][0].latencies)
    print(f"gateway p95 {gateway[int(len(gateway) * 0.95)] * 1000:.0f} ms "
          f"(target < 500 ms), failures {len(results['gateway'][0].failures)} (target 0)")


if __name__ == "__main__":
    main()

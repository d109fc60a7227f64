"""Sizing per 1,000 workers (disk, memory, CPU), from one bounded run of our own code.

    .venv/bin/python bench/sizing.py [--grids 2] [--months 22] [--devices 400] [--spread 60]

Everything runs on 127.0.0.1 and stops by itself. 1 worker = 1 grid (~370 households) =
1 phone.

1. The morning sync storm, with sync_storm_bench.py's own setup and storm, on a fresh
   embedded pouchdb-server and a Doorstep server process in front of it
   (bench/stack.py): `--devices` phones on `--devices / 2` grids of 370
   households, then two storms through the gateway, half the phones and then all of them,
   each starting within `--spread` seconds. Measured: resident memory of the Doorstep server
   and of pouchdb-server (idle before, and sampled every 0.25 s for the peak of each storm)
   and their CPU seconds per phone's sync. The idle figures are the baseline; two storm
   sizes give the slope.
2. Disk, at real density, on a pouchdb-server of its own (after the storm, so the two never
   share the CPU). `--grids` demo grids (sync/demo.py: ~370 households, `--months` of visits
   and needs, ~4,500 documents per grid at 22 months) written straight into their grid
   databases in two steps: the households alone (month 0), then their history. After each
   step the real hub copier (sync/hub.py) copies them, the views are built by reading them
   (every view of the grid design document, as CouchDB 3 builds a design document's views
   together and the server reads two of them; the hub views the server reads: `grid_rows`,
   `lookup`, the resolver backlog), and pouchdb-server is restarted, so that leveldb turns
   its write-ahead logs into the compressed tables that stay. Measured: the folder of each
   database and each view index, and the documents' JSON bytes (what CouchDB 3 reports as
   `sizes.external`). Growth per month = (history step) / months.
3. Derived and printed: the same figures per 1,000 workers, with the load average.

Bounded: at most 8 grids and 1,000 phones, fixed counts, each storm gives up after
spread + 240 s; about 8 minutes with the defaults on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sync_storm_bench as storm_bench  # noqa: E402  (bench/ is on the path)
from report import say  # noqa: E402
from stack import Stack, stack, usage  # noqa: E402

from server.embedded_couch import EmbeddedCouch, free_port  # noqa: E402
from server.settings import Settings  # noqa: E402
from sync import demo, design, naming, resolver_status  # noqa: E402
from sync.couch import Couch  # noqa: E402
from sync.directory import Directory  # noqa: E402
from sync.hub import Hub  # noqa: E402
from sync.provision import provision, provision_grid  # noqa: E402

HOUSEHOLDS = 370
TODAY = date(2026, 11, 20)
MB = 1024 * 1024
HUB_VIEWS = ("grid_rows", "lookup")  # what the console and exports read (sync/console_queries.py)


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


# --- 1. disk ---------------------------------------------------------------------------------


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@dataclass
class Disk:
    """Bytes on disk of pouchdb-server's folders, and of the JSON written, at one step."""

    json: int = 0
    grid_data: int = 0
    grid_views: int = 0
    hub_data: int = 0
    hub_views: int = 0

    def minus(self, other: Disk) -> Disk:
        return Disk(*(getattr(self, f) - getattr(other, f) for f in self.__dataclass_fields__))

    @property
    def total(self) -> int:
        return self.grid_data + self.grid_views + self.hub_data + self.hub_views


def measure_disk(embedded: EmbeddedCouch, grid_dbs: list[str], hub_db: str, json_bytes: int
                 ) -> Disk:
    """pouchdb-server keeps each database, and each view index, in a folder of its own."""
    folders = {p.name: folder_bytes(p) for p in embedded.data_dir.iterdir() if p.is_dir()}

    def data(db: str) -> int:
        return folders.get(db, 0)

    def views(db: str) -> int:
        return sum(size for name, size in folders.items() if name.startswith(f"{db}-mrview-"))

    return Disk(json_bytes, sum(map(data, grid_dbs)), sum(map(views, grid_dbs)), data(hub_db),
                views(hub_db))


def build_views(couch: Couch, grid_dbs: list[str]) -> None:
    for db in grid_dbs:
        for view in design.GRID["views"]:
            couch.request("GET", f"{quote(db, safe='')}/_design/grid/_view/{view}",
                          params={"limit": 1}, timeout=600)
    hub = quote(couch.name(naming.HUB), safe="")
    for view in HUB_VIEWS:
        couch.request("GET", f"{hub}/_design/hub/_view/{view}", params={"limit": 1}, timeout=600)
    resolver_status.backlog(couch, timeout=600)


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@dataclass
class DiskResult:
    households: Disk
    history: Disk
    docs_per_grid: float
    copy_cpu: tuple[float, float]  # CPU s per grid of history copied: copier, CouchDB
    couch_rss_mb: float  # pouchdb-server after building the views


class SettledCouch:
    """A pouchdb-server of the disk figures' own, apart from the storm's, restarted before
    each measure: leveldb turns its write-ahead log into compressed tables when it opens a
    database (or a view index) again, so the folders then show what stays on disk."""

    def __init__(self, var: Path) -> None:
        self.var = var
        self.embedded = self._start(free_port())

    def _start(self, port: int) -> EmbeddedCouch:
        embedded = EmbeddedCouch(Settings(var_dir=self.var), port)
        embedded.start()
        return embedded

    def restart(self) -> None:
        self.embedded.stop()
        self.embedded = self._start(self.embedded.port)

    def couch(self) -> Couch:
        return Couch(self.embedded.url, self.embedded.user, self.embedded.password, "size_")


def disk_part(grids: int, months: int) -> DiskResult:
    with tempfile.TemporaryDirectory(prefix="doorstep-sizing-") as tmp:
        server = SettledCouch(Path(tmp))
        try:
            return _disk(server, grids, months)
        finally:
            server.embedded.stop()


def _disk(server: SettledCouch, grids: int, months: int) -> DiskResult:
    couch = server.couch()
    provision(couch)
    resolver_status.ensure_backlog_view(couch)
    spec = demo.Spec(seed=7, grids=grids, households_per_grid=HOUSEHOLDS, visit_months=months,
                     today=TODAY)
    lay = demo.layout(spec)
    directory = Directory(couch)
    contents = []
    for plan in lay.grids:
        directory.add_grid(plan.id, plan.name, plan.community)
        provision_grid(couch, plan.id)
        contents.append(demo.generate_grid(spec, plan, "sup"))
    grid_ids = [p.id for p in lay.grids]
    grid_dbs = [naming.grid_db_name(g, couch.prefix) for g in grid_ids]
    hub_db = couch.name(naming.HUB)
    steps: list[Disk] = []
    json_bytes = 0
    copy_cpu = (0.0, 0.0)
    rss = 0.0
    for step, pick in (("households", lambda c: c.households),
                       ("history", lambda c: [*c.visits, *c.need_events])):
        written = 0
        for content, db in zip(contents, grid_dbs, strict=True):
            docs = pick(content)
            json_bytes += sum(len(json.dumps(d, ensure_ascii=False).encode()) for d in docs)
            for i in range(0, len(docs), 1000):
                couch.bulk_docs(db, docs[i:i + 1000])
            written += len(docs)
        pid = server.embedded.pid or 0
        started, couch_before = cpu_self(), usage(pid).cpu_seconds
        copied = sum(r.copied for r in Hub(couch).copy_all(grid_ids))
        cpu = (cpu_self() - started, usage(pid).cpu_seconds - couch_before)
        if step == "history":
            copy_cpu = (cpu[0] / grids, cpu[1] / grids)
        t = time.perf_counter()
        build_views(couch, grid_dbs)
        took = time.perf_counter() - t
        rss = usage(pid).rss_mb
        server.restart()
        couch = server.couch()
        for db in [*grid_dbs, hub_db]:  # pouchdb-server opens a database when it is used
            couch.request("GET", quote(db, safe=""))
        build_views(couch, grid_dbs)  # up to date: this only opens the indexes
        steps.append(measure_disk(server.embedded, grid_dbs, hub_db, json_bytes))
        say(f"disk, {step}: {written:,} documents in {grids} grids, {copied:,} copied to the "
            f"hub (copier {cpu[0]:.1f} CPU s, CouchDB {cpu[1]:.1f} CPU s), views built in "
            f"{took:.0f} s; load {load()}")
    docs = sum(len(c.docs()) for c in contents) / grids
    return DiskResult(steps[0], steps[1].minus(steps[0]), docs, copy_cpu, rss)


# --- 2. memory and CPU in a morning storm ------------------------------------------------------


@dataclass
class Peaks:
    """Highest resident memory (MB) of the two processes while it runs."""

    pids: tuple[int, int]
    server: float = 0.0
    couch: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Peaks:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            self.server = max(self.server, usage(self.pids[0]).rss_mb)
            self.couch = max(self.couch, usage(self.pids[1]).rss_mb)


@dataclass
class Storm:
    devices: int
    completed: int
    failed: int
    wall: float
    p95_ms: float
    server_cpu: float
    couch_cpu: float
    server_peak: float
    couch_peak: float


def storm_part(s: Stack, devices: int, spread: float) -> tuple[dict[str, float], list[Storm]]:
    pids = (s.server.pid, s.embedded.pid or 0)
    idle = {"server_before": usage(pids[0]).rss_mb, "couch_before": usage(pids[1]).rss_mb}
    phones = storm_bench.setup(s, devices, max(1, devices // 2), HOUSEHOLDS)
    time.sleep(2)
    idle |= {"server": usage(pids[0]).rss_mb, "couch": usage(pids[1]).rss_mb,
             "grids": max(1, devices // 2)}
    out = []
    for n in (devices // 2, devices):
        group = phones[:n]
        for d in group:  # fresh checkpoints, as in sync_storm_bench
            d.push_id, d.pull_id = uuid.uuid4().hex, uuid.uuid4().hex
        with Peaks(pids) as peaks:
            tally, wall, before, after = asyncio.run(storm_bench.storm(s, group, spread, 10))
        lat = sorted(tally.latencies)
        out.append(Storm(n, tally.completed, len(tally.failures), wall,
                         1000 * lat[int(len(lat) * 0.95)] if lat else float("nan"),
                         after[0].cpu_seconds - before[0].cpu_seconds,
                         after[1].cpu_seconds - before[1].cpu_seconds,
                         peaks.server, peaks.couch))
        r = out[-1]
        say(f"storm of {n} phones: {r.completed} completed, {r.failed} failed in {wall:.0f} s, "
            f"p95 {r.p95_ms:.0f} ms; server {r.server_cpu:.1f} CPU s, peak {r.server_peak:.0f} "
            f"MB; pouchdb-server {r.couch_cpu:.1f} CPU s, peak {r.couch_peak:.0f} MB; "
            f"load {load()}")
    return idle, out


# --- 3. per 1,000 workers ------------------------------------------------------------------------


def report(disk: DiskResult, grids: int, months: int, idle: dict[str, float],
           storms: list[Storm], spread: float) -> None:
    per_k = 1000 / grids
    gb = 1024 ** 3
    h, v = disk.households, disk.history
    full = Disk(*(getattr(h, f) + getattr(v, f) for f in Disk.__dataclass_fields__))
    say()
    say(f"== disk, measured on pouchdb-server ({grids} grids, {disk.docs_per_grid:,.0f} "
        f"documents per grid at {months} months) ==")
    say(f"{'':34s}{'per grid':>12s}{'per 1,000 workers':>20s}")
    rows = [("JSON of the documents", full.json), ("grid databases", full.grid_data),
            ("grid view indexes (all 9)", full.grid_views), ("hub copy", full.hub_data),
            ("hub view indexes", full.hub_views), ("total on disk", full.total)]
    for label, value in rows:
        say(f"{label:34s}{value / grids / MB:9.2f} MB{value * per_k / gb:15.2f} GB")
    say(f"{'of which households (month 0)':34s}{h.total / grids / MB:9.2f} MB"
        f"{h.total * per_k / gb:15.2f} GB")
    say(f"{'growth per month of history':34s}{v.total / months / grids / MB:9.2f} MB"
        f"{v.total / months * per_k / gb:15.2f} GB")
    say(f"{'  JSON growth per month':34s}{v.json / months / grids / MB:9.2f} MB"
        f"{v.json / months * per_k / gb:15.2f} GB")
    say(f"hub copy of one grid's history: copier {disk.copy_cpu[0]:.1f} CPU s, CouchDB "
        f"{disk.copy_cpu[1]:.1f} CPU s; pouchdb-server after building every view: "
        f"{disk.couch_rss_mb:.0f} MB resident")
    say()
    say("== memory and CPU, measured (Doorstep server; CouchDB = pouchdb-server) ==")
    open_grids = idle["grids"]
    couch_per_grid = (idle["couch"] - idle["couch_before"]) / open_grids
    say(f"idle: server {idle['server']:.0f} MB; pouchdb-server {idle['couch_before']:.0f} MB "
        f"before opening {open_grids:.0f} grid databases, {idle['couch']:.0f} MB after "
        f"({couch_per_grid:.2f} MB per open grid database)")
    for r in storms:
        say(f"storm of {r.devices} phones within {spread:.0f} s: server "
            f"{1000 * r.server_cpu / r.devices:.1f} ms CPU per sync, peak {r.server_peak:.0f} MB "
            f"({r.server_peak - idle['server']:+.0f} over idle); pouchdb-server "
            f"{1000 * r.couch_cpu / r.devices:.1f} ms CPU per sync, peak {r.couch_peak:.0f} MB "
            f"({r.couch_peak - idle['couch']:+.0f} over idle); {r.failed} failed, "
            f"p95 {r.p95_ms:.0f} ms")
    big = storms[-1]
    scale = 1000 / big.devices  # a storm's extra memory taken as growing with its phones
    server_storm = max(0.0, big.server_peak - idle["server"]) * scale
    couch_storm = max(0.0, big.couch_peak - idle["couch"]) * scale
    server_cpu = big.server_cpu / big.devices
    couch_cpu = big.couch_cpu / big.devices
    say()
    say("== per 1,000 workers (1 worker = 1 grid = 1 phone), from the figures above ==")
    say(f"server memory: {idle['server'] + server_storm:.0f} MB in a storm of 1,000 phones "
        f"within {spread:.0f} s (idle {idle['server']:.0f} + {server_storm:.0f})")
    say(f"server CPU: {server_cpu * 1000:.1f} CPU s per 1,000 syncs; 1,000 phones within "
        f"{spread:.0f} s keep {server_cpu * 1000 / spread:.2f} cores busy, within an hour "
        f"{server_cpu * 1000 / 3600:.3f}")
    say(f"pouchdb-server memory: {idle['couch_before'] + couch_per_grid * 1000 + couch_storm:.0f}"
        f" MB in the same storm with 1,000 grid databases open (base "
        f"{idle['couch_before']:.0f} + 1,000 × {couch_per_grid:.2f} + storm {couch_storm:.0f}); "
        f"while it builds views: {disk.couch_rss_mb:.0f} MB measured")
    say(f"pouchdb-server CPU: {couch_cpu * 1000:.1f} CPU s per 1,000 syncs; 1,000 phones within "
        f"{spread:.0f} s keep {couch_cpu * 1000 / spread:.2f} cores busy")
    say(f"disk: {full.total * per_k / gb:.1f} GB after {months} months "
        f"({h.total * per_k / gb:.2f} GB of households, then "
        f"{v.total / months * per_k / gb:.2f} GB per month), photos not included")
    say(f"load average (1/5/15 min) at the end: {load()} on {os.cpu_count()} cores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grids", type=int, default=2, help="grids for the disk figures")
    parser.add_argument("--months", type=int, default=22, help="months of visit history")
    parser.add_argument("--devices", type=int, default=400, help="phones in the larger storm")
    parser.add_argument("--spread", type=float, default=60, help="seconds over which to start")
    args = parser.parse_args()
    if not (1 <= args.grids <= 8 and 1 <= args.months <= 36 and 4 <= args.devices <= 1000
            and 10 <= args.spread <= 300):
        raise SystemExit("--grids 1..8, --months 1..36, --devices 4..1000, --spread 10..300")
    started = time.monotonic()
    say(f"load average at the start: {load()} on {os.cpu_count()} cores")
    with stack() as s:
        idle, storms = storm_part(s, args.devices, args.spread)
    disk = disk_part(args.grids, args.months)
    report(disk, args.grids, args.months, idle, storms, args.spread)
    say(f"the run took {(time.monotonic() - started) / 60:.1f} minutes")


if __name__ == "__main__":
    main()

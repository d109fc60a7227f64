"""Console at county density: hub view build, dashboard and review queue latency, exports.

    .venv/bin/python bench/console_bench.py [--grids 27] [--months 22] [--samples 40]
                                            [--export-visits 100000]

A county is 270 grids of ~370 households with ~3,700 visits each (100k households, 1M
visits). Every grid here has that density (the demo generator, `--months` of history).
`--grids 270` is the whole county (about 55 minutes, most of it pouchdb-server building the
hub's two views over 1.26M documents); the default, 27 grids, takes about 12 minutes and
prints the county-wide figures extrapolated linearly, marked so. Either way one community
holds 18 grids, as in a real county.

Steps, each timed, all on a fresh embedded pouchdb-server in a temporary folder:
1. generate the grids (sync/demo.py) and write them straight into the hub (`_bulk_docs`);
   copy two grids through the real hub copier (sync/hub.py) for its rate;
2. build the hub views by querying them: both on the two-grid hub of step 1, `grid_rows`
   (what the pages read) on the bench hub, and `lookup` too when it is a whole county;
3. start `doorstep serve` (no background jobs: the bench copies) and time, over HTTP as a
   supervisor of one 18-grid community, the dashboard and the review queue while before
   each dashboard two grids receive a visit and are copied (as phones sync during a day),
   with `/healthz` as the floor in the same run: once with the default page wait (0.3 s,
   then the previous figures of a grid still being re-read), once always waiting (the
   worst case); then the dashboard with nothing cached (in-process) and the admin's county
   dashboard over every grid, and the server's memory once every grid is cached;
4. export `--export-visits` visits (CSV and XLSX) in a child process each, for wall time
   and peak memory (VmHWM), against the same export of one grid as the baseline.
Bounded: one server, 127.0.0.1 only, fixed sample counts; it stops by itself.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pages import HTML, signed_in, timed  # noqa: E402
from bench.report import ms, say  # noqa: E402
from bench.stack import doorstep_server, embedded_couch, usage  # noqa: E402
from sync import accounts, demo, naming  # noqa: E402
from sync import console_queries as q  # noqa: E402
from sync.couch import Couch  # noqa: E402
from sync.directory import Directory  # noqa: E402
from sync.hub import Hub  # noqa: E402
from sync.provision import provision  # noqa: E402

PASSWORD = "bench-password-1"
COUNTY_GRIDS = 270
COMMUNITY_GRIDS = 18


# --- 1. data ---------------------------------------------------------------------------------


def county_layout(spec: demo.Spec) -> demo.Layout:
    """The demo's layout, with the first community holding 18 grids as in a real county and
    the rest in a second one (the demo would spread the grids evenly)."""
    base = demo.layout(replace(spec, communities=2))
    first, second = base.communities[0][0], base.communities[1][0]
    grids = [replace(g, community=first if i < COMMUNITY_GRIDS else second)
             for i, g in enumerate(base.grids)]
    return demo.Layout(base.streets, base.communities, grids)


def load(couch: Couch, spec: demo.Spec) -> tuple[demo.Layout, int]:
    lay = county_layout(spec)
    hub = couch.name(naming.HUB)
    supervisors = {c[0]: c[3] for c in lay.communities}
    micro: dict[str, list[tuple[str, str]]] = {}
    total = 0
    t0 = time.perf_counter()
    for i, grid in enumerate(lay.grids):
        content = demo.generate_grid(spec, grid, supervisors[grid.community])
        micro[grid.id] = content.micro_grids
        docs = content.docs()
        for start in range(0, len(docs), 2000):
            couch.bulk_docs(hub, docs[start:start + 2000])
        total += len(docs)
        if (i + 1) % 6 == 0:
            rate = total / (time.perf_counter() - t0)
            say(f"  {i + 1}/{len(lay.grids)} grids, {total:,} documents ({rate:,.0f} docs/s)")
    demo.write_directory(couch, lay, micro)
    return lay, total


def copier_rate(couch: Couch, spec: demo.Spec) -> dict[str, float]:
    """The hub copier on two grids of their own (another prefix, an empty hub)."""
    own = Couch(couch.url, *couch.auth, "benchcopy_")
    provision(own)
    lay = demo.layout(replace(spec, grids=2))
    directory = Directory(own)
    docs = 0
    for grid in lay.grids:
        directory.add_grid(grid.id, grid.name, grid.community)
        provision(own)
        content = demo.generate_grid(spec, grid, "sup")
        demo.write_missing(own, naming.grid_db_name(grid.id, own.prefix), content.docs())
        docs += len(content.docs())
    hub = Hub(own)
    t = time.perf_counter()
    copied = sum(r.copied for r in hub.copy_all([g.id for g in lay.grids]))
    dt = time.perf_counter() - t
    t = time.perf_counter()
    again = sum(r.copied for r in hub.copy_all([g.id for g in lay.grids]))
    idle = time.perf_counter() - t
    say(f"hub copier: {copied:,} revisions of 2 grids copied in {dt:.1f} s "
        f"({copied / dt:,.0f} docs/s; writing them straight with _bulk_docs above: the "
        f"baseline); an idle pass over the same grids {1000 * idle:.0f} ms ({again} copied)")
    return {view: build_view(own, view, copied, "2-grid hub") for view in ("grid_rows", "lookup")}


# --- 2. views -------------------------------------------------------------------------------


def build_view(couch: Couch, view: str, docs: int, where: str) -> float:
    hub = couch.name(naming.HUB)
    t = time.perf_counter()
    couch.request("GET", f"{hub}/_design/hub/_view/{view}", params={"limit": 1}, timeout=7200)
    took = time.perf_counter() - t
    say(f"view {view} ({where}): built over {docs:,} documents in {took:.0f} s "
        f"({docs / took:,.0f} docs/s)")
    return docs / took


# --- 3. pages -------------------------------------------------------------------------------


def a_day_passes(couch: Couch, hub: Hub, lay: demo.Layout, community: str, n: int) -> str:
    """Two of the community's grids get a visit by a new worker name, copied to the hub:
    their snapshots go stale. Returns the name (the dashboard lists it once it is fresh)."""
    grids = [g for g in lay.grids if g.community == community]
    author = f"bench{n}-{uuid.uuid4().hex[:4]}"
    for grid in (grids[n % len(grids)], grids[(n + 7) % len(grids)]):
        db = naming.grid_db_name(grid.id, couch.prefix)
        rows = couch.view(couch.name(naming.HUB), "hub", "grid_rows",
                          startkey=[grid.id, "household"], endkey=[grid.id, "household", {}],
                          limit=1, reduce=False)["rows"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        couch.put(db, {"_id": f"visit:{uuid.uuid4()}", "type": "visit", "grid": grid.id,
                       "household": rows[0]["key"][2], "author": author,
                       "device": "bench", "created_at": now, "visited_at": now,
                       "outcome": "met", "visit_type": "sweep"})
        hub.copy_grid(grid.id)
    return author


def changing_day(couch: Couch, lay: demo.Layout, url: str, samples: int, label: str) -> None:
    """Dashboard and review queue of the 18-grid community while its grids keep changing."""
    community = lay.communities[0][0]
    n_grids = sum(1 for g in lay.grids if g.community == community)
    sup = signed_in(url, lay.communities[0][3], PASSWORD)
    hub = Hub(couch)
    floor = [timed(sup, "/healthz", HTML) for _ in range(samples)]
    scope = f"scope=community:{community}"
    first = timed(sup, f"/console/dashboard?{scope}", HTML)
    times: dict[str, list[float]] = {"dashboard": [], "review": []}
    fresh = 0
    for n in range(samples):
        author = a_day_passes(couch, hub, lay, community, n)
        t = time.perf_counter()
        page = sup.get(f"/console/dashboard?{scope}", headers=HTML)
        times["dashboard"].append(time.perf_counter() - t)
        fresh += f'data-worker="{author}"' in page.text
        times["review"].append(timed(sup, f"/console/review?{scope}", HTML))
    say(f"[{label}] /healthz (floor): {ms(floor)}; first dashboard after start "
        f"({n_grids} grids read): {1000 * first:.0f} ms")
    for name, values in times.items():
        say(f"[{label}] {name} of a {n_grids}-grid community, 2 grids changed before each "
            f"dashboard: {ms(values)}; p50 = "
            f"{statistics.median(values) / statistics.median(floor):.0f}× /healthz")
    say(f"[{label}] dashboards that already showed the 2 grids just changed: {fresh}/{samples}")


def cold_and_county(couch: Couch, lay: demo.Layout, url: str, samples: int) -> None:
    community = lay.communities[0][0]
    grids = [g.id for g in lay.grids if g.community == community]
    hub = Hub(couch)
    config = Directory(couch).tag_config()
    period = q.Period.now(ZoneInfo("Asia/Shanghai"), config)
    cold = []
    for _ in range(max(5, samples // 4)):
        snaps = q.Snapshots(couch, hub)
        t = time.perf_counter()
        q.dashboard(snaps.get(grids, period), config, period)
        cold.append(time.perf_counter() - t)
        snaps.close()
    say(f"dashboard computed with nothing cached ({len(grids)} grids, in-process): {ms(cold)}")
    admin = signed_in(url, "benchadmin", PASSWORD)
    county_first = timed(admin, "/console/dashboard?scope=all", HTML)
    county = [timed(admin, "/console/dashboard?scope=all", HTML)
              for _ in range(max(5, samples // 4))]
    say(f"county dashboard over {len(lay.grids)} grids: first {1000 * county_first:.0f} ms, "
        f"then {ms(county)}")
    if len(lay.grids) == COUNTY_GRIDS:
        return
    per_grid_cold = statistics.median(cold) / len(grids)
    say(f"EXTRAPOLATED to {COUNTY_GRIDS} grids: a cold county dashboard ≈ "
        f"{per_grid_cold * COUNTY_GRIDS:.1f} s (per-grid cold cost × {COUNTY_GRIDS}); warm ≈ "
        f"{statistics.median(county) / len(lay.grids) * COUNTY_GRIDS * 1000:.0f} ms")


def pages(couch: Couch, lay: demo.Layout, var: Path, samples: int) -> None:
    """Two servers in turn: pages that may show the previous figures of a grid after 0.3 s
    (the default), and pages that always wait for every re-read (the worst case)."""
    for wait, label in (("0.3", "default: wait 0.3 s"), ("600", "always wait")):
        with doorstep_server(couch, var / f"server-{wait}",
                             {"DOORSTEP_CONSOLE_WAIT": wait}) as (url, server):
            started = usage(server.pid).rss_mb
            changing_day(couch, lay, url, samples, label)
            if wait == "600":
                cold_and_county(couch, lay, url, samples)
                cached = usage(server.pid).rss_mb
                say(f"server memory: {started:.0f} MiB after start, {cached:.0f} MiB with "
                    f"every grid's snapshot cached ({len(lay.grids)} grids): "
                    f"{(cached - started) / len(lay.grids):.2f} MiB per grid")


# --- 4. export ------------------------------------------------------------------------------

EXPORT_CHILD = """
import json, resource, sys, time
from datetime import date, timezone
sys.path.insert(0, sys.argv[1])
from sync import exporter
from sync.couch import Couch
from sync.directory import Directory
url, user, pw, prefix, fmt, grids = sys.argv[2:8]
couch = Couch(url, user, pw, prefix)
spec = exporter.ExportSpec("visits", tuple(grids.split(",")), date(2000, 1, 1),
                           date(2100, 1, 1), timezone.utc)
config = Directory(couch).tag_config()
label = lambda kind, code: code
header = exporter.headers(spec, str)
body = exporter.rows(couch, couch.name("doorstep_hub"), spec, config, label)
count = [0]
def counted():
    for row in body:
        count[0] += 1
        yield row
stream = (exporter.csv_stream(header, counted()) if fmt == "csv"
          else exporter.xlsx_stream(header, counted(), "visits"))
t = time.perf_counter()
size = sum(len(chunk) for chunk in stream)
took = time.perf_counter() - t
peak = int([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1])
print(json.dumps({"rows": count[0], "bytes": size, "seconds": took, "peak_kib": peak}))
"""


def export(couch: Couch, lay: demo.Layout, visits_wanted: int) -> None:
    chosen, total = [], 0
    for g in lay.grids:
        if total >= visits_wanted:
            break
        rows = couch.view(couch.name(naming.HUB), "hub", "grid_rows", startkey=[g.id, "visit"],
                          endkey=[g.id, "visit", {}])["rows"]
        chosen.append(g.id)
        total += rows[0]["value"] if rows else 0
    for fmt in ("csv", "xlsx"):
        results = []
        for grids in ([chosen[0]], chosen):
            out = subprocess.run(
                [sys.executable, "-c", EXPORT_CHILD, str(ROOT), couch.url, couch.auth[0],
                 couch.auth[1], couch.prefix, fmt, ",".join(grids)],
                capture_output=True, text=True, timeout=3600, check=True)
            results.append(json.loads(out.stdout))
        base, big = results
        say(f"export {fmt.upper()}: {big['rows']:,} visits in {big['seconds']:.0f} s "
            f"({big['rows'] / big['seconds']:,.0f} rows/s, {big['bytes'] / 2**20:.1f} MiB), "
            f"peak memory {big['peak_kib'] / 1024:.0f} MiB; baseline {base['rows']:,} visits: "
            f"peak {base['peak_kib'] / 1024:.0f} MiB (ratio "
            f"{big['peak_kib'] / base['peak_kib']:.2f} for {big['rows'] / base['rows']:.0f}× "
            f"the rows)")


# --- main -----------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--grids", type=int, default=27)
    ap.add_argument("--months", type=int, default=22, help="visit history per household")
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--export-visits", type=int, default=100_000)
    args = ap.parse_args()
    if not COMMUNITY_GRIDS < args.grids <= COUNTY_GRIDS or not 1 <= args.samples <= 500:
        raise SystemExit("--grids must be 19-270 and --samples 1-500")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="console-bench-") as tmp, \
            embedded_couch(Path(tmp) / "couch") as (_, couch):
        var = Path(tmp)
        spec = demo.Spec(seed=2026, grids=args.grids, households_per_grid=370,
                         visit_months=args.months)
        say(f"generating {args.grids} grids × ~370 households, {args.months} months of "
            "visits, straight into the hub")
        t = time.perf_counter()
        lay, docs = load(couch, spec)
        say(f"loaded {docs:,} documents in {time.perf_counter() - t:.0f} s")
        rates = copier_rate(couch, spec)
        rates["grid_rows"] = build_view(couch, "grid_rows", docs, "the bench hub")
        if args.grids == COUNTY_GRIDS:  # a whole county: every view, measured
            build_view(couch, "lookup", docs, "the county hub")
        county_docs = docs * COUNTY_GRIDS / args.grids
        if args.grids < COUNTY_GRIDS:
            say(f"EXTRAPOLATED to {COUNTY_GRIDS} grids ({county_docs:,.0f} documents) at these "
                f"rates: grid_rows ≈ {county_docs / rates['grid_rows'] / 60:.0f} min, "
                f"lookup ≈ {county_docs / rates['lookup'] / 60:.0f} min on pouchdb-server")
        for grid in lay.grids:
            accounts.create(couch, grid.worker, "worker", password=PASSWORD,
                            grids=[grid.id])
        for cid, _, _, sup in lay.communities:
            accounts.create(couch, sup, "supervisor", password=PASSWORD,
                            communities=[cid])
        accounts.create(couch, "benchadmin", "admin", password=PASSWORD)
        pages(couch, lay, var, args.samples)
        export(couch, lay, args.export_visits)
    say(f"whole run: {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()

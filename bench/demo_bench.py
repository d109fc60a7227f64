"""Demo generation: wall time to generate a county, and to load a demo into CouchDB.

    .venv/bin/python bench/demo_bench.py [--grids 27] [--county-grids 270]

1. Generation only, county scale (270 grids, ~100k households, 3 months of visits): the
   generator's own speed, no I/O.
2. `demo.load` of `--grids` grids (default 27, ~10k households; 270 for a county) into a
   fresh embedded CouchDB, then the same load again (everything present: nothing written).
3. Baseline in the same run: the same documents written with plain `_bulk_docs` batches of
   1,000 into another prefix of the same server (what CouchDB takes without our checks).
Bounded: one generation pass and two loads; 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.embedded_couch import EmbeddedCouch  # noqa: E402
from server.settings import Settings  # noqa: E402
from sync import demo, naming  # noqa: E402
from sync.couch import Couch  # noqa: E402
from sync.provision import provision  # noqa: E402

TODAY = date(2026, 11, 20)
PER_GRID = 370


def generate_only(grids: int) -> tuple[float, int, int]:
    spec = demo.Spec(seed=1, grids=grids, households_per_grid=PER_GRID, today=TODAY)
    started = time.monotonic()
    households = docs = 0
    for grid in demo.layout(spec).grids:
        content = demo.generate_grid(spec, grid, "supervisor1")
        households += len(content.households)
        docs += len(content.docs())
    return time.monotonic() - started, households, docs


def raw_bulk(couch: Couch, spec: demo.Spec) -> tuple[float, int]:
    raw = Couch(couch.url, *couch.auth, prefix="raw_")
    lay = demo.layout(spec)
    contents = [(g, demo.generate_grid(spec, g, "supervisor1").docs()) for g in lay.grids]
    started = time.monotonic()
    count = 0
    for grid, docs in contents:
        db = naming.grid_db_name(grid.id, "raw_")
        raw.ensure_db(db)
        for i in range(0, len(docs), 1000):
            raw.bulk_docs(db, docs[i:i + 1000])
        count += len(docs)
    return time.monotonic() - started, count


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of a process (this one by default) so far."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grids", type=int, default=27, help="grids to load into CouchDB")
    parser.add_argument("--county-grids", type=int, default=270,
                        help="grids for the generation-only figure")
    args = parser.parse_args()

    gen_s, gen_households, gen_docs = generate_only(args.county_grids)
    print(f"generate only: {args.county_grids} grids, {gen_households:,} households, "
          f"{gen_docs:,} documents in {gen_s:.1f} s ({gen_docs / gen_s:,.0f} docs/s)")

    spec = demo.Spec(seed=1, grids=args.grids, households_per_grid=PER_GRID, today=TODAY)
    with tempfile.TemporaryDirectory(prefix="doorstep-bench-") as var:
        server = EmbeddedCouch(Settings(var_dir=Path(var)))
        server.start()
        try:
            couch = Couch(server.url, server.user, server.password, "bench_")
            provision(couch)
            started = time.monotonic()
            cpu = (cpu_seconds(), cpu_seconds(server.pid))
            report = demo.load(couch, spec, with_accounts=False)
            load_s = time.monotonic() - started
            load_cpu = (cpu_seconds() - cpu[0], cpu_seconds(server.pid) - cpu[1])
            started = time.monotonic()
            again = demo.load(couch, spec, with_accounts=False)
            again_s = time.monotonic() - started
            raw_s, raw_docs = raw_bulk(couch, spec)
        finally:
            server.stop()
    docs = report.households + report.visits + report.need_events
    print(f"load: {report.grids} grids, {report.households:,} households, {report.visits:,} "
          f"visits, {report.need_events:,} need events = {docs:,} documents in {load_s:.1f} s "
          f"({docs / load_s:,.0f} docs/s)")
    bound = max(*load_cpu, sum(load_cpu) / 2)  # two cores: generator and CouchDB side by side
    print(f"load CPU time: python {load_cpu[0]:.1f} s, couchdb {load_cpu[1]:.1f} s → on two "
          f"idle cores about {bound:.0f} s")
    print(f"load again (all present, {again.written} written): {again_s:.1f} s")
    print(f"baseline, plain _bulk_docs of the same documents: {raw_docs / raw_s:,.0f} docs/s; "
          f"load runs at {docs / load_s / (raw_docs / raw_s):.2f}× that")


if __name__ == "__main__":
    main()

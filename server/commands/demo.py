"""`doorstep demo`: generate a demo community (or county) into CouchDB, or as a ledger file.

    doorstep demo --grids 27 --households-per-grid 370          # into CouchDB
    doorstep demo --grids 270 --out county.xlsx                  # a ledger spreadsheet only

The same seed and flags give the same data. Writing into CouchDB adds only what is missing,
so it can be re-run or resumed; accounts get the password `doorstep-demo`.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

from server import settings as settings_mod
from server.errors import ConfigError
from server.runtime import couch_connection
from sync import demo
from sync.directory import DEFAULT_TAGS
from sync.ledger_template import household_rows, write_ledger
from sync.provision import provision


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="generate demo data (into CouchDB, or as a ledger file)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--grids", type=_positive, default=3, help="how many grids (county: 270)")
    p.add_argument("--communities", type=_positive, default=None,
                   help="how many communities (default: one per 18 grids)")
    p.add_argument("--households-per-grid", type=_positive, default=380,
                   help="about this many households per grid (±12%%)")
    p.add_argument("--visits-months", type=int, default=3, choices=range(0, 25),
                   metavar="N", help="months of visit history (0-24)")
    p.add_argument("--first-building", type=_positive, default=1,
                   help="number buildings from here (a ledger of new buildings for a demo)")
    p.add_argument("--today", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
                   help="the day the history ends (default: today)")
    p.add_argument("--out", type=Path, default=None, metavar="FILE",
                   help="write the households as a ledger spreadsheet (.xlsx or .csv) "
                   "instead of loading CouchDB")
    p.add_argument("--directory-only", action="store_true",
                   help="load only streets, communities, grids and micro-grids (to import the "
                   "ledger of the same flags into)")
    p.add_argument("--no-accounts", action="store_true",
                   help="do not create worker and supervisor accounts")
    p.set_defaults(run=run)


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def run(args: argparse.Namespace) -> int:
    spec = demo.Spec(seed=args.seed, grids=args.grids, communities=args.communities,
                     households_per_grid=args.households_per_grid,
                     visit_months=args.visits_months, first_building=args.first_building,
                     **({"today": args.today} if args.today else {}))
    if spec.community_count > spec.grids:
        raise ConfigError("--communities cannot exceed --grids (each community needs a grid)")
    started = time.monotonic()
    if args.out is not None:
        return _write_file(spec, args.out, started)
    settings = settings_mod.from_env()
    live = sys.stderr.isatty()

    def on_grid(grid: demo.GridPlan, report: demo.LoadReport) -> None:
        if live:
            sys.stderr.write(f"\r\033[Kgrid {report.grids}/{spec.grids}: "
                             f"{report.households:,} households")
            sys.stderr.flush()

    with couch_connection(settings) as couch:
        provision(couch)  # databases and the tag configuration, if this is a new install
        if args.directory_only:
            demo.load_directory(couch, spec, with_accounts=not args.no_accounts)
            print(f"directory of {spec.grids} grids in {spec.community_count} communities "
                  f"loaded in {time.monotonic() - started:.1f} s")
            return 0
        report = demo.load(couch, spec, with_accounts=not args.no_accounts, on_grid=on_grid)
    if live:
        sys.stderr.write("\r\033[K")
    print(f"{report.grids} grids, {report.households:,} households, {report.visits:,} visits, "
          f"{report.need_events:,} need events; {report.written:,} documents written in "
          f"{time.monotonic() - started:.1f} s")
    if not args.no_accounts:
        print(f"accounts worker1..worker{spec.grids} and supervisor1..supervisor"
              f"{spec.community_count}, password {demo.DEMO_PASSWORD}")
    return 0


def _write_file(spec: demo.Spec, out: Path, started: float) -> int:
    if out.suffix.lower() not in (".xlsx", ".csv"):
        raise ConfigError(f"{out.name}: the ledger file must end in .xlsx or .csv")
    labels = {key: tag["zh"] for key, tag in DEFAULT_TAGS["tags"].items()}
    households = 0

    def rows():
        nonlocal households
        for _, content in demo.ledgers(spec):
            for household in content.households:
                households += 1
                yield from household_rows(household, labels)

    try:
        count = write_ledger(out, rows())
    except OSError as exc:
        raise ConfigError(f"cannot write {out} ({exc.strerror})") from None
    print(f"wrote {households:,} households ({count:,} rows) of {spec.grids} grids to {out} "
          f"in {time.monotonic() - started:.1f} s")
    return 0

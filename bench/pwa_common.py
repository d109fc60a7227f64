"""What the field-app benchmarks share: a fresh embedded CouchDB and Doorstep server on
127.0.0.1, a 500-household grid (about 4,000 documents) from the demo generator with its
worker, and a Chromium set up as in the tests.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stack import doorstep_server, embedded_couch  # noqa: E402  (bench/ is on the path)

from sync import accounts, demo, naming  # noqa: E402
from sync.couch import Couch  # noqa: E402
from sync.directory import Directory  # noqa: E402
from sync.provision import provision  # noqa: E402

PREFIX = "benchpwa_"
GRID = "G001"
WORKER = "bench_worker"
PASSWORD = "bench-password-1"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_path() -> str | None:
    path = os.environ.get("DOORSTEP_CHROMIUM", "/usr/bin/chromium")
    return None if path in ("", "playwright") or not Path(path).exists() else path


@dataclass
class Stack:
    couch: Couch
    url: str
    db: str  # the grid's database on the server
    docs: int  # documents in it, design documents not counted
    households: int
    var: Path


def load_grid(couch: Couch, households: int, visit_months: int) -> tuple[str, int, int]:
    """One grid from the demo generator, written straight into its database."""
    d = Directory(couch)
    d.add_street("S01", "城南街道")
    d.add_community("C01", "桂花社区", "S01")
    d.add_grid(GRID, "第一网格", "C01")
    provision(couch)
    spec = demo.Spec(seed=7, grids=1, households_per_grid=households, visit_months=visit_months)
    plan = demo.GridPlan(GRID, "第一网格", "C01", WORKER, "桂花", 1)
    content = demo.generate_grid(spec, plan, "supervisor1")
    kept = content.households[:households]  # the generator varies the size by ±12 %
    ids = {h["household_id"] for h in kept}
    docs = kept + [d for d in content.visits + content.need_events if d["household"] in ids]
    db = naming.grid_db_name(GRID, couch.prefix)
    for i in range(0, len(docs), 1000):
        couch.bulk_docs(db, docs[i:i + 1000])
    accounts.create(couch, WORKER, "worker", password=PASSWORD, grids=[GRID])
    return db, len(docs) + 1, len(kept)  # + config:tags


@contextlib.contextmanager
def stack(households: int = 500, visit_months: int = 14) -> Iterator[Stack]:
    with tempfile.TemporaryDirectory(prefix="doorstep-pwa-bench-") as tmp, \
            embedded_couch(Path(tmp) / "couch", PREFIX) as (_, couch):
        var = Path(tmp)
        db, count, n_households = load_grid(couch, households, visit_months)
        with doorstep_server(couch, var / "server") as (url, _):
            yield Stack(couch, url, db, count, n_households, var)


def median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2

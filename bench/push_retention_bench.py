"""Push retention at county scale: how long the retention job takes to clear a backlog.

    .venv/bin/python bench/push_retention_bench.py [--days 365] [--per-day 800]

A county sends ~800 notifications a day. This writes `--days` of them as history (one push
request and one delivery each, all finished, spread over the days) plus a day of pending
ones, on a fresh embedded pouchdb-server, then runs sync/push_retention.py with the default
90 days as the leased job would (one bounded step after another) until the backlog is gone.
Printed: the straight `_bulk_docs` write of the same documents (the baseline), the first
build of the retention views, the rounds and documents removed per second, and a check that
nothing young or pending was touched. Bounded: one server on 127.0.0.1, fixed counts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import say  # noqa: E402
from bench.stack import embedded_couch  # noqa: E402
from sync.couch import Couch  # noqa: E402
from sync.push_outbox import (  # noqa: E402
    SENT,
    ensure_push_db,
    iso,
    new_delivery,
    outbox_db,
    push_db,
)
from sync.push_retention import KEEP_DAYS, Retention, ensure_retention_views  # noqa: E402

DAY = 86400.0
BATCH = 2000


def history(days: int, per_day: int, now: float) -> Iterator[tuple[dict, dict]]:
    """(request, delivery) pairs: finished ones over `days`, and one day of pending ones."""
    for n in range(days * per_day):
        at = now - DAY - (n / per_day) * DAY
        yield pair(f"r{n}", at, SENT)
    for n in range(per_day):
        yield pair(f"p{n}", now - n * DAY / per_day / 2, None)


def pair(key: str, at: float, state: str | None) -> tuple[dict, dict]:
    req = {"_id": f"push_request:{key}", "type": "push_request", "kind": "digest",
           "user": f"w{hash(key) % 600}", "grid": f"G{hash(key) % 270}", "at": iso(at)}
    doc = new_delivery(req, {"_id": f"subscription:{key}"}, {"title": "x"}, at,
                       scopes=["all"])
    if state:
        doc.update(state=state, attempts=1, last_attempt_at=iso(at + 1), sent_at=iso(at + 1))
    return req, doc


def write(couch: Couch, pairs: Iterator[tuple[dict, dict]]) -> tuple[int, float]:
    requests, deliveries, written = [], [], 0
    t = time.perf_counter()
    for req, doc in pairs:
        requests.append(req)
        deliveries.append(doc)
        if len(requests) == BATCH:
            couch.bulk_docs(push_db(couch), requests)
            couch.bulk_docs(outbox_db(couch), deliveries)
            written += 2 * len(requests)
            requests, deliveries = [], []
    if requests:
        couch.bulk_docs(push_db(couch), requests)
        couch.bulk_docs(outbox_db(couch), deliveries)
        written += 2 * len(requests)
    return written, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--per-day", type=int, default=800)
    args = ap.parse_args()
    if not 91 <= args.days <= 1000 or not 10 <= args.per_day <= 5000:
        raise SystemExit("--days must be 91-1000 and --per-day 10-5000")
    now = time.time()
    with tempfile.TemporaryDirectory(prefix="retention-bench-") as tmp, \
            embedded_couch(Path(tmp)) as (_, couch):
        ensure_push_db(couch)
        written, took = write(couch, history(args.days, args.per_day, now))
        write_rate = written / took
        say(f"history: {written:,} documents ({args.days} days × {args.per_day} "
            f"notifications, request + delivery, plus a day pending) written in {took:.0f} s "
            f"({write_rate:,.0f} docs/s: the baseline)")
        ensure_retention_views(couch)
        t = time.perf_counter()
        for db, view in ((push_db(couch), "requests"), (outbox_db(couch), "ended")):
            couch.view(db, "retention", view, limit=1)
        say(f"retention views built over them in {time.perf_counter() - t:.0f} s")
        job = Retention(couch, KEEP_DAYS)
        rounds, removed = 0, 0
        t = time.perf_counter()
        while rounds < 1000:
            result = job.run(now=now)
            rounds += 1
            removed += result.requests + result.deliveries
            if result.done:
                break
        took = time.perf_counter() - t
        cutoff = now - KEEP_DAYS * DAY
        expected = 2 * sum(1 for req, _ in history(args.days, args.per_day, now)
                           if req["at"] < iso(cutoff))
        say(f"retention ({KEEP_DAYS} days): {removed:,} documents removed in {rounds} "
            f"steps of at most 10 s, {took:.0f} s in all ({removed / took:,.0f} docs/s, "
            f"{removed / took / write_rate:.2f}× the write baseline)")
        left_requests = couch.request("GET", push_db(couch))[1]["doc_count"]
        left_deliveries = couch.request("GET", outbox_db(couch))[1]["doc_count"]
        say(f"older than {KEEP_DAYS} days: {expected:,}; left: {left_requests:,} requests and "
            f"{left_deliveries:,} deliveries (design documents included)")
        t = time.perf_counter()
        again = job.run(now=now)
        say(f"a round with nothing to do: {1000 * (time.perf_counter() - t):.0f} ms "
            f"({again.requests + again.deliveries} removed)")

if __name__ == "__main__":
    main()

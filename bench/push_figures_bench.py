"""Push delivery figures: the console page and /api/push/figures over a full outbox.

    .venv/bin/python bench/push_figures_bench.py [--deliveries 10000] [--samples 20]

Sets up an embedded CouchDB (a temporary folder) and a `doorstep serve` in front of it
(no background jobs, so nothing else runs), a county of 3 streets × 5 communities × 10
grids with one worker per grid (four in five with a phone subscribed) and one supervisor
per community, and writes N deliveries into the outbox as the outbox leaves them: queued
over the last 30 days, attributed by the real code (sync/push_figures.Attribution), mostly
sent, some failed, gone, expired, interrupted or still pending. Measured over HTTP:

- cold: the first request after the N deliveries were written, which builds the
  `figures/by_scope` view index on the way;
- warm: a supervisor's page for her community (7 and 30 days), an admin's county page (7 and
  30 days) and the county JSON (30 days), p50/p95 of --samples requests each;
- catching up: 1,000 more deliveries (a morning's fan-out slice), then the next page; and
  1,000 more with the warm-up job (sync/push_figures.IndexWarmer) run first, as the server
  runs it once the outbox is quiet;
- baselines in the same run: `/healthz` (HTTP alone), and the view's range read of the
  county's 30 days straight from CouchDB in this process (what the page cannot avoid).
Bounded: at most 100,000 deliveries, 50 samples; 127.0.0.1 only; it stops by itself.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pages import HTML, signed_in, timed  # noqa: E402
from bench.report import ms, say  # noqa: E402
from bench.stack import stack  # noqa: E402
from server.push.subscriptions import Subscriptions  # noqa: E402
from sync import accounts  # noqa: E402
from sync.couch import Couch  # noqa: E402
from sync.directory import Directory  # noqa: E402
from sync.provision import provision  # noqa: E402
from sync.push_figures import Attribution, IndexWarmer  # noqa: E402
from sync.push_outbox import (  # noqa: E402
    EXPIRED,
    FAILED,
    GONE,
    INTERRUPTED,
    PENDING,
    SENT,
    ensure_push_db,
    iso,
    new_delivery,
    outbox_db,
)

PASSWORD = "bench-password-1"
STREETS, COMMUNITIES, GRIDS = 3, 5, 10  # per county, per street, per community
KINDS = (("digest", 60), ("assignment", 25), ("returned_visit", 10), ("urgent_need", 5))
STATES = ((SENT, 85), (FAILED, 4), (GONE, 4), (EXPIRED, 2), (INTERRUPTED, 1), (PENDING, 4))


def county(couch: Couch) -> tuple[list[tuple[str, str]], list[str]]:
    """The hierarchy and its people; returns (grid, worker) pairs and the supervisors."""
    d = Directory(couch)
    pairs, supervisors = [], []
    for s in range(STREETS):
        d.add_street(f"s{s}", f"街道{s}")
        for c in range(COMMUNITIES):
            cid = f"c{s}{c}"
            d.add_community(cid, f"社区{s}{c}", f"s{s}")
            accounts.create(couch, f"sup-{cid}", "supervisor", password=PASSWORD,
                            communities=[cid])
            supervisors.append(f"sup-{cid}")
            for g in range(GRIDS):
                gid = f"g{s}{c}{g}"
                d.add_grid(gid, f"网格{gid}", cid)
                accounts.create(couch, f"w-{gid}", "worker", password=PASSWORD, grids=[gid])
                pairs.append((gid, f"w-{gid}"))
    accounts.create(couch, "admin-bench", "admin", password=PASSWORD)
    provision(couch)
    subs = Subscriptions(couch)
    for i, (_, worker) in enumerate(pairs):
        if i % 5:  # four in five workers have a phone with notifications on
            subs.save(worker, {"endpoint": f"https://push.invalid/{worker}",
                               "keys": {"p256dh": "x", "auth": "y"}}, device="phone")
    return pairs, supervisors


def pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([k for k, _ in weighted], [w for _, w in weighted])[0]


def deliveries(couch: Couch, pairs: list[tuple[str, str]], supervisors: list[str], n: int,
               rng: random.Random, now: float, max_age: float) -> int:
    attribution = Attribution(couch)
    batch, written = [], 0
    for i in range(n):
        kind = pick(rng, KINDS)
        grid, worker = rng.choice(pairs)
        user = f"sup-c{grid[1:3]}" if kind == "urgent_need" else worker
        request = {"_id": f"push_request:bench:{now}:{i}", "kind": kind, "user": user,
                   **({} if kind == "digest" else {"grid": grid})}
        created = now - rng.uniform(0, max_age)
        doc = new_delivery(request, {"_id": f"subscription:{user}"}, {}, created,
                           scopes=attribution.scopes(request))
        state = pick(rng, STATES)
        attempts = {FAILED: 8, EXPIRED: 5, INTERRUPTED: 1, PENDING: 2}.get(
            state, 1 if rng.random() < 0.9 else rng.randint(2, 3))
        doc.update(state=state, attempts=attempts, last_attempt_at=iso(created + 1),
                   last_status={SENT: 201, FAILED: 500, GONE: 410, EXPIRED: 503}.get(state),
                   last_error="" if state == SENT else "HTTP 500: upstream timeout")
        if state == SENT:
            doc["sent_at"] = iso(created + rng.lognormvariate(-1, 1))
        batch.append(doc)
        if len(batch) == 1000:
            written += sum(1 for r in couch.bulk_docs(outbox_db(couch), batch) if r.get("ok"))
            batch = []
    if batch:
        written += sum(1 for r in couch.bulk_docs(outbox_db(couch), batch) if r.get("ok"))
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    n = max(100, min(args.deliveries, 100_000))
    samples = max(3, min(args.samples, 50))
    rng = random.Random(7)
    with stack() as s:
        couch = s.couch
        ensure_push_db(couch)
        started = time.perf_counter()
        pairs, supervisors = county(couch)
        say(f"county: {len(pairs)} grids and workers, {len(supervisors)} supervisors "
            f"({time.perf_counter() - started:.1f} s)")
        now = time.time()
        started = time.perf_counter()
        written = deliveries(couch, pairs, supervisors, n, rng, now, 30 * 86400)
        write_s = time.perf_counter() - started
        say(f"outbox: {written} deliveries written in {write_s:.1f} s "
            f"({written / write_s:.0f}/s, the baseline for the index build)")

        sup = signed_in(s.server_url, supervisors[0], PASSWORD)
        admin = signed_in(s.server_url, "admin-bench", PASSWORD)
        community = "community:c00"
        cold = timed(admin, "/api/push/figures?scope=all&days=30")
        say(f"cold: first request, builds the view over {written} deliveries  "
            f"{cold:.1f} s ({written / cold:.0f} deliveries/s)")
        figures = admin.get("/api/push/figures?scope=all&days=30").json()
        mine = sup.get(f"/api/push/figures?scope={community}&days=30").json()
        say(f"  county 30 d: {figures['total']} deliveries; {community} 30 d: {mine['total']}; "
            f"7 d: {sup.get(f'/api/push/figures?scope={community}').json()['total']}")

        floor = [timed(sup, "/healthz") for _ in range(samples)]
        say(f"baseline /healthz                          {ms(floor)}")
        raw = []
        for _ in range(samples):
            t = time.perf_counter()
            couch.view(outbox_db(couch), "figures", "by_scope", startkey=["all", iso(
                now - 30 * 86400)], endkey=["all", "\ufff0"])
            raw.append(time.perf_counter() - t)
        say(f"baseline view read, county 30 d (in-proc)  {ms(raw)}")
        cases = [
            ("supervisor page, community, 7 d", sup, f"/console/push?scope={community}", HTML),
            ("supervisor page, community, 30 d", sup,
             f"/console/push?scope={community}&days=30", HTML),
            ("admin page, county, 7 d", admin, "/console/push?scope=all", HTML),
            ("admin page, county, 30 d", admin, "/console/push?scope=all&days=30", HTML),
            ("admin JSON, county, 30 d", admin, "/api/push/figures?scope=all&days=30", None),
        ]
        results = {}
        for label, client, path, headers in cases:
            results[label] = [timed(client, path, headers) for _ in range(samples)]
            say(f"{label:<42} {ms(results[label])}")
        base = statistics.median(floor)
        say(f"supervisor page 7 d / healthz: "
            f"{statistics.median(results[cases[0][0]]) / base:.0f}×; county 30 d page / raw "
            f"view read: {statistics.median(results[cases[3][0]]) / statistics.median(raw):.1f}×")

        more = deliveries(couch, pairs, supervisors, 1000, rng, time.time(), 3600)
        catch_up = timed(sup, f"/console/push?scope={community}", HTML)
        say(f"after {more} more deliveries, the next page (indexes them)  {catch_up:.2f} s")
        more = deliveries(couch, pairs, supervisors, 1000, rng, time.time(), 3600)
        warmer = IndexWarmer(couch)
        warmer.step()  # the job's first look: the outbox just changed
        t = time.perf_counter()
        assert warmer.step()  # quiet for a whole interval: it brings the view up to date
        warm_s = time.perf_counter() - t
        after = timed(sup, f"/console/push?scope={community}", HTML)
        say(f"after {more} more and the warm-up job ({warm_s:.2f} s in the background), "
            f"the next page  {1000 * after:.0f} ms")


if __name__ == "__main__":
    main()

"""Pull replication of one grid through the gateway versus straight from CouchDB.

    .venv/bin/python bench/gateway_pull_bench.py [--households 500] [--months 14] [--rounds 5]

One demo grid of ~500 households with 14 months of visit history (~4,000 documents) in a
fresh embedded CouchDB, a Doorstep server in front of it. PouchDB 9 in Chromium (the field
app's own replication code) pulls the whole grid into an empty IndexedDB database:

- through the gateway: a page of the server's origin, logged in as the grid's worker,
  replicating `/couch/<db>` (session check, allow-list, per-user checkpoints, gzip);
- directly: a page of CouchDB's own origin replicating `<couch>/<db>` with the admin's basic
  auth (what a phone would do if CouchDB were exposed, which it never is).

The two alternate, `--rounds` times each, in the same browser. Each round's two pulls run
back to back, so they share the machine's load at that moment; the figure is the median of
the rounds' gateway/direct ratios (the ratio of the medians is printed too). The load
average is printed because these machines are shared. Bounded: a fixed number of rounds on
127.0.0.1; each pull must finish in 120 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from datetime import date
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack import ROOT, stack, usage  # noqa: E402

from sync import demo, naming  # noqa: E402

POUCHDB = ROOT / "node_modules/pouchdb/dist/pouchdb.min.js"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

PULL = """async ([url, name, auth]) => {
    const remote = new PouchDB(url, auth ? {auth} : {});
    const local = new PouchDB(name);
    const started = performance.now();
    const result = await local.replicate.from(remote);
    const ms = performance.now() - started;
    const count = (await local.info()).doc_count;
    await local.destroy();
    return {ms, written: result.docs_written, count};
}"""


def _page(browser: Any, url: str) -> Page:
    page = browser.new_context(bypass_csp=True).new_page()
    page.goto(url)
    page.add_script_tag(path=str(POUCHDB))
    page.set_default_timeout(120_000)
    return page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--households", type=int, default=500)
    parser.add_argument("--months", type=int, default=12, help="months of visit history")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    spec = demo.Spec(seed=7, grids=1, households_per_grid=args.households,
                     visit_months=args.months, today=date(2026, 11, 20))
    chromium = os.environ.get("DOORSTEP_CHROMIUM", "playwright")
    with stack() as s, sync_playwright() as pw:
        report = demo.load(s.couch, spec)
        grid = demo.layout(spec).grids[0]
        db = naming.grid_db_name(grid.id, s.couch.prefix)
        total = len(s.couch.all_docs(db))
        print(f"grid {grid.id}: {report.households} households, {report.visits} visits, "
              f"{report.need_events} need events; {total} documents in {db}")
        browser = pw.chromium.launch(args=ARGS, **(
            {} if chromium == "playwright" else {"executable_path": chromium}))
        gateway = _page(browser, s.server_url + "/login")
        login = gateway.request.post(s.server_url + "/api/login",
                                     data={"name": grid.worker, "password": demo.DEMO_PASSWORD})
        assert login.status == 200, login.text()
        direct = _page(browser, s.couch.url + "/")
        auth = {"username": s.couch.auth[0], "password": s.couch.auth[1]}
        times: dict[str, list[float]] = {"direct": [], "gateway": []}
        server_cpu = usage(s.server.pid).cpu_seconds
        for i in range(args.rounds):
            for mode in (("direct", "gateway") if i % 2 == 0 else ("gateway", "direct")):
                page, url = ((direct, f"{s.couch.url}/{db}") if mode == "direct" else
                             (gateway, f"{s.server_url}/couch/{db}"))
                result = page.evaluate(PULL, [url, f"pull-{mode}-{i}",
                                              auth if mode == "direct" else None])
                assert result["count"] == total, (mode, result)
                times[mode].append(result["ms"] / 1000)
                print(f"round {i + 1} {mode:8s} {result['ms'] / 1000:6.2f} s "
                      f"({result['written']} documents)")
        server_cpu = usage(s.server.pid).cpu_seconds - server_cpu
        browser.close()
    d, g = statistics.median(times["direct"]), statistics.median(times["gateway"])
    paired = statistics.median(gt / dt for gt, dt in zip(times["gateway"], times["direct"],
                                                          strict=True))
    print(f"median pull of {total} documents: direct {d:.2f} s, through the gateway {g:.2f} s "
          f"(ratio of medians {g / d:.2f})")
    print(f"gateway / direct time ratio, median of {args.rounds} rounds: {paired:.2f} "
          f"(target ≤ 1.3); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"server CPU over {args.rounds} gateway pulls: {server_cpu:.1f} s "
          f"({server_cpu / args.rounds:.2f} s per pull)")


if __name__ == "__main__":
    main()

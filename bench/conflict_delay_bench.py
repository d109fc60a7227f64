"""Delay to convergence on two phones: how long a conflicting edit takes to settle everywhere.

    .venv/bin/python bench/conflict_delay_bench.py [--runs 7]

A fresh embedded CouchDB and Doorstep server on 127.0.0.1 with its background jobs (the
resolver passes every `sync.resolver.INTERVAL` seconds), a grid of a few households and two
workers of it, each logged into the real field app in its own Chromium context. Per run, on
a household of its own:

- baseline (one-way round trip): phone B online and idle; phone A, offline, changes the phone
  number in the visit form; the clock starts when A comes online and stops when B's local
  PouchDB holds A's revision;
- conflict: both offline, A and then B change the same phone number to different values; A
  comes online and its revision reaches the server; the clock starts when B comes online
  (the second conflicting push) and stops when the server holds one merged entry with no
  conflict left and both phones' local PouchDB hold exactly that revision, without
  `_conflicts`.

Timed from Python, polling the phones' databases and the server every 50 ms. Prints each
run, the median and the maximum of both, and their ratio. Bounded: at most 20 runs, each
wait gives up after 60 s, and the whole script after 15 minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, expect, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pwa_common import CHROMIUM_ARGS, chromium_path, median  # noqa: E402,I001
from stack import doorstep_server, embedded_couch  # noqa: E402,I001
from sync import accounts, naming, resolver  # noqa: E402
from sync.couch import Couch  # noqa: E402
from sync.directory import Directory  # noqa: E402
from sync.provision import provision  # noqa: E402

PREFIX = "benchconflict_"
PASSWORD = "bench-password-1"
WORKERS = ("bench_a", "bench_b")
WAIT_S = 60.0
WAIT_MS = int(WAIT_S * 1000)
POLL_S = 0.05
DEADLINE_S = 15 * 60
LOCAL_DOC = """async ([db, id]) => {
  const d = await new PouchDB('doorstep_' + db).get(id, {conflicts: true}).catch(() => null);
  return d && {rev: d._rev, conflicts: d._conflicts || []};
}"""


def household(hid: str, room: int) -> dict[str, Any]:
    return {"_id": f"household:{hid}", "type": "household", "grid": "G1", "household_id": hid,
            "address": {"building": "1", "unit": "1", "floor": 1, "room": str(room)},
            "housing": "owner", "residency": "registered", "tags": [], "phone": "",
            "members": {"m1": {"name": f"住户{room}", "relation": "户主", "status": "present",
                               "tags": []}},
            "clock": {}, "created_at": "2026-01-05T00:00:00Z"}


@contextlib.contextmanager
def server(households: int) -> Iterator[tuple[Couch, str, str]]:
    """(admin connection, server URL, grid database) on a fresh embedded CouchDB."""
    with tempfile.TemporaryDirectory(prefix="doorstep-conflict-bench-") as tmp, \
            embedded_couch(Path(tmp) / "couch", PREFIX) as (_, couch):
        d = Directory(couch)
        d.add_street("S1", "城南街道")
        d.add_community("C1", "桂花社区", "S1")
        d.add_grid("G1", "第一网格", "C1")
        provision(couch)
        db = naming.grid_db_name("G1", PREFIX)
        couch.bulk_docs(db, [household(f"G1-1-1-{101 + i}", 101 + i)
                             for i in range(households)])
        for name in WORKERS:
            accounts.create(couch, name, "worker", password=PASSWORD, grids=["G1"])
        # The resolver is what this measures: background jobs on.
        with doorstep_server(couch, Path(tmp) / "server",
                             {"DOORSTEP_BACKGROUND": "1"}) as (url, _):
            yield couch, url, db


class Phone:
    """One worker in the real field app, in a Chromium context of its own."""

    def __init__(self, browser: Browser, url: str, name: str, db: str) -> None:
        self.context = browser.new_context(
            base_url=url, viewport={"width": 360, "height": 740}, locale="zh-CN",
            timezone_id="Asia/Shanghai", service_workers="block")
        self.context.set_default_timeout(WAIT_MS)
        self.page = self.context.new_page()
        self.db = db
        self.page.goto("/app/")
        self.page.fill("input[name=name]", name)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("button[type=submit]")
        self.wait_idle()

    def wait_idle(self) -> None:
        try:
            expect(self.page.locator("header .status[data-phase=idle]")
                   ).to_be_attached(timeout=WAIT_MS)
        except AssertionError:
            status = self.page.locator("header .status").evaluate("e => ({...e.dataset})")
            raise SystemExit(f"the phone never reported idle: {status}") from None

    def online(self, on: bool) -> None:
        self.context.set_offline(not on)
        expect(self.page.locator(f"header .status[data-online={str(on).lower()}]")
               ).to_be_attached(timeout=WAIT_MS)

    def edit_phone(self, hid: str, number: str) -> None:
        """Change the household's phone number the way a worker does: in the visit form."""
        self.page.goto(f"/app/#/h/{hid}/visit")
        self.page.locator(".tile:has(input[name=outcome][value=met])").click()
        self.page.locator("details.ledger > summary").click()
        self.page.fill("input[name=phone]", number)
        self.page.click("button[type=submit]")
        expect(self.page.locator(".household-view")).to_be_visible(timeout=WAIT_MS)

    def local(self, hid: str) -> dict[str, Any] | None:
        return self.page.evaluate(LOCAL_DOC, [self.db, f"household:{hid}"])


def until(what: str, done: Callable[[], bool]) -> float:
    """Poll `done` until true; the monotonic time it first was."""
    give_up = time.monotonic() + WAIT_S
    while time.monotonic() < give_up:
        if done():
            return time.monotonic()
        time.sleep(POLL_S)
    raise SystemExit(f"gave up after {WAIT_S:.0f} s waiting for {what}")


def server_doc(couch: Couch, db: str, hid: str) -> dict[str, Any]:
    doc = couch.get(db, f"household:{hid}", conflicts=True)
    assert doc is not None
    return doc


def baseline(couch: Couch, db: str, a: Phone, b: Phone, hid: str, run: int) -> float:
    a.online(False)
    a.edit_phone(hid, f"1391111{run:04d}")
    rev = a.local(hid)["rev"]
    t0 = time.monotonic()
    a.online(True)
    t1 = until("B to receive A's edit", lambda: (b.local(hid) or {}).get("rev") == rev)
    a.wait_idle()
    return t1 - t0


def conflict(couch: Couch, db: str, a: Phone, b: Phone, hid: str, run: int) -> float:
    a.online(False)
    b.online(False)
    a.edit_phone(hid, f"1392222{run:04d}")
    b.edit_phone(hid, f"1393333{run:04d}")
    a_rev = a.local(hid)["rev"]
    a.online(True)
    until("A's edit on the server", lambda: server_doc(couch, db, hid)["_rev"] == a_rev
          or a_rev in server_doc(couch, db, hid).get("_conflicts", []))
    t0 = time.monotonic()
    b.online(True)

    def settled() -> bool:
        doc = server_doc(couch, db, hid)
        if doc.get("_conflicts") or doc["phone"] not in (f"1392222{run:04d}",
                                                        f"1393333{run:04d}"):
            return False
        return all(p.local(hid) == {"rev": doc["_rev"], "conflicts": []} for p in (a, b))

    t1 = until("the merged entry on both phones", settled)
    a.wait_idle()
    b.wait_idle()
    return t1 - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    runs = max(1, min(args.runs, 20))
    started = time.monotonic()
    with server(2 * runs) as (couch, url, db), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS,
                                     headless=True)
        try:
            a = Phone(browser, url, WORKERS[0], db)
            b = Phone(browser, url, WORKERS[1], db)
            print(f"resolver interval {resolver.INTERVAL:.1f} s; {runs} runs")
            print("run  baseline A→B (s)  conflict to convergence (s)")
            base, conf = [], []
            for run in range(runs):
                if time.monotonic() - started > DEADLINE_S:
                    print("stopping: the script's time limit is reached")
                    break
                base.append(baseline(couch, db, a, b, f"G1-1-1-{101 + 2 * run}", run))
                conf.append(conflict(couch, db, a, b, f"G1-1-1-{102 + 2 * run}", run))
                print(f"{run + 1:>3}  {base[-1]:>16.2f}  {conf[-1]:>27.2f}")
        finally:
            browser.close()
    print(f"baseline  median {median(base):.2f} s  max {max(base):.2f} s")
    print(f"conflict  median {median(conf):.2f} s  max {max(conf):.2f} s")
    print(f"conflict ÷ baseline (medians) {median(conf) / median(base):.1f}")


if __name__ == "__main__":
    main()

"""First sync of a 500-household grid (about 4,000 documents) into Chromium's IndexedDB.

    .venv/bin/python bench/pwa_first_sync_bench.py [--runs 3] [--no-slow]

A fresh embedded CouchDB and Doorstep server (127.0.0.1), the grid from the demo generator,
a real Chromium. Every run starts from an empty browser profile, logs in, and fetches the
grid through the replication gateway. Measured per run: wall time in the page and bytes on
the wire (CDP: encoded response bytes including headers, and request bodies), for

- raw: the bound — one `_all_docs?include_docs=true` and one `bulkDocs(new_edits: false)`;
- pouchdb default: `PouchDB.replicate(remote, local)` with default settings;
- pouchdb batch 500: the same with `batch_size: 500`;
- doorstep: the app's first sync (pwa/js/sync.js): until the ledger is usable, until every
  document is stored with checkpoints set, and until the live sync reports idle.

Then the same under Chromium's network emulation of slow 3G (400 kbps each way, 400 ms
round trip), one run each. Bounded: every scenario gives up after 300 s.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pwa_common import CHROMIUM_ARGS, PASSWORD, WORKER, Stack, chromium_path, median, stack  # noqa: E402,I001

GIVE_UP_MS = 300_000
SLOW_3G = {"offline": False, "latency": 400, "downloadThroughput": 400_000 / 8,
           "uploadThroughput": 400_000 / 8}

COUNT = """const count = async (db) => (await db.allDocs()).rows
    .filter((r) => !r.id.startsWith('_design/')).length;"""

SCENARIOS = {
    "raw": """async ({db}) => {
        const t0 = performance.now();
        const res = await fetch(`/couch/${db}/_all_docs?include_docs=true`,
                                {credentials: 'same-origin'});
        const rows = (await res.json()).rows.filter((r) => !r.id.startsWith('_design/'));
        const local = new PouchDB('raw');
        await local.bulkDocs({docs: rows.map((r) => r.doc), new_edits: false});
        return {done: performance.now() - t0, docs: await count(local)};
    }""",
    "pouchdb default": """async ({db}) => {
        const remote = new PouchDB(`${location.origin}/couch/${db}`, {skip_setup: true});
        const local = new PouchDB('plain');
        const t0 = performance.now();
        await PouchDB.replicate(remote, local);
        return {done: performance.now() - t0, docs: await count(local)};
    }""",
    "pouchdb batch 500": """async ({db}) => {
        const remote = new PouchDB(`${location.origin}/couch/${db}`, {skip_setup: true});
        const local = new PouchDB('batched');
        const t0 = performance.now();
        await PouchDB.replicate(remote, local, {batch_size: 500});
        return {done: performance.now() - t0, docs: await count(local)};
    }""",
    "doorstep": """async ({db}) => {
        const { GridSync } = await import('/app/js/sync.js');
        const local = new PouchDB('doorstep_bench');
        const sync = new GridSync(local, `${location.origin}/couch/${db}`);
        await sync.readMeta();
        const t0 = performance.now();
        let ledger = null;
        await sync.initialLoad(async () => { ledger = performance.now() - t0; });
        const loaded = performance.now() - t0;
        const idle = new Promise((resolve) => sync.addEventListener('state', () => {
            if (sync.state.phase === 'idle') resolve();
        }));
        sync.startLive();
        await idle;
        const done = performance.now() - t0;
        sync.stopLive();
        return {ledger, loaded, done, docs: await count(local)};
    }""",
}


@dataclass
class Wire:
    """Bytes and requests to /couch/ seen by the DevTools protocol."""

    down: int = 0
    up: int = 0
    requests: int = 0
    urls: dict[str, str] = field(default_factory=dict)

    def attach(self, context: BrowserContext, page: Page) -> None:
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.loadingFinished", self._finished)
        self.cdp = cdp

    def _sent(self, event: dict) -> None:
        url = event["request"]["url"]
        if "/couch/" in url:
            self.urls[event["requestId"]] = url
            self.requests += 1
            self.up += len((event["request"].get("postData") or "").encode())

    def _finished(self, event: dict) -> None:
        if event["requestId"] in self.urls:
            self.down += int(event["encodedDataLength"])


def one_run(browser_launch, s: Stack, scenario: str, slow: bool) -> dict:
    context = browser_launch()
    try:
        login = context.request.post(f"{s.url}/api/login",
                                     data={"name": WORKER, "password": PASSWORD})
        assert login.ok, login.text()
        page = context.new_page()
        page.goto(f"{s.url}/app/")
        page.wait_for_function("typeof PouchDB === 'function'")
        wire = Wire()
        wire.attach(context, page)
        if slow:
            wire.cdp.send("Network.emulateNetworkConditions", SLOW_3G)
        script = f"""async (args) => {{ {COUNT} return Promise.race([
            ({SCENARIOS[scenario]})(args),
            new Promise((_, no) => setTimeout(() => no(new Error('gave up')), {GIVE_UP_MS})),
        ]); }}"""
        result = page.evaluate(script, {"db": s.db})
        page.wait_for_timeout(200)  # the last loadingFinished events
        assert result["docs"] == s.docs, (scenario, result["docs"], s.docs)
        return {**result, "down": wire.down, "up": wire.up, "requests": wire.requests}
    finally:
        context.close()


def report(title: str, rows: dict[str, list[dict]]) -> None:
    base = median([r["done"] for r in rows["raw"]])
    base_bytes = median([r["down"] + r["up"] for r in rows["raw"]])
    print(f"\n{title}")
    print(f"{'scenario':<20}{'time ms':>10}{'× raw':>8}{'KB down':>10}{'KB up':>8}"
          f"{'× raw':>8}{'requests':>10}   notes")
    for name, runs in rows.items():
        t = median([r["done"] for r in runs])
        down = median([r["down"] for r in runs])
        up = median([r["up"] for r in runs])
        notes = ""
        if name == "doorstep":
            notes = (f"ledger usable {median([r['ledger'] for r in runs]):.0f} ms, all stored "
                     f"{median([r['loaded'] for r in runs]):.0f} ms, idle = time")
        print(f"{name:<20}{t:>10.0f}{t / base:>8.2f}{down / 1024:>10.0f}{up / 1024:>8.0f}"
              f"{(down + up) / base_bytes:>8.2f}{median([r['requests'] for r in runs]):>10.0f}"
              f"   {notes}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, choices=range(1, 11))
    parser.add_argument("--no-slow", action="store_true", help="skip the slow 3G runs")
    args = parser.parse_args()
    with stack() as s, sync_playwright() as p:
        print(f"grid: {s.households} households, {s.docs} documents")
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)

        def launch() -> BrowserContext:
            return browser.new_context(service_workers="block", bypass_csp=True,
                                       viewport={"width": 360, "height": 740})

        fast = {name: [one_run(launch, s, name, False) for _ in range(args.runs)]
                for name in SCENARIOS}
        report(f"loopback, median of {args.runs} runs", fast)
        if not args.no_slow:
            slow = {name: [one_run(launch, s, name, True)] for name in SCENARIOS}
            report("slow 3G (400 kbps, 400 ms round trip), one run", slow)
        browser.close()


if __name__ == "__main__":
    main()

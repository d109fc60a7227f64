"""Cold start offline to the first household list painted, and search over 500 households.

    .venv/bin/python bench/pwa_cold_start_bench.py [--runs 5]

A fresh embedded CouchDB and Doorstep server (127.0.0.1), a 500-household grid (about 4,000
documents) from the demo generator, a real Chromium with a persistent profile at 360 px. The
worker logs in and syncs once; then the network goes away and the app is opened again:

- tab reopened: a new tab in the running browser (service worker possibly still alive);
- browser restarted: the whole browser closed and started offline (worker cold too).

Measured from navigation start (performance marks the app sets): the shell's HTML from the
service worker, all local documents read from IndexedDB, the index built, the list painted.
Baseline in the same page: one `allDocs({include_docs: true})` of the same database, the
least work any list of this data needs. Search: each query typed into the search box; the
time of the input handler (filter and DOM) and until the next frame, against the filter
alone. Bounded: at most 10 runs, 60 s per page load.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, Playwright, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pwa_common import CHROMIUM_ARGS, PASSWORD, WORKER, Stack, chromium_path, median, stack  # noqa: E402,I001

PHONE = {"width": 360, "height": 740}
TIMINGS = """() => {
    const at = (name) => performance.getEntriesByName(name)[0]?.startTime ?? null;
    const nav = performance.getEntriesByType('navigation')[0];
    return {shell: nav.responseEnd, dom: nav.domContentLoadedEventEnd,
            read: at('doorstep:data-read'), index: at('doorstep:index-built'),
            painted: at('doorstep:list-painted'), rows: document.querySelectorAll('a.row').length};
    // painted: the first screenfuls of the list; the rest is added in slices right after.
}"""
BASELINE = """async (db) => {
    const local = new PouchDB('doorstep_' + db);
    const t0 = performance.now();
    const res = await local.allDocs({include_docs: true});
    return {ms: performance.now() - t0, docs: res.rows.length};
}"""
SEARCH = """async (query) => {
    const input = document.querySelector('input.search');
    const results = document.querySelector('.results');
    input.value = query;
    const t0 = performance.now();
    input.dispatchEvent(new Event('input'));
    const handler = performance.now() - t0;
    await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
    const frame = performance.now() - t0;
    return {handler, frame, filter: Number(results.dataset.filterMs),
            rows: document.querySelectorAll('a.row').length};
}"""


def open_browser(p: Playwright, profile: Path, offline: bool) -> BrowserContext:
    context = p.chromium.launch_persistent_context(
        str(profile), executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True,
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN",
        timezone_id="Asia/Shanghai", service_workers="allow", offline=offline,
        bypass_csp=True)  # the waits below compile code in the page
    context.set_default_timeout(60_000)
    return context


def cold_open(page: Page, s: Stack) -> dict:
    response = page.goto(f"{s.url}/app/")
    assert response is not None and response.from_service_worker
    page.wait_for_function("performance.getEntriesByName('doorstep:list-painted').length > 0")
    page.wait_for_selector(".results[data-complete=true]", state="attached")
    t = page.evaluate(TIMINGS)
    assert t["rows"] == s.households, t
    return t


def first_login(p: Playwright, profile: Path, s: Stack) -> None:
    context = open_browser(p, profile, offline=False)
    page = context.pages[0]
    page.goto(f"{s.url}/app/")
    page.fill("input[name=name]", WORKER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("header .status[data-phase=idle]", state="attached", timeout=120_000)
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, choices=range(1, 11))
    args = parser.parse_args()
    with stack() as s, sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        profile = Path(tmp) / "profile"
        print(f"grid: {s.households} households, {s.docs} documents")
        first_login(p, profile, s)

        restarts = []
        tabs = []
        for _ in range(args.runs):
            context = open_browser(p, profile, offline=True)
            restarts.append(cold_open(context.pages[0], s))
            for _ in range(2):
                page = context.new_page()
                tabs.append(cold_open(page, s))
                page.close()
            context.close()

        context = open_browser(p, profile, offline=True)
        page = context.pages[0]
        cold_open(page, s)
        baseline = [page.evaluate(BASELINE, s.db) for _ in range(args.runs)]
        assert baseline[0]["docs"] >= s.docs
        head = page.locator("a.row .head").first.inner_text()
        queries = {"a full name": head, "a surname": head[0], "a building": "3栋",
                   "an address": "3-2-5", "nothing": "zzzz"}
        search = {label: [page.evaluate(SEARCH, q) for _ in range(args.runs)]
                  for label, q in queries.items()}
        page.evaluate(SEARCH, "")
        context.close()

    base = median([b["ms"] for b in baseline])
    print(f"\ncold start offline, median of {args.runs} (browser) and {2 * args.runs} (tab) runs")
    print(f"{'':<20}{'shell':>8}{'DOM':>8}{'IDB read':>10}{'index':>8}{'painted':>9}"
          f"{'× allDocs':>11}")
    for label, runs in (("browser restarted", restarts), ("tab reopened", tabs)):
        m = {k: median([r[k] for r in runs]) for k in ("shell", "dom", "read", "index",
                                                       "painted")}
        print(f"{label:<20}{m['shell']:>8.0f}{m['dom']:>8.0f}{m['read']:>10.0f}"
              f"{m['index']:>8.0f}{m['painted']:>9.0f}{m['painted'] / base:>11.1f}")
    print(f"baseline: allDocs(include_docs) of {baseline[0]['docs']} documents: {base:.0f} ms")

    print(f"\nsearch over {s.households} households, median of {args.runs}, ms")
    print(f"{'query':<16}{'rows':>6}{'filter':>9}{'handler':>9}{'to frame':>10}")
    for label, runs in search.items():
        print(f"{label:<16}{runs[0]['rows']:>6}{median([r['filter'] for r in runs]):>9.2f}"
              f"{median([r['handler'] for r in runs]):>9.1f}"
              f"{median([r['frame'] for r in runs]):>10.1f}")


if __name__ == "__main__":
    main()

"""Syncs cut in the middle (requests aborted by routing) resume later: no duplicate, no loss,
and the header never claims a sync finished while it was failing.

Service workers are blocked here: Playwright's routing misses some requests that pass through
a worker's fetch handler, and ours lets every /couch request through untouched anyway.
"""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, Route, expect

from tests.pwa.conftest import Field, Phone
from tests.pwa.helpers import (
    days_ago,
    household,
    log_in,
    record_visit,
    status,
    visit,
    wait_for,
    wait_idle,
)


def wait_until(page: Page, condition: Callable[[], bool], timeout_ms: int = 20_000) -> None:
    for _ in range(timeout_ms // 100):
        if condition():
            return
        page.wait_for_timeout(100)
    raise AssertionError("condition not met in time")


def local_count(page: Page, db: str) -> int:
    return page.evaluate(
        "db => new PouchDB('doorstep_' + db).allDocs().then(r => r.rows.length)", db)


def server_count(f: Field) -> int:
    return len([r for r in f.couch.all_docs(f.db) if not r["id"].startswith("_design/")])


def test_push_cut_after_the_server_wrote_resumes_without_duplicates(
        field_server: Field, phone: Phone) -> None:
    f = field_server
    hids = [f"G1-1-1-10{i}" for i in range(1, 4)]
    f.put(*[household(h, room=f"10{i + 1}") for i, h in enumerate(hids)])
    page = phone.open(service_workers="block")
    log_in(page, f.worker)
    wait_idle(page)
    synced_at = status(page)["lastSync"]

    # First no data gets through at all (a signal without a connection): visits still save.
    phone.context.route("**/couch/**", lambda route: route.abort("internetdisconnected"))
    for hid in hids:
        record_visit(page, hid, notes=f"visit {hid}")
    expect(page.locator("header .status[data-phase=error]")).to_be_attached()
    assert status(page)["pendingVisits"] == "3"
    assert status(page)["lastSync"] == synced_at

    # Then the push reaches the server, but the phone never hears back, and from then on
    # nothing gets through.
    cuts: list[str] = []

    def cut(route: Route) -> None:
        if cuts:
            route.abort("connectionreset")
        elif route.request.url.endswith("/_bulk_docs"):
            route.fetch()
            cuts.append(route.request.url)
            route.abort("connectionreset")
        else:
            route.continue_()

    phone.context.unroute("**/couch/**")
    phone.context.route("**/couch/**", cut)
    page.locator("header button.sync-now").click()
    wait_until(page, lambda: len(cuts) > 0)
    assert len([v for v in f.all("visit") if v["author"] == f.worker]) == 3  # the server has them
    expect(page.locator("header .status[data-phase=error]")).to_be_attached()
    assert status(page)["lastSync"] == synced_at  # not reported as synced
    assert status(page)["pendingVisits"] == "3"  # not confirmed, so still counted
    expect(page.locator("header .error")).to_contain_text("自动重试")

    phone.context.unroute("**/couch/**")
    page.locator("header button.sync-now").click()
    wait_idle(page)
    assert status(page)["pendingTotal"] == "0"
    assert status(page)["lastSync"] > synced_at
    mine = [v for v in f.all("visit") if v["author"] == f.worker]
    assert sorted(v["household"] for v in mine) == hids
    assert all(v["_rev"].startswith("1-") for v in mine)  # written once, never again


def test_first_sync_cut_mid_load_resumes_and_loses_nothing(
        field_server: Field, phone: Phone) -> None:
    f = field_server
    docs = []
    for i in range(120):
        hid = f"G1-2-1-{i:03d}"
        docs.append(household(hid, "2", "1", 1 + i // 10, f"{i:03d}"))
        docs.append(visit(hid, days_ago(5 + i % 50)))
    f.put(*docs)
    page = phone.open(service_workers="block")

    # The history range (visits, reviews, needs) fails once, after the ledger arrived; later
    # one _bulk_get fails once, once `cut_next_bulk_get` is set. Routes are installed up front:
    # one added while requests fly may miss the first of them.
    failed: list[str] = []
    got: list[str] = []
    cut_next_bulk_get = False
    away = False

    def cut(route: Route) -> None:
        url = route.request.url
        if away:
            route.abort("internetdisconnected")
        elif not failed and "_all_docs" in url and "startkey=%22household%3A%EF%BF%B0%22" in url:
            failed.append(url)
            route.abort("connectionreset")
        elif cut_next_bulk_get and not got and "/_bulk_get" in url:
            got.append(url)
            route.abort("connectionreset")
        else:
            route.continue_()

    phone.context.route("**/couch/**", cut)
    log_in(page, f.worker)
    expect(page.locator("header .status[data-phase=error]")).to_be_attached()
    assert failed
    assert status(page)["lastSync"] == ""
    # The ledger is in: the list is usable while the history is missing.
    expect(page.locator("a.row")).to_have_count(120)

    page.locator("header button.sync-now").click()
    wait_idle(page)
    assert local_count(page, f.db) == server_count(f) == 241  # households, visits, config

    # A pull cut in the middle of a batch: new visits arrive while the phone has no
    # connection, the _bulk_get that fetches them dies, and the sync retries by itself.
    away = True
    f.put(*[visit(f"G1-2-1-{i:03d}", days_ago(1)) for i in range(120)])
    away = False
    cut_next_bulk_get = True
    page.locator("header button.sync-now").click()
    wait_for(page, f"() => new PouchDB('doorstep_{f.db}').allDocs()"
                   ".then((r) => r.rows.length === 361)")
    assert got
    wait_idle(page)
    assert local_count(page, f.db) == server_count(f) == 361
    assert status(page)["pendingTotal"] == "0"


def test_a_document_the_server_refuses_stays_pending_with_its_reason(
        field_server: Field, phone: Phone) -> None:
    f = field_server
    f.put(household("G1-1-2-101", "1", "2", 1, "101"))
    page = phone.open(service_workers="block")
    log_in(page, f.worker)
    wait_idle(page)
    # What a faulty app version might write: a visit signed with someone else's name.
    page.evaluate("""async ([db, hid]) => {
        await new PouchDB('doorstep_' + db).put({
            _id: 'visit:forged', type: 'visit', grid: 'G1', household: hid, author: 'someone_else',
            device: 'dev-x', created_at: '2026-11-20T09:00:00Z', visited_at: '2026-11-20T09:00:00Z',
            outcome: 'met', visit_type: 'sweep'});
    }""", [f.db, "G1-1-2-101"])
    record_visit(page, "G1-1-2-101", notes="正常记录")
    page.locator("header button.sync-now").click()
    error = page.locator("header .error[data-kind=refused]")
    expect(error).to_contain_text("服务器拒收了 1 项修改")
    assert status(page)["pendingVisits"] == "1"  # the forged one, not the real one
    assert status(page)["lastSync"]
    assert [v["notes"] for v in f.all("visit")] == ["正常记录"]
    page.click("nav.tabs a[href='#/me']")
    expect(page.locator("ul.denied")).to_contain_text("visit:forged")

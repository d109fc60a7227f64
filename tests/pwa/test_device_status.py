"""A phone whose uploads fail tells the server what is waiting on it, and the supervisor's
dashboard shows it: the real field app in Chromium (service worker on), the real server and
the embedded CouchDB; only the replication's writes are cut, by routing."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
from playwright.sync_api import Page, Request, Route, expect

from sync import accounts
from tests.conftest import unique_name
from tests.console.test_sync_health import sync_health
from tests.pwa.conftest import PASSWORD, Field, Phone
from tests.pwa.helpers import household, log_in, record_visit, wait_controlled, wait_idle

PUSHES = ("**/couch/*/_revs_diff", "**/couch/*/_bulk_docs")


def dashboard_row(supervisor: httpx.Client, worker: str, device: str,
                  wanted: Callable[[dict[str, str]], bool], page: Page) -> dict[str, str]:
    """The worker's device row once it satisfies `wanted` (reports take a moment)."""
    row: dict[str, str] = {}
    for _ in range(150):
        row = sync_health(supervisor, "community:C1").get((worker, device), {})
        if row and wanted(row):
            return row
        page.wait_for_timeout(200)
    raise AssertionError(f"the dashboard never showed what was expected; last row: {row}")


def test_a_phone_whose_uploads_fail_shows_its_pending_visits_on_the_dashboard(
        field_server: Field, phone: Phone) -> None:
    f = field_server
    hids = [f"G1-1-1-10{i}" for i in range(1, 4)]
    f.put(*[household(h, room=f"10{i + 1}") for i, h in enumerate(hids)])
    boss = unique_name("sup")
    accounts.create(f.couch, boss, "supervisor", password=PASSWORD, communities=["C1"])
    supervisor = httpx.Client(base_url=f.server.url, timeout=30)
    assert supervisor.post("/api/login", json={"name": boss, "password": PASSWORD}
                           ).status_code == 200
    sw = supervisor.get("/app/sw.js").text
    version = re.search(r'self\.DOORSTEP_VERSION = "(\w+)"', sw).group(1)

    page = phone.open()  # with the service worker: it is what knows the app's version
    log_in(page, f.worker)
    wait_idle(page)
    wait_controlled(page)
    device = page.evaluate("localStorage.getItem('doorstep.device')")
    reports: list[Request] = []
    page.on("request", lambda r: reports.append(r) if r.url.endswith(
        "/api/device-status") else None)

    cut: list[str] = []

    def refuse(route: Route) -> None:
        cut.append(route.request.url)
        route.abort("connectionreset")

    for pattern in PUSHES:
        phone.context.route(pattern, refuse)
    for hid in hids[:2]:
        record_visit(page, hid)
    expect(page.locator("header .status[data-phase=error]")).to_be_attached()
    row = dashboard_row(supervisor, f.worker, device,
                        lambda r: r["data-pending"] == "2" and r.get("data-error"), page)
    assert cut  # the uploads were tried, and failed
    assert row["data-error"] == "network" and "连接中断" in row["text"]
    assert "2 项（走访 2）· 截至" in row["text"]
    assert version in row["text"]
    assert not f.all("visit")  # nothing reached the server

    # No signal: the third visit is saved, and nothing is reported until the signal is back.
    phone.context.set_offline(True)
    record_visit(page, hids[2])
    expect(page.locator("header .status[data-phase=offline]")).to_be_attached()
    sent = len(reports)
    page.wait_for_timeout(2500)
    assert len(reports) == sent
    assert sync_health(supervisor, "community:C1")[(f.worker, device)]["data-pending"] == "2"
    phone.context.set_offline(False)
    dashboard_row(supervisor, f.worker, device, lambda r: r["data-pending"] == "3", page)

    # The uploads get through: once the sync is confirmed the dashboard says nothing waits.
    for pattern in PUSHES:
        phone.context.unroute(pattern)
    page.locator("header button.sync-now").click()
    wait_idle(page)
    row = dashboard_row(supervisor, f.worker, device, lambda r: r["data-pending"] == "0", page)
    assert "data-error" not in row and "data-late" not in row
    assert "全部已上传 · 截至" in row["text"]
    assert sorted(v["household"] for v in f.all("visit")) == hids
    assert {v["app_version"] for v in f.all("visit")} == {version}

"""The console and the real field app (/app/) side by side in Chromium: what the office
decides reaches the worker's phone through the app's own live sync, and what the worker
does there comes back to the console."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.console.conftest import PASSWORD, Office, console, iso, reload_until
from tests.console.docs_factory import household, visit

PHONE = {"width": 360, "height": 740}


@pytest.fixture
def app_page(browser: Browser, office: Office) -> Iterator[Page]:
    """Worker w1's field app, logged in and synced."""
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport=PHONE,
                                  base_url=office.server.url)
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto("/app/")
    page.fill("input[name=name]", office.names["w1"])
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    idle(page)
    try:
        yield page
    finally:
        context.close()


def idle(page: Page) -> None:
    """Every grid has finished a sync without error (the app's header says so)."""
    expect(page.locator("header .status[data-phase=idle]")).to_be_attached(timeout=30_000)


def test_returned_in_the_console_amended_in_the_app_approved(
        browser: Browser, office: Office, app_page: Page) -> None:
    hid = f"G1-f{uuid.uuid4().hex[:5]}"
    first = visit("G1", hid, iso(0.3), author=office.names["w1"], notes="家中无异常")
    office.put("G1", household("G1", hid), first)
    office.copy("G1")
    page = console(browser, office, "sup1")
    page.goto(f"{office.server.url}/console/visit/G1/{first['_id']}")
    page.fill("textarea[name=reason]", "未记录老人身体状况，请补充")
    page.click("#return")
    expect(page.locator(".flash")).to_contain_text("已退回")

    app = app_page  # the app's live sync brings the review as a task
    app.click("nav.tabs a[href='#/tasks']")
    task = app.locator(f"li.task.returned[data-visit='{first['_id']}']")
    expect(task).to_contain_text("未记录老人身体状况，请补充")
    task.locator("a.button").click()
    app.fill("textarea[name=notes]", "家中无异常；老人血压偏高，已提醒按时服药")
    app.click("button[type=submit]")
    expect(app.locator(f"li.visit[data-visit='{first['_id']}']")).to_contain_text("已补正")
    idle(app)

    (amendment,) = [v for v in office.all("G1", "visit") if v.get("amends") == first["_id"]]
    reload_until(page, f"{office.server.url}/console/review?grid=G1",
                 f'tr[data-visit="{amendment["_id"]}"]', "the amendment in the queue")
    page.locator(f'tr[data-visit="{amendment["_id"]}"] a', has_text="查看").click()
    expect(page.locator("#amends")).to_contain_text("未记录老人身体状况")
    page.click("#approve")
    expect(page.locator(".flash")).to_contain_text("已通过")
    decided = {r["visit"]: r["decision"] for r in office.all("G1", "review")}
    assert decided[first["_id"]] == "returned" and decided[amendment["_id"]] == "approved"
    page.context.close()


def test_an_assignment_appears_in_the_field_app(browser: Browser, office: Office,
                                                 app_page: Page) -> None:
    hid = f"G1-a{uuid.uuid4().hex[:5]}"
    office.put("G1", household("G1", hid, building="a8", room="801"))
    office.copy("G1")
    page = console(browser, office, "sup1")
    page.goto(f"{office.server.url}/console/assignments/new?grid=G1&building=a8")
    page.check(f'input[name=household][value="{hid}"]')
    page.select_option("select[name=worker]", office.names["w1"])
    page.fill("input[name=reason]", "住户反映漏水，请上门核实")
    page.click("#assign")
    expect(page.locator("#assignments")).to_contain_text(hid)

    app_page.goto(f"/app/#/h/{hid}")
    expect(app_page.locator(".household-view .card.assignment")).to_contain_text(
        "住户反映漏水，请上门核实")
    page.context.close()


def test_a_moved_household_leaves_the_field_app_of_the_old_grid(
        browser: Browser, office: Office, app_page: Page) -> None:
    hid = f"G1-v{uuid.uuid4().hex[:5]}"
    office.put("G1", household("G1", hid, name="吴迁", building="v9"))
    app_page.goto(f"/app/#/h/{hid}")
    expect(app_page.locator(".household-view h2.address")).to_be_visible()

    page = console(browser, office, "sup1")
    page.goto(f"{office.server.url}/console/household/G1/{hid}")
    page.select_option("#move-form select[name=to]", "G2")
    page.click("#move")
    page.wait_for_url(f"**/console/household/G2/{hid}?done=moved")

    app_page.goto("/app/#/")
    rows = app_page.locator(f"a.row[data-household='{hid}']")
    expect(rows).to_have_count(0, timeout=30_000)
    page.context.close()

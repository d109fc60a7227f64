"""Returned visits become tasks and are amended by a new visit; unsynced visits are corrected
in place; logout wipes the phone, asking first when something was not uploaded."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.pwa.conftest import Field, Phone
from tests.pwa.helpers import (
    days_ago,
    household,
    log_in,
    open_household,
    record_visit,
    review,
    status,
    visit,
    wait_controlled,
    wait_idle,
)


def logged_in(phone: Phone, f: Field) -> Page:
    page = phone.open()
    log_in(page, f.worker)
    wait_idle(page)
    return page


def test_a_returned_visit_is_a_task_and_its_amendment_names_it(field_server: Field,
                                                               phone: Phone) -> None:
    f = field_server
    returned = visit("G1-5-1-101", days_ago(2), author=f.worker, notes="家中无异常")
    f.put(household("G1-5-1-101", "5", "1", 1, "101"), returned,
          review(returned, "returned", "未记录老人身体状况，请补充"))
    page = logged_in(phone, f)
    expect(page.locator("nav.tabs .badge")).to_have_text("1")

    page.click("nav.tabs a[href='#/tasks']")
    task = page.locator(f"li.task.returned[data-visit='{returned['_id']}']")
    expect(task).to_contain_text("未记录老人身体状况，请补充")
    task.locator("a.button").click()
    expect(page.locator(".banner.returned")).to_contain_text("未记录老人身体状况，请补充")
    expect(page.locator("input[name=outcome][value=met]")).to_be_checked()  # as it was
    page.fill("textarea[name=notes]", "家中无异常；老人血压偏高，已提醒按时服药")
    page.click("button[type=submit]")

    expect(page.locator("nav.tabs .badge")).to_be_hidden()
    expect(page.locator(".banner.returned")).to_have_count(0)
    expect(page.locator(f"li.visit[data-visit='{returned['_id']}']")).to_contain_text("已补正")
    wait_idle(page)
    amendments = [v for v in f.all("visit") if v.get("amends")]
    assert len(amendments) == 1
    assert amendments[0]["amends"] == returned["_id"]
    assert amendments[0]["author"] == f.worker
    assert amendments[0]["notes"] == "家中无异常；老人血压偏高，已提醒按时服药"
    assert f.get(returned["_id"])["_rev"].startswith("1-")  # the returned one never changed


def test_an_unsynced_visit_is_corrected_in_place_and_a_synced_one_is_not(
        field_server: Field, phone: Phone) -> None:
    f = field_server
    f.put(household("G1-5-1-102", "5", "1", 1, "102"))
    page = logged_in(phone, f)
    phone.context.set_offline(True)
    record_visit(page, "G1-5-1-102", outcome="nobody_home", notes="敲门无人")
    item = page.locator("li.visit")
    item.locator("a.button", has_text="更正").click()
    expect(page.locator("input[name=outcome][value=nobody_home]")).to_be_checked()
    page.locator(".tile:has(input[value=met])").click()
    page.fill("textarea[name=notes]", "第二次敲门，见到本人")
    page.click("button[type=submit]")
    expect(page.locator("li.visit")).to_have_count(1)
    expect(page.locator("li.visit .notes")).to_have_text("第二次敲门，见到本人")
    assert status(page)["pendingVisits"] == "1"

    phone.context.set_offline(False)
    wait_idle(page)
    open_household(page, "G1-5-1-102")
    expect(page.locator("li.visit .flag.synced")).to_be_visible()
    expect(page.locator("li.visit a.button", has_text="更正")).to_have_count(0)
    (saved,) = [v for v in f.all("visit") if v["author"] == f.worker]
    assert (saved["outcome"], saved["notes"]) == ("met", "第二次敲门，见到本人")
    # Typing the correction address by hand changes nothing once the server has it.
    page.goto(f"/app/#/v/{saved['_id']}/correct")
    expect(page.locator(".form-view")).to_contain_text("已上传，不能再更正")


def storage(page: Page) -> dict:
    return page.evaluate("""async () => ({
        idb: (await indexedDB.databases()).map((d) => d.name),
        caches: await caches.keys(),
        workers: (await navigator.serviceWorker.getRegistrations()).length,
        local: Object.keys(localStorage),
    })""")


def test_logout_asks_about_unsynced_visits_and_then_wipes_everything(
        field_server: Field, phone: Phone) -> None:
    f = field_server
    f.put(household("G1-6-1-101", "6", "1", 1, "101"), household("G1-6-1-102", "6", "1", 1, "102"))
    page = logged_in(phone, f)
    wait_controlled(page)
    before = storage(page)
    assert before["idb"] and before["caches"] and before["workers"] == 1

    phone.context.set_offline(True)
    record_visit(page, "G1-6-1-101", notes="不会上传")
    page.click("nav.tabs a[href='#/me']")
    page.click("button.danger.big")
    dialog = page.locator(".dialog")
    expect(dialog).to_contain_text("还有 1 次走访")
    dialog.locator("button", has_text="不同步，直接退出").click()
    expect(page.locator(".dialog")).to_contain_text("永久删除")
    page.locator(".dialog button", has_text="取消").click()  # second thoughts: nothing lost
    assert status(page)["pendingVisits"] == "1"

    # "Sync first" without a signal: nothing is wiped, and the worker is told.
    page.click("button.danger.big")
    page.locator(".dialog button", has_text="先同步再退出").click()
    expect(page.locator(".toast")).to_contain_text("同步没有完成")
    assert status(page)["pendingVisits"] == "1"
    assert storage(page)["idb"]

    # With a signal: the visit goes up, then the phone is wiped.
    page.click("button.danger.big")
    expect(page.locator(".dialog")).to_contain_text("还有 1 次走访")
    phone.context.set_offline(False)
    page.locator(".dialog button", has_text="先同步再退出").click()
    expect(page.locator(".login-view")).to_be_visible(timeout=30_000)
    assert [v["notes"] for v in f.all("visit") if v["author"] == f.worker] == ["不会上传"]
    after = storage(page)
    assert after == {"idb": [], "caches": [], "workers": 0, "local": []}


def test_discarding_needs_a_second_confirmation(field_server: Field, phone: Phone) -> None:
    f = field_server
    f.put(household("G1-6-1-103", "6", "1", 1, "103"))
    page = logged_in(phone, f)
    phone.context.set_offline(True)
    record_visit(page, "G1-6-1-103", notes="丢弃")
    page.click("nav.tabs a[href='#/me']")
    page.click("button.danger.big")
    page.locator(".dialog button", has_text="不同步，直接退出").click()
    page.locator(".dialog button", has_text="丢弃并退出").click()
    expect(page.locator(".login-view")).to_be_visible()
    assert storage(page)["idb"] == []
    assert storage(page)["caches"] == []
    phone.context.set_offline(False)
    assert [v for v in f.all("visit") if v["author"] == f.worker] == []

    # The next login starts from the server's data, with nothing pending.
    log_in(page, f.worker)
    wait_idle(page)
    assert status(page)["pendingTotal"] == "0"
    expect(page.locator("a.row")).to_have_count(1)

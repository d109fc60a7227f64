"""A worker adds a household she found at a door, offline: it is listed and searchable at
once, she records its visit, and back online it reaches the grid database (a valid clock,
stamped by her), the hub and the supervisor's household page, "added by" her."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from sync import accounts, schema
from sync.hub import Hub
from tests.pwa.conftest import PASSWORD, Field, Phone
from tests.pwa.helpers import household, log_in, status, wait_idle

HID = "G1-7-2-301"


def fill_new_household(page: Page, building: str, unit: str, floor: str, room: str,
                       name: str, phone: str = "", id_number: str = "") -> None:
    page.fill("input[name=building]", building)
    page.fill("input[name=unit]", unit)
    page.fill("input[name=floor]", floor)
    page.fill("input[name=room]", room)
    page.select_option("select[name=housing]", "rented")
    page.select_option("select[name=residency]", "floating")
    page.fill("input[name=phone]", phone)
    page.fill("input[name=name]", name)
    page.fill("input[name=id_number]", id_number)


def test_added_offline_visited_synced_and_seen_by_the_supervisor(field_server: Field,
                                                                 phone: Phone) -> None:
    f = field_server
    f.put(household("G1-7-2-201", "7", "2", 2, "201"))
    page = phone.open()
    log_in(page, f.worker)
    wait_idle(page)
    phone.context.set_offline(True)
    expect(page.locator("header .status[data-online=false]")).to_be_attached()

    # From the building's heading: the building is filled in already.
    page.locator("section.building", has_text="7栋").locator("a.add-here").click()
    expect(page.locator("input[name=building]")).to_have_value("7")
    fill_new_household(page, "7", "2单元", "3", "301室", "陈新", phone="12345",
                       id_number="110101194103070025")
    page.locator(".tag-boxes label:has(input[value=elderly_alone])").click()
    page.click("button[type=submit]")
    errors = page.locator(".form-errors")
    expect(errors).to_contain_text("手机号应为")
    expect(errors).to_contain_text("身份证号应为 18 位")
    page.fill("input[name=phone]", "13700001111")
    page.fill("input[name=id_number]", "110101194103070024")
    page.click("button[type=submit]")
    expect(page.locator(".household-view h2.address")).to_have_text("7栋2单元301室")
    expect(page.locator(".household-view")).to_contain_text(HID)

    # Listed and searchable at once.
    page.goto("/app/#/")
    expect(page.locator(f"a.row[data-household='{HID}']")).to_contain_text("陈新")
    page.fill("input.search", "陈新")
    expect(page.locator("a.row")).to_have_count(1)
    page.fill("input.search", "7栋2单元301")
    expect(page.locator(f"a.row[data-household='{HID}']")).to_be_visible()
    page.fill("input.search", "")

    # The same address again: refused, with the way to the one that exists.
    page.click("a.add-household")
    fill_new_household(page, "7", "2", "3", "301", "陈新")
    page.click("button[type=submit]")
    expect(page.locator(".banner.exists")).to_contain_text(HID)
    page.locator(".banner.exists a.button").click()
    expect(page.locator(".household-view h2.address")).to_have_text("7栋2单元301室")

    # Then its visit, like any household's.
    page.click("a.button.primary.big")
    page.locator(".tile:has(input[name=outcome][value=met])").click()
    page.fill("textarea[name=notes]", "新搬来的一家")
    page.click("button[type=submit]")
    expect(page.locator("li.visit")).to_have_count(1)
    assert status(page)["pendingTotal"] == "2"  # the household and its visit

    phone.context.set_offline(False)
    wait_idle(page)
    assert status(page)["pendingTotal"] == "0"

    stored = f.get(f"household:{HID}")
    schema.validate(stored)
    assert stored["grid"] == "G1" and stored["household_id"] == HID
    assert stored["address"] == {"building": "7", "unit": "2", "floor": 3, "room": "301"}
    assert (stored["housing"], stored["residency"], stored["phone"], stored["tags"]) == (
        "rented", "floating", "13700001111", ["elderly_alone"])
    assert stored["members"] == {"m1": {"name": "陈新", "relation": "户主",
                                        "id_number": "110101194103070024", "tags": [],
                                        "status": "present"}}
    stamped = {path: s["by"] for path, s in stored["clock"].items()}
    assert stamped == {p: f.worker for p in (
        "address", "housing", "residency", "tags", "phone", "members.m1.name",
        "members.m1.relation", "members.m1.id_number", "members.m1.tags", "members.m1.status")}
    (visit,) = [v for v in f.all("visit") if v["author"] == f.worker]
    assert (visit["household"], visit["notes"]) == (HID, "新搬来的一家")

    # The hub copies it; the supervisor's household page shows it, added by the worker.
    Hub(f.couch).copy_grid("G1")
    accounts.create(f.couch, f"{f.worker}_sup", "supervisor", password=PASSWORD,
                                 communities=["C1"], display_name="李主任")
    with httpx.Client(base_url=f.server.url, timeout=30) as console:
        r = console.post("/api/login", json={"name": f"{f.worker}_sup", "password": PASSWORD})
        assert r.status_code == 200, r.text
        page_html = console.get(f"/console/household/G1/{HID}").text
    assert "陈新" in page_html and "新搬来的一家" in page_html
    history = page_html[page_html.index('id="history"'):]
    assert "张网格" in history and "新增" in history and "13700001111" in history


def test_an_address_the_phone_cannot_number_is_explained(field_server: Field,
                                                         phone: Phone) -> None:
    f = field_server
    f.put(household("G1-1-1-101"))
    page = phone.open()
    log_in(page, f.worker)
    wait_idle(page)
    page.click("a.add-household")
    fill_new_household(page, "东区", "", "", "3", "王")
    page.click("button[type=submit]")
    errors = page.locator(".form-errors")
    expect(errors).to_contain_text("楼层应为")
    expect(errors).to_contain_text("只能用数字和字母")
    assert f.get("household:G1-东区--3") is None
    expect(page.locator(".new-household")).to_be_visible()

"""The visit form end to end: needs, members moving in and out, tags, a location fix and a
photo shrunk on the phone; what the server receives; mistakes caught before saving; English."""

from __future__ import annotations

import random
import struct
import zlib

from playwright.sync_api import expect

from sync import schema
from tests.pwa.conftest import Field, Phone
from tests.pwa.helpers import household, log_in, open_household, wait_idle


def noisy_png(width: int, height: int) -> bytes:
    """A photo-sized PNG that compresses badly: the worst case for the 200 KB limit."""
    rng = random.Random(4)
    rows = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 1))
            + chunk(b"IEND", b""))


MEMBERS = {
    "m1": {"name": "王秀英", "relation": "户主", "birth_year": 1941, "status": "present",
           "tags": [], "phone": ""},
    "m2": {"name": "李明", "relation": "儿子", "birth_year": 1970, "status": "present",
           "tags": []},
}


def test_a_full_visit_reaches_the_server_as_the_schema_wants(field_server: Field,
                                                             phone: Phone) -> None:
    f = field_server
    f.put(household("G1-8-1-101", "8", "1", 1, "101", members=MEMBERS))
    page = phone.open()
    phone.context.grant_permissions(["geolocation"])
    phone.context.set_geolocation({"latitude": 30.274084, "longitude": 120.155070,
                                   "accuracy": 12.5})
    log_in(page, f.worker)
    wait_idle(page)
    page.goto("/app/#/h/G1-8-1-101/visit")

    page.locator(".tile:has(input[value=met])").click()
    page.locator(".tile:has(input[value=special_care])").click()
    page.fill("textarea[name=notes]", "老人独居，儿子已搬走")
    page.click("text=添加诉求")
    need = page.locator(".need-edit")
    need.locator("select").select_option("elderly_care")
    need.locator("textarea").fill("希望安排助餐服务")
    need.locator("input[type=checkbox]").check()

    page.locator("details.ledger > summary").click()
    page.locator(".tag-boxes").first.locator("label:has(input[value=elderly_alone])").click()
    page.locator("details.member-edit", has_text="李明").locator("summary").click()
    page.check("input[data-member=m2][data-field=moved_out]")
    page.click("text=添加成员（迁入）")
    newcomer = page.locator(".new-member")
    newcomer.locator("label", has_text="姓名").locator("input").fill("张护工")
    newcomer.locator("label", has_text="出生年份").locator("input").fill("1985")
    newcomer.locator("label", has_text="手机号").locator("input").fill("12345")  # a typo

    page.click("text=获取位置")
    expect(page.locator(".gps-text")).to_contain_text("精度约 13 米")
    page.set_input_files("input[name=photo]", files=[{
        "name": "door.png", "mimeType": "image/png", "buffer": noisy_png(2000, 1500)}])
    size = page.locator(".photo-size")
    expect(size).to_be_visible(timeout=30_000)
    assert 0 < int(size.get_attribute("data-bytes")) <= 200 * 1024

    page.click("button[type=submit]")
    expect(page.locator(".form-errors")).to_contain_text("手机号应为")
    assert page.locator(".form-view").is_visible()  # nothing saved yet
    newcomer.locator("label", has_text="手机号").locator("input").fill("13912345678")
    page.click("button[type=submit]")
    expect(page.locator(".household-view")).to_be_visible()
    expect(page.locator("li.member.moved")).to_contain_text("李明")
    expect(page.locator("li.member", has_text="张护工")).to_be_visible()

    wait_idle(page)
    (saved,) = [v for v in f.all("visit") if v["author"] == f.worker]
    schema.validate(saved)
    assert saved["gps"] == {"lat": 30.274084, "lon": 120.15507, "accuracy": 12.5}
    assert saved["visit_type"] == "special_care"
    (raised,) = saved["needs"]
    assert (raised["category"], raised["text"], raised["urgent"]) == (
        "elderly_care", "希望安排助餐服务", True)
    photo = f.couch.get(f.db, saved["_id"], attachments=True)["_attachments"]["photo.jpg"]
    assert photo["content_type"] == "image/jpeg"
    assert len(photo["data"]) * 3 / 4 <= 200 * 1024  # base64 of at most 200 KB
    (event,) = f.all("need_event")
    assert (event["need_id"], event["visit"], event["event"]) == (
        raised["need_id"], saved["_id"], "raised")

    home = f.get("household:G1-8-1-101")
    schema.validate(home)
    assert home["tags"] == ["elderly_alone"]
    assert home["members"]["m2"]["status"] == "moved_out"
    (new_id,) = set(home["members"]) - {"m1", "m2"}
    assert home["members"][new_id] == {"name": "张护工", "relation": "", "birth_year": 1985,
                                       "phone": "13912345678", "tags": [], "status": "present"}
    stamped = {path for path, stamp in home["clock"].items() if stamp["by"] == f.worker}
    assert stamped == {"tags", "members.m2.status",
                       *(f"members.{new_id}.{k}" for k in home["members"][new_id])}
    assert {c["path"] for c in saved["ledger_changes"]} == stamped


def test_english_from_the_catalogue(field_server: Field, phone: Phone) -> None:
    f = field_server
    f.put(household("G1-8-1-102", "8", "1", 1, "102"))
    page = phone.open()
    log_in(page, f.worker)
    wait_idle(page)
    page.click("nav.tabs a[href='#/me']")
    page.locator(".tile:has(input[value=en])").click()
    expect(page.locator("nav.tabs")).to_contain_text("Households")
    expect(page.locator("header .status")).to_contain_text("Everything uploaded")
    open_household(page, "G1-8-1-102")
    expect(page.locator("h2.address")).to_have_text("Bldg 8, Unit 1, Rm 102")
    expect(page.locator(".due")).to_have_text("Due now")
    assert page.evaluate("document.documentElement.lang") == "en"


def test_every_screen_fits_360_px_with_thumb_sized_targets(field_server: Field,
                                                          phone: Phone) -> None:
    f = field_server
    f.put(household("G1-8-1-103", "8", "1", 1, "103", members=MEMBERS))
    page = phone.open()
    log_in(page, f.worker)
    wait_idle(page)
    targets = ", ".join(["button", "a.button", "a.row", "select", ".tile span", "nav.tabs a",
                         "input:not([type=checkbox]):not([type=radio]):not([type=file])"])
    measure = """(targets) => {
        const small = [...document.querySelectorAll(targets)]
          .filter((el) => el.offsetParent !== null)
          .map((el) => [el.className || el.tagName, el.getBoundingClientRect().height])
          .filter(([, height]) => height < 40);
        return {width: document.documentElement.scrollWidth, small};
    }"""
    for route in ("#/", "#/h/G1-8-1-103", "#/h/G1-8-1-103/visit", "#/tasks", "#/me"):
        page.goto(f"/app/{route}")
        page.wait_for_timeout(300)
        if route.endswith("/visit"):
            page.locator("details.ledger > summary").click()
        got = page.evaluate(measure, targets)
        assert got["width"] <= 360, route
        assert got["small"] == [], route

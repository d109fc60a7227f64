"""The household list against known data: due dates from the tag configuration, every filter,
search by address and by name, grouping; and the household page."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from sync import accounts
from sync.directory import DEFAULT_TAGS
from tests.pwa.conftest import PASSWORD, Field, Phone
from tests.pwa.helpers import (
    assignment,
    conflict,
    days_ago,
    household,
    log_in,
    open_household,
    review,
    visit,
    wait_idle,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def member(name: str, tags: list[str] = (), status: str = "present") -> dict:
    return {"name": name, "relation": "户主", "status": status, "tags": list(tags)}


def local_day(iso_time: str) -> date:
    return datetime.fromisoformat(iso_time.replace("Z", "+00:00")).astimezone(SHANGHAI).date()


def expected(last: tuple[str, str] | None, interval: int, today: date) -> tuple[str, str]:
    """(due, status) by the rule in docs/field-app.md, computed here independently."""
    if last is None:
        return "", "overdue"
    at, outcome = last
    wait = min(interval, 7) if outcome in ("nobody_home", "refused") else interval
    due = local_day(at) + timedelta(days=wait)
    sunday = today + timedelta(days=6 - today.weekday())
    state = "overdue" if due < today else "week" if due <= sunday else "later"
    return due.isoformat(), state


class Grid:
    """Households named by what makes each one special."""

    def __init__(self, f: Field) -> None:
        self.last: dict[str, tuple[str, str] | None] = {}
        self.interval: dict[str, int] = {}
        docs = []

        def add(hid: str, address: tuple[str, str, int, str], members: dict, tags=(),
                visits: list[tuple[float, str]] = (), interval: int = 91) -> dict:
            docs.append(household(hid, *address, tags=list(tags), members=members))
            made = [visit(hid, days_ago(d), outcome) for d, outcome in visits]
            docs.extend(made)
            latest = min(visits, key=lambda v: v[0], default=None)
            self.last[hid] = None
            if latest:
                self.last[hid] = (made[visits.index(latest)]["visited_at"], latest[1])
            self.interval[hid] = interval
            return made[0] if made else {}

        add("plain", ("1", "1", 1, "101"), {"m1": member("王秀英")},
            visits=[(10, "met"), (100, "met")])
        add("alone", ("1", "1", 1, "102"), {"m1": member("李建国")}, ["elderly_alone"],
            [(25, "met")], 30)
        add("never", ("1", "2", 2, "201"), {"m1": member("陈美兰")})
        add("member_tag", ("1", "2", 2, "202"), {"m1": member("赵强", ["disabled"])},
            visits=[(40, "met")], interval=30)
        add("moved_tag", ("2", "1", 3, "301"),
            {"m1": member("孙丽"), "m2": member("孙小明", ["disabled"], "moved_out")},
            visits=[(40, "met")])
        add("nobody", ("2", "1", 3, "302"), {"m1": member("周杰")}, visits=[(3, "nobody_home")])
        add("refused", ("2", "1", 3, "303"), {"m1": member("吴芳")}, ["elderly_alone"],
            [(10, "refused")], 30)
        returned = add("returned", ("2", "2", 1, "101"), {"m1": member("郑红")},
                       visits=[(2, "met")])
        add("conflicted", ("2", "2", 1, "102"), {"m1": member("冯涛")}, visits=[(5, "met")])
        add("assigned", ("3", "", 1, "101"), {"m1": member("蒋伟")}, visits=[(5, "met")])
        add("cancelled", ("3", "", 1, "102"), {"m1": member("韩梅")}, visits=[(5, "met")])
        answered_a = assignment("answered", f.worker, "2026-12-31", "复查")
        add("answered", ("3", "", 1, "103"), {"m1": member("杨光")}, visits=[(5, "met")])
        self.assigned = assignment("assigned", f.worker, "2026-12-31", "住户反映漏水，请上门核实")
        cancelled_a = assignment("cancelled", f.worker, "2026-12-31", "取消的派单")
        docs += [
            review(returned, "returned", "照片缺失，请补拍"),
            conflict("conflicted", "phone", ("13800000001", "13800000002")),
            self.assigned, cancelled_a, answered_a,
            {"_id": "assignment_event:c1", "type": "assignment_event", "grid": "G1",
             "assignment": cancelled_a["_id"], "event": "cancelled", "author": "sup_li",
             "at": days_ago(0.5)},
            visit("answered", days_ago(1), assignment=answered_a["_id"]),
        ]
        self.last["answered"] = (docs[-1]["visited_at"], "met")
        f.put(*docs)
        self.ids = list(self.last)


@pytest.fixture
def grid(field_server: Field) -> Grid:
    return Grid(field_server)


def shown(page: Page) -> list[str]:
    expect(page.locator(".results[data-complete=true]")).to_be_attached()
    return page.locator("a.row").evaluate_all("rows => rows.map(r => r.dataset.household)")


def logged_in(phone: Phone, f: Field) -> Page:
    page = phone.open()
    log_in(page, f.worker)
    wait_idle(page)
    return page


def test_due_dates_follow_the_tag_configuration(field_server: Field, phone: Phone,
                                                grid: Grid) -> None:
    assert DEFAULT_TAGS["tags"]["elderly_alone"]["frequency_days"] == 30
    assert DEFAULT_TAGS["default_frequency_days"] == 91
    page = logged_in(phone, field_server)
    today = datetime.now(SHANGHAI).date()
    for hid in grid.ids:
        badge = page.locator(f"a.row[data-household={hid}] .due")
        got = (badge.get_attribute("data-due"), badge.get_attribute("data-status"))
        assert got == expected(grid.last[hid], grid.interval[hid], today), hid


FILTERS = {
    "special": {"alone", "member_tag", "refused"},
    "never": {"never"},
    "returned": {"returned"},
    "conflict": {"conflicted"},
    "assignment": {"assigned"},
}


def test_every_filter_and_the_search(field_server: Field, phone: Phone, grid: Grid) -> None:
    page = logged_in(phone, field_server)
    assert shown(page) == grid.ids  # building, unit, floor, room order
    today = datetime.now(SHANGHAI).date()
    by_status = {s: {h for h in grid.ids
                     if expected(grid.last[h], grid.interval[h], today)[1] == s}
                 for s in ("overdue", "week")}
    assert {"never", "member_tag", "refused"} <= by_status["overdue"]
    for name, wanted in {**FILTERS, **by_status}.items():
        page.click(f"button[data-filter={name}]")
        assert set(shown(page)) == wanted, name
        page.click(f"button[data-filter={name}]")  # off again
    assert len(shown(page)) == len(grid.ids)

    search = page.locator("input.search")
    for query, wanted in {
        "王秀英": ["plain"],
        "孙小明": ["moved_tag"],  # moved out, still findable
        "2-1-30": ["moved_tag", "nobody", "refused"],
        "2栋2单元": ["returned", "conflicted"],
        "3栋 102": ["cancelled"],
        "nobody-such": [],
    }.items():
        search.fill(query)
        assert shown(page) == wanted, query
    # Search and a filter together.
    search.fill("2栋")
    page.click("button[data-filter=returned]")
    assert shown(page) == ["returned"]
    expect(page.locator(".summary")).to_have_text(f"显示 1 / {len(grid.ids)} 户")


def test_household_page_shows_what_is_open(field_server: Field, phone: Phone, grid: Grid) -> None:
    f = field_server
    f.put({"_id": "need_event:n1", "type": "need_event", "grid": "G1", "household": "assigned",
           "need_id": "need1", "event": "raised", "category": "housing_repair",
           "text": "楼道灯坏了", "author": "w_old", "at": days_ago(3)})
    page = logged_in(phone, f)
    open_household(page, "assigned")
    view = page.locator(".household-view")
    expect(view.locator(".card.assignment")).to_contain_text("住户反映漏水，请上门核实")
    expect(view.locator("ul.needs")).to_contain_text("楼道灯坏了")
    expect(view.locator("li.member")).to_contain_text(["蒋伟"])
    expect(view.locator("li.visit")).to_have_count(1)

    open_household(page, "conflicted")
    expect(page.locator(".banner.conflict")).to_contain_text("联系电话")
    open_household(page, "moved_tag")
    expect(page.locator("li.member.moved")).to_contain_text("孙小明")

    # Visiting for the assignment closes it on the phone at once.
    open_household(page, "assigned")
    page.click(".card.assignment a.button")
    page.locator(".tile:has(input[value=met])").click()
    expect(page.locator("input[name=visit_type][value=follow_up]")).to_be_checked()
    page.click("button[type=submit]")
    expect(page.locator(".household-view h2.address")).to_be_visible()
    expect(page.locator(".household-view .card.assignment")).to_have_count(0)
    wait_idle(page)
    (answer,) = [v for v in f.all("visit") if v["author"] == f.worker]
    assert answer["assignment"] == grid.assigned["_id"]
    assert answer["visit_type"] == "follow_up"


def test_a_worker_covering_two_grids_has_both_on_the_phone(field_server: Field,
                                                          phone: Phone) -> None:
    f = field_server
    f.put(household("G1-9-1-101", "9", "1", 1, "101"))
    f.put(household("G2-4-1-101", "4", "1", 1, "101", grid="G2"), db=f.other_db)
    accounts.create(f.couch, f"{f.worker}c", "worker", password=PASSWORD, grids=["G1", "G2"])
    page = phone.open()
    log_in(page, f"{f.worker}c")
    wait_idle(page)
    assert shown(page) == ["G1-9-1-101"]
    page.select_option("select.grid-picker", label="第二网格")
    assert shown(page) == ["G2-4-1-101"]
    expect(page.locator("header .grid-name")).to_have_text("第二网格")
    assert page.evaluate("""async () => (await indexedDB.databases()).map((d) => d.name)
        .filter((n) => n.includes('doorstep_')).length""") == 2

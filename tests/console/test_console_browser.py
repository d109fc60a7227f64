"""The console in a real Chromium, with a worker's phone beside it.

The phone is PouchDB 9 in Chromium replicating the worker's grid database through the
gateway, exactly as the field app does (one replication each way is "the next sync"). The
console pages run under the server's real Content-Security-Policy; only the phone's page
bypasses it, because the test injects PouchDB into it.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, expect

from tests.console.conftest import PASSWORD, Office, console, iso, reload_until
from tests.console.docs_factory import household, visit

POUCHDB = Path(__file__).resolve().parents[2] / "node_modules/pouchdb/dist/pouchdb.min.js"


class Phone:
    """A worker's phone: a local PouchDB of one grid, synced through the gateway on demand."""

    def __init__(self, browser: Browser, office: Office, key: str, grid: str) -> None:
        self.context = browser.new_context(bypass_csp=True)
        self.page = self.context.new_page()
        self.page.goto(office.server.url + "/login")
        self.page.add_script_tag(path=str(POUCHDB))
        r = self.page.request.post(office.server.url + "/api/login",
                                   data={"name": office.names[key], "password": PASSWORD})
        assert r.status == 200, r.text()
        self.page.evaluate("""db => { window.local = new PouchDB('grid-' + db);
            window.remote = new PouchDB(location.origin + '/couch/' + db); }""",
                           office.db(grid))

    def sync(self) -> None:
        result = self.page.evaluate("""() => local.replicate.from(remote)
            .then(() => local.replicate.to(remote))
            .then(r => ({ok: r.ok, denied: r.doc_write_failures}),
                  e => ({ok: false, error: String(e.status || e.message || e)}))""")
        assert result == {"ok": True, "denied": 0}, result

    def get(self, doc_id: str) -> dict[str, Any] | None:
        return self.page.evaluate("id => local.get(id).then(d => d, () => null)", doc_id)

    def put(self, doc: dict[str, Any]) -> None:
        self.page.evaluate("doc => local.put(doc)", doc)

    def find(self, kind: str, **fields: Any) -> list[dict[str, Any]]:
        docs = self.page.evaluate("""kind => local.allDocs({include_docs: true,
            startkey: kind + ':', endkey: kind + ':\\ufff0'}).then(r => r.rows.map(x => x.doc))""",
                                  kind)
        return [d for d in docs if all(d.get(k) == v for k, v in fields.items())]

    def close(self) -> None:
        self.context.close()


def test_return_amend_on_the_phone_then_approve(browser: Browser, office: Office) -> None:
    hid = f"G1-r{uuid.uuid4().hex[:5]}"
    office.put("G1", household("G1", hid))
    phone = Phone(browser, office, "w1", "G1")
    phone.sync()
    first = visit("G1", hid, iso(0.2), author=office.names["w1"], notes="门牌看不清")
    phone.put(first)
    phone.sync()

    page = console(browser, office, "sup1")
    queue = office.server.url + "/console/review?grid=G1"
    reload_until(page, queue, f'tr[data-visit="{first["_id"]}"]', "the visit in the queue")
    page.locator(f'tr[data-visit="{first["_id"]}"] a', has_text="查看").click()
    expect(page.locator("#review-state")).to_contain_text("待审核")
    page.fill("textarea[name=reason]", "请补拍门牌照片")
    page.click("#return")
    expect(page.locator(".flash")).to_contain_text("已退回")

    phone.sync()
    (task,) = phone.find("review", visit=first["_id"])
    assert (task["decision"], task["reason"]) == ("returned", "请补拍门牌照片")
    amendment = visit("G1", hid, iso(0.1), author=office.names["w1"], amends=first["_id"],
                      notes="已补拍")
    phone.put(amendment)
    phone.sync()

    reload_until(page, queue, f'tr[data-visit="{amendment["_id"]}"]', "the amendment")
    expect(page.locator(f'tr[data-visit="{first["_id"]}"]')).to_have_count(0)
    page.locator(f'tr[data-visit="{amendment["_id"]}"] a', has_text="查看").click()
    expect(page.locator("#amends")).to_contain_text("请补拍门牌照片")
    page.click("#approve")
    expect(page.locator(".flash")).to_contain_text("已通过")
    expect(page.locator(f'tr[data-visit="{amendment["_id"]}"]')).to_have_count(0)

    phone.sync()
    (approval,) = phone.find("review", visit=amendment["_id"])
    assert approval["decision"] == "approved"
    phone.close()
    page.context.close()


def test_an_assignment_made_in_the_console_reaches_the_workers_phone(
        browser: Browser, office: Office) -> None:
    building = f"b{uuid.uuid4().hex[:4]}"
    hids = [f"G1-{building}-{n}" for n in (1, 2)]
    office.put("G1", *[household("G1", h, building=building, room=str(n))
                       for n, h in enumerate(hids)])
    office.copy("G1")
    phone = Phone(browser, office, "w1", "G1")
    phone.sync()

    page = console(browser, office, "sup1")
    page.goto(office.server.url + "/console/assignments/new?grid=G1&scope=community:C1")
    page.select_option("select[name=building]", building)  # submits the filter on change
    expect(page.locator("#households tbody tr")).to_have_count(2)
    page.check(f'input[name=household][value="{hids[1]}"]')
    page.select_option("select[name=worker]", office.names["w1"])
    page.fill("input[name=reason]", "核实新搬入住户")
    page.click("#assign")
    expect(page.locator(".flash")).to_contain_text("1")
    expect(page.locator("#assignments")).to_contain_text(hids[1])

    phone.sync()
    (task,) = phone.find("assignment", household=hids[1])
    assert (task["worker"], task["reason"]) == (office.names["w1"], "核实新搬入住户")
    assert phone.find("assignment", household=hids[0]) == []
    phone.close()
    page.context.close()


def test_a_moved_household_leaves_the_old_grids_phone_at_its_next_sync(
        browser: Browser, office: Office) -> None:
    hid = f"G1-m{uuid.uuid4().hex[:5]}"
    office.put("G1", household("G1", hid, name="周移"))
    old_phone = Phone(browser, office, "w1", "G1")
    new_phone = Phone(browser, office, "w2", "G2")
    old_phone.sync()
    new_phone.sync()
    assert old_phone.get(f"household:{hid}")["grid"] == "G1"

    page = console(browser, office, "sup1")
    page.goto(f"{office.server.url}/console/household/G1/{hid}")
    page.select_option("#move-form select[name=to]", "G2")
    page.click("#move")
    page.wait_for_url(f"**/console/household/G2/{hid}?done=moved")
    expect(page.locator("#household-entry")).to_contain_text("G2")

    old_phone.sync()
    assert old_phone.get(f"household:{hid}") is None
    gone = old_phone.page.evaluate(
        "id => local.get(id, {revs: true, open_revs: 'all'}).then(r => r[0].ok)",
        f"household:{hid}")
    assert gone["_deleted"] and gone["moved_to"] == "G2"
    new_phone.sync()
    arrived = new_phone.get(f"household:{hid}")
    assert arrived["grid"] == "G2" and arrived["members"]["m1"]["name"] == "周移"
    old_phone.close()
    new_phone.close()
    page.context.close()


def test_dashboard_charts_and_quick_approval_work_under_the_real_policy(
        browser: Browser, office: Office) -> None:
    hid = f"G2-d{uuid.uuid4().hex[:5]}"
    v = visit("G2", hid, iso(0.3), author=office.names["w2"])
    office.put("G2", household("G2", hid), v)
    office.copy("G2")
    page = console(browser, office, "sup1")
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(office.server.url + "/console/dashboard?scope=community:C1")
    expect(page.locator("body")).to_have_attribute("data-charts", "drawn")
    assert page.locator("#chart-coverage").bounding_box()["height"] > 100
    expect(page.locator(".as-of")).to_contain_text("数据截至")

    page.goto(office.server.url + "/console/review?grid=G2")
    row = page.locator(f'tr[data-visit="{v["_id"]}"]')
    row.get_by_role("button", name="通过").click()  # htmx: the row is swapped in place
    expect(page.locator(f'tr.done[data-visit="{v["_id"]}"]')).to_contain_text("已通过")
    assert office.couch.get(office.db("G2"), f"review:{v['_id'].split(':', 1)[1]}")

    page.click("text=English")
    expect(page.locator("h1")).to_contain_text("Review visits")
    assert problems == [], problems
    page.context.close()

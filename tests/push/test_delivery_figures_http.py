"""The delivery figures page and /api/push/figures on a real server that really sent: each
device's answer scripted on the local push stand-in (201, 500 until the outbox gives up, 410,
429 then 201), for workers of two communities. Figures are checked against what was sent;
each supervisor sees her community's and nothing of the other's; Chromium shows the page.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from server.push.subscriptions import Subscriptions
from sync.console_actions import request_push
from sync.couch import Couch
from sync.provision import provision
from sync.push_outbox import ensure_push_db, iso, outbox_db, parse_iso, push_db
from tests.conftest import CouchServer, RunningServer, start_server, unique_name
from tests.push.delivery_place import PASSWORD, Place, make_place
from tests.push.standin import Answer, PushStandin

PEOPLE = {"a1": ("worker", ["a1"], []), "a2": ("worker", ["a2"], []),
          "a3": ("worker", ["a1"], []),  # no device: will not be notified
          "b9": ("worker", ["b1"], []), "sup1": ("supervisor", [], ["a"]),
          "sup2": ("supervisor", [], ["b"]), "adm": ("admin", [], [])}
ENV = {"DOORSTEP_PUSH_ALLOW_HTTP": "1", "DOORSTEP_PUSH_POLL": "0.1",
       "DOORSTEP_PUSH_RETRY_BASE": "0.02", "DOORSTEP_SESSION_CACHE_SECONDS": "0.3"}
HTML = {"accept": "text/html"}
EMPTY = {"delivered": 0, "waiting": 0, "failed": 0, "expired": 0, "interrupted": 0, "gone": 0}

# What each device's push service answers, and what the outbox then records.
DEVICES = {  # device: (owner, answers)
    "a1-ok": ("a1", []), "a1-bad": ("a1", [Answer(500)] * 20),
    "a2-gone": ("a2", [Answer(410)]), "a2-slow": ("a2", [Answer(429, retry_after="1")]),
    "s1-ok": ("sup1", []), "b9-ok": ("b9", []),
}


@dataclass
class Site:
    couch: Couch
    server: RunningServer
    place: Place

    def login(self, key: str) -> httpx.Client:
        client = self.server.client()
        r = client.post("/api/login", json={"name": self.place.users[key], "password": PASSWORD})
        assert r.status_code == 200, r.text
        return client

    def deliveries(self) -> list[dict[str, Any]]:
        rows = self.couch.all_docs(outbox_db(self.couch), startkey="delivery:",
                                   endkey="delivery:\ufff0", include_docs=True)
        return [r["doc"] for r in rows]


def ask(couch: Couch, place: Place) -> None:
    """What the console, the digest and the urgent-need watcher would ask for."""
    u, now = place.users, iso(time.time())
    request_push(couch, "assignment", u["a1"], place.a1, "h-1", "assignment:x1", now)
    request_push(couch, "returned_visit", u["a2"], place.a2, "h-2", "review:x2", now)
    request_push(couch, "assignment", u["b9"], place.b1, "h-9", "assignment:x9", now)
    counts = {"due": 3, "overdue": 1, "special_care": 0}
    for user in ("a1", "b9"):
        couch.put(push_db(couch), {"_id": f"push_request:digest:{u[user]}:today",
                                   "type": "push_request", "kind": "digest", "user": u[user],
                                   "counts": counts, "at": now})
    for sup, grid in (("sup1", place.a1), ("sup2", place.b1)):
        couch.put(push_db(couch), {"_id": f"push_request:urgent_need:n-{sup}:{u[sup]}",
                                   "type": "push_request", "kind": "urgent_need",
                                   "user": u[sup], "grid": grid, "household": "h-u",
                                   "ref": "visit:u", "text": "漏水", "at": now})


@pytest.fixture(scope="module")
def site(couch_server: CouchServer, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Site]:
    prefix = unique_name("pf") + "_"
    couch = Couch(couch_server.url, couch_server.user, couch_server.password, prefix)
    provision(couch)
    ensure_push_db(couch)
    place = make_place(couch, PEOPLE)
    var: Path = tmp_path_factory.mktemp("push-figures")
    with PushStandin() as standin:
        for device, (owner, answers) in DEVICES.items():
            sub = standin.device(device).subscription()
            Subscriptions(couch).save(place.users[owner], {"endpoint": sub["endpoint"],
                                                           "keys": sub["keys"]}, device=device)
            if answers:
                standin.script(device, *answers)
        server = start_server(couch_server, prefix, var, ENV)
        try:
            s = Site(couch, server, place)
            ask(couch, place)
            deadline = time.monotonic() + 90
            while True:
                states = [d["state"] for d in s.deliveries()]
                if len(states) == 7 + 2 and not {"pending", "sending"} & set(states):
                    break
                assert time.monotonic() < deadline, f"the outbox did not settle: {states}"
                time.sleep(0.2)
            yield s
        finally:
            server.stop()


def latencies(site: Site, community: str) -> list[float]:
    """Queued → accepted, from the outbox documents of the deliveries sent in `community`."""
    return sorted(parse_iso(d["sent_at"]) - parse_iso(d["created_at"])
                  for d in site.deliveries()
                  if d["state"] == "sent" and f"community:{community}" in d["scopes"])


def test_a_supervisor_gets_exactly_her_communitys_figures(site: Site) -> None:
    f = site.login("sup1").get("/api/push/figures").json()
    assert f["scope"] == f"community:{site.place.a}" and f["days"] == 7
    assert f["scopes"] == [f"community:{site.place.a}"]
    assert f["total"] == 7
    assert f["by_outcome"] == {**EMPTY, "delivered": 4, "failed": 2, "gone": 1}
    assert f["by_kind"] == {
        "assignment": {**EMPTY, "delivered": 1, "failed": 1},  # a1-ok; a1-bad: 500 × 8
        "returned_visit": {**EMPTY, "delivered": 1, "gone": 1},  # a2-slow after 429; 410
        "digest": {**EMPTY, "delivered": 1, "failed": 1},
        "urgent_need": {**EMPTY, "delivered": 1},  # to the supervisor
    }
    assert f["attempts"] == 1 + 8 + 1 + 2 + 1 + 1 + 8
    assert (f["retries"], f["retried"]) == (7 + 1 + 7, 3)
    sent = latencies(site, site.place.a)
    assert len(sent) == f["latency_seconds"]["delivered"] == 4
    assert f["latency_seconds"]["p95"] == pytest.approx(sent[3], abs=0.002) and sent[3] >= 1.0
    assert f["latency_seconds"]["p50"] == pytest.approx(sent[1], abs=0.002)
    u = site.place.users
    assert f["workers"] == {"total": 3, "with_device": 2}
    assert f["supervisors"] == {"total": 1, "with_device": 1}
    assert f["subscriptions"] == 4  # a1 two, a2 one left after the 410, sup1 one
    assert [p["name"] for p in f["without_device"]] == [u["a3"]]
    assert sorted((x["state"], x["status"], x["user"]) for x in f["failures"]) == [
        ("failed", 500, u["a1"]), ("failed", 500, u["a1"]), ("gone", 410, u["a2"])]
    assert all(x["reason"].startswith("HTTP 500") for x in f["failures"] if x["status"] == 500)
    mentioned = str(f)
    assert u["b9"] not in mentioned and u["sup2"] not in mentioned


def test_the_other_supervisor_and_the_admin(site: Site) -> None:
    p, u = site.place, site.place.users
    b = site.login("sup2").get("/api/push/figures").json()
    assert b["scope"] == f"community:{p.b}" and b["total"] == 2
    assert b["by_outcome"] == {**EMPTY, "delivered": 2}
    assert b["attempts"] == 2 and b["failures"] == []
    assert [x["name"] for x in b["without_device"]] == [u["sup2"]]  # her urgent alert went nowhere
    admin = site.login("adm")
    county = admin.get("/api/push/figures").json()
    assert county["scope"] == "all" and county["total"] == 9
    assert county["by_community"][p.a]["total"] == 7
    assert county["by_community"][p.b] == {"total": 2, **EMPTY, "delivered": 2}
    street = admin.get("/api/push/figures", params={"scope": f"street:{p.street}"}).json()
    assert street["total"] == 9 and street["workers"] == {"total": 4, "with_device": 3}
    only_b = admin.get("/api/push/figures", params={"scope": f"community:{p.b}"}).json()
    assert only_b["total"] == 2
    day = admin.get("/api/push/figures", params={"days": "1"}).json()
    assert day["days"] == 1 and day["total"] == 9


def test_another_community_or_a_wider_scope_is_refused(site: Site) -> None:
    p = site.place
    sup = site.login("sup1")
    for scope in (f"community:{p.b}", f"street:{p.street}", "all"):
        r = sup.get("/api/push/figures", params={"scope": scope})
        assert r.status_code == 403 and r.json()["error"] == "forbidden", (scope, r.text)
        page = sup.get("/console/push", params={"scope": scope}, headers=HTML)
        assert page.status_code == 403 and p.users["b9"] not in page.text


def test_bad_input_is_a_clear_4xx(site: Site) -> None:
    sup = site.login("sup1")
    for params, status in (({"scope": "garbage"}, 404), ({"scope": "community:nope"}, 404),
                           ({"scope": "community:"}, 404), ({"days": "5"}, 400),
                           ({"days": "seven"}, 400), ({"days": ""}, 400)):
        for path in ("/api/push/figures", "/console/push"):
            r = sup.get(path, params=params)
            assert r.status_code == status, (path, params, r.status_code, r.text)
            assert set(r.json()) == {"error", "reason"} and r.json()["reason"]
    assert site.login("a1").get("/api/push/figures").status_code == 403
    anonymous = site.server.client().get("/api/push/figures")
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "unauthorized"


# --- in Chromium --------------------------------------------------------------------------


def sign_in(browser: Browser, site: Site, key: str) -> Page:
    page = browser.new_context(locale="zh-CN").new_page()
    page.goto(site.server.url + "/console/review")
    page.fill("input[name=name]", site.place.users[key])
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/review")
    return page


def cell(page: Page, table: str, row: str, outcome: str) -> str:
    return page.locator(f"#{table} tr[{row}] [data-outcome={outcome}]").inner_text()


def test_the_page_shows_community_a_and_nothing_of_b(browser: Browser, site: Site) -> None:
    p, u = site.place, site.place.users
    page = sign_in(browser, site, "sup1")
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.get_by_role("link", name="推送送达").click()
    page.wait_for_url("**/console/push")
    expect(page.locator("h1")).to_have_text("推送送达情况 · 桂花社区")
    assert page.locator("#tile-total").inner_text() == "7"
    expected = {"assignment": (1, 1, 0), "returned_visit": (1, 0, 1), "digest": (1, 1, 0),
                "urgent_need": (1, 0, 0)}
    for kind, (delivered, failed, gone) in expected.items():
        row = f"data-kind={kind}"
        assert [cell(page, "by-kind", row, o) for o in ("delivered", "failed", "gone",
                                                        "waiting")] == [
            str(delivered), str(failed), str(gone), "0"], kind
    assert cell(page, "by-kind", "data-kind=total", "total") == "7"
    assert page.locator("#retries [data-figure=retries]").inner_text() == "15"
    assert page.locator("#devices tr[data-role=worker] [data-figure=with-device]"
                        ).inner_text() == "2"
    assert page.locator("#devices tr[data-role=worker] [data-figure=people]").inner_text() == "3"
    assert page.locator("#without-device tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.user)") == [u["a3"]]
    assert sorted(page.locator("#failures tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.state)")) == ["failed", "failed", "gone"]
    expect(page.locator("#failures")).to_contain_text("HTTP 500")
    body = page.locator("body").inner_text()
    assert "梧桐社区" not in body and u["b9"] not in body and u["sup2"] not in body
    assert page.locator("#by-community").count() == 0  # one community: no breakdown

    page.select_option("select[name=days]", "30")  # console.js submits on change
    page.wait_for_url(re.compile(r"days=30"))
    assert page.locator("#tile-total").inner_text() == "7"
    page.get_by_role("link", name="English").click()
    expect(page.locator("h1")).to_have_text("Notification delivery · 桂花社区")
    expect(page.locator("#by-kind tr[data-kind=urgent_need] td").first).to_have_text(
        "Urgent-need alert")
    assert errors == []  # nothing broke the page's CSP

    page.goto(site.server.url + f"/console/push?scope=community:{p.b}")
    expect(page.locator("h1")).to_contain_text("403")
    assert u["b9"] not in page.content()
    page.context.close()


def test_the_admin_page_breaks_the_county_down_by_community(browser: Browser,
                                                            site: Site) -> None:
    p = site.place
    page = sign_in(browser, site, "adm")
    page.goto(site.server.url + "/console/push?scope=all")
    assert page.locator("#tile-total").inner_text() == "9"
    assert cell(page, "by-community", f"data-community={p.a}", "total") == "7"
    assert cell(page, "by-community", f"data-community={p.b}", "delivered") == "2"
    page.locator(f"#by-community tr[data-community={p.b}] a").click()
    page.wait_for_url(re.compile(f"scope=community:{p.b}"))
    assert page.locator("#tile-total").inner_text() == "2"
    page.context.close()

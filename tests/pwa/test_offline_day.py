"""A day without signal: record visits offline, close the browser, reopen it offline, sync."""

from __future__ import annotations

from datetime import datetime

from playwright.sync_api import Page, expect

from tests.pwa.conftest import Field, Phone
from tests.pwa.helpers import (
    days_ago,
    household,
    log_in,
    record_visit,
    status,
    visit,
    wait_controlled,
    wait_idle,
)

HOUSEHOLDS = [f"G1-3-2-50{i}" for i in range(1, 7)]

# Records every state of the first-sync progress bar (stored documents / total).
PROGRESS_SPY = """
window.progressSeen = [];
new MutationObserver(() => {
  const bar = document.querySelector('[role=progressbar]');
  if (bar) window.progressSeen.push([+bar.getAttribute('aria-valuenow'),
                                     +bar.getAttribute('aria-valuemax')]);
}).observe(document, {subtree: true, childList: true, attributes: true});
"""


def seed(f: Field) -> None:
    f.put(*[household(hid, "3", "2", 5, f"50{i + 1}") for i, hid in enumerate(HOUSEHOLDS)],
          visit(HOUSEHOLDS[0], days_ago(40)))


def open_offline(phone: Phone, page: Page) -> Page:
    response = page.goto("/app/")
    assert response is not None and response.from_service_worker
    expect(page.locator("a.row")).to_have_count(len(HOUSEHOLDS))
    return page


def test_offline_day(field_server: Field, phone: Phone) -> None:
    f = field_server
    seed(f)
    page = phone.open()
    page.add_init_script(PROGRESS_SPY)
    log_in(page, f.worker)
    wait_idle(page)
    wait_controlled(page)
    # The first sync showed real progress: the ledger first, then the rest, up to the total.
    seen = page.evaluate("window.progressSeen")
    total = len(f.couch.all_docs(f.db))
    assert {t for _, t in seen} == {total}
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == total
    assert any(0 < d < total for d in done)

    phone.context.set_offline(True)
    expect(page.locator("header .status[data-online=false]")).to_be_attached()
    for i, hid in enumerate(HOUSEHOLDS[:5]):
        record_visit(page, hid, outcome="met" if i % 2 == 0 else "nobody_home",
                     notes=f"第{i + 1}次走访", phone="13912345678" if i == 2 else None)
    assert status(page)["pendingVisits"] == "5"
    assert status(page)["pendingTotal"] == "6"  # five visits and one household edit

    # Close the tab, open the app again: still offline, served by the service worker.
    page.close()
    page = open_offline(phone, phone.new_page())
    assert status(page)["pendingVisits"] == "5"

    # Close the whole browser and start it again, offline from the start.
    phone.close()
    page = open_offline(phone, phone.open(offline=True))
    assert status(page)["pendingVisits"] == "5"
    page.goto(f"/app/#/h/{HOUSEHOLDS[2]}")
    expect(page.locator("li.visit")).to_have_count(1)
    expect(page.locator("li.visit .notes")).to_have_text("第3次走访")

    # Signal again: the sync finishes by itself and says so.
    phone.context.set_offline(False)
    wait_idle(page)
    assert status(page)["pendingTotal"] == "0"
    assert status(page)["lastSync"]

    mine = [v for v in f.all("visit") if v["author"] == f.worker]
    assert sorted(v["notes"] for v in mine) == [f"第{i}次走访" for i in range(1, 6)]
    assert sorted(v["household"] for v in mine) == HOUSEHOLDS[:5]
    edited = f.get(f"household:{HOUSEHOLDS[2]}")
    assert edited["phone"] == "13912345678"
    assert edited["clock"]["phone"]["by"] == f.worker
    (device,) = edited["clock"]["phone"]["vv"]
    # sync/clock.py's counter rule: one more than before, and at least the edit time in ms.
    at = datetime.fromisoformat(edited["clock"]["phone"]["at"].replace("Z", "+00:00"))
    assert edited["clock"]["phone"]["vv"][device] == int(at.timestamp() * 1000)
    edit_visit = next(v for v in mine if v["household"] == HOUSEHOLDS[2])
    assert edit_visit["ledger_changes"] == [{"path": "phone", "old": "", "new": "13912345678"}]
    assert edit_visit["device"] == device

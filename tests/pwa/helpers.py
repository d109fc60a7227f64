"""Documents for the field app's tests, and the few steps every test takes on the phone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import Page, expect

from tests.pwa.conftest import PASSWORD


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def days_ago(n: float) -> str:
    return iso(datetime.now(UTC) - timedelta(days=n))


def household(hid: str, building: str = "1", unit: str = "1", floor: int = 1, room: str = "101",
              tags: list[str] = (), members: dict[str, dict[str, Any]] | None = None,
              phone: str = "", grid: str = "G1") -> dict[str, Any]:
    members = members if members is not None else {
        "m1": {"name": f"住户{hid}", "relation": "户主", "status": "present", "tags": []},
    }
    return {
        "_id": f"household:{hid}", "type": "household", "grid": grid, "household_id": hid,
        "address": {"building": building, "unit": unit, "floor": floor, "room": room},
        "housing": "owner", "residency": "registered", "tags": list(tags), "phone": phone,
        "members": members, "clock": {}, "created_at": "2026-01-05T00:00:00Z",
    }


def visit(hid: str, visited_at: str, outcome: str = "met", author: str = "w_old",
          vid: str | None = None, grid: str = "G1", **extra: Any) -> dict[str, Any]:
    return {
        "_id": vid or f"visit:{uuid.uuid4()}", "type": "visit", "grid": grid, "household": hid,
        "author": author, "device": "dev-old", "created_at": visited_at,
        "visited_at": visited_at, "outcome": outcome, "visit_type": "sweep", "notes": "",
        "needs": [], "ledger_changes": [], "gps": None, "assignment": None, "amends": None,
        **extra,
    }


def review(visit_doc: dict[str, Any], decision: str, reason: str = "",
           at: str | None = None) -> dict[str, Any]:
    return {
        "_id": f"review:{uuid.uuid4()}", "type": "review", "grid": visit_doc["grid"],
        "household": visit_doc["household"], "visit": visit_doc["_id"], "decision": decision,
        "reason": reason, "author": "sup_li", "at": at or days_ago(0.5),
    }


def assignment(hid: str, worker: str, due: str, reason: str) -> dict[str, Any]:
    return {
        "_id": f"assignment:{uuid.uuid4()}", "type": "assignment", "grid": "G1",
        "household": hid, "worker": worker, "due": due, "reason": reason, "author": "sup_li",
        "at": days_ago(1),
    }


def conflict(hid: str, path: str, values: tuple[Any, Any]) -> dict[str, Any]:
    return {
        "_id": f"conflict:{uuid.uuid4()}", "type": "conflict", "grid": "G1", "household": hid,
        "path": path, "state": "open", "at": days_ago(1),
        "candidates": [{"value": v, "by": "w_x", "at": days_ago(2), "device": f"d{i}"}
                       for i, v in enumerate(values)],
    }


# --- on the phone ---------------------------------------------------------------------------


def wait_for(page: Page, script: str, timeout_ms: int = 30_000) -> None:
    """Poll `script` (a JS function, may be async) until it returns true. Not
    page.wait_for_function: its poller compiles code in the page, which the app's
    Content-Security-Policy forbids."""
    for _ in range(timeout_ms // 100):
        if page.evaluate(script):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"still false after {timeout_ms} ms: {script}")


def wait_controlled(page: Page) -> None:
    """The service worker is installed (the shell precached) and controls the page."""
    wait_for(page, "() => navigator.serviceWorker.controller !== null")


def log_in(page: Page, name: str, password: str = PASSWORD) -> None:
    page.goto("/app/")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    expect(page.locator("header.top")).to_be_visible()


def status(page: Page) -> dict[str, str]:
    return page.locator("header .status").evaluate("el => ({...el.dataset})")


def wait_idle(page: Page, timeout: float = 30_000) -> None:
    """Until every grid finished a sync with no error (the header says so)."""
    expect(page.locator("header .status[data-phase=idle]")).to_be_attached(timeout=timeout)


def open_household(page: Page, hid: str) -> None:
    page.goto(f"/app/#/h/{hid}")
    expect(page.locator(".household-view h2.address")).to_be_visible()


def record_visit(page: Page, hid: str, outcome: str = "met", notes: str = "",
                 phone: str | None = None) -> None:
    """Fill the visit form for `hid` and save; returns once the household page is back."""
    page.goto(f"/app/#/h/{hid}/visit")
    page.locator(f".tile:has(input[name=outcome][value={outcome}])").click()
    if notes:
        page.fill("textarea[name=notes]", notes)
    if phone is not None:
        page.locator("details.ledger > summary").click()
        page.fill("input[name=phone]", phone)
    page.click("button[type=submit]")
    expect(page.locator(".household-view")).to_be_visible()

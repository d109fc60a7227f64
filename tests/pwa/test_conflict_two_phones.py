"""Two workers of one grid edit the same household offline on two phones, then sync.

The real field app in two Chromium profiles, a real server with its background resolver, the
embedded CouchDB. Different fields: the server merges them silently and both phones end on
the same revision. The same field: the value edited last goes in (docs/conflicts.md), an open
conflict record keeps both, and both phones show it the way a worker at the door sees it.
And a phone whose signal comes and goes many times keeps syncing (no request left behind).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Playwright, expect

from sync import accounts
from tests.conftest import CouchServer, unique_name
from tests.pwa.conftest import PASSWORD, Field, Phone, make_field
from tests.pwa.helpers import household, log_in, open_household, wait_for, wait_idle

HID = "G1-5-1-301"
# Reads the app's own PouchDB for the household: what this phone holds right now.
LOCAL_DOC = """async ([db, id]) => {
  const d = await new PouchDB('doorstep_' + db).get(id, {conflicts: true});
  return {rev: d._rev, conflicts: d._conflicts || [], phone: d.phone, tags: d.tags,
          clock: d.clock};
}"""


@pytest.fixture
def two_workers(couch_server: CouchServer, tmp_path: Path) -> Iterator[Field]:
    """Grid G1 on a server that runs its background jobs (the resolver among them)."""
    f = make_field(couch_server, tmp_path / "server", {"DOORSTEP_BACKGROUND": "1"})
    f.extra["worker_b"] = unique_name("wb")
    accounts.create(f.couch, f.extra["worker_b"], "worker", password=PASSWORD, grids=["G1"],
                    display_name="李网格")
    try:
        yield f
    finally:
        f.server.stop()


@pytest.fixture
def phones(playwright: Playwright, tmp_path: Path, two_workers: Field
           ) -> Iterator[tuple[Phone, Phone]]:
    pair = (Phone(playwright, tmp_path / "phone-a", two_workers.server.url),
            Phone(playwright, tmp_path / "phone-b", two_workers.server.url))
    try:
        yield pair
    finally:
        for p in pair:
            p.close()
    assert not pair[0].errors and not pair[1].errors, (pair[0].errors, pair[1].errors)


def edit_in_visit_form(page: Page, *, phone: str | None = None, tag: str | None = None) -> None:
    """Record a visit to HID whose ledger section changes the phone number or adds a tag."""
    page.goto(f"/app/#/h/{HID}/visit")
    page.locator(".tile:has(input[name=outcome][value=met])").click()
    page.locator("details.ledger > summary").click()
    if phone is not None:
        page.fill("input[name=phone]", phone)
    if tag is not None:
        page.locator(".tag-boxes").first.locator(f"label:has(input[value={tag}])").click()
    page.click("button[type=submit]")
    expect(page.locator(".household-view")).to_be_visible()


def set_online(phones: tuple[Phone, ...], pages: tuple[Page, ...], online: bool) -> None:
    for phone, page in zip(phones, pages, strict=True):
        assert phone.context is not None
        phone.context.set_offline(not online)
        expect(page.locator(f"header .status[data-online={str(online).lower()}]")
               ).to_be_attached()


def local(page: Page, f: Field) -> dict[str, Any]:
    return page.evaluate(LOCAL_DOC, [f.db, f"household:{HID}"])


def server_doc(f: Field) -> dict[str, Any]:
    doc = f.couch.get(f.db, f"household:{HID}", conflicts=True)
    assert doc is not None
    return doc


def wait_server(page: Page, f: Field, done: Any, timeout_ms: int = 30_000) -> dict[str, Any]:
    """Until the server's entry satisfies `done` (the resolver works in the background)."""
    for _ in range(timeout_ms // 100):
        doc = server_doc(f)
        if done(doc):
            return doc
        page.wait_for_timeout(100)
    raise AssertionError(f"server entry never settled: {server_doc(f)}")


def wait_converged(page: Page, f: Field, server: dict[str, Any]) -> dict[str, Any]:
    """Until this phone holds exactly the server's revision, with no conflict left."""
    for _ in range(300):
        mine = local(page, f)
        if mine["rev"] == server["_rev"] and not mine["conflicts"]:
            return mine
        page.wait_for_timeout(100)
    raise AssertionError(f"phone never converged: {local(page, f)} vs {server['_rev']}")


def shown_with_conflict(page: Page) -> list[str]:
    page.goto("/app/#/")
    page.click("button[data-filter=conflict]")
    expect(page.locator(".results[data-complete=true]")).to_be_attached()
    rows = page.locator("a.row").evaluate_all("rows => rows.map(r => r.dataset.household)")
    page.click("button[data-filter=conflict]")  # off again: the filter is kept across screens
    return rows


def test_two_phones_offline_merge_then_conflict(two_workers: Field,
                                                phones: tuple[Phone, Phone]) -> None:
    f = two_workers
    f.put(household(HID, "5", "1", 3, "301", phone="13800000000"))
    pages = (phones[0].open(), phones[1].open())
    for page, name in zip(pages, (f.worker, f.extra["worker_b"]), strict=True):
        log_in(page, name)
        wait_idle(page)
    a, b = pages

    # 1. Different fields: A changes the phone number, B adds a tag, both without signal.
    set_online(phones, pages, False)
    edit_in_visit_form(a, phone="13911110000")
    edit_in_visit_form(b, tag="elderly_alone")
    set_online(phones, pages, True)
    for page in pages:
        wait_idle(page)
    merged = wait_server(a, f, lambda d: not d.get("_conflicts") and d["phone"] == "13911110000"
                         and d["tags"] == ["elderly_alone"])
    assert merged["clock"]["phone"]["by"] == f.worker
    assert merged["clock"]["tags"]["by"] == f.extra["worker_b"]
    assert f.all("conflict") == []
    # The server's resolver merged two revisions (it is not one phone overwriting the other).
    assert any(r["source"] == "merge" and r["household"] == HID for r in f.all("audit"))
    for page in pages:
        mine = wait_converged(page, f, merged)
        assert (mine["phone"], mine["tags"]) == ("13911110000", ["elderly_alone"])
        assert mine["clock"] == merged["clock"]
        assert shown_with_conflict(page) == []

    # 2. The same field, two different values; B's edit is the later one.
    set_online(phones, pages, False)
    edit_in_visit_form(a, phone="13922220000")
    a_at = local(a, f)["clock"]["phone"]["at"]
    wait_for(b, f"() => new Date().toISOString().replace(/\\.\\d{{3}}Z$/, 'Z') > '{a_at}'")
    edit_in_visit_form(b, phone="13933330000")
    assert local(b, f)["clock"]["phone"]["at"] > a_at
    set_online(phones, pages, True)
    for page in pages:
        wait_idle(page)
    settled = wait_server(a, f, lambda d: not d.get("_conflicts")
                          and d["phone"] in ("13922220000", "13933330000"))
    assert settled["phone"] == "13933330000"  # edited last wins for now
    assert settled["tags"] == ["elderly_alone"]  # the earlier merge is kept
    (record,) = f.all("conflict")
    assert (record["household"], record["path"], record["state"]) == (HID, "phone", "open")
    assert record["chosen"] == "13933330000"
    assert [(c["value"], c["by"]) for c in record["candidates"]] == [
        ("13933330000", f.extra["worker_b"]), ("13922220000", f.worker)]

    for page in pages:
        mine = wait_converged(page, f, settled)
        assert mine["phone"] == "13933330000"
        wait_for(page, f"() => new PouchDB('doorstep_{f.db}').get('{record['_id']}')"
                 ".then(() => true, () => false)")
        assert shown_with_conflict(page) == [HID]
        open_household(page, HID)
        banner = page.locator(".banner.conflict")
        expect(banner).to_contain_text("联系电话")
        values = banner.locator("li[data-path=phone]")
        expect(values).to_contain_text("13933330000")
        expect(values).to_contain_text("13922220000")


def test_a_phone_in_and_out_of_signal_all_day_keeps_syncing(two_workers: Field,
                                                            phones: tuple[Phone, Phone]) -> None:
    """Every return of the signal restarts sync; none may leave a request behind (six held
    `_changes` longpolls use up the browser's connections to the server, and sync stalls)."""
    f = two_workers
    f.put(household(HID, "5", "1", 3, "301"))
    page = phones[0].open()
    log_in(page, f.worker)
    wait_idle(page)
    for i in range(7):
        set_online(phones[:1], (page,), False)
        edit_in_visit_form(page, phone=f"1390000000{i}")
        set_online(phones[:1], (page,), True)
        wait_idle(page)
        assert server_doc(f)["phone"] == f"1390000000{i}"
    assert len([v for v in f.all("visit") if v["author"] == f.worker]) == 7

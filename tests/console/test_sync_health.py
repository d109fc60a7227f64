"""Phones report their sync (POST /api/device-status) and the supervisor's dashboard shows it:
who may report what, what a bad report gets, and who sees whose phones."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from sync import accounts
from sync.devices import MAX_PER_USER, DeviceReport, Devices, DeviceStatus, in_use
from tests.conftest import unique_name
from tests.console.conftest import PASSWORD, Console, Office


def report(device: str = "dev-a1", **changes: Any) -> dict[str, Any]:
    body = {"device": device, "app_version": "3f9a2b7c01de", "pending": 12,
            "pending_visits": 5, "last_sync": "2026-03-02T01:14:00.000Z",
            "last_error": "network"}
    return {**body, **changes}


def new_device() -> str:
    return f"dev-{uuid.uuid4().hex[:12]}"


class SyncHealthRows(HTMLParser):
    """The dashboard's sync-health table: per (worker, device) its row's and cells' data-*."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[tuple[str, str], dict[str, str]] = {}
        self._in_table = False
        self._row: dict[str, str] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "table":
            self._in_table = a.get("id") == "sync-health"
        elif self._in_table and tag == "tr" and "data-worker" in a:
            self._row = dict(a)
            self._text = []
            self.rows[(a["data-worker"], a["data-device"])] = self._row
        elif self._row is not None:
            self._row.update({k: v for k, v in a.items() if k.startswith("data-")})

    def handle_data(self, data: str) -> None:
        if self._row is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self._row is not None:
            self._row["text"] = " ".join(" ".join(self._text).split())
            self._row = None
        elif tag == "table":
            self._in_table = False


def sync_health(client: httpx.Client, scope: str) -> dict[tuple[str, str], dict[str, str]]:
    page = client.get(f"/console/dashboard?scope={scope}", headers={"accept": "text/html"})
    assert page.status_code == 200, page.text
    parser = SyncHealthRows()
    parser.feed(page.text)
    return parser.rows


def post(client: httpx.Client, body: Any, **kw: Any) -> httpx.Response:
    return client.post("/api/device-status", content=json.dumps(body),
                       headers={"content-type": "application/json"}, **kw)


def test_a_phone_reports_and_only_its_communitys_supervisor_sees_it(office: Office) -> None:
    w1, w9 = office.names["w1"], office.names["w9"]
    a_phone, b_phone = new_device(), new_device()
    assert post(office.login("w1"), report(a_phone)).json() == {"ok": True}
    assert post(office.login("w9"), report(b_phone, pending=3, pending_visits=3,
                                            last_error=None)).status_code == 200

    mine = sync_health(office.login("sup1"), "community:C1")
    row = mine[(w1, a_phone)]
    assert row["data-pending"] == "12"
    assert "3f9a2b7c01de" in row["text"]
    assert "12 项（走访 5）· 截至" in row["text"]
    assert row["data-error"] == "network" and "连接中断" in row["text"]
    assert all(worker != w9 for worker, _ in mine)  # community B's worker is not shown

    theirs = sync_health(office.login("sup2"), "community:C2")
    assert theirs[(w9, b_phone)]["data-pending"] == "3"
    assert all(worker != w1 for worker, _ in theirs)
    # Nor can community A's supervisor ask for B's dashboard.
    assert office.login("sup1").get("/console/dashboard?scope=community:C2").status_code == 403
    # The admin's county-wide dashboard has both.
    everyone = sync_health(office.login("adm"), "all")
    assert (w1, a_phone) in everyone and (w9, b_phone) in everyone


def test_the_worker_is_the_session_never_the_body(office: Office) -> None:
    w1, w2 = office.names["w1"], office.names["w2"]
    phone = new_device()
    w1_client = office.login("w1")
    refused = post(w1_client, {**report(phone), "user": w2})
    assert refused.status_code == 400
    assert refused.json() == {"error": "bad_request", "reason": "unknown field(s): user"}
    # Even under a device id another user has used, the report is filed under w1.
    post(office.login("w2"), report(phone, pending=0, pending_visits=0, last_error=None))
    assert post(w1_client, report(phone, pending=7, pending_visits=1)).status_code == 200
    devices = Devices(office.couch)
    assert [d.pending for d in devices.for_user(w2) if d.device == phone] == [0]
    assert [d.pending for d in devices.for_user(w1) if d.device == phone] == [7]
    # Reports never reach a phone: replication cannot open their database.
    for path in ("", "/_changes", "/_all_docs"):
        assert w1_client.get(f"/couch/{devices.db}{path}").status_code == 403


BAD_BODIES: list[tuple[str, Any, str]] = [
    ("not an object", [1, 2], "the body must be a JSON object"),
    ("missing fields", {"device": "dev-x"}, "missing field(s): app_version, last_error, "
                                            "last_sync, pending, pending_visits"),
    ("device with a slash", report("dev/../x"), "device must be"),
    ("empty device", report(""), "device must be"),
    ("device too long", report("d" * 65), "device must be"),
    ("negative pending", report(pending=-1), "pending must be a whole number"),
    ("pending as text", report(pending="12"), "pending must be a whole number"),
    ("pending as true", report(pending=True), "pending must be a whole number"),
    ("pending as a fraction", report(pending=1.5), "pending must be a whole number"),
    ("pending far too large", report(pending=10**12), "pending must be a whole number"),
    ("more visits than changes", report(pending=2, pending_visits=3),
     "pending_visits cannot exceed pending"),
    ("version with markup", report(app_version="<b>1</b>"), "app_version must be"),
    ("version too long", report(app_version="1" * 33), "app_version must be"),
    ("time not UTC", report(last_sync="2026-03-02T09:14:00+08:00"), "last_sync must be"),
    ("time that is no date", report(last_sync="2026-02-30T01:14:00Z"), "not a real date"),
    ("last_sync as a number", report(last_sync=1700000000), "last_sync must be"),
    ("unknown error kind", report(last_error="exploded"), "last_error must be null or one"),
]


@pytest.mark.parametrize(("what", "body", "reason"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_a_bad_report_is_refused_with_a_reason_and_nothing_is_stored(
        office: Office, what: str, body: Any, reason: str) -> None:
    worker = fresh_worker(office, "G1")
    answer = post(worker, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "bad_request"
    assert reason in answer.json()["reason"]
    assert Devices(office.couch).for_user(worker.name) == []


def test_wrong_content_type_size_or_json_is_refused(office: Office) -> None:
    worker = fresh_worker(office, "G1")
    as_form = worker.post("/api/device-status", data={"device": "dev-a"})
    assert as_form.status_code == 415 and as_form.json()["error"] == "bad_content_type"
    too_big = post(worker, report(app_version="1", padding="x" * 5000))
    assert too_big.status_code == 413 and too_big.json()["error"] == "too_large"
    broken = worker.post("/api/device-status", content=b"{\"device\": ",
                         headers={"content-type": "application/json"})
    assert broken.status_code == 400
    assert broken.json() == {"error": "bad_request", "reason": "the body is not valid JSON"}
    assert Devices(office.couch).for_user(worker.name) == []


def test_only_a_signed_in_worker_may_report(office: Office) -> None:
    with httpx.Client(base_url=office.server.url, timeout=30) as anonymous:
        answer = post(anonymous, report())
    assert answer.status_code == 401 and answer.json()["error"] == "unauthorized"
    supervisor = office.login("sup1")
    answer = post(supervisor, report())
    assert answer.status_code == 403 and answer.json()["error"] == "forbidden"
    assert Devices(office.couch).for_user(office.names["sup1"]) == []


def test_a_worker_keeps_only_her_latest_devices(office: Office) -> None:
    worker = fresh_worker(office, "G2")
    devices = Devices(office.couch)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    phones = [f"dev-{i}" for i in range(MAX_PER_USER + 2)]
    for i, phone in enumerate(phones):
        devices.save(worker.name, ["G2"], DeviceReport(phone, "", i, 0, None, None),
                     now=start + timedelta(hours=i))
    # A device that was dropped and reports again is among the latest once more.
    devices.save(worker.name, ["G2"], DeviceReport(phones[0], "", 0, 0, None, None),
                 now=start + timedelta(days=1))
    devices.save(worker.name, ["G2"], DeviceReport("dev-new", "", 0, 0, None, None),
                 now=start + timedelta(days=2))
    kept = [d.device for d in devices.for_user(worker.name)]
    assert kept == ["dev-new", phones[0], phones[6], phones[5], phones[4]]


def test_late_phones_are_marked_and_moved_or_deactivated_workers_drop_out(
        office: Office) -> None:
    worker = fresh_worker(office, "G2")
    devices = Devices(office.couch)
    now = datetime.now(UTC)
    devices.save(worker.name, ["G2"], DeviceReport(
        "dev-late", "1", 4, 4, (now - timedelta(hours=10)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "network"), now=now - timedelta(hours=9))
    devices.save(worker.name, ["G2"], DeviceReport(
        "dev-fine", "1", 0, 0, (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        None), now=now - timedelta(minutes=5))
    devices.save(worker.name, ["G2"], DeviceReport("dev-never", "1", 1, 1, None, "auth"),
                 now=now - timedelta(minutes=10))
    sup1 = office.login("sup1")
    rows = sync_health(sup1, "community:C1")
    assert rows[(worker.name, "dev-late")]["data-late"] == "pending"
    assert "久未上传" in rows[(worker.name, "dev-late")]["text"]
    assert "data-late" not in rows[(worker.name, "dev-fine")]
    assert rows[(worker.name, "dev-never")]["data-late"] == "sync"
    assert "从未完成同步" in rows[(worker.name, "dev-never")]["text"]
    assert "登录已过期" in rows[(worker.name, "dev-never")]["text"]

    # Moved to community B: community A's supervisor no longer sees the phones.
    accounts.create(office.couch, worker.name, "worker", password=PASSWORD, grids=["G9"])
    assert not [k for k in sync_health(sup1, "community:C1") if k[0] == worker.name]
    accounts.create(office.couch, worker.name, "worker", password=PASSWORD, grids=["G2"])
    assert [k for k in sync_health(sup1, "community:C1") if k[0] == worker.name]
    accounts.deactivate(office.couch, worker.name)
    assert not [k for k in sync_health(sup1, "community:C1") if k[0] == worker.name]


def test_what_counts_as_late() -> None:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def status(pending: int, reported_hours_ago: float, synced_hours_ago: float | None
               ) -> DeviceStatus:
        def at(hours: float) -> str:
            return (now - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return DeviceStatus("w", "d", "", pending, 0,
                            None if synced_hours_ago is None else at(synced_hours_ago), None,
                            at(reported_hours_ago))

    assert status(12, 1, 1).late(now) is None  # waiting, but reported just now
    assert status(12, 9, 9).late(now) == "pending"  # still waiting at a report 9 hours ago
    assert status(0, 9, 9).late(now) is None  # nothing waiting, synced this morning
    assert status(0, 1, 49).late(now) == "sync"  # no complete sync for two days
    assert status(0, 1, None).late(now) == "sync"  # never


def test_a_phone_replaced_with_nothing_waiting_leaves_the_table() -> None:
    def phone(device: str, pending: int, first: str, last: str) -> DeviceStatus:
        return DeviceStatus("w", device, "", pending, 0, last, None, last, first)

    # Logged out on Monday with everything uploaded, logged in again on Tuesday: a new id.
    before_logout = phone("dev-mon", 0, "2026-03-02T01:00:00Z", "2026-03-02T09:00:00Z")
    after_login = phone("dev-tue", 0, "2026-03-03T01:00:00Z", "2026-03-03T09:00:00Z")
    assert in_use([after_login, before_logout]) == [after_login]
    # A replaced phone that still held changes stays: they may be lost with it.
    lost = phone("dev-lost", 4, "2026-03-01T01:00:00Z", "2026-03-02T09:00:00Z")
    assert in_use([after_login, lost]) == [after_login, lost]
    # Two phones in use side by side both stay, even with nothing waiting.
    other = phone("dev-other", 0, "2026-03-01T01:00:00Z", "2026-03-03T08:00:00Z")
    assert in_use([after_login, other]) == [after_login, other]


class Worker(Console):
    name: str = ""


def fresh_worker(office: Office, grid: str) -> Worker:
    """A worker of her own, so one test's reports never meet another's."""
    name = unique_name("wk")
    accounts.create(office.couch, name, "worker", password=PASSWORD, grids=[grid])
    client = Worker(base_url=office.server.url, timeout=30)
    client.name = name
    answer = client.post("/api/login", json={"name": name, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return client

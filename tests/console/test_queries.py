"""The console's figures, computed from the hub over real CouchDB views, on a grid whose
every household's state is known by construction (today is Friday 20 November 2026)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from sync import console_queries as q
from sync.couch import Couch
from sync.directory import Directory
from sync.hub import Hub
from tests.console.docs_factory import household, need_event, visit, write

TZ = ZoneInfo("Asia/Shanghai")
PERIOD = q.Period(date(2026, 11, 20), TZ, 91)
NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)


def review(grid: str, v: dict, decision: str, at: str, reason: str = "") -> dict:
    return {"_id": f"review:{uuid.uuid4()}", "type": "review", "grid": grid,
            "household": v["household"], "visit": v["_id"], "decision": decision,
            "reason": reason, "author": "sup", "at": at}


def assignment(grid: str, hid: str, due: str) -> dict:
    return {"_id": f"assignment:{uuid.uuid4()}", "type": "assignment", "grid": grid,
            "household": hid, "worker": "w1", "due": due, "reason": "回访", "author": "sup",
            "at": "2026-11-01T01:00:00Z"}


@pytest.fixture
def grid(couch: Couch, community) -> dict:
    """Six households of G1 with known states, one household of G9 with a common name."""
    hs = {
        "h1": household("G1", "G1-1-1-101", phone="13912345678", room="101"),
        "h2": household("G1", "G1-1-1-102", tags=("elderly_alone",), room="102"),
        "h3": household("G1", "G1-1-1-103", room="103", name="李建国"),
        "h4": household("G1", "G1-1-1-104", room="104"),
        "h5": household("G1", "G1-1-1-105", room="105"),
        "h6": household("G1", "G1-1-1-106", member_tags=("disabled",), room="106"),
    }
    hid = {k: h["household_id"] for k, h in hs.items()}
    need_a = {"need_id": "need-a", "category": "repair", "text": "楼道灯坏了", "urgent": False}
    vs = {
        "v1": visit("G1", hid["h1"], "2026-11-10T02:00:00Z", needs=[need_a]),
        "v2": visit("G1", hid["h2"], "2026-10-05T02:00:00Z"),
        "v3": visit("G1", hid["h3"], "2026-11-18T02:00:00Z", outcome="nobody_home", author="w2"),
        "v5": visit("G1", hid["h5"], "2026-07-01T02:00:00Z"),
        "v6": visit("G1", hid["h6"], "2026-11-01T02:00:00Z"),
    }
    vs["v6b"] = visit("G1", hid["h6"], "2026-11-03T02:00:00Z", amends=vs["v6"]["_id"])
    a = {"open": assignment("G1", hid["h4"], "2026-11-25"),
         "late": assignment("G1", hid["h5"], "2026-11-15"),
         "done": assignment("G1", hid["h3"], "2026-11-30"),
         "cancelled": assignment("G1", hid["h1"], "2026-11-30")}
    vs["va"] = visit("G1", hid["h3"], "2026-11-19T03:00:00Z", assignment=a["done"]["_id"],
                     author="w2", outcome="refused")
    write(couch, "G1", *hs.values(), *vs.values(), *a.values(),
          review("G1", vs["v1"], "approved", "2026-11-11T01:00:00Z"),
          review("G1", vs["v6"], "returned", "2026-11-02T01:00:00Z", reason="缺少照片"),
          {"_id": f"assignment_event:{uuid.uuid4()}", "type": "assignment_event",
           "grid": "G1", "assignment": a["cancelled"]["_id"], "event": "cancelled",
           "author": "sup", "at": "2026-11-02T00:00:00Z"},
          need_event("G1", hid["h2"], "need-b", "raised", "2026-11-19T01:00:00Z",
                     category="medical", text="测血压"),
          need_event("G1", hid["h2"], "need-b", "dispatched", "2026-11-19T05:00:00Z",
                     author="sup", to="社区卫生服务站"),
          need_event("G1", hid["h2"], "need-c", "raised", "2026-10-01T01:00:00Z",
                     category="repair", text="漏水"),
          need_event("G1", hid["h2"], "need-c", "resolved", "2026-10-03T01:00:00Z"))
    write(couch, "G9", household("G9", "G9-1-1-101", name="王秀英", phone="13900005678"))
    hub = Hub(couch)
    hub.copy_all(["G1", "G2", "G9"])
    return {"hub": hub, "h": hid, "v": vs, "a": a,
            "config": Directory(couch).tag_config()}


def snapshot(couch: Couch, grid: dict, gid: str = "G1") -> q.GridSnapshot:
    return q.load_snapshot(couch, grid["hub"].db, gid, PERIOD.key(PERIOD.window_start))


def test_coverage_and_overdue_follow_the_field_apps_due_rule(couch: Couch, grid: dict) -> None:
    cov = q.coverage(snapshot(couch, grid), grid["config"], PERIOD)
    assert (cov.total, cov.visited) == (6, 4)  # h5's only visit was last quarter, h4 never
    assert cov.by_outcome == {"met": 3, "refused": 1}  # h3: the latest knock of the quarter
    # h2 (elderly, monthly, last seen 5 Oct), h4 (never), h5 (July) are overdue; h3's
    # refused knock on the 19th wants a revisit within 7 days, not yet due.
    dues = {d.household: d.status for d in q.due_states(snapshot(couch, grid), grid["config"],
                                                         PERIOD)}
    h = grid["h"]
    assert {k for k, s in dues.items() if s == "overdue"} == {h["h2"], h["h4"], h["h5"]}
    assert (cov.overdue, cov.special_care_overdue) == (3, 1)


def test_review_states_and_the_queue(couch: Couch, grid: dict) -> None:
    snap = snapshot(couch, grid)
    states = q.visit_states(snap)
    v = grid["v"]
    assert states[v["v1"]["_id"]] == "approved"
    assert states[v["v6"]["_id"]] == "amended"
    assert states[v["v6b"]["_id"]] == "submitted"
    queue = q.review_queue([snap], PERIOD)
    ids = [i.visit.id for i in queue]
    assert v["v1"]["_id"] not in ids and v["v6"]["_id"] not in ids
    assert ids == sorted(ids, key=lambda i: next(x.visit.visited_at for x in queue
                                                 if x.visit.id == i), reverse=True)
    amendment = next(i for i in queue if i.visit.id == v["v6b"]["_id"])
    assert amendment.returned_reason == "缺少照片"
    by_worker = q.review_queue([snap], PERIOD, q.QueueFilter(worker="w2"))
    assert {i.visit.id for i in by_worker} == {v["v3"]["_id"], v["va"]["_id"]}
    failed = q.review_queue([snap], PERIOD, q.QueueFilter(outcome="nobody_home"))
    assert [i.visit.id for i in failed] == [v["v3"]["_id"]]
    one_day = q.review_queue([snap], PERIOD, q.QueueFilter(day_from=date(2026, 11, 3),
                                                           day_to=date(2026, 11, 3)))
    assert [i.visit.id for i in one_day] == [v["v6b"]["_id"]]


def test_dashboard_workers_needs_and_special_care(couch: Couch, grid: dict) -> None:
    d = q.dashboard([snapshot(couch, grid)], grid["config"], PERIOD, now=NOW)
    assert [p.household for p in d.special_care_past_due] == [grid["h"]["h2"]]
    w2 = next(w for w in d.workers if w.worker == "w2")
    days = PERIOD.worker_days
    assert len(w2.per_day) == 14 and days[-1] == date(2026, 11, 20)
    assert w2.per_day[days.index(date(2026, 11, 18))] == 1
    assert w2.per_day[days.index(date(2026, 11, 19))] == 1
    assert sum(w2.per_day) == 2
    assert d.needs_by_state == {"raised": 1, "dispatched": 1, "resolved": 1}
    assert [n.need_id for n in d.overdue_needs] == ["need-a"]  # raised 10 Nov, not resolved
    assert d.total.total == 6


def test_assignment_statuses(couch: Couch, grid: dict) -> None:
    found = {a.id: s for a, s in q.assignments([snapshot(couch, grid)], PERIOD)}
    a = grid["a"]
    assert found == {a["open"]["_id"]: "open", a["late"]["_id"]: "overdue",
                     a["done"]["_id"]: "visited", a["cancelled"]["_id"]: "cancelled"}


def test_search_finds_by_name_phone_and_address_only_in_the_grids_given(
        couch: Couch, grid: dict) -> None:
    h = grid["h"]
    db = grid["hub"].db
    by_name, _ = q.search(couch, db, "王秀英", {"G1", "G2"})
    assert h["h3"] not in {f.household for f in by_name}
    assert "G9-1-1-101" not in {f.household for f in by_name}
    assert h["h1"] in {f.household for f in by_name}
    assert [f.household for f in q.search(couch, db, "5678", {"G1"})[0]] == [h["h1"]]
    assert [f.household for f in q.search(couch, db, "1-1-103", {"G1"})[0]] == [h["h3"]]
    assert [f.household for f in q.search(couch, db, "建国", {"G1"})[0]] == [h["h3"]]
    everywhere, _ = q.search(couch, db, "5678", {"G1", "G9"})
    assert {f.household for f in everywhere} == {h["h1"], "G9-1-1-101"}


def test_household_history_spans_visits_reviews_and_needs(couch: Couch, grid: dict) -> None:
    history = q.household_history(couch, grid["hub"].db, grid["h"]["h6"])
    assert [d["type"] for d in history] == ["visit", "review", "visit"]
    h2 = q.household_history(couch, grid["hub"].db, grid["h"]["h2"])
    assert [d["type"] for d in h2].count("need_event") == 4


def test_snapshots_are_reused_until_the_grid_changes(couch: Couch, grid: dict) -> None:
    snaps = q.Snapshots(couch, grid["hub"])
    first = snaps.get(["G1", "G2"], PERIOD)
    again = snaps.get(["G1", "G2"], PERIOD)
    assert first[0] is again[0] and first[1] is again[1]
    write(couch, "G1", visit("G1", grid["h"]["h4"], "2026-11-20T01:00:00Z"))
    grid["hub"].copy_grid("G1")
    figures = snaps.figures(first, grid["config"], PERIOD)
    assert snaps.figures(again, grid["config"], PERIOD)[0] is figures[0]
    later = snaps.get(["G1", "G2"], PERIOD)
    assert later[0] is not first[0] and later[1] is first[1]
    assert len(later[0].visits) == len(first[0].visits) + 1
    refigured = snaps.figures(later, grid["config"], PERIOD)
    assert refigured[0] is not figures[0] and refigured[1] is figures[1]
    assert refigured[0].coverage.overdue == figures[0].coverage.overdue - 1  # h4 visited
    snaps.close()


def test_a_page_that_cannot_wait_gets_the_previous_snapshot_then_the_new_one(
        couch: Couch, grid: dict) -> None:
    snaps = q.Snapshots(couch, grid["hub"], wait=0)
    (first,) = snaps.get(["G1"], PERIOD)  # never read before: waited for, whatever `wait`
    write(couch, "G1", visit("G1", grid["h"]["h4"], "2026-11-20T01:00:00Z"))
    grid["hub"].copy_grid("G1")
    (shown,) = snaps.get(["G1"], PERIOD)
    assert shown is first and shown.as_of == first.as_of  # the page says how old it is
    deadline = time.monotonic() + 20
    while (newer := snaps.get(["G1"], PERIOD)[0]) is first:
        assert time.monotonic() < deadline, "the re-read never finished"
        time.sleep(0.05)
    assert len(newer.visits) == len(first.visits) + 1 and newer.as_of >= first.as_of
    snaps.close()

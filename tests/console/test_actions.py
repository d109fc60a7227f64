"""What the console writes: reviews, assignments, need events, push requests and moves, each
validated, authorized and written once, on the real embedded CouchDB."""

from __future__ import annotations

from datetime import date

import pytest

from sync import accounts, naming
from sync.console_actions import ActionError, GridDb, assign, cancel_assignment, need_event, review
from sync.couch import Couch
from sync.hub import Hub
from sync.moves import move_household
from tests.console.docs_factory import household, visit, write

TODAY = date(2026, 11, 20)


def allow(doc: dict) -> None:
    return None


def push_requests(couch: Couch) -> list[dict]:
    rows = couch.all_docs(couch.name(naming.PUSH), startkey="push_request:",
                          endkey="push_request:\ufff0", include_docs=True)
    return [r["doc"] for r in rows]


@pytest.fixture
def g1(couch: Couch, community) -> GridDb:
    write(couch, "G1", household("G1", "G1-1-1-101"), household("G1", "G1-1-1-102"))
    write(couch, "G9", household("G9", "G9-1-1-101"))
    accounts.create(couch, "w1", "worker", password="password1", grids=["G1"])
    return GridDb(couch, "G1")


def test_returning_a_visit_records_the_reason_and_asks_to_notify_its_author(
        couch: Couch, g1: GridDb) -> None:
    (v,) = write(couch, "G1", visit("G1", "G1-1-1-101", "2026-11-19T02:00:00Z", author="w1"))
    saved = review(g1, v["_id"], "returned", "照片看不清", "sup", allow)
    stored = couch.get(g1.name, saved["_id"])
    assert (stored["decision"], stored["reason"], stored["visit"]) == ("returned", "照片看不清",
                                                                        v["_id"])
    (req,) = push_requests(couch)
    assert (req["kind"], req["user"], req["ref"], req["grid"], req["household"]) == (
        "returned_visit", "w1", saved["_id"], "G1", "G1-1-1-101")
    with pytest.raises(ActionError) as again:
        review(g1, v["_id"], "approved", "", "sup", allow)
    assert again.value.status == 409


def test_a_return_needs_a_reason_and_a_visit_of_this_grid(couch: Couch, g1: GridDb) -> None:
    (v,) = write(couch, "G1", visit("G1", "G1-1-1-101", "2026-11-19T02:00:00Z"))
    (other,) = write(couch, "G9", visit("G9", "G9-1-1-101", "2026-11-19T02:00:00Z"))
    with pytest.raises(ActionError) as no_reason:
        review(g1, v["_id"], "returned", "  ", "sup", allow)
    assert no_reason.value.status == 400
    with pytest.raises(ActionError) as elsewhere:
        review(g1, other["_id"], "approved", "", "sup", allow)  # a G9 visit, asked through G1
    assert elsewhere.value.status == 404
    assert couch.get(g1.name, f"review:{v['_id'].split(':', 1)[1]}") is None


def test_a_refusal_by_authorization_writes_nothing(couch: Couch, g1: GridDb) -> None:
    (v,) = write(couch, "G1", visit("G1", "G1-1-1-101", "2026-11-19T02:00:00Z"))
    with pytest.raises(ActionError) as refused:
        review(g1, v["_id"], "approved", "", "sup", lambda doc: "grid G1 is not yours")
    assert (refused.value.status, refused.value.reason) == (403, "grid G1 is not yours")
    assert couch.get(g1.name, f"review:{v['_id'].split(':', 1)[1]}") is None


def test_assignments_are_all_or_nothing_and_each_asks_for_a_notification(
        couch: Couch, g1: GridDb) -> None:
    with pytest.raises(ActionError) as missing:
        assign(g1, ["G1-1-1-101", "G1-9-9-999"], "w1", "2026-11-30", "回访", "sup", allow, TODAY)
    assert missing.value.status == 404
    assert push_requests(couch) == []
    with pytest.raises(ActionError) as not_worker:
        assign(g1, ["G1-1-1-101"], "sup", "2026-11-30", "回访", "sup", allow, TODAY)
    assert not_worker.value.status == 400
    with pytest.raises(ActionError) as past:
        assign(g1, ["G1-1-1-101"], "w1", "2026-11-01", "回访", "sup", allow, TODAY)
    assert past.value.status == 400

    saved = assign(g1, ["G1-1-1-101", "G1-1-1-102"], "w1", "2026-11-30", "核实独居老人情况",
                   "sup", allow, TODAY)
    assert {d["household"] for d in saved} == {"G1-1-1-101", "G1-1-1-102"}
    requests = push_requests(couch)
    assert sorted(r["ref"] for r in requests) == sorted(d["_id"] for d in saved)
    assert all(r["kind"] == "assignment" and r["user"] == "w1" for r in requests)

    cancel = cancel_assignment(g1, saved[0]["_id"], "sup", allow)
    assert couch.get(g1.name, cancel["_id"])["event"] == "cancelled"
    with pytest.raises(ActionError) as twice:
        cancel_assignment(g1, saved[0]["_id"], "sup", allow)
    assert twice.value.status == 409


def test_need_events_only_move_forward(couch: Couch, g1: GridDb) -> None:
    doc = need_event(g1, "need-1", "G1-1-1-101", "raised", "dispatched", "sup", allow,
                     to="物业服务中心")
    assert couch.get(g1.name, doc["_id"])["to"] == "物业服务中心"
    with pytest.raises(ActionError) as backwards:
        need_event(g1, "need-1", "G1-1-1-101", "resolved", "claimed", "sup", allow)
    assert backwards.value.status == 409
    with pytest.raises(ActionError) as no_evaluation:
        need_event(g1, "need-1", "G1-1-1-101", "resolved", "evaluated", "sup", allow)
    assert no_evaluation.value.status == 400


def test_moving_a_household_copies_then_deletes_with_a_marker(couch: Couch, g1: GridDb) -> None:
    old_db, new_db = g1.name, naming.grid_db_name("G2", couch.prefix)
    moved = move_household(couch, "G1-1-1-101", "G1", "G2", "admin")
    assert couch.get(new_db, "household:G1-1-1-101")["grid"] == "G2"
    assert moved["grid"] == "G2"
    status, leaves = couch.request("GET", f"{old_db}/household:G1-1-1-101",
                                   params={"open_revs": "all"})
    assert [leaf["ok"].get("_deleted") for leaf in leaves] == [True]
    assert leaves[0]["ok"]["moved_to"] == "G2"
    for db in (old_db, new_db):
        audits = [r["doc"] for r in couch.all_docs(db, startkey="audit:", endkey="audit:\ufff0",
                                                    include_docs=True)]
        assert [(a["source"], a["changes"]) for a in audits] == [
            ("move", [{"path": "grid", "old": "G1", "new": "G2"}])]
    hub = Hub(couch)
    hub.copy_all(["G1", "G2"])
    in_hub = couch.get(hub.db, "household:G1-1-1-101")
    assert in_hub["grid"] == "G2"

    # and back again, over the tombstone it left in G2's database... and G1's
    move_household(couch, "G1-1-1-101", "G2", "G1", "admin")
    assert couch.get(old_db, "household:G1-1-1-101")["grid"] == "G1"
    assert couch.get(new_db, "household:G1-1-1-101") is None
    with pytest.raises(ActionError) as gone:
        move_household(couch, "G1-1-1-101", "G2", "G1", "admin")
    assert gone.value.status == 404

"""The outbox against the real embedded CouchDB and the local push stand-in."""

from __future__ import annotations

import time

from server.push.expand import CHECKPOINT
from server.push.subscriptions import Subscriptions
from sync.console_actions import request_push
from sync.couch import Couch
from sync.naming import grid_db_name
from sync.push_outbox import (
    EXPIRED,
    FAILED,
    GONE,
    INTERRUPTED,
    PENDING,
    SENT,
    Outbox,
    iso,
    outbox_db,
    push_db,
)
from tests.push.conftest import assign, run_until, subscribe
from tests.push.standin import Answer


def deliveries(couch: Couch) -> list[dict]:
    rows = couch.all_docs(outbox_db(couch), startkey="delivery:", endkey="delivery:\ufff0",
                          include_docs=True)
    return [r["doc"] for r in rows]


def settled(couch: Couch) -> bool:
    """Every delivery has been tried and is past pending (and there is at least one)."""
    states = [d["state"] for d in deliveries(couch)]
    return bool(states) and PENDING not in states and "sending" not in states


def test_an_assignment_reaches_each_device_of_its_worker_signed_and_encrypted(
        push, standin, make_worker):
    subscribe(push, standin, "w_zhang", "phone")
    subscribe(push, standin, "w_zhang", "tablet", lang="en-US")
    subscribe(push, standin, "w_li", "other")
    assign(push, "w_zhang")
    worker = make_worker()
    run_until(worker, lambda: len(standin.delivered()) == 2)

    assert standin.problems() == []
    assert standin.tried("other") == []
    zh, = standin.delivered("phone")
    assert zh.payload["title"] == "新派单"
    assert zh.payload["body"] == "3栋2单元502室，请于2026-12-01前走访"
    assert zh.payload["url"] == "/app/#/assignment/assignment:w_zhang-0"
    assert zh.claims["sub"] == "mailto:admin@localhost"
    assert 0 < int(zh.headers["ttl"]) <= 3 * 86400
    assert zh.headers["urgency"] == "normal"
    en, = standin.delivered("tablet")
    assert en.payload["body"] == "Bldg 3, Unit 2, Rm 502: please visit by 2026-12-01"
    assert {d["state"] for d in deliveries(push)} == {SENT}


def test_429_is_retried_no_sooner_than_retry_after(push, standin, make_worker):
    subscribe(push, standin, "w_zhang", "phone")
    standin.script("phone", Answer(429, retry_after="2"))
    assign(push, "w_zhang")
    worker = make_worker()
    run_until(worker, lambda: len(standin.delivered("phone")) == 1)

    first, second = standin.tried("phone")
    assert first.status == 429
    assert second.at - first.at >= 2.0
    d, = deliveries(push)
    assert (d["state"], d["attempts"]) == (SENT, 2)


def test_500_is_retried_with_growing_waits_and_each_failure_is_recorded(
        push, standin, make_worker):
    subscribe(push, standin, "w_zhang", "phone")
    standin.script("phone", Answer(500), Answer(500))
    assign(push, "w_zhang")
    worker = make_worker(retry_base=0.3)
    run_until(worker, lambda: standin.tried("phone")[0:1] != [])
    worker.step()
    d, = deliveries(push)
    assert (d["state"], d["attempts"], d["last_status"]) == (PENDING, 1, 500)
    assert d["last_error"].startswith("HTTP 500")
    run_until(worker, lambda: len(standin.delivered("phone")) == 1)

    a, b, c = standin.tried("phone")
    # Waits are base·2^(n-1) scaled by a jitter in [½, 1].
    assert b.at - a.at >= 0.15
    assert c.at - b.at >= 0.3
    d, = deliveries(push)
    assert (d["state"], d["attempts"]) == (SENT, 3)


def test_410_deletes_the_subscription_and_nothing_more_goes_there(push, standin, make_worker):
    subscribe(push, standin, "w_zhang", "phone")
    standin.script("phone", Answer(410))
    assign(push, "w_zhang", n=1)
    worker = make_worker()
    run_until(worker, lambda: not Subscriptions(push).for_user("w_zhang"))

    d, = deliveries(push)
    assert (d["state"], d["last_status"]) == (GONE, 410)
    push.put(push_db(push), {"_id": "push_request:assignment:later", "type": "push_request",
                             "kind": "assignment", "user": "w_zhang", "grid": "G1",
                             "household": "G1-3-2-502", "ref": "assignment:w_zhang-0",
                             "at": iso(time.time())})
    worker.step()
    assert len(standin.tried("phone")) == 1
    assert push.get(push_db(push), "push_request:assignment:later")["deliveries"] == 0


def test_a_permanent_refusal_is_recorded_and_not_retried(push, standin, make_worker):
    subscribe(push, standin, "w_zhang", "phone")
    standin.script("phone", Answer(413))
    assign(push, "w_zhang")
    worker = make_worker()
    run_until(worker, lambda: settled(push))
    for _ in range(3):
        worker.step()
    d, = deliveries(push)
    assert (d["state"], d["last_status"], d["attempts"]) == (FAILED, 413, 1)
    assert len(standin.tried("phone")) == 1


def test_a_hanging_push_service_times_out_without_holding_up_the_others(
        push, standin, make_worker):
    subscribe(push, standin, "w_zhang", "stuck")
    for i in range(6):
        subscribe(push, standin, f"w_{i}", f"phone{i}")
        assign(push, f"w_{i}")
    standin.script("stuck", Answer(hang=30))
    assign(push, "w_zhang")
    worker = make_worker(send_timeout=1.0, concurrency=2)
    started = time.monotonic()
    run_until(worker, lambda: len(standin.delivered()) == 6)
    assert time.monotonic() - started < 10  # not 30: the hang is cut off at the send timeout
    run_until(worker, lambda: len(standin.delivered("stuck")) == 1)

    hung, ok = standin.tried("stuck")
    assert hung.status == 0 and ok.status == 201
    stuck = next(d for d in deliveries(push) if d["user"] == "w_zhang")
    assert stuck["attempts"] == 2


def test_a_request_expanded_again_after_a_crash_is_not_sent_again(push, standin, make_worker):
    subscribe(push, standin, "w_zhang", "phone")
    assign(push, "w_zhang")
    run_until(make_worker("before-crash"), lambda: len(standin.delivered()) == 1)
    # The crash came after the deliveries were written but before the checkpoint moved:
    # the restarted worker reads the request again.
    checkpoint = push.get(push_db(push), CHECKPOINT)
    push.request("DELETE", f"{push_db(push)}/{CHECKPOINT}", params={"rev": checkpoint["_rev"]})
    restarted = make_worker("after-restart")
    run_until(restarted, lambda: push.get(push_db(push), CHECKPOINT) is not None)
    for _ in range(3):
        restarted.step()
    assert len(standin.tried("phone")) == 1
    assert len(deliveries(push)) == 1


def test_two_workers_never_claim_the_same_delivery(push, standin, make_worker):
    for i in range(20):
        subscribe(push, standin, f"w_{i}", f"phone{i}")
        assign(push, f"w_{i}")
    expander = make_worker().expander
    expander.poll()
    expander.expand(room=100)  # with no holder: written pending, for anyone to claim
    a, b = Outbox(push), Outbox(push)
    got_a = a.claim_due(20, "a", hold=60)
    got_b = b.claim_due(20, "b", hold=60)
    # Both read the same due rows; the rev check lets exactly one claim each.
    assert len(got_a) + len(got_b) == 20
    assert not {d["_id"] for d in got_a} & {d["_id"] for d in got_b}


def test_a_claim_left_by_a_crash_is_marked_interrupted_and_never_resent(
        push, standin, make_worker):
    subscribe(push, standin, "w_zhang", "phone")
    assign(push, "w_zhang")
    worker = make_worker()
    worker.expander.poll()
    worker.expander.expand(room=10)
    claimed, = Outbox(push).claim_due(10, "crashed-replica", hold=0.5)
    time.sleep(0.6)  # the crashed replica's claim runs out
    run_until(worker, lambda: settled(push))
    d, = deliveries(push)
    assert d["state"] == INTERRUPTED and "crashed-replica" in d["last_error"]
    worker.step()
    assert standin.tried("phone") == []


def test_a_request_older_than_its_time_to_live_is_not_sent(push, standin, make_worker):
    subscribe(push, standin, "w_zhang", "phone")
    rid, = assign(push, "w_zhang", at=time.time() - 4 * 86400)
    worker = make_worker()
    worker.step()
    assert standin.tried("phone") == []
    request = push.get(push_db(push), rid)
    assert request["deliveries"] == 0 and "time to live" in request["note"]


def test_retries_stop_when_the_message_would_arrive_after_its_time_to_live(
        push, standin, make_worker):
    subscribe(push, standin, "w_zhang", "phone")
    standin.script("phone", Answer(429, retry_after=str(4 * 86400)))
    assign(push, "w_zhang")
    worker = make_worker()
    run_until(worker, lambda: settled(push))
    d, = deliveries(push)
    assert (d["state"], d["last_status"]) == (EXPIRED, 429)


def test_figures_count_deliveries_by_state_and_kind(push, standin, make_worker):
    for i in range(3):
        subscribe(push, standin, f"w_{i}", f"phone{i}")
        assign(push, f"w_{i}")
    standin.script("phone0", Answer(410))
    worker = make_worker()
    run_until(worker, lambda: len(standin.delivered()) == 2)
    worker.step()
    figures = Outbox(push).figures()
    assert figures["by_state"][SENT] == 2 and figures["by_state"][GONE] == 1
    assert figures["by_kind"]["assignment"] == {SENT: 2, GONE: 1}
    assert figures["sent_last_24h"] == 2 and figures["total"] == 3


def test_pending_work_larger_than_one_scan_is_all_sent_after_a_takeover(
        push, standin, make_worker):
    # Deliveries left pending by a replica that stopped (here: written and never claimed).
    for i in range(30):
        subscribe(push, standin, f"w_{i}", f"phone{i}")
        assign(push, f"w_{i}")
    expander = make_worker("stopped-replica").expander
    expander.poll()
    expander.expand(room=100)
    successor = make_worker("successor", concurrency=1)  # its scans load 20 at a time
    run_until(successor, lambda: len(standin.delivered()) == 30)
    assert settled(push) and {d["state"] for d in deliveries(push)} == {SENT}


def test_a_returned_visit_tells_its_worker_why_and_opens_the_amendment(
        push, standin, make_worker):
    subscribe(push, standin, "w_zhang", "phone")
    assign(push, "w_zhang", n=0)  # the household only
    db = grid_db_name("G1", push.prefix)
    push.put(db, {"_id": "review:v1", "type": "review", "grid": "G1", "household": "G1-3-2-502",
                  "visit": "visit:v1", "decision": "returned", "reason": "照片不清楚，请补拍",
                  "author": "sup_li", "at": iso(time.time())})
    # What the console writes when a supervisor returns a visit (sync/console_actions.py).
    request_push(push, "returned_visit", "w_zhang", "G1", "G1-3-2-502", "review:v1",
                 iso(time.time()))
    run_until(make_worker(), lambda: len(standin.delivered("phone")) == 1)
    sent, = standin.delivered("phone")
    assert sent.payload["title"] == "走访被退回，请更正"
    assert sent.payload["body"] == "3栋2单元502室：照片不清楚，请补拍"
    assert sent.payload["url"] == "/app/#/v/visit:v1/amend"

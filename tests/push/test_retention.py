"""Bounded push history (sync/push_retention.py) on the real embedded CouchDB: what goes,
what stays, the figures page unchanged, and no notification sent twice afterwards."""

from __future__ import annotations

import time
from typing import Any

import pytest

from server.errors import ConfigError
from server.push.expand import CHECKPOINT
from sync import push_retention
from sync.couch import Couch
from sync.push_figures import Attribution, scope_figures
from sync.push_outbox import (
    EXPIRED,
    FAILED,
    GONE,
    INTERRUPTED,
    PENDING,
    SENDING,
    SENT,
    STATES,
    iso,
    new_delivery,
    outbox_db,
    push_db,
)
from sync.push_retention import Retention, ensure_retention_views, keep_days
from tests.conftest import Community, unique_name
from tests.push.conftest import assign, run_until, subscribe

DAY = 86400.0
FINAL = (SENT, FAILED, GONE, EXPIRED, INTERRUPTED)


@pytest.fixture
def history(push: Couch) -> Couch:
    ensure_retention_views(push)
    return push


def request(couch: Couch, age: float | None, now: float, grid: str = "G1") -> dict[str, Any]:
    """A push request written `age` seconds before `now` (None: one without a time)."""
    doc = {"_id": f"push_request:{unique_name('r')}", "type": "push_request",
           "kind": "assignment", "user": "w_zhang", "grid": grid}
    if age is not None:
        doc["at"] = iso(now - age)
    return doc


def delivery(couch: Couch, req: dict[str, Any], now: float, *, age: float, state: str,
             changed_after: float = 60.0) -> dict[str, Any]:
    """A delivery of `req` queued `age` before `now`, last changed `changed_after` later."""
    created = now - age
    doc = new_delivery(req, {"_id": f"subscription:{unique_name('s')}"}, {}, created,
                       scopes=Attribution(couch).scopes(req))
    doc["state"] = state
    if state == SENDING:
        doc.update(claimed_by="w", claimed_until=iso(created + 30))
    elif state != PENDING:
        doc.update(attempts=1, last_attempt_at=iso(created + changed_after), last_status=201)
    if state == SENT:
        doc["sent_at"] = iso(created + changed_after)
    return doc


def live_ids(couch: Couch, db: str, prefix: str) -> set[str]:
    return {r["id"] for r in couch.all_docs(db, startkey=prefix, endkey=prefix + "\ufff0")}


def figures(couch: Couch, community: Community, now: float) -> list[dict[str, Any]]:
    grids = {"G1": community.community, "G2": community.community,
             community.other_grid: community.other_community}
    return [scope_figures(couch, scope, grids, days, now=now).as_json()
            for scope in ("all", f"community:{community.community}") for days in (1, 7, 30)]


def test_only_finished_deliveries_older_than_the_limit_go_and_the_figures_stay(
        history, community):
    now = time.time()
    docs, kept = [], set()
    for state in STATES:
        for age in (2 * DAY, 29 * DAY, 89 * DAY, 91 * DAY, 400 * DAY):
            d = delivery(history, request(history, age, now), now, age=age, state=state)
            docs.append(d)
            if state not in FINAL or age < 90 * DAY:
                kept.add(d["_id"])
    # Queued long ago, but its last attempt is recent: its last change counts.
    late = delivery(history, request(history, 92 * DAY, now), now, age=92 * DAY, state=FAILED,
                    changed_after=3 * DAY)
    docs.append(late)
    kept.add(late["_id"])
    history.bulk_docs(outbox_db(history), docs)
    before = figures(history, community, now)
    assert before[2]["total"] == 2 * len(STATES)  # "all", 30 days: the 2- and 29-day-old ones

    removed = Retention(history, keep_days=90).run(now=now)

    assert live_ids(history, outbox_db(history), "delivery:") == kept
    assert removed.deliveries == len(docs) - len(kept) == 2 * len(FINAL)
    assert removed.done
    assert figures(history, community, now) == before
    # Pending and sending ones of any age are still the worker's to finish.
    states = {history.get(outbox_db(history), i)["state"] for i in kept}
    assert {PENDING, SENDING} <= states


def test_an_old_request_goes_with_its_deliveries_unless_one_is_still_pending(
        history, monkeypatch):
    monkeypatch.setattr(push_retention, "BATCH", 2)  # several batches, kept ones in front
    now = time.time()
    old = 100 * DAY
    done = request(history, old, now)
    waiting = request(history, old, now)
    nowhere = [request(history, old + i, now) for i in range(3)]  # no device: no delivery
    young = request(history, 10 * DAY, now)
    timeless = request(history, None, now)  # its age is unknown: it may be new
    history.bulk_docs(push_db(history), [done, waiting, *nowhere, young, timeless])
    done_deliveries = [delivery(history, done, now, age=old, state=s) for s in (SENT, GONE)]
    waiting_sent = delivery(history, waiting, now, age=old, state=SENT)
    waiting_pending = delivery(history, waiting, now, age=old, state=PENDING)
    young_sent = delivery(history, young, now, age=10 * DAY, state=SENT)
    history.bulk_docs(outbox_db(history),
                      [*done_deliveries, waiting_sent, waiting_pending, young_sent])

    removed = Retention(history, keep_days=90).run(now=now)

    assert live_ids(history, push_db(history), "push_request:") == {
        waiting["_id"], young["_id"], timeless["_id"]}
    assert live_ids(history, outbox_db(history), "delivery:") == {
        waiting_pending["_id"], young_sent["_id"]}
    assert (removed.requests, removed.deliveries) == (4, 3)


def test_a_document_changed_meanwhile_is_skipped_not_an_error(history):
    now = time.time()
    req = request(history, 100 * DAY, now)
    history.put(push_db(history), req)
    d = delivery(history, req, now, age=100 * DAY, state=FAILED)
    history.put(outbox_db(history), d)
    retention = Retention(history, keep_days=90)
    rows = retention._range(outbox_db(history), "ended", iso(now - 90 * DAY))
    history.put(outbox_db(history), {**d, "last_error": "noted by someone"})  # a newer rev

    assert retention._delete(outbox_db(history), rows) == 0
    assert history.get(outbox_db(history), d["_id"])["last_error"] == "noted by someone"
    assert retention.run(now=now).deliveries == 1  # the next round takes it as it is


def _revision(couch: Couch, ids: list[str]) -> list[tuple[int, bool]]:
    """(generation, deleted) of each document, deleted ones included."""
    path = f"{outbox_db(couch)}/_all_docs"
    status, body = couch.request("POST", path, body={"keys": ids})
    assert status == 200
    return [(int(r["value"]["rev"].split("-")[0]), bool(r["value"].get("deleted")))
            for r in body["rows"]]


def test_nothing_is_sent_again_after_retention(history, standin, make_worker):
    subscribe(history, standin, "w_zhang", "phone")
    subscribe(history, standin, "w_zhang", "tablet")
    request_id, = assign(history, "w_zhang")
    req = history.get(push_db(history), request_id)
    worker = make_worker()
    run_until(worker, lambda: len(standin.delivered()) == 2)
    ids = sorted(live_ids(history, outbox_db(history), "delivery:"))

    removed = Retention(history, keep_days=90).run(now=time.time() + 100 * DAY)
    assert (removed.requests, removed.deliveries) == (1, 2)
    tombstones = _revision(history, ids)
    assert all(deleted for _, deleted in tombstones)

    # The expander reads the whole feed again (its checkpoint lost): only tombstones.
    checkpoint = history.get(push_db(history), CHECKPOINT)
    history.request("DELETE", f"{push_db(history)}/{CHECKPOINT}",
                    params={"rev": checkpoint["_rev"]})
    replay = make_worker(holder="replayed")
    for _ in range(5):
        replay.step()
    assert replay.expander.read_seq == replay.expander.saved_seq  # it read everything
    assert _revision(history, ids) == tombstones

    # A writer queues the very same request again (a grid's feed replayed to the urgent-need
    # watcher, say): the deliveries are written again, seen for what they are, deleted.
    history.put(push_db(history), {k: v for k, v in req.items() if k != "_rev"}
                | {"at": iso(time.time())})
    run_until(replay, lambda: all(gen > tombstones[0][0] for gen, _ in _revision(history, ids)))
    for _ in range(3):
        replay.step()
    assert all(deleted for _, deleted in _revision(history, ids))
    assert len(standin.delivered()) == 2
    assert live_ids(history, outbox_db(history), "delivery:") == set()


@pytest.mark.parametrize("value", ["7", "30", "abc", "3651"])
def test_a_bad_keep_days_names_itself_and_the_range(value):
    with pytest.raises(ConfigError) as err:
        keep_days({"DOORSTEP_PUSH_KEEP_DAYS": value})
    assert str(err.value) == (
        f"DOORSTEP_PUSH_KEEP_DAYS must be a number from 31 to 3650, got {value!r}")


def test_keep_days_default_and_a_chosen_value():
    assert keep_days({}) == 90
    assert keep_days({"DOORSTEP_PUSH_KEEP_DAYS": "365"}) == 365

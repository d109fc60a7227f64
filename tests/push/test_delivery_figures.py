"""Delivery figures per scope and period (sync/push_figures.py) on the real embedded CouchDB,
from deliveries whose every figure the test chose: attribution when queued, the view's range
reads, periods, older deliveries without scopes, latency percentiles, who has no device.

The hierarchy has ids of its own (tests/push/delivery_place.py).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from server.push.subscriptions import Subscriptions
from sync import accounts
from sync.couch import Couch
from sync.push_figures import Attribution, IndexWarmer, percentile, scope_figures
from sync.push_outbox import (
    EXPIRED,
    FAILED,
    GONE,
    INTERRUPTED,
    PENDING,
    SENT,
    ensure_push_db,
    iso,
    new_delivery,
    outbox_db,
)
from tests.conftest import unique_name
from tests.push.delivery_place import Place, make_place

HOUR = 3600.0
DAY = 86400.0


PEOPLE = {"wa1": ("worker", ["a1"], []), "wa2": ("worker", ["a2"], []),
          "wab": ("worker", ["a1", "b1"], []),  # covers a colleague's grid in B
          "wb": ("worker", ["b1"], []), "sa": ("supervisor", [], ["a"])}


@pytest.fixture
def place(couch: Couch) -> Place:
    ensure_push_db(couch)
    return make_place(couch, PEOPLE)


def add_device(couch: Couch, user: str, name: str) -> None:
    Subscriptions(couch).save(user, {"endpoint": f"https://push.invalid/{unique_name(name)}",
                                     "keys": {"p256dh": "x", "auth": "y"}}, device=name)


def delivery(couch: Couch, now: float, kind: str, user: str, grid: str | None, *,
             age: float, state: str, attempts: int = 1, latency: float | None = None,
             status: int | None = None, error: str = "", legacy: bool = False
             ) -> dict[str, Any]:
    """A delivery as the outbox stores it: queued `age` seconds before `now`, attributed as
    the expander attributes it (or not at all: `legacy`, from before deliveries had scopes)."""
    request = {"_id": f"push_request:{unique_name(kind)}", "kind": kind, "user": user,
               **({"grid": grid} if grid else {})}
    sub = {"_id": f"subscription:{unique_name('s')}"}
    created = now - age
    doc = new_delivery(request, sub, {}, created, scopes=Attribution(couch).scopes(request))
    doc.update(state=state, attempts=attempts)
    if legacy:
        del doc["scopes"], doc["grid"]
    if attempts:
        doc.update(last_attempt_at=iso(created + (latency or 0) + 0.5), last_status=status,
                   last_error=error)
    if latency is not None:
        doc["sent_at"] = iso(created + latency)
    return doc


@pytest.fixture
def outbox(couch: Couch, place: Place) -> float:
    """Deliveries of A, B, both (a covering worker's digest) and nobody's; returns `now`."""
    now = time.time()
    u = place.users
    docs = [
        # community A, within the last day
        delivery(couch, now, "assignment", u["wa1"], place.a1, age=1 * HOUR, state=SENT,
                 latency=1),
        delivery(couch, now, "assignment", u["wa1"], place.a1, age=2 * HOUR, state=SENT,
                 attempts=3, latency=3),
        delivery(couch, now, "returned_visit", u["wa2"], place.a2, age=3 * HOUR, state=GONE,
                 status=410, error="HTTP 410: "),
        delivery(couch, now, "digest", u["wa1"], None, age=0.5 * HOUR, state=FAILED,
                 attempts=8, status=500, error="HTTP 500: boom"),
        delivery(couch, now, "urgent_need", u["sa"], place.a1, age=600, state=PENDING,
                 attempts=2),
        delivery(couch, now, "digest", u["wa2"], None, age=5 * HOUR, state=EXPIRED,
                 attempts=4, status=503, error="HTTP 503: ", legacy=True),
        # community A, older
        delivery(couch, now, "assignment", u["wa2"], place.a2, age=2 * DAY, state=SENT,
                 latency=20),
        delivery(couch, now, "assignment", u["wa1"], place.a1, age=10 * DAY, state=SENT,
                 latency=5),
        delivery(couch, now, "assignment", u["wa1"], place.a1, age=40 * DAY, state=SENT,
                 latency=7),
        # community B
        delivery(couch, now, "assignment", u["wb"], place.b1, age=1 * HOUR, state=SENT,
                 latency=2),
        delivery(couch, now, "digest", u["wb"], None, age=1 * HOUR, state=INTERRUPTED,
                 error="the server stopped while r1 was sending"),
        # both: the digest of a worker with a grid in each
        delivery(couch, now, "digest", u["wab"], None, age=1 * HOUR, state=SENT, latency=4),
        # nobody's: a user without an account
        delivery(couch, now, "digest", unique_name("ghost"), None, age=1 * HOUR, state=SENT,
                 latency=9),
    ]
    assert all(r.get("ok") for r in couch.bulk_docs(outbox_db(couch), docs))
    for user, n in (("wa1", 2), ("wab", 1), ("sa", 1)):
        for i in range(n):
            add_device(couch, place.users[user], f"{user}-{i}")
    return now


def grids_of(place: Place, *communities: str) -> dict[str, str]:
    every = {place.a1: place.a, place.a2: place.a, place.b1: place.b}
    return {g: c for g, c in every.items() if c in communities}


def test_a_delivery_counts_where_its_request_belongs(couch: Couch, place: Place) -> None:
    at = Attribution(couch)
    a, b, s = f"community:{place.a}", f"community:{place.b}", f"street:{place.street}"
    assert at.scopes({"kind": "assignment", "user": "x", "grid": place.a2}) == [a, s, "all"]
    assert at.scopes({"kind": "urgent_need", "user": place.users["sa"],
                      "grid": place.b1}) == [b, s, "all"]
    # a digest is about every grid of its worker
    assert at.scopes({"kind": "digest", "user": place.users["wa1"]}) == [a, s, "all"]
    assert at.scopes({"kind": "digest", "user": place.users["wab"]}) == [a, b, s, "all"]
    assert at.scopes({"kind": "digest", "user": "nobody-known"}) == ["all"]
    assert at.scopes({"kind": "assignment", "user": "x", "grid": "no-such-grid"}) == ["all"]


def test_community_a_over_one_day_is_exactly_its_deliveries(couch: Couch, place: Place,
                                                            outbox: float) -> None:
    f = scope_figures(couch, f"community:{place.a}", grids_of(place, place.a), 1, outbox)
    assert f.total == 7  # 5 of A's grids, the legacy digest of wa2, the covering digest
    assert f.by_outcome == {"delivered": 3, "waiting": 1, "failed": 1, "expired": 1,
                            "interrupted": 0, "gone": 1}
    assert f.by_kind["assignment"]["delivered"] == 2
    assert f.by_kind["digest"] == {"delivered": 1, "waiting": 0, "failed": 1, "expired": 1,
                                   "interrupted": 0, "gone": 0}
    assert f.by_kind["returned_visit"]["gone"] == 1
    assert f.by_kind["urgent_need"]["waiting"] == 1
    assert f.attempts == 1 + 3 + 1 + 8 + 2 + 4 + 1
    assert f.retries == 2 + 7 + 1 + 3 and f.retried == 4
    # delivered in 1, 3 and 4 seconds: nearest rank
    assert (f.latency_p50, f.latency_p95, f.delivered_measured) == (3.0, 4.0, 3)
    # the latest undelivered first, with what the push service said; B's never
    assert [(x.state, x.status, x.reason) for x in f.failures] == [
        (FAILED, 500, "HTTP 500: boom"), (GONE, 410, "HTTP 410: "),
        (EXPIRED, 503, "HTTP 503: ")]
    assert {x.user for x in f.failures} == {place.users["wa1"], place.users["wa2"]}


def test_longer_periods_reach_further_back(couch: Couch, place: Place, outbox: float) -> None:
    week = scope_figures(couch, f"community:{place.a}", grids_of(place, place.a), 7, outbox)
    assert week.total == 8 and week.by_outcome["delivered"] == 4
    assert (week.latency_p50, week.latency_p95) == (3.0, 20.0)  # 1, 3, 4, 20
    month = scope_figures(couch, f"community:{place.a}", grids_of(place, place.a), 30, outbox)
    assert month.total == 9  # not the one of 40 days ago
    assert (month.latency_p50, month.latency_p95) == (4.0, 20.0)  # 1, 3, 4, 5, 20


def test_community_b_sees_only_its_own(couch: Couch, place: Place, outbox: float) -> None:
    f = scope_figures(couch, f"community:{place.b}", grids_of(place, place.b), 30, outbox)
    assert f.total == 3  # its assignment, its worker's digest, the covering worker's digest
    assert f.by_outcome["delivered"] == 2 and f.by_outcome["interrupted"] == 1
    assert [x.reason for x in f.failures] == ["the server stopped while r1 was sending"]
    assert {p.name for p in f.people} == {place.users["wb"], place.users["wab"]}
    assert [p.name for p in f.without_device] == [place.users["wb"]]


def test_street_and_county_count_each_delivery_once(couch: Couch, place: Place,
                                                    outbox: float) -> None:
    grids = grids_of(place, place.a, place.b)
    street = scope_figures(couch, f"street:{place.street}", grids, 1, outbox)
    assert street.total == 7 + 3 - 1  # the covering digest is in A and in B
    assert street.by_community[place.a]["total"] == 7
    assert street.by_community[place.b]["total"] == 3
    county = scope_figures(couch, "all", grids, 1, outbox)
    assert county.total == street.total + 1  # and the delivery nobody's community claims
    assert county.by_outcome["delivered"] == 3 + 1 + 1


def test_who_in_the_scope_has_no_device(couch: Couch, place: Place, outbox: float) -> None:
    f = scope_figures(couch, f"community:{place.a}", grids_of(place, place.a), 7, outbox)
    u = place.users
    assert {p.name for p in f.workers} == {u["wa1"], u["wa2"], u["wab"]}
    assert [p.name for p in f.supervisors] == [u["sa"]]
    assert f.devices == 2 + 1 + 1
    assert [p.name for p in f.without_device] == [u["wa2"]]
    assert {p.name: p.devices for p in f.people} == {u["wa1"]: 2, u["wa2"]: 0, u["wab"]: 1,
                                                     u["sa"]: 1}
    accounts.deactivate(couch, u["wa2"])  # a deactivated worker is nobody to notify
    again = scope_figures(couch, f"community:{place.a}", grids_of(place, place.a), 7, outbox)
    assert again.without_device == []


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 0.5) == 10.0 and percentile(values, 0.95) == 19.0
    assert percentile([7.0], 0.95) == 7.0 and percentile([], 0.5) is None


def test_only_the_offered_periods(couch: Couch, place: Place) -> None:
    with pytest.raises(ValueError):
        scope_figures(couch, "all", {}, 5)


def test_the_view_is_kept_built_once_the_outbox_is_quiet(couch: Couch, place: Place,
                                                         outbox: float) -> None:
    warmer = IndexWarmer(couch)
    assert warmer.step() is False  # first look: it cannot know the outbox is quiet
    assert warmer.step() is True  # nothing written for a whole interval: brought up to date
    assert warmer.step() is False  # nothing new since
    u = place.users
    doc = delivery(couch, time.time(), "assignment", u["wa1"], place.a1, age=1, state=SENT,
                   latency=0.5)
    assert couch.bulk_docs(outbox_db(couch), [doc])[0]["ok"]
    assert warmer.step() is False  # still being written to: a fan-out is not slowed down
    assert warmer.step() is True
    f = scope_figures(couch, f"community:{place.a}", grids_of(place, place.a), 1)
    assert f.total == 8

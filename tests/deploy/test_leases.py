"""Leases on a real CouchDB: one holder at a time, renewal, release, and takeover from a holder
that stopped renewing, judged on the observer's own clock."""

from __future__ import annotations

import threading

from sync import naming
from sync.couch import Couch
from sync.leases import Lease, run_with_lease


class FakeClock:
    """Monotonic time the test moves by hand, so expiry is exact and instant."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lease(couch: Couch, holder: str, clock: FakeClock, job: str = "resolver") -> Lease:
    return Lease(couch, job, holder, ttl=30, margin=5, clock=clock)


def test_only_one_holder_at_a_time(couch: Couch) -> None:
    clock = FakeClock()
    a, b = lease(couch, "a", clock), lease(couch, "b", clock)
    assert a.keep() is True
    assert b.keep() is False
    clock.now += 20  # a renews within its ttl; b keeps waiting
    assert a.keep() is True
    clock.now += 20
    assert b.keep() is False
    assert a.held and not b.held
    doc = couch.get(couch.name(naming.LEASES), "lease:resolver")
    assert doc["holder"] == "a" and doc["generation"] == 1


def test_a_holder_that_stops_renewing_is_replaced_after_ttl(couch: Couch) -> None:
    clock = FakeClock()
    a, b = lease(couch, "a", clock), lease(couch, "b", clock)
    assert a.keep()
    assert not b.keep()  # b notes a's revision now
    clock.now += 26  # past a's own validity (ttl - margin), before b's ttl
    assert not a.held, "the holder stops trusting its lease before anyone can take it"
    assert not b.keep()
    clock.now += 4
    assert b.keep() is True
    assert b.generation == 2
    assert a.keep() is False, "the old holder sees it lost the lease"
    assert couch.get(couch.name(naming.LEASES), "lease:resolver")["holder"] == "b"


def test_expiry_uses_the_observers_clock_not_the_holders_timestamps(couch: Couch) -> None:
    """A newcomer waits a full ttl from when *it* first saw the lease, however old the
    document's wall-clock stamps look."""
    clock = FakeClock()
    a = lease(couch, "a", clock)
    assert a.keep()
    db = couch.name(naming.LEASES)
    doc = couch.get(db, "lease:resolver")
    doc["renewed_at"] = "2001-01-01T00:00:00Z"  # a holder whose wall clock is far behind
    couch.put(db, doc)
    newcomer = lease(couch, "c", FakeClock())
    assert newcomer.keep() is False


def test_release_lets_another_take_over_at_once(couch: Couch) -> None:
    clock = FakeClock()
    a, b = lease(couch, "a", clock), lease(couch, "b", clock)
    assert a.keep()
    a.release()
    assert not a.held
    assert b.keep() is True


def test_renewal_keeps_the_lease_beyond_one_ttl(couch: Couch) -> None:
    clock = FakeClock()
    a, b = lease(couch, "a", clock), lease(couch, "b", clock)
    for _ in range(10):  # 10 × 12 s = 120 s, four ttls
        assert a.keep()
        assert not b.keep()
        clock.now += 12
    assert a.held


def test_separate_jobs_have_separate_leases(couch: Couch) -> None:
    clock = FakeClock()
    assert lease(couch, "a", clock, job="resolver").keep()
    assert lease(couch, "b", clock, job="outbox").keep()


def test_a_conflicted_lease_document_is_repaired_by_the_next_reader(couch: Couch) -> None:
    """What a CouchDB cluster can leave after two takers raced on stale shard copies."""
    db = couch.name(naming.LEASES)
    base = {"_id": "lease:resolver", "type": "lease", "job": "resolver", "ttl_s": 30}
    couch.bulk_docs(db, [{**base, "holder": "x", "_rev": "1-aaa"},
                         {**base, "holder": "y", "_rev": "1-bbb"}], new_edits=False)
    assert couch.get(db, "lease:resolver", conflicts=True).get("_conflicts")
    lease(couch, "c", FakeClock()).keep()
    assert "_conflicts" not in couch.get(db, "lease:resolver", conflicts=True)


def test_runner_steps_only_while_holding_and_releases_on_stop(couch: Couch) -> None:
    ran: dict[str, int] = {"a": 0, "b": 0}
    stop_a, stop_b = threading.Event(), threading.Event()

    def step_for(name: str):
        def step(lease: Lease) -> None:
            ran[name] += 1
        return step

    ta = threading.Thread(target=run_with_lease, args=(couch, "digest", "a", step_for("a"),
                                                       stop_a), kwargs={"interval": 0.05})
    ta.start()
    while ran["a"] < 3:
        stop_a.wait(0.02)
    tb = threading.Thread(target=run_with_lease, args=(couch, "digest", "b", step_for("b"),
                                                       stop_b), kwargs={"interval": 0.05})
    tb.start()
    stop_b.wait(0.5)
    assert ran["b"] == 0, "b must not step while a holds the lease"
    stop_a.set()
    ta.join(5)
    for _ in range(100):  # a released it: b takes over without waiting for expiry
        if ran["b"]:
            break
        stop_b.wait(0.05)
    stop_b.set()
    tb.join(5)
    assert ran["b"] > 0
    assert couch.get(couch.name(naming.LEASES), "lease:digest")["holder"] is None

"""A server restart in the middle of the outbox: nothing is sent twice.

The worker runs inside a real `doorstep serve`; the push stand-in answers slowly, so the
restart lands while sends are in flight and most deliveries are still waiting.
"""

from __future__ import annotations

import signal
import time
from collections import Counter

from sync.couch import Couch
from sync.push_outbox import INTERRUPTED, SENT, outbox_db
from tests.conftest import RunningServer, start_server, wait_for
from tests.push.conftest import assign, subscribe
from tests.push.standin import Answer, PushStandin

USERS = [f"w_{i:02d}" for i in range(24)]
ENV = {"DOORSTEP_PUSH_ALLOW_HTTP": "1", "DOORSTEP_PUSH_POLL": "0.1",
       "DOORSTEP_PUSH_CONCURRENCY": "2", "DOORSTEP_PUSH_TIMEOUT": "1",
       "DOORSTEP_LEASE_TTL": "3"}


def states(couch: Couch) -> Counter[str]:
    rows = couch.all_docs(outbox_db(couch), startkey="delivery:", endkey="delivery:\ufff0",
                          include_docs=True)
    return Counter(r["doc"]["state"] for r in rows)


def slow_service(couch: Couch, standin: PushStandin) -> None:
    for user in USERS:
        subscribe(couch, standin, user, f"phone-{user}")
        standin.always(f"phone-{user}", Answer(delay=0.25))


def start(couch_server, prefix, tmp_path) -> RunningServer:
    return start_server(couch_server, prefix, tmp_path / "var", ENV)


def test_a_graceful_restart_mid_outbox_sends_each_message_exactly_once(
        couch_server, push, prefix, tmp_path):
    with PushStandin() as standin:
        slow_service(push, standin)
        server = start(couch_server, prefix, tmp_path)
        try:
            for user in USERS:
                assign(push, user)
            wait_for(lambda: len(standin.delivered()) >= 4, "the first deliveries", seconds=60)
            # SIGTERM: sends in flight finish, the rest goes back to pending. Shutting down
            # waits for every background job's step, so give it longer than the fixture does.
            server.process.terminate()
            server.process.wait(60)
            stopped_with = len(standin.delivered())
            assert stopped_with < len(USERS), "the outbox finished before the restart"
            server = start(couch_server, prefix, tmp_path)
            wait_for(lambda: len(standin.delivered()) >= len(USERS), "every delivery",
                     seconds=60)
            time.sleep(1)  # anything sent twice would arrive now
        finally:
            server.stop()
        per_device = Counter(a.device for a in standin.delivered())
    assert standin.problems() == []
    assert set(per_device) == {f"phone-{u}" for u in USERS}
    assert max(per_device.values()) == 1
    assert states(push) == Counter({SENT: len(USERS)})


def test_a_crash_mid_outbox_sends_nothing_twice_and_says_what_it_interrupted(
        couch_server, push, prefix, tmp_path):
    with PushStandin() as standin:
        slow_service(push, standin)
        server = start(couch_server, prefix, tmp_path)
        try:
            for user in USERS:
                assign(push, user)
            wait_for(lambda: len(standin.delivered()) >= 4, "the first deliveries", seconds=60)
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(10)
            server = start(couch_server, prefix, tmp_path)
            # The dead replica's claims run out (3 rounds × 1 s + 10 s), then all is settled.
            wait_for(lambda: sum(states(push).values()) == len(USERS)
                     and set(states(push)) <= {SENT, INTERRUPTED}, "every delivery settled",
                     seconds=90)
            time.sleep(1)
        finally:
            server.stop()
        per_device = Counter(a.device for a in standin.delivered())
    final = states(push)
    assert standin.problems() == []
    assert max(per_device.values()) == 1
    assert final[SENT] + final[INTERRUPTED] == len(USERS)
    # What the dead worker had claimed (at most two rounds of its pool) is never sent again;
    # the push service may or may not have had it when the process died.
    assert 0 < final[INTERRUPTED] <= 2 * 2
    assert final[SENT] <= len(per_device) <= final[SENT] + final[INTERRUPTED]

"""Fixtures for push tests: the push database, a VAPID key, the stand-in, a worker."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from server.push.config import PushConfig
from server.push.keys import SECRET_NAME, VapidKeys, new_private_key
from server.push.sender import Sender
from server.push.subscriptions import Subscriptions
from server.push.worker import OutboxWorker
from sync.couch import Couch
from sync.naming import grid_db_name
from sync.push_outbox import ensure_push_db, iso, push_db
from tests.conftest import Community
from tests.push.standin import PushStandin


@pytest.fixture
def keys() -> VapidKeys:
    return VapidKeys.from_secrets({SECRET_NAME: new_private_key()})


@pytest.fixture
def push(couch: Couch, community: Community) -> Couch:
    ensure_push_db(couch)
    return couch


@pytest.fixture
def standin(keys: VapidKeys) -> Iterator[PushStandin]:
    with PushStandin(keys.public_key) as s:
        yield s


@pytest.fixture
def make_worker(push: Couch, keys: VapidKeys) -> Iterator[Callable[..., OutboxWorker]]:
    made: list[OutboxWorker] = []

    def make(holder: str = "test-worker", **config: Any) -> OutboxWorker:
        cfg = PushConfig(**{"send_timeout": 2.0, "retry_base": 0.05, "concurrency": 4, **config})
        w = OutboxWorker(push, cfg, Sender(keys, cfg.contact, cfg.send_timeout), holder)
        made.append(w)
        return w

    yield make
    for w in made:
        w.stop()


def run_until(worker: OutboxWorker, done: Callable[[], bool], timeout: float = 20) -> None:
    """Step the worker (as the job runner would) until `done()`."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the outbox did not get there in time"
        worker.step()
        time.sleep(0.02)


def subscribe(couch: Couch, standin: PushStandin, user: str, device: str,
              lang: str = "zh-CN") -> dict[str, Any]:
    sub = standin.device(device).subscription()
    return Subscriptions(couch).save(user, {"endpoint": sub["endpoint"], "keys": sub["keys"]},
                                     device=device, lang=lang)


HOUSEHOLD = {
    "_id": "household:G1-3-2-502", "type": "household", "grid": "G1",
    "household_id": "G1-3-2-502", "address": {"building": "3", "unit": "2", "floor": 5,
                                              "room": "502"},
    "housing": "owner", "residency": "registered", "tags": ["elderly_alone"], "members": {},
    "clock": {}, "created_at": "2026-01-05T00:00:00Z",
}


def assign(couch: Couch, user: str, n: int = 1, at: float | None = None) -> list[str]:
    """A supervisor assigns household G1-3-2-502 to `user` n times; the console's requests."""
    db = grid_db_name("G1", couch.prefix)
    if couch.get(db, HOUSEHOLD["_id"]) is None:
        couch.put(db, dict(HOUSEHOLD))
    ids = []
    for i in range(n):
        aid = f"assignment:{user}-{i}"
        couch.put(db, {"_id": aid, "type": "assignment", "grid": "G1",
                       "household": "G1-3-2-502", "worker": user, "due": "2026-12-01",
                       "reason": "回访", "author": "sup1", "at": "2026-11-20T08:00:00Z"})
        rid = f"push_request:assignment:{aid}"
        couch.put(push_db(couch), {"_id": rid, "type": "push_request", "kind": "assignment",
                                   "user": user, "grid": "G1", "household": "G1-3-2-502",
                                   "ref": aid, "at": iso(time.time() if at is None else at)})
        ids.append(rid)
    return ids

"""The outbox worker: sends due deliveries with a bounded number of sends in flight.

It runs as a leased background job (one replica at a time; the per-delivery claims make a
second one harmless anyway). Each step expands new requests, claims as many due deliveries
as there are free places, hands them to a fixed pool of sender threads, and writes back
the outcomes in bulk. Sends may outlive a step; `stop()` waits for them (each is bounded by
the send timeout), gives back what never started, and records the rest, so a restart
neither loses nor repeats a message.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from server.push.config import PushConfig
from server.push.expand import Expander
from server.push.sender import Sender
from server.push.subscriptions import Subscriptions
from sync.couch import Couch
from sync.leases import Lease
from sync.push_outbox import GONE, Outbox, Outcome, abandon, settle

log = logging.getLogger("doorstep.push.worker")

STEP_SECONDS = 5.0  # a step returns after this long, so the lease is renewed in between


class OutboxWorker:
    def __init__(self, couch: Couch, config: PushConfig, sender: Sender, holder: str) -> None:
        self.config = config
        self.sender = sender
        self.holder = holder
        self.outbox = Outbox(couch)
        self.expander = Expander(couch)
        self.subscriptions = Subscriptions(couch)
        self.pool = ThreadPoolExecutor(config.concurrency, thread_name_prefix="push-send")
        # Claimed deliveries waiting or sending; at most two rounds of the pool at once.
        self.capacity = 2 * config.concurrency
        self.inflight: dict[Future[Outcome], dict[str, Any]] = {}
        # A claim lasts as long as the worst case of a full queue of hanging endpoints.
        rounds = math.ceil(self.capacity / config.concurrency) + 1
        self.hold = rounds * config.send_timeout + 30
        self.stopping = threading.Event()
        self._lock = threading.Lock()  # step() and stop() never work the queue together

    # -- the job --------------------------------------------------------------------------

    def step(self, lease: Lease | None = None) -> None:
        with self._lock:
            self.outbox.recover_stale()
            deadline = time.monotonic() + STEP_SECONDS
            while not self.stopping.is_set() and time.monotonic() < deadline:
                if lease is not None and not lease.keep():
                    break
                expanded = self.expander.expand_open()
                claimed = self._fill()
                self._collect(0.2 if self.inflight else 0)
                if not (expanded or claimed or self.inflight):
                    return

    def stop(self) -> None:
        """Finish what is in flight and give back what never started; then close the pool."""
        self.stopping.set()
        with self._lock:
            unsent = [d for f, d in self.inflight.items() if f.cancel()]
            for f in [f for f in self.inflight if f.cancelled()]:
                del self.inflight[f]
            if unsent:
                self.outbox.release(unsent)
            while self.inflight:
                self._collect(self.config.send_timeout + 5)
        self.pool.shutdown(wait=False)

    # -- pieces ---------------------------------------------------------------------------

    def _fill(self) -> int:
        free = self.capacity - len(self.inflight)
        if free <= 0:
            return 0
        claimed = self.outbox.claim_due(free, self.holder, self.hold)
        if not claimed:
            return 0
        subs = self.subscriptions.get_many([d["subscription"] for d in claimed])
        orphans = []
        for d in claimed:
            sub = subs.get(d["subscription"])
            if sub is None:
                orphans.append(abandon(d, GONE, "the device turned notifications off"))
            else:
                self.inflight[self.pool.submit(self._send, sub, d)] = d
        self.outbox.record(orphans)
        return len(claimed)

    def _send(self, sub: dict[str, Any], delivery: dict[str, Any]) -> Outcome:
        try:
            return self.sender.send(sub, delivery)
        except Exception as exc:  # a bad key or payload: this message can never be sent
            log.exception("delivery %s cannot be sent", delivery["_id"])
            return Outcome(None, None, f"cannot send: {type(exc).__name__}: {exc}"[:300],
                           broken=True)

    def _collect(self, timeout: float) -> None:
        if not self.inflight:
            return
        done, _ = wait(list(self.inflight), timeout=timeout, return_when=FIRST_COMPLETED)
        now = time.time()
        settled, gone = [], []
        for f in done:
            d = self.inflight.pop(f)
            outcome = f.result()
            settled.append(settle(d, outcome, now, self.config.retry_base))
            if outcome.subscription_gone:
                gone.append(d["subscription"])
        written = self.outbox.record(settled)
        if written < len(settled):
            log.warning("%d delivery outcomes lost to a newer revision",
                        len(settled) - written)
        if gone:
            self.subscriptions.delete_ids(gone)

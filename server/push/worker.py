"""The outbox worker: sends due deliveries with a bounded number of sends in flight.

It runs as a leased background job (one replica at a time; the per-delivery claims make a
second one harmless anyway). New deliveries are written already claimed, as many as there
is room for in the pool, and retries are kept in memory, so the hot path costs two bulk
writes per batch (the deliveries, their outcomes) and no view query. A scan of the `open`
view picks up everything else: when it takes the lease, and every RESCAN_SECONDS.

Sends may outlive a step; `stop()` waits for them (each is bounded by the send timeout),
gives back what never started, and records the rest, so a restart neither loses nor
repeats a message.
"""

from __future__ import annotations

import heapq
import logging
import math
import threading
import time
from concurrent.futures import ALL_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from server.push.config import PushConfig
from server.push.expand import Expander
from server.push.sender import Sender
from server.push.subscriptions import Subscriptions
from sync.couch import Couch
from sync.leases import Lease
from sync.push_outbox import GONE, PENDING, Outbox, Outcome, abandon, iso, settle

log = logging.getLogger("doorstep.push.worker")

STEP_SECONDS = 5.0  # a step returns after this long, so the lease is renewed in between
RESCAN_SECONDS = 600.0  # a safety net: the holder knows its own work (see above)
CLAIM_MARGIN = 10.0  # seconds a claim outlives the worst case of its sends
BACKLOG = 2000  # requests read ahead of the sends, at most
BATCH_WINDOW = 0.05  # gather the outcomes of this long into one write (and one refill)
IDLE_POLL = 0.5  # while sends are pending but no request came, look for requests this often


class OutboxWorker:
    def __init__(self, couch: Couch, config: PushConfig, sender: Sender, holder: str) -> None:
        self.config = config
        self.sender = sender
        self.holder = holder
        self.outbox = Outbox(couch)
        self.expander = Expander(couch)
        self.subscriptions = Subscriptions(couch)
        self.pool = ThreadPoolExecutor(config.concurrency, thread_name_prefix="push-send")
        # Claimed deliveries waiting or sending: two rounds of the pool, so that one write
        # claims many and one records many. A crash can interrupt at most this many.
        self.capacity = 2 * config.concurrency
        self.inflight: dict[Future[Outcome], dict[str, Any]] = {}
        # A claim lasts as long as the worst case of a full queue of hanging endpoints.
        rounds = math.ceil(self.capacity / config.concurrency) + 1
        self.hold = rounds * config.send_timeout + CLAIM_MARGIN
        self.queue: dict[str, dict[str, Any]] = {}  # pending deliveries known here, by id
        self._soonest: list[tuple[str, str]] = []  # (next_at, id), a heap over `queue`
        self._generation: int | None = None
        self._polled_at = -math.inf
        self._requests_flowing = False
        self._scanned_at = -math.inf
        self._more_pending = False  # the last scan stopped at its limit: CouchDB holds more
        self._recheck_at: float | None = None  # when a claim of a dead holder runs out
        self.stopping = threading.Event()
        self._lock = threading.Lock()  # step() and stop() never work the queue together

    # -- the job --------------------------------------------------------------------------

    def step(self, lease: Lease | None = None) -> None:
        with self._lock:
            generation = lease.generation if lease is not None else 0
            if generation != self._generation or (
                    time.monotonic() - self._scanned_at > RESCAN_SECONDS) or (
                    self._more_pending and len(self.queue) < self.capacity):
                self._scan(fresh=generation != self._generation)
                self._generation = generation
            elif self._recheck_at is not None and time.time() >= self._recheck_at:
                _, self._recheck_at = self.outbox.recover_stale()
            deadline = time.monotonic() + STEP_SECONDS
            self._requests_flowing = True  # each step looks for requests at least once
            while not self.stopping.is_set() and time.monotonic() < deadline:
                if lease is not None and not lease.keep():
                    break
                came = self._poll()
                started = self._fill()
                self._collect(BATCH_WINDOW)
                if not (came or started or self.inflight or self.expander.backlog):
                    return

    def stop(self) -> None:
        """Finish what is in flight and give back what never started; then close the pool."""
        self.stopping.set()
        with self._lock:
            unsent = [d for f, d in self.inflight.items() if f.cancel()]
            for f in [f for f in self.inflight if f.cancelled()]:
                del self.inflight[f]
            self.outbox.release(unsent)
            while self.inflight:
                self._collect(self.config.send_timeout + 5)
        self.pool.shutdown(wait=False)

    # -- pieces ---------------------------------------------------------------------------

    def _scan(self, fresh: bool) -> None:
        """Claims a dead holder left become `interrupted`; pending work is (re)loaded."""
        if fresh:
            self.queue.clear()
            self._soonest.clear()
            self.expander.load()
        _, self._recheck_at = self.outbox.recover_stale()
        until = time.time() + RESCAN_SECONDS
        limit = 10 * self.capacity
        due = self.outbox.due(until, limit)
        for doc in due:
            if doc["_id"] not in self.queue:
                self._enqueue(doc)
        self._more_pending = len(due) == limit
        self._scanned_at = time.monotonic()

    def _enqueue(self, doc: dict[str, Any]) -> None:
        self.queue[doc["_id"]] = doc
        heapq.heappush(self._soonest, (doc["next_at"], doc["_id"]))

    def _take_ready(self, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` queued deliveries whose time has come, soonest first."""
        now = iso(time.time())  # ISO times of one width sort as the times do
        ready: list[dict[str, Any]] = []
        while self._soonest and len(ready) < limit and self._soonest[0][0] <= now:
            next_at, doc_id = heapq.heappop(self._soonest)
            doc = self.queue.get(doc_id)
            if doc is not None and doc["next_at"] == next_at:  # else: an outdated entry
                ready.append(self.queue.pop(doc_id))
        return ready

    def _poll(self) -> int:
        """Read new requests, unless enough are waiting already or nobody sent any lately."""
        if len(self.expander.backlog) >= BACKLOG:
            return 0
        if not self._requests_flowing and time.monotonic() - self._polled_at < IDLE_POLL:
            return 0
        self._polled_at = time.monotonic()
        came = self.expander.poll()
        self._requests_flowing = came > 0
        return came

    def _fill(self) -> int:
        """Claim what is due (retries first), make the rest of the room new deliveries."""
        free = self.capacity - len(self.inflight)
        if free <= 0:
            return 0
        batch = self.outbox.claim(self._take_ready(free), self.holder, self.hold)
        if len(batch) < free and self.expander.backlog:
            batch += self.expander.expand(free - len(batch), self.holder, self.hold)
        if not batch:
            return 0
        subs = self.subscriptions.get_many([d["subscription"] for d in batch])
        orphans = []
        for d in batch:
            sub = subs.get(d["subscription"])
            if sub is None:
                orphans.append(abandon(d, GONE, "the device turned notifications off"))
            else:
                self.inflight[self.pool.submit(self._send, sub, d)] = d
        self.outbox.record(orphans)
        return len(batch)

    def _send(self, sub: dict[str, Any], delivery: dict[str, Any]) -> Outcome:
        try:
            return self.sender.send(sub, delivery)
        except Exception as exc:  # a bad key or payload: this message can never be sent
            log.exception("delivery %s cannot be sent", delivery["_id"])
            return Outcome(None, None, f"cannot send: {type(exc).__name__}: {exc}"[:300],
                           broken=True)

    def _collect(self, window: float) -> None:
        """Wait up to `window` for the sends in flight; record every outcome that came."""
        if not self.inflight:
            return
        done, _ = wait(list(self.inflight), timeout=window, return_when=ALL_COMPLETED)
        now = time.time()
        settled, gone = [], []
        for f in done:
            d = self.inflight.pop(f)
            outcome = f.result()
            settled.append(settle(d, outcome, now, self.config.retry_base))
            if outcome.subscription_gone:
                gone.append(d["subscription"])
        written = self.outbox.record(settled)
        if len(written) < len(settled):
            log.warning("%d delivery outcomes lost to a newer revision",
                        len(settled) - len(written))
        for doc in written:
            if doc["state"] == PENDING:  # a retry: it stays with us
                self._enqueue(doc)
        if gone:
            self.subscriptions.delete_ids(gone)

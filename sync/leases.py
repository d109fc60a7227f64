"""Leases in CouchDB: at most one server replica runs each background job at a time.

A lease is one document `lease:<job>` in the `doorstep_leases` database. A replica takes it
by writing itself in as `holder` with the `_rev` it read (CouchDB's optimistic concurrency:
of two replicas writing the same `_rev`, one gets 409), keeps it by rewriting it every
`ttl / 3` seconds, and hands it back on a clean stop by writing `holder: null`.

Expiry never compares clocks of different machines. A replica that finds the lease held by
someone else notes the `_rev` and the moment it saw it on its *own* monotonic clock; only
when the same `_rev` is still there a full `ttl` later does it take over (the holder stopped
renewing: it died, hung or lost CouchDB). The holder, for its part, counts its lease valid
only until `ttl - margin` after the moment it *sent* its last successful write. As the
observer's `ttl` starts after that write was committed, the two never overlap as long as the
monotonic clocks of the replicas run at the same rate to within `margin / ttl` (default
5 s / 30 s; real clocks differ by parts per million). Wall-clock timestamps in the document
are for people reading it, never for deciding.

A step of a job must finish well within the lease (the runner checks the lease before each
step, and long steps call `lease.keep()` between units of work). On a CouchDB cluster a
stale shard copy can let two writes of the same `_rev` both land, leaving a conflicted
lease document; every reader deletes the losing revisions, so the loser finds out at its
next `keep()`. Jobs therefore still write idempotently (deterministic ids, check before
send): the lease makes double work rare and short, idempotence makes it harmless.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from server.errors import CouchUnavailable
from sync import naming
from sync.couch import Couch

log = logging.getLogger("doorstep.leases")

DEFAULT_TTL = 30.0
DEFAULT_MARGIN = 5.0

Clock = Callable[[], float]


def new_holder_id() -> str:
    """Unique per process and start, readable in the lease document: host:pid:random."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _wall() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Lease:
    """One job's lease as seen by one holder. Not thread-safe: one runner thread owns it."""

    def __init__(self, couch: Couch, job: str, holder: str, *, ttl: float = DEFAULT_TTL,
                 margin: float = DEFAULT_MARGIN, clock: Clock = time.monotonic) -> None:
        if not 0 < margin < ttl:
            raise ValueError("a lease needs 0 < margin < ttl")
        self.couch = couch
        self.job = job
        self.holder = holder
        self.ttl = ttl
        self.margin = margin
        self.clock = clock
        self.db = couch.name(naming.LEASES)
        self.doc_id = f"lease:{job}"
        self._path = f"{quote(self.db, safe='')}/{quote(self.doc_id, safe='')}"
        self._rev: str | None = None  # our last written revision while we hold it
        self._valid_until = 0.0  # local monotonic time our hold ends
        self._renewed_at = 0.0
        self._seen: tuple[str, float] | None = None  # someone else's rev, when we first saw it
        self.generation = 0  # bumps at every change of holder: a fencing token for steps

    # -- what callers use ---------------------------------------------------------------------

    @property
    def held(self) -> bool:
        return self._rev is not None and self.clock() < self._valid_until

    def keep(self) -> bool:
        """Acquire or renew as due; True while this holder may work. Never raises for CouchDB."""
        try:
            if self.held and self.clock() - self._renewed_at < self.ttl / 3:
                return True
            return self._step()
        except CouchUnavailable as exc:
            log.warning("lease %s: %s", self.job, exc)
            return self.held

    def release(self) -> None:
        """Hand the lease back so another replica need not wait for it to expire."""
        if self._rev is None:
            return
        try:
            doc = self._read()
            if doc and doc.get("holder") == self.holder and doc["_rev"] == self._rev:
                doc.update(holder=None, released_at=_wall())
                self._write(doc)
        except CouchUnavailable as exc:
            log.warning("lease %s: could not release (%s); it expires by itself", self.job, exc)
        finally:
            self._lose()

    # -- the state machine --------------------------------------------------------------------

    def _step(self) -> bool:
        sent = self.clock()
        doc = self._read()
        if doc is None:
            return self._take({"_id": self.doc_id, "type": "lease", "job": self.job,
                               "generation": 0}, sent)
        mine = doc.get("holder") == self.holder and doc["_rev"] == self._rev
        if mine:
            return self._take(doc, sent, renewal=True)
        self._lose()
        if doc.get("holder") is None:
            return self._take(doc, sent)
        seen = self._seen
        if seen is None or seen[0] != doc["_rev"]:
            self._seen = (doc["_rev"], self.clock())
            return False
        if self.clock() - seen[1] < float(doc.get("ttl_s", self.ttl)):
            return False
        log.warning("lease %s: holder %s stopped renewing; taking over", self.job, doc["holder"])
        return self._take(doc, sent)

    def _take(self, doc: dict[str, Any], sent: float, *, renewal: bool = False) -> bool:
        if not renewal:
            doc["generation"] = int(doc.get("generation", 0)) + 1
            doc["acquired_at"] = _wall()
        doc.update(holder=self.holder, ttl_s=self.ttl, renewed_at=_wall())
        rev = self._write(doc)
        if rev is None:
            self._lose()
            return False
        if not renewal:
            log.info("lease %s: held by %s", self.job, self.holder)
        self._rev = rev
        self._seen = None
        self.generation = doc["generation"]
        self._renewed_at = sent
        self._valid_until = sent + self.ttl - self.margin
        return True

    def _lose(self) -> None:
        if self._rev is not None:
            log.info("lease %s: no longer held by %s", self.job, self.holder)
        self._rev = None
        self._valid_until = 0.0

    # -- CouchDB -------------------------------------------------------------------------------

    def _read(self) -> dict[str, Any] | None:
        status, doc = self.couch.request("GET", self._path, params={"conflicts": True})
        if status == 404:
            return None
        if status != 200:
            raise CouchUnavailable(f"reading {self.db}/{self.doc_id} failed: {status} {doc}")
        for rev in doc.pop("_conflicts", []):
            # A cluster let two takers in; the winner CouchDB picked stays, the others go.
            self.couch.request("DELETE", self._path, params={"rev": rev})
        return doc

    def _write(self, doc: dict[str, Any]) -> str | None:
        """The new `_rev`, or None when someone else wrote first (409)."""
        status, body = self.couch.request("PUT", self._path, body=doc)
        if status in (201, 202):
            return body["rev"]
        if status == 409:
            return None
        raise CouchUnavailable(f"writing {self.db}/{self.doc_id} failed: {status} {body}")


def run_with_lease(couch: Couch, job: str, holder: str, step: Callable[[Lease], None],
                   stop: threading.Event, *, interval: float = 5.0, ttl: float = DEFAULT_TTL,
                   margin: float = DEFAULT_MARGIN, clock: Clock = time.monotonic) -> None:
    """Run `step(lease)` every `interval` seconds while this holder has the lease, until `stop`.

    Replicas without the lease check it every `interval` too (keep it under `ttl / 3`). A
    step that raises is logged and retried at the next interval; it does not end the loop.
    Blocking: run it in a thread (see `LeasedJob`).
    """
    lease = Lease(couch, job, holder, ttl=ttl, margin=margin, clock=clock)
    _loop(lease, step, stop, interval)


def _loop(lease: Lease, step: Callable[[Lease], None], stop: threading.Event,
          interval: float) -> None:
    budget = lease.ttl - lease.margin - lease.ttl / 3  # what a step may take safely
    try:
        while not stop.is_set():
            if lease.keep():
                started = lease.clock()
                try:
                    step(lease)
                except Exception:
                    log.exception("job %s: step failed; retrying in %.0f s", lease.job, interval)
                took = lease.clock() - started
                if took > budget:
                    log.warning("job %s: a step took %.1f s, more than the %.1f s a lease "
                                "covers; call lease.keep() between units of work", lease.job,
                                took, budget)
            stop.wait(interval)
    finally:
        lease.release()


class LeasedJob:
    """A background job in its own thread, run by whichever replica holds its lease."""

    def __init__(self, couch: Couch, job: str, step: Callable[[Lease], None], *,
                 holder: str | None = None, interval: float = 5.0,
                 ttl: float = DEFAULT_TTL, margin: float = DEFAULT_MARGIN) -> None:
        self.job = job
        self.step = step
        self.interval = interval
        self.lease = Lease(couch, job, holder or new_holder_id(), ttl=ttl, margin=margin)
        self.steps = 0  # rounds run by this replica, for metrics
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def holding(self) -> bool:
        return self.lease.held

    def start(self) -> None:
        self._thread = threading.Thread(
            target=_loop, name=f"job-{self.job}", daemon=True,
            args=(self.lease, self._counted, self._stop, self.interval),
        )
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _counted(self, lease: Lease) -> None:
        self.steps += 1
        self.step(lease)

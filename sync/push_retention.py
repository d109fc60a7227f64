"""Bounded history of push notifications: old requests and finished deliveries go.

A county sends ~800 notifications a day; without a bound the push database, the outbox and
their views grow forever. Once a day (and until the backlog is cleared) the leased job
`push-retention` deletes, as CouchDB deletions (`_deleted` with the current `_rev`):

- push requests whose `at` is older than DOORSTEP_PUSH_KEEP_DAYS (default 90) and none of
  whose deliveries is still `pending` or `sending`;
- deliveries in a final state (sent, failed, gone, expired, interrupted) whose last change
  (the latest of queued, last attempt, sent) is older than that. Pending and sending ones
  stay, whatever their age: the worker still owns them.

The delivery figures look back 30 days at most, by the time a delivery was queued, which is
never after its last change; so the smallest allowed setting, 31 days, leaves every figure
shown as it was.

Never twice. A delivery is written once, with an id derived from (request, subscription),
and a rewrite of that id meets a conflict (sync/push_outbox.py). Deleting it must not open
the door to writing it again, so three things hold:
1. The expander only turns requests it reads on the push database's `_changes` into
   deliveries; a deleted request is a tombstone there, without a type, and is skipped.
2. A request still there (it had a delivery pending) is older than the setting, at least
   31 days, so far older than the longest time to live of any kind (3 days): if the
   expander ever read it again it would refuse it as "older than its time to live".
3. Should a writer put a request with a removed request's id again (the urgent-need watcher
   after a grid's feed is replayed, say), the expander would write the same delivery ids
   again. CouchDB accepts a document without `_rev` over a deletion, but as a later
   revision than a first one, so `Outbox.add` recognises it, deletes it again at once and
   never sends it.
Requests are removed before deliveries in each round, so a request and its deliveries
usually leave together.

Work is bounded: batches of BATCH documents per `_bulk_docs`, `lease.keep()` between them,
and at most STEP_SECONDS per step; the next step goes on where it stopped. The reads are
range reads of two small views in a design document of their own in each database
(`_design/retention`), so installing them never rebuilds the worker's or the figures' views.
A deletion that meets a 409 (someone changed the document meanwhile) is skipped; the next
round looks at the document as it is then.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from server.errors import CouchUnavailable
from server.settings import number_setting
from sync.couch import Couch, DocumentRejected
from sync.leases import Lease
from sync.provision import ensure_database
from sync.push_outbox import (
    EXPIRED,
    FAILED,
    GONE,
    INTERRUPTED,
    PENDING,
    SENDING,
    SENT,
    iso,
    outbox_db,
    push_db,
)

log = logging.getLogger("doorstep.push.retention")

KEEP_DAYS = 90
KEEP_DAYS_MIN = 31  # the figures page looks back 30 days: it keeps every figure it shows
KEEP_DAYS_MAX = 3650
FINAL = (SENT, FAILED, GONE, EXPIRED, INTERRUPTED)
BATCH = 500  # documents per read and per `_bulk_docs` of deletions
STEP_SECONDS = 10.0  # a step stops after this long; well within a lease (sync/leases.py)
ROUND_SECONDS = 86400.0  # once the backlog is cleared, look again after a day

# Both views emit the revision they indexed, so a deletion needs no read of the document.
OUTBOX_RETENTION_DESIGN: dict[str, Any] = {
    "_id": "_design/retention",
    "language": "javascript",
    "views": {
        # Final deliveries by their last change.
        "ended": {
            "map": "function (doc) { if (doc.type !== 'delivery' || " + repr(list(FINAL))
            + ".indexOf(doc.state) < 0) return; var t = doc.created_at || '';"
            " if (doc.last_attempt_at > t) t = doc.last_attempt_at;"
            " if (doc.sent_at > t) t = doc.sent_at; emit(t, doc._rev); }",
        },
        # Deliveries still to be sent, by request: a request with any stays.
        "unfinished": {
            "map": "function (doc) { if (doc.type === 'delivery' && (doc.state === '"
            + PENDING + "' || doc.state === '" + SENDING + "')) emit(doc.request, null); }",
        },
    },
}

# Requests by `at`; one without a time is left alone (its age is unknown: it may be new).
PUSH_RETENTION_DESIGN: dict[str, Any] = {
    "_id": "_design/retention",
    "language": "javascript",
    "views": {
        "requests": {
            "map": "function (doc) { if (doc.type === 'push_request' && typeof doc.at === "
            "'string') emit(doc.at, doc._rev); }",
        },
    },
}


def keep_days(env: Mapping[str, str]) -> float:
    """DOORSTEP_PUSH_KEEP_DAYS: days of push history kept (31 to 3650, default 90)."""
    return number_setting(env, "DOORSTEP_PUSH_KEEP_DAYS", KEEP_DAYS, KEEP_DAYS_MIN,
                          KEEP_DAYS_MAX)


def ensure_retention_views(couch: Couch) -> list[str]:
    """Install or update `_design/retention` in the push database and the outbox."""
    changes = []
    for db, ddoc in ((push_db(couch), PUSH_RETENTION_DESIGN),
                     (outbox_db(couch), OUTBOX_RETENTION_DESIGN)):
        try:
            changes += ensure_database(couch, db, ddoc)
        except DocumentRejected as exc:
            if exc.status != 409:  # 409: another replica installed it at the same moment
                raise CouchUnavailable(f"installing the retention views: {exc}") from None
    return changes


@dataclass
class Removed:
    requests: int = 0
    deliveries: int = 0
    done: bool = True  # False: the step ran out of time; more is left for the next one


class Retention:
    def __init__(self, couch: Couch, keep_days: float = KEEP_DAYS) -> None:
        self.couch = couch
        self.keep_days = keep_days
        self.push = push_db(couch)
        self.outbox = outbox_db(couch)
        self.removed = Removed()  # totals since this process started, for /metrics
        self._next_round = 0.0  # monotonic time of the next round

    def step(self, lease: Lease | None = None, now: float | None = None) -> Removed:
        """One bounded round, if one is due; returns what it removed."""
        if time.monotonic() < self._next_round:
            return Removed()
        result = self.run(lease, now)
        self.removed.requests += result.requests
        self.removed.deliveries += result.deliveries
        if result.done:
            self._next_round = time.monotonic() + ROUND_SECONDS
        if result.requests or result.deliveries:
            log.info("push history older than %g days: %d requests and %d deliveries removed",
                     self.keep_days, result.requests, result.deliveries)
        return result

    def run(self, lease: Lease | None = None, now: float | None = None) -> Removed:
        now = time.time() if now is None else now
        cutoff = iso(now - self.keep_days * 86400)
        deadline = time.monotonic() + STEP_SECONDS
        removed = Removed(done=False)

        def more_time() -> bool:
            return time.monotonic() < deadline and (lease is None or lease.keep())

        kept = 0  # old requests with work left: they stay at the front of the range
        while more_time():
            rows = self._range(self.push, "requests", cutoff, skip=kept)
            unfinished = self._unfinished([r["id"] for r in rows])
            deleted = self._delete(self.push, [r for r in rows if r["id"] not in unfinished])
            kept += len(rows) - deleted
            removed.requests += deleted
            if len(rows) < BATCH:
                break
        while more_time():
            rows = self._range(self.outbox, "ended", cutoff)
            deleted = self._delete(self.outbox, rows)
            removed.deliveries += deleted
            if len(rows) < BATCH or not deleted:  # nothing deleted: all changed meanwhile
                removed.done = True
                break
        return removed

    def _range(self, db: str, view: str, cutoff: str, skip: int = 0) -> list[dict[str, Any]]:
        """Up to BATCH rows of `view` keyed before `cutoff`, oldest first."""
        params: dict[str, Any] = {"endkey": cutoff, "inclusive_end": False, "limit": BATCH}
        if skip:
            params["skip"] = skip
        return self.couch.view(db, "retention", view, **params)["rows"]

    def _unfinished(self, requests: list[str]) -> set[str]:
        """Those of these requests that have a delivery still pending or sending."""
        if not requests:
            return set()
        path = f"{quote(self.outbox, safe='')}/_design/retention/_view/unfinished"
        status, body = self.couch.request("POST", path, body={"keys": requests})
        if status != 200:
            raise CouchUnavailable(f"unfinished deliveries not read: {status} {body}")
        return {row["key"] for row in body["rows"]}

    def _delete(self, db: str, rows: list[dict[str, Any]]) -> int:
        """Delete the documents of these view rows at the revision indexed; a 409 is skipped."""
        if not rows:
            return 0
        results = self.couch.bulk_docs(db, [{"_id": r["id"], "_rev": r["value"],
                                             "_deleted": True} for r in rows])
        for r in results:
            if not r.get("ok") and r.get("error") != "conflict":
                log.error("%s/%s not deleted: %s", db, r.get("id"), r)
        return sum(1 for r in results if r.get("ok"))

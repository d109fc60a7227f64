"""The push outbox: one CouchDB document per message to one device.

A delivery is born `sending` (claimed by the worker that has room for it), or `pending`,
and moves `sending → sent | gone | failed | expired`, or back to `pending` for a retry
(`pending → sending` is a claim). Every move is a rev-checked update, so of two server
replicas (or a worker and its own restarted self) exactly one wins each claim. A delivery
found still `sending` after its claim ran out belongs to a process that died mid-send:
nobody can know whether the push service got it, so it becomes `interrupted` and is never
sent again — at most once, because a duplicate "new assignment" is worse than a missing one
that the app shows anyway. A graceful stop finishes its sends first, so only a crash
interrupts.

Deliveries live in their own database (naming.PUSH_OUTBOX); requests and subscriptions
in the push database. Ids are derived from what a delivery is for (request id + subscription id):
writing the same delivery twice is a conflict, not a second message.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from server.errors import CouchUnavailable
from sync import naming
from sync.couch import Couch
from sync.provision import ensure_database

log = logging.getLogger("doorstep.push.outbox")

PENDING, SENDING, SENT = "pending", "sending", "sent"
GONE, FAILED, EXPIRED, INTERRUPTED = "gone", "failed", "expired", "interrupted"
STATES = (PENDING, SENDING, SENT, GONE, FAILED, EXPIRED, INTERRUPTED)

MAX_ATTEMPTS = 8
BACKOFF_CAP = 3600.0  # never wait more than an hour between two tries


@dataclass(frozen=True)
class Policy:
    """How long a push service may hold a message, and how eagerly to wake the phone."""

    ttl: int  # seconds
    urgency: str  # very-low | low | normal | high (RFC 8030)
    topic: str | None = None  # a newer message with the same topic replaces an undelivered one


POLICIES: dict[str, Policy] = {
    "assignment": Policy(ttl=3 * 86400, urgency="normal"),
    "returned_visit": Policy(ttl=3 * 86400, urgency="normal"),
    "digest": Policy(ttl=12 * 3600, urgency="normal", topic="digest"),
    "urgent_need": Policy(ttl=86400, urgency="high"),
}

# Subscriptions and requests change rarely; every delivery is written at least twice. Each view
# indexes every change of its database, so deliveries live in a database of their own and
# the views that requests and subscriptions need never wade through them.

PUSH_DESIGN: dict[str, Any] = {
    "_id": "_design/push",
    "language": "javascript",
    "views": {
        "subscriptions_by_user": {
            "map": "function (doc) { if (doc.type === 'subscription')"
            " emit(doc.user, doc.device); }",
        },
    },
}

OUTBOX_DESIGN: dict[str, Any] = {
    "_id": "_design/outbox",
    "language": "javascript",
    "views": {
        # Work not finished: [pending, next_at] and [sending, claimed_until].
        "open": {
            "map": "function (doc) { if (doc.state === 'pending') emit(['pending', doc.next_at],"
            " null); else if (doc.state === 'sending') emit(['sending', doc.claimed_until],"
            " null); }",
        },
        "deliveries": {
            "map": "function (doc) { if (doc.type === 'delivery')"
            " emit([doc.state, doc.kind], doc.attempts); }",
            "reduce": "_stats",
        },
        "sent_by_time": {
            "map": "function (doc) { if (doc.type === 'delivery' && doc.sent_at)"
            " emit(doc.sent_at, null); }",
            "reduce": "_count",
        },
    },
}


# Delivery figures per scope and period (sync/push_figures.py). In a design document of its
# own: CouchDB indexes the views of one design document together, and this one must not
# slow down the worker's queries of `open`. One row per scope a delivery counts in,
# [scope, created_at]; deliveries queued before they named their scopes go under "legacy".
# The value: [kind, state, attempts, sent_at, user, communities, last_status, last_error
# (only for deliveries that ended undelivered), last_attempt_at].
FIGURES_DESIGN: dict[str, Any] = {
    "_id": "_design/figures",
    "language": "javascript",
    "views": {
        "by_scope": {
            "map": "function (doc) {"
            " if (doc.type !== 'delivery' || !doc.created_at) return;"
            " var scopes = doc.scopes || ['legacy'], communities = [], i;"
            " for (i = 0; i < scopes.length; i++)"
            "  if (scopes[i].indexOf('community:') === 0) communities.push(scopes[i].slice(10));"
            " var ended = ['failed', 'gone', 'expired', 'interrupted'].indexOf(doc.state) >= 0;"
            " var value = [doc.kind, doc.state, doc.attempts || 0, doc.sent_at || null,"
            "  doc.user || null, communities, doc.last_status || null,"
            "  ended ? (doc.last_error || '') : null, doc.last_attempt_at || null];"
            " for (i = 0; i < scopes.length; i++) emit([scopes[i], doc.created_at], value); }",
        },
    },
}


def iso(t: float) -> str:
    """Fixed-width UTC time with milliseconds, so view keys sort as times do."""
    dt = datetime.fromtimestamp(t, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_iso(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def push_db(couch: Couch) -> str:
    return couch.name(naming.PUSH)


def outbox_db(couch: Couch) -> str:
    return couch.name(naming.PUSH_OUTBOX)


def ensure_push_db(couch: Couch) -> list[str]:
    """The push databases with their views (admin-only; never replicated to devices)."""
    return (ensure_database(couch, push_db(couch), PUSH_DESIGN)
            + ensure_database(couch, outbox_db(couch), OUTBOX_DESIGN)
            + ensure_database(couch, outbox_db(couch), FIGURES_DESIGN))


def delivery_id(request_id: str, subscription_id: str) -> str:
    digest = hashlib.sha256(f"{request_id}\n{subscription_id}".encode()).hexdigest()[:32]
    return f"delivery:{digest}"


def new_delivery(request: dict[str, Any], subscription: dict[str, Any],
                 payload: dict[str, Any], now: float, *, scopes: list[str]) -> dict[str, Any]:
    """A delivery of `request` to one device; `scopes` are the figures it counts in
    (sync/push_figures.py), fixed when it is queued."""
    policy = POLICIES[request["kind"]]
    return {
        "_id": delivery_id(request["_id"], subscription["_id"]),
        "type": "delivery",
        "request": request["_id"],
        "kind": request["kind"],
        "user": request["user"],
        "grid": request.get("grid") or None,
        "scopes": scopes,
        "subscription": subscription["_id"],
        "payload": payload,
        "ttl": policy.ttl,
        "urgency": policy.urgency,
        "topic": policy.topic,
        "state": PENDING,
        "attempts": 0,
        "created_at": iso(now),
        "next_at": iso(now),
        "expires_at": iso(now + policy.ttl),
    }


# --- what one send attempt did, and what follows from it ----------------------------------

@dataclass(frozen=True)
class Outcome:
    """The answer of one send: `status` is the HTTP status (None: no answer at all)."""

    status: int | None
    retry_after: float | None = None  # seconds the push service asked us to wait
    error: str = ""
    broken: bool = False  # the message itself cannot be sent (bad keys): never retry

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status <= 202

    @property
    def subscription_gone(self) -> bool:
        return self.status in (404, 410)

    @property
    def retryable(self) -> bool:
        # No answer (timeout, refused), throttled, or the push service's own trouble.
        if self.broken:
            return False
        return self.status is None or self.status == 429 or self.status >= 500


def backoff(attempts: int, base: float, cap: float = BACKOFF_CAP) -> float:
    """Exponential backoff with jitter: base·2^(n-1), capped, scaled into [½, 1]."""
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    return delay * random.uniform(0.5, 1.0)


def abandon(doc: dict[str, Any], state: str, reason: str) -> dict[str, Any]:
    """A claimed delivery that will not be attempted (its subscription is gone, say)."""
    doc = {**doc, "state": state, "last_error": reason}
    for k in ("claimed_by", "claimed_until"):
        doc.pop(k, None)
    return doc


def settle(doc: dict[str, Any], outcome: Outcome, now: float, retry_base: float
           ) -> dict[str, Any]:
    """The delivery after one attempt: its next state, when to retry, what went wrong."""
    doc = {**doc, "attempts": doc.get("attempts", 0) + 1, "last_status": outcome.status,
           "last_error": outcome.error[:300], "last_attempt_at": iso(now)}
    for k in ("claimed_by", "claimed_until"):
        doc.pop(k, None)
    if outcome.delivered:
        return {**doc, "state": SENT, "sent_at": iso(now)}
    if outcome.subscription_gone:
        return {**doc, "state": GONE}
    if not outcome.retryable or doc["attempts"] >= MAX_ATTEMPTS:
        return {**doc, "state": FAILED}
    delay = max(backoff(doc["attempts"], retry_base), outcome.retry_after or 0.0)
    if now + delay >= parse_iso(doc["expires_at"]):
        return {**doc, "state": EXPIRED}
    return {**doc, "state": PENDING, "next_at": iso(now + delay)}


# --- the outbox in CouchDB -----------------------------------------------------------------

class Outbox:
    def __init__(self, couch: Couch) -> None:
        self.couch = couch
        self.db = outbox_db(couch)

    def add(self, deliveries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Write new deliveries (an existing one stays as it is); returns those that are new.

        CouchDB accepts a document without `_rev` over a deleted one, as a later revision
        than a first: a delivery that retention removed (sync/push_retention.py) and that
        someone queues again is deleted again at once, never sent twice."""
        won = self._write_won(deliveries)
        again = [d for d in won if not d["_rev"].startswith("1-")]
        if again:
            log.warning("%d deliveries were queued again after their removal; not sent",
                        len(again))
            self._write_won([{"_id": d["_id"], "_rev": d["_rev"], "_deleted": True}
                             for d in again])
        return [d for d in won if d["_rev"].startswith("1-")]

    def due(self, until: float, limit: int) -> list[dict[str, Any]]:
        """Pending deliveries whose time has come by `until`, soonest first."""
        body = self.couch.view(self.db, "outbox", "open", startkey=[PENDING, ""],
                               endkey=[PENDING, iso(until)], limit=limit, include_docs=True)
        return [r["doc"] for r in body["rows"] if r.get("doc") and r["doc"].get("state") == PENDING]

    def claim(self, docs: list[dict[str, Any]], worker: str, hold: float,
              now: float | None = None) -> list[dict[str, Any]]:
        """Take these pending deliveries for `worker`, for `hold` seconds; returns the ones won."""
        now = time.time() if now is None else now
        return self._write_won([
            {**d, "state": SENDING, "claimed_by": worker, "claimed_until": iso(now + hold)}
            for d in docs
        ])

    def claim_due(self, limit: int, worker: str, hold: float,
                  now: float | None = None) -> list[dict[str, Any]]:
        now = time.time() if now is None else now
        return self.claim(self.due(now, limit), worker, hold, now)

    def record(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store settled deliveries (each still carries the rev of its claim)."""
        return self._write_won(docs)

    def release(self, docs: list[dict[str, Any]]) -> int:
        """Give claimed but unsent deliveries back, e.g. when the worker stops."""
        back = []
        for d in docs:
            d = {**d, "state": PENDING}
            d.pop("claimed_by", None)
            d.pop("claimed_until", None)
            back.append(d)
        return len(self._write_won(back))

    def recover_stale(self, now: float | None = None) -> tuple[int, float | None]:
        """Claims that ran out: their process died mid-send, so they are never sent again.

        Returns how many were found, and when the next claim still running runs out (None
        when no delivery is being sent), so the caller knows when to look again.
        """
        now = time.time() if now is None else now
        body = self.couch.view(self.db, "outbox", "open", startkey=[SENDING, ""],
                               endkey=[SENDING, "\ufff0"], include_docs=True)
        stale, running = [], []
        for row in body["rows"]:
            doc = row.get("doc")
            if doc is None or doc.get("state") != SENDING:
                continue
            if doc["claimed_until"] <= iso(now):
                stale.append({**doc, "state": INTERRUPTED,
                              "last_error": f"the server stopped while {doc.get('claimed_by')} "
                                            "was sending"})
            else:
                running.append(parse_iso(doc["claimed_until"]))
        won = self._write_won(stale)
        if won:
            log.warning("%d deliveries were interrupted by a crash and will not be resent",
                        len(won))
        return len(won), min(running, default=None)

    def figures(self, now: float | None = None) -> dict[str, Any]:
        """Installation-wide counts per state and kind, attempts, last day (for /metrics; the
        console's figures per scope are sync/push_figures.py)."""
        now = time.time() if now is None else now
        body = self.couch.view(self.db, "outbox", "deliveries", group_level=2)
        by_state: dict[str, int] = dict.fromkeys(STATES, 0)
        by_kind: dict[str, dict[str, int]] = {}
        attempts = 0
        for row in body["rows"]:
            state, kind = row["key"]
            stats = row["value"]
            count = int(stats["count"])
            by_state[state] = by_state.get(state, 0) + count
            by_kind.setdefault(kind, {})[state] = count
            attempts += int(stats["sum"])
        day = self.couch.view(self.db, "outbox", "sent_by_time", startkey=iso(now - 86400))
        oldest = self.couch.view(self.db, "outbox", "open", startkey=[PENDING, ""],
                                 endkey=[PENDING, "\ufff0"], limit=1)["rows"]
        total = sum(by_state.values())
        return {
            "total": total,
            "by_state": by_state,
            "by_kind": by_kind,
            "attempts": attempts,
            "sent_last_24h": int(day["rows"][0]["value"]) if day["rows"] else 0,
            "oldest_pending_since": oldest[0]["key"][1] if oldest else None,
        }

    def _write_won(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rev-checked bulk write; returns the docs that won, with their new revs."""
        if not docs:
            return []
        try:
            results = self.couch.bulk_docs(self.db, docs)
        except CouchUnavailable:
            log.exception("writing %d deliveries failed", len(docs))
            return []
        # By id, not position: pouchdb-server does not always answer in the order asked.
        by_id = {r.get("id"): r for r in results}
        won = []
        for doc in docs:
            result = by_id.get(doc["_id"], {})
            if result.get("ok"):
                won.append({**doc, "_rev": result["rev"]})
            elif result.get("error") != "conflict":
                log.error("delivery %s not written: %s", doc["_id"], result)
        return won

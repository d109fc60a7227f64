"""The daily digest: at the configured local time, each worker with notifications on hears
how many households are due this week, overdue, and special-care among them.

One request per worker and day, with the id `push_request:digest:<user>:<date>`: a replica
taking over, or a restart, writes the same ids again and CouchDB refuses the repeats. A
day's run is marked done with `digest_run:<date>` once every request is written. If the
server was down at that time, the digest still goes out up to LATE_WINDOW afterwards, not
in the evening.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

from server.push.config import PushConfig
from sync import accounts
from sync.couch import Couch, DocumentRejected
from sync.digest import Digest, grid_digest
from sync.leases import Lease
from sync.push_outbox import iso, push_db

log = logging.getLogger("doorstep.push.digest")

LATE_WINDOW = timedelta(hours=4)


class DigestJob:
    def __init__(self, couch: Couch, config: PushConfig) -> None:
        self.couch = couch
        self.config = config
        self.db = push_db(couch)

    def step(self, lease: Lease | None = None, now: datetime | None = None) -> int:
        """Write today's digests if it is time and nobody has; returns how many were written."""
        local = (now or datetime.now(self.config.timezone)).astimezone(self.config.timezone)
        today = local.date()
        start = datetime.combine(today, self.config.digest_time, self.config.timezone)
        if not start <= local < start + LATE_WINDOW:
            return 0
        marker = f"digest_run:{today.isoformat()}"
        if self.couch.get(self.db, marker):
            return 0
        written = self.run(today, local.timestamp(), lease)
        self.couch.put(self.db, {"_id": marker, "type": "digest_run", "at": iso(local.timestamp()),
                                 "requests": written})
        log.info("daily digest for %s: %d workers notified", today, written)
        return written

    def run(self, today: date, at: float, lease: Lease | None = None) -> int:
        grids: dict[str, Digest] = {}
        written = 0
        for user in self._subscribed_users():
            if lease is not None and not lease.keep():
                break
            account = accounts.account(self.couch, user)
            if account is None or not account.active or account.role != "worker":
                continue
            total = Digest()
            for grid in account.grids:
                if grid not in grids:
                    grids[grid] = grid_digest(self.couch, grid, today, self.config.timezone)
                total += grids[grid]
            if total.empty:
                continue  # nothing to say: no notification
            written += self._request(user, today, at, total)
        return written

    def _subscribed_users(self) -> list[str]:
        body = self.couch.view(self.db, "push", "subscriptions_by_user")
        return sorted({row["key"] for row in body["rows"]})

    def _request(self, user: str, today: date, at: float, digest: Digest) -> int:
        doc: dict[str, Any] = {
            "_id": f"push_request:digest:{user}:{today.isoformat()}",
            "type": "push_request",
            "kind": "digest",
            "user": user,
            "date": today.isoformat(),
            "counts": {"due": digest.due_this_week, "overdue": digest.overdue,
                       "special_care": digest.special_care},
            "at": iso(at),
        }
        try:
            self.couch.put(self.db, doc)
        except DocumentRejected as exc:
            if exc.status == 409:
                return 0  # written by an earlier run
            raise
        return 1

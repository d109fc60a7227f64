"""Turning notification requests into outbox deliveries, one per device of the user.

Requests are `push_request` documents in the push database: the console writes them for
new assignments and returned visits, the digest scheduler and the urgent-need watcher for
theirs, always with ids derived from what they are about, so a request exists once. A
request is expanded once: its deliveries get ids derived from (request, subscription), and
only after they are written is the request marked `expanded_at`. A crash in between means
the next pass writes the same ids again, which CouchDB refuses as conflicts.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Any
from urllib.parse import quote

from server.push import messages
from server.push.subscriptions import Subscriptions
from sync import naming
from sync.couch import Couch
from sync.push_outbox import POLICIES, Outbox, iso, new_delivery, parse_iso, push_db

log = logging.getLogger("doorstep.push.expand")


class Expander:
    def __init__(self, couch: Couch) -> None:
        self.couch = couch
        self.db = push_db(couch)
        self.outbox = Outbox(couch)
        self.subscriptions = Subscriptions(couch)

    def expand_open(self, limit: int = 200, now: float | None = None) -> int:
        """Expand up to `limit` open requests; returns how many requests were handled."""
        now = time.time() if now is None else now
        body = self.couch.view(self.db, "push", "open_requests", limit=limit,
                               include_docs=True)
        requests = [r["doc"] for r in body["rows"] if r.get("doc")]
        if not requests:
            return 0
        subs = self.subscriptions.for_users([r["user"] for r in requests if r.get("user")])
        context = self._grid_docs(requests)
        deliveries: list[dict[str, Any]] = []
        marks = []
        for req in requests:
            made, note = self._deliveries(req, subs.get(req.get("user", ""), []), context, now)
            deliveries += made
            marks.append({**req, "expanded_at": iso(now), "deliveries": len(made),
                          **({"note": note} if note else {})})
        self.outbox.add(deliveries)
        self.couch.bulk_docs(self.db, marks)  # a conflict: another replica marked it first
        return len(requests)

    def _deliveries(self, req: dict[str, Any], subs: list[dict[str, Any]],
                    context: dict[tuple[str, str], dict[str, Any]], now: float
                    ) -> tuple[list[dict[str, Any]], str]:
        policy = POLICIES.get(req.get("kind", ""))
        if policy is None or not req.get("user"):
            return [], f"unknown kind {req.get('kind')!r} or no user"
        try:
            at = parse_iso(req["at"])
        except (KeyError, TypeError, ValueError):
            at = now
        if now - at > policy.ttl:
            return [], "older than its time to live; not sent"
        grid = req.get("grid", "")
        household = context.get((grid, f"household:{req.get('household')}"))
        ref = context.get((grid, req.get("ref") or ""))
        made = []
        for sub in subs:
            lang = messages.language(sub.get("lang"))
            made.append(new_delivery(req, sub, messages.payload(req, household, ref, lang), now))
        return made, "" if subs else "the user has no device with notifications on"

    def _grid_docs(self, requests: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
        """The households and assignments/reviews the requests name, one read per grid."""
        wanted: dict[str, set[str]] = defaultdict(set)
        for req in requests:
            if req.get("grid") and req.get("household"):
                wanted[req["grid"]].add(f"household:{req['household']}")
            if req.get("grid") and req.get("ref"):
                wanted[req["grid"]].add(req["ref"])
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for grid, ids in wanted.items():
            db = naming.grid_db_name(grid, self.couch.prefix)
            status, body = self.couch.request("POST", f"{quote(db, safe='')}/_all_docs",
                                              params={"include_docs": "true"},
                                              body={"keys": sorted(ids)})
            if status != 200:
                log.warning("reading %s for notifications failed: %s", db, status)
                continue
            for row in body.get("rows", []):
                if row.get("doc"):
                    found[(grid, row["id"])] = row["doc"]
        return found

"""Turning notification requests into outbox deliveries, one per device of the user.

Requests are `push_request` documents in the push database: the console writes them for
new assignments and returned visits, the digest scheduler and the urgent-need watcher for
theirs, always with ids derived from what they are about, so a request exists once.

The expander follows the push database's `_changes` feed from a checkpoint kept in
`_local/push-expander`, and keeps every subscription in memory from the same feed. Requests
read wait in a backlog until the worker has room for their deliveries, which are then
written already claimed by it; the checkpoint never passes a request still waiting. No view
is involved: on pouchdb-server a view costs about 0.7 ms per changed document, each view
separately, while the feed costs a tenth of that. A request is expanded once: its
deliveries get ids derived from (request, subscription), then the checkpoint moves; a
crash in between means the next pass writes the same ids again, which CouchDB refuses as
conflicts. A request that goes nowhere (no device, too old) is marked with a `note`. Each
delivery records the scopes its figures count in (sync/push_figures.py), from a copy of the
directory and the accounts at most a minute old.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from typing import Any
from urllib.parse import quote

from server.errors import CouchUnavailable
from server.push import messages
from sync import naming
from sync.couch import Couch
from sync.push_figures import Attribution
from sync.push_outbox import (
    POLICIES,
    SENDING,
    Outbox,
    iso,
    new_delivery,
    parse_iso,
    push_db,
)

log = logging.getLogger("doorstep.push.expand")

CHECKPOINT = "_local/push-expander"


class Expander:
    def __init__(self, couch: Couch) -> None:
        self.couch = couch
        self.db = push_db(couch)
        self.outbox = Outbox(couch)
        self.attribution = Attribution(couch)  # the figures each delivery counts in
        self.read_seq: Any = None  # how far the feed has been read; None: load() has not run
        self.saved_seq: Any = None  # the checkpoint: everything before it is expanded
        self.backlog: deque[tuple[Any, dict[str, Any]]] = deque()  # (seq, request) read
        self.subscriptions: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self._owner: dict[str, str] = {}  # subscription id → user, to move or drop it

    def load(self) -> None:
        """Start from the checkpoint, with every subscription as it is now."""
        checkpoint = self.couch.get(self.db, CHECKPOINT) or {}
        rows = self.couch.all_docs(self.db, startkey="subscription:",
                                   endkey="subscription:\ufff0", include_docs=True)
        self.subscriptions.clear()
        self._owner.clear()
        for row in rows:
            self._subscription(row["doc"])
        self.backlog.clear()
        self.read_seq = self.saved_seq = checkpoint.get("seq", 0)

    def poll(self, limit: int = 500) -> int:
        """Read up to `limit` changes of the push database; returns how many requests came."""
        if self.read_seq is None:
            self.load()
        status, body = self.couch.request("GET", f"{quote(self.db, safe='')}/_changes",
                                          params={"since": self.read_seq, "limit": limit,
                                                  "include_docs": True})
        if status != 200:
            raise CouchUnavailable(f"_changes of {self.db} failed: {status} {body}")
        came = 0
        for change in body["results"]:
            doc = change.get("doc") or {"_id": change["id"], "_deleted": True}
            if doc["_id"].startswith("subscription:"):
                self._subscription(doc, deleted=change.get("deleted", False))
            elif doc.get("type") == "push_request" and not doc.get("expanded_at"):
                self.backlog.append((change["seq"], doc))
                came += 1
        self.read_seq = body["last_seq"]
        if not self.backlog:
            self._checkpoint(self.read_seq)
        return came

    def expand(self, room: int, holder: str | None = None, hold: float = 0.0,
               now: float | None = None) -> list[dict[str, Any]]:
        """Deliveries for the oldest requests read, about `room` of them (a request is never
        split). With a `holder` they are born claimed by it, ready to send: one write less
        per message than creating and then claiming them."""
        now = time.time() if now is None else now
        taken: list[dict[str, Any]] = []
        last_seq = None
        count = 0
        while self.backlog and (not taken or count < room):
            seq, req = self.backlog.popleft()
            taken.append(req)
            last_seq = seq
            count += max(1, len(self.subscriptions.get(req.get("user", ""), {})))
        if not taken:
            return []
        created = self._expand(taken, now, holder, hold)
        self._checkpoint(self.read_seq if not self.backlog else last_seq)
        return created

    def _subscription(self, doc: dict[str, Any], deleted: bool = False) -> None:
        previous = self._owner.pop(doc["_id"], None)
        if previous is not None:
            self.subscriptions[previous].pop(doc["_id"], None)
        if not deleted and not doc.get("_deleted") and doc.get("user"):
            self.subscriptions[doc["user"]][doc["_id"]] = doc
            self._owner[doc["_id"]] = doc["user"]

    def _expand(self, requests: list[dict[str, Any]], now: float, holder: str | None,
                hold: float) -> list[dict[str, Any]]:
        context = self._grid_docs(requests)
        deliveries: list[dict[str, Any]] = []
        notes = []
        for req in requests:
            subs = list(self.subscriptions.get(req.get("user", ""), {}).values())
            made, note = self._deliveries(req, subs, context, now)
            deliveries += made
            if note:  # a request that went nowhere says why; the others have deliveries
                notes.append({**req, "expanded_at": iso(now), "deliveries": 0, "note": note})
        if holder is not None:
            deliveries = [{**d, "state": SENDING, "claimed_by": holder,
                           "claimed_until": iso(now + hold)} for d in deliveries]
        created = self.outbox.add(deliveries)
        if notes:
            self.couch.bulk_docs(self.db, notes)  # a conflict: another replica wrote it first
        return created

    def _checkpoint(self, seq: Any) -> None:
        if seq == self.saved_seq:
            return
        current = self.couch.get(self.db, CHECKPOINT) or {"_id": CHECKPOINT}
        status, body = self.couch.request(
            "PUT", f"{quote(self.db, safe='')}/{CHECKPOINT}", body={**current, "seq": seq})
        if status in (201, 202):
            self.saved_seq = seq
        else:
            log.warning("could not save the expander checkpoint: %s %s", status, body)

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
        scopes = self.attribution.scopes(req) if subs else []
        made = []
        for sub in subs:
            lang = messages.language(sub.get("lang"))
            made.append(new_delivery(req, sub, messages.payload(req, household, ref, lang), now,
                                     scopes=scopes))
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

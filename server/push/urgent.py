"""Urgent needs: when a synced visit raises a need marked urgent, the community's
supervisors hear of it.

Nobody asks for these (a phone writes the visit), so the watcher follows each grid
database's `_changes` from a checkpoint kept in the push database (`_local/push-urgent`),
starting at the current end the first time it sees a grid, so that history never alarms
anyone. One request per need and supervisor, `push_request:urgent_need:<need>:<user>`, so a
need seen twice (its visit and its `raised` event, or a replayed feed) notifies once.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import quote

from server.errors import CouchUnavailable
from sync import accounts
from sync.couch import Couch
from sync.directory import Directory
from sync.leases import Lease
from sync.push_outbox import iso, push_db

log = logging.getLogger("doorstep.push.urgent")

CHECKPOINT = "_local/push-urgent"
BATCH = 500


def urgent_needs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The urgent needs a grid document raises: a visit's, or a `raised` need event."""
    if doc.get("type") == "visit":
        return [n for n in doc.get("needs") or [] if n.get("urgent") and n.get("need_id")]
    if doc.get("type") == "need_event" and doc.get("event") == "raised" and doc.get("urgent"):
        return [{"need_id": doc["need_id"], "text": doc.get("text", "")}]
    return []


class UrgentNeedWatcher:
    def __init__(self, couch: Couch) -> None:
        self.couch = couch
        self.db = push_db(couch)
        self.path = f"{quote(self.db, safe='')}/{quote(CHECKPOINT, safe='/')}"

    def step(self, lease: Lease | None = None) -> int:
        """Read every grid's new changes; returns how many alerts were requested."""
        checkpoint = self.couch.get(self.db, CHECKPOINT) or {"_id": CHECKPOINT, "seqs": {}}
        seqs: dict[str, Any] = checkpoint.setdefault("seqs", {})
        supervisors: dict[str, list[str]] | None = None
        written = 0
        for grid in Directory(self.couch).grids():
            if lease is not None and not lease.keep():
                break
            alerts, seqs[grid.id] = self._read(grid.db, seqs.get(grid.id))
            if alerts:
                if supervisors is None:
                    supervisors = self._supervisors()
                for doc, need in alerts:
                    for user in supervisors.get(grid.community, []):
                        written += self._request(user, grid.id, doc, need)
        status, body = self.couch.request("PUT", self.path, body=checkpoint)
        if status not in (201, 202):
            log.warning("urgent-need checkpoint not saved: %s %s", status, body)
        return written

    def _read(self, db: str, since: Any) -> tuple[list[tuple[dict[str, Any], dict]], Any]:
        if since is None:  # a grid seen for the first time: start at its end
            status, info = self.couch.request("GET", quote(db, safe=""))
            if status != 200:
                raise CouchUnavailable(f"reading {db} failed: {status} {info}")
            return [], info["update_seq"]
        alerts = []
        while True:
            status, body = self.couch.request("GET", f"{quote(db, safe='')}/_changes",
                                              params={"since": since, "limit": BATCH,
                                                      "include_docs": True})
            if status != 200:
                raise CouchUnavailable(f"_changes of {db} failed: {status} {body}")
            for change in body["results"]:
                doc = change.get("doc") or {}
                alerts += [(doc, need) for need in urgent_needs(doc)]
            since = body["last_seq"]
            if len(body["results"]) < BATCH:
                return alerts, since

    def _supervisors(self) -> dict[str, list[str]]:
        by_community: dict[str, list[str]] = {}
        for a in accounts.all_accounts(self.couch):
            if a.active and a.role == "supervisor":
                for c in a.communities:
                    by_community.setdefault(c, []).append(a.name)
        return by_community

    def _request(self, user: str, grid: str, doc: dict[str, Any], need: dict[str, Any]) -> int:
        # Stamped when the server learns of it: a visit made offline days ago is news now.
        req = {"_id": f"push_request:urgent_need:{need['need_id']}:{user}",
               "type": "push_request", "kind": "urgent_need", "user": user, "grid": grid,
               "household": doc.get("household", ""), "ref": doc["_id"],
               "text": need.get("text", "")[:200], "at": iso(time.time())}
        status, _ = self.couch.request(
            "PUT", f"{quote(self.db, safe='')}/{quote(req['_id'], safe='')}", body=req)
        return 1 if status in (201, 202) else 0  # 409: already requested

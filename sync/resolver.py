"""The conflict resolver: merges conflicting household revisions in every grid database.

For each grid database it reads `_changes?style=all_docs` from its checkpoint; a document
with more than one leaf is fetched whole (`_bulk_get?revs=true`, every leaf) and, if it is a
household with two or more live leaves, merged by `sync.merge`. Writes, per batch:

1. conflict and audit records (ids derived from what they describe; 409 means already there);
2. with `new_edits=false`, the merged revision as a child of the winning leaf;
3. with `new_edits=false`, a deletion as a child of every other live leaf;
4. the checkpoint `_local/resolver-checkpoint`.

Revision ids are computed here from content and parent (`<n+1>-md5(body, parent)`), so the
same merge always produces the same revisions: a second resolver, or a re-run after a crash
anywhere between the steps, writes exactly what is already there. Writing with
`new_edits=false` only ever adds children to the leaves that were merged; if a device
extends a leaf meanwhile, its new revision stays a live leaf and the next pass merges it.
Each step only adds to the previous one, so a crash between any two is harmless: records go
before the revisions (a losing value is never deleted unrecorded), and the merged revision
before the deletions (a leaf is never deleted before its content is in the merged one;
CouchDB does not promise that one `_bulk_docs` is applied all at once).
docs/conflicts.md explains the rule and these guarantees.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from server.errors import CouchUnavailable
from sync import audit, clock, merge, naming, resolver_status
from sync.couch import Couch
from sync.directory import Directory, now
from sync.leases import Lease, new_holder_id, run_with_lease

log = logging.getLogger("doorstep.resolver")

JOB = "resolver"  # the lease name of the background job
CHECKPOINT = "_local/resolver-checkpoint"
BATCH_SIZE = 200
INTERVAL = 2.0  # seconds between passes in the background

Keep = Callable[[], bool]


def _always() -> bool:
    return True


@dataclass
class Stats:
    changes: int = 0  # change rows read
    merged: int = 0  # households whose leaves were merged into one
    moved: int = 0  # households whose stray edits after a move were set aside
    conflicts: int = 0  # conflict records written
    audits: int = 0  # audit records written
    left_alone: int = 0  # conflicted documents of append-only types (never expected)

    def add(self, other: Stats) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True)
class Resolution:
    """What settles one household: records (written first), then revisions (new_edits=false)."""

    records: list[dict[str, Any]]
    revisions: list[dict[str, Any]]
    records_db: str | None = None  # None: the household's own grid database


def merge_leaves(live: list[dict[str, Any]]) -> Resolution:
    """Merge the live leaves (with `_revisions`) into a child of the winner; delete the rest."""
    result = merge.merge(live)
    base = next(leaf for leaf in live if leaf["_rev"] == result.doc["_rev"])
    body = merge.strip(result.doc)
    revisions = []
    merged_rev = base["_rev"]
    if body != merge.strip(base):  # after a crash the merge may be written already
        revisions.append(_child(base, body))
        merged_rev = revisions[0]["_rev"]
    for leaf in live:
        if leaf is not base:
            revisions.append(_child(leaf, {"_id": leaf["_id"], "_deleted": True}))
    return Resolution(result.conflicts + audit.for_merge(result, merged_rev), revisions)


def set_aside(live: list[dict[str, Any]], moved_to: str, current: dict[str, Any] | None,
              records_db: str | None) -> Resolution:
    """Edits made after a household moved away: the move wins, the edits become records.

    `current` is the entry in the new grid (None if it is not there); the records go to
    `records_db`, where a supervisor of the grid that now holds the household sees them.
    """
    grid = moved_to if current else live[0].get("grid")
    records: dict[str, dict[str, Any]] = {}
    revisions = []
    for leaf in live:
        for record in merge.moved_conflicts(current, leaf, grid):
            records[record["_id"]] = record
        revisions.append(_child(leaf, {"_id": leaf["_id"], "_deleted": True,
                                       "moved_to": moved_to}))
    return Resolution(list(records.values()), revisions, records_db)


def leaves_after(revs: frozenset[str], revisions: list[dict[str, Any]]) -> frozenset[str]:
    """The leaf set once `revisions` are written on top of the leaves `revs`."""
    parents = {f"{r['_revisions']['start'] - 1}-{r['_revisions']['ids'][1]}" for r in revisions}
    return frozenset((revs - parents) | {r["_rev"] for r in revisions})


class Resolver:
    def __init__(self, couch: Couch, batch_size: int = BATCH_SIZE) -> None:
        self.couch = couch
        self.batch_size = max(1, batch_size)
        # Leaf sets this process has already settled, so its own writes (which show up in
        # the next pass as documents with several leaves) are not fetched again.
        self._settled: dict[tuple[str, str], frozenset[str]] = {}
        self._checkpoint_revs: dict[str, str | None] = {}  # our last checkpoint write per db
        # Where this process got to per database, so an idle pass is one request per database.
        # Behind another resolver's checkpoint it only means re-reading settled changes.
        self._since: dict[str, Any] = {}

    def run_once(self, keep: Keep = _always) -> dict[str, Stats]:
        """One pass over every grid database, each up to the end of its changes feed.

        `keep()` is asked before every batch; when it says no (the lease was lost, the server
        is stopping) the pass ends there, with every finished batch checkpointed. A pass
        that reaches the end is recorded for /metrics (sync/resolver_status.py).
        """
        out = {}
        for grid in Directory(self.couch).grids():
            if not keep():
                return out
            out[grid.db] = self.resolve_db(grid.db, keep)
        resolver_status.record_pass(self.couch, len(out))
        return out

    def resolve_db(self, db: str, keep: Keep = _always) -> Stats:
        stats = Stats()
        since = self._since[db] if db in self._since else self._checkpoint(db)
        while keep():
            status, body = self.couch.request(
                "GET", f"{quote(db, safe='')}/_changes",
                params={"style": "all_docs", "since": since, "limit": self.batch_size},
            )
            if status == 404:
                self._since.pop(db, None)  # if it is created again, it starts from its own start
                return stats  # the grid has no database (yet): nothing to resolve
            if status != 200:
                raise CouchUnavailable(f"reading the changes of {db} failed: {status} {body}")
            rows = body["results"]
            if not rows:
                break
            stats.add(self._resolve_rows(db, rows))
            since = self._since[db] = body["last_seq"]
            self._save_checkpoint(db, since)
            if len(rows) < self.batch_size:
                break
        if len(self._settled) > 100_000:
            self._settled.clear()
        return stats

    # -- one batch ------------------------------------------------------------------------

    def _resolve_rows(self, db: str, rows: list[dict[str, Any]]) -> Stats:
        stats = Stats(changes=len(rows))
        wanted: dict[str, frozenset[str]] = {}
        for row in rows:
            revs = frozenset(c["rev"] for c in row["changes"])
            if len(revs) > 1 and not row["id"].startswith("_design/") \
                    and self._settled.get((db, row["id"])) != revs:
                wanted[row["id"]] = revs
        if not wanted:
            return stats
        records: dict[str, dict[str, dict[str, Any]]] = {}  # db → id → record
        revisions: list[dict[str, Any]] = []
        for doc_id, leaves in self._fetch(db, wanted).items():
            live = [d for d in leaves if not d.get("_deleted")]
            moved = [d for d in leaves if d.get("_deleted") and d.get("moved_to")]
            resolution = None
            if any(d.get("type") != "household" for d in live):
                if len(live) > 1:
                    # Append-only types cannot conflict by design; if one does anyway, CouchDB's
                    # winner is already the same on every replica, and deleting the other leaf
                    # would throw away what someone wrote. Leave both for a person to look at.
                    log.warning("%s: %s has %d live revisions but is not a household; left as "
                                "is (winner %s)", db, doc_id, len(live), merge.winner(live)["_rev"])
                    stats.left_alone += 1
            elif live and moved:
                resolution = self._set_aside(live, moved)
                stats.moved += 1
            elif len(live) > 1:
                resolution = merge_leaves(live)
                stats.merged += 1
            settled = wanted[doc_id]
            if resolution:
                for record in resolution.records:
                    records.setdefault(resolution.records_db or db, {})[record["_id"]] = record
                revisions += resolution.revisions
                settled = leaves_after(settled, resolution.revisions)
            self._settled[(db, doc_id)] = settled
        for records_db, docs in records.items():
            for doc, new in zip(docs.values(), self._write_records(records_db, docs),
                                strict=True):
                if new and doc["type"] == "conflict":
                    stats.conflicts += 1
                elif new:
                    stats.audits += 1
        if revisions:
            # Merged revisions before deletions: a crash in between leaves the merged revision
            # next to leaves it already contains, which the next pass simply deletes.
            self._write_revisions(db, [r for r in revisions if not r.get("_deleted")])
            self._write_revisions(db, [r for r in revisions if r.get("_deleted")])
            log.info("%s: merged %d household(s), %d new conflict record(s)%s", db,
                     stats.merged, stats.conflicts,
                     f", edits set aside for {stats.moved} moved away" if stats.moved else "")
        return stats

    def _set_aside(self, live: list[dict[str, Any]], moved: list[dict[str, Any]]
                   ) -> Resolution:
        target = max(t["moved_to"] for t in moved)
        target_db = naming.grid_db_name(target, self.couch.prefix)
        current = None
        if self.couch.exists(target_db):
            current = self.couch.get(target_db, live[0]["_id"])
        return set_aside(live, target, current, target_db if current else None)

    # -- reads and writes --------------------------------------------------------------------

    def _fetch(self, db: str, wanted: dict[str, frozenset[str]]
               ) -> dict[str, list[dict[str, Any]]]:
        """Every leaf of every wanted document, with its revision history.

        A document whose leaf is already gone changed after our read of the feed; it is left
        for the pass that reads that newer change.
        """
        docs = [{"id": i, "rev": r} for i, revs in wanted.items() for r in sorted(revs)]
        status, body = self.couch.request("POST", f"{quote(db, safe='')}/_bulk_get",
                                          params={"revs": True}, body={"docs": docs})
        if status != 200:
            raise CouchUnavailable(f"_bulk_get on {db} failed: {status} {body}")
        leaves: dict[str, list[dict[str, Any]]] = {}
        incomplete = set()
        for result in body["results"]:
            for entry in result["docs"]:
                if "ok" in entry:
                    leaves.setdefault(result["id"], []).append(entry["ok"])
                else:
                    incomplete.add(result["id"])
        return {i: d for i, d in leaves.items() if i not in incomplete}

    def _write_records(self, db: str, docs: dict[str, dict[str, Any]]) -> list[bool]:
        """Write conflict and audit records; True for each one that is new."""
        new: dict[str, bool] = {}
        for r in self.couch.bulk_docs(db, list(docs.values())):
            if r.get("error") and r["error"] != "conflict":
                raise CouchUnavailable(f"writing record {r.get('id')} in {db} failed: {r}")
            new[r["id"]] = not r.get("error")  # by id: pouchdb-server may answer out of order
        return [new.get(doc_id, False) for doc_id in docs]

    def _write_revisions(self, db: str, docs: list[dict[str, Any]]) -> None:
        if not docs:
            return
        for r in self.couch.bulk_docs(db, docs, new_edits=False):
            if r.get("error"):
                raise CouchUnavailable(f"writing merged revision {r.get('id')} in {db} "
                                       f"failed: {r}")

    def _checkpoint(self, db: str) -> Any:
        doc = self.couch.get(db, CHECKPOINT)
        self._checkpoint_revs[db] = doc["_rev"] if doc else None
        return doc["since"] if doc else 0

    def _save_checkpoint(self, db: str, since: Any) -> None:
        """Last writer wins: a checkpoint that goes back only makes a pass redo settled work."""
        path = f"{quote(db, safe='')}/{CHECKPOINT}"
        for _ in range(3):
            doc = {"since": since, "updated_at": now()}
            if self._checkpoint_revs.get(db):
                doc["_rev"] = self._checkpoint_revs[db]
            status, body = self.couch.request("PUT", path, body=doc)
            if status in (200, 201):
                self._checkpoint_revs[db] = body["rev"]
                return
            if status != 409:
                raise CouchUnavailable(f"saving the resolver checkpoint of {db} failed: "
                                       f"{status} {body}")
            current = self.couch.get(db, CHECKPOINT)  # another resolver wrote it meanwhile
            self._checkpoint_revs[db] = current["_rev"] if current else None
        log.warning("%s: checkpoint not saved (another resolver keeps writing it)", db)


def _child(parent: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """`body` as the next revision after `parent`, with an id derived from both."""
    pos, _, parent_id = parent["_rev"].partition("-")
    digest = hashlib.md5(
        f"{clock.canonical(body)}\n{parent['_rev']}".encode(), usedforsecurity=False
    ).hexdigest()
    history = parent.get("_revisions", {}).get("ids") or [parent_id]
    return {**body, "_rev": f"{int(pos) + 1}-{digest}",
            "_revisions": {"start": int(pos) + 1, "ids": [digest, *history]}}


def job_step(couch: Couch, batch_size: int = BATCH_SIZE) -> Callable[[Lease], None]:
    """The background job: one pass per call, while the lease is held (server/jobs.py)."""
    # A connection of its own: the server's is used by request handlers on other threads.
    user, password = couch.auth
    resolver = Resolver(Couch(couch.url, user, password, couch.prefix), batch_size)

    def step(lease: Lease) -> None:
        resolver.run_once(lease.keep)

    return step


def run_forever(couch: Couch, stop: threading.Event, interval: float = INTERVAL,
                batch_size: int = BATCH_SIZE) -> None:
    """`doorstep resolve` without --once: the same job under the same lease as the servers'."""
    run_with_lease(couch, JOB, new_holder_id(), job_step(couch, batch_size), stop,
                   interval=interval)

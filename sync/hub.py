"""The hub: a read-only copy of every grid database, for cross-grid pages, search and export.

We copy with our own small replicator rather than CouchDB's `_replicate`:

- it behaves the same on Apache CouchDB 3 and on pouchdb-server, speaking only the
  replication primitives both implement correctly (`_changes?style=all_docs`, `_revs_diff`,
  `_bulk_get?revs=true`, `_bulk_docs` with `new_edits=false`, `_local` checkpoints);
- it needs no credentials inside URLs, and a wrong password cannot take the embedded
  pouchdb-server down (a `_replicate` that fails with 401 crashes it);
- it leaves out what the hub must not hold: design documents (the hub has its own views)
  and photo attachments (dashboards never show them; the grid database keeps them);
- it knows, per grid, up to when the copy is complete: the "data as of" time pages show.

Revisions are copied with their history, so conflicts, deletions (a household moved away
carries `_deleted` and `moved_to`) and merges arrive in the hub exactly as they are in the
grid database. Copying is idempotent: a revision the hub has is never fetched again, and a
lost checkpoint only means re-reading a changes feed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from server.errors import CouchUnavailable
from sync import naming
from sync.couch import Couch

BATCH = 500
STATUS_ID = "_local/hub-status"  # {grids: {grid: {since, as_of}}}: one read tells every page
SAVE_EVERY = 20  # grids copied between status saves in a long pass


@dataclass(frozen=True)
class Checkpoint:
    grid: str
    since: Any  # the grid database's last copied sequence (opaque on CouchDB 3)
    as_of: str | None  # every change made in the grid before this moment is in the hub

    @property
    def version(self) -> str:
        """Changes whenever new data of this grid reached the hub (a cache key)."""
        return f"{self.since}"


@dataclass(frozen=True)
class WorkerSeen:
    """What the hub last received from a worker's phone: their sync health, as the server
    knows it."""

    received_at: str  # when the server first saw their newest document
    app_version: str  # the field app version their newest visit was recorded with


@dataclass(frozen=True)
class CopyResult:
    grid: str
    copied: int  # revisions written into the hub
    checkpoint: Checkpoint
    workers: dict[str, WorkerSeen] = field(default_factory=dict)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Hub:
    """Copies grid databases into the hub database and reports how fresh each copy is."""

    def __init__(self, couch: Couch) -> None:
        self.couch = couch
        self.db = couch.name(naming.HUB)
        self._status_path = f"{quote(self.db, safe='')}/{STATUS_ID}"
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._status_lock = threading.Lock()

    # -- freshness ------------------------------------------------------------------------

    def overview(self) -> tuple[dict[str, Checkpoint], dict[str, WorkerSeen]]:
        """Every grid's checkpoint and what was last received from each worker, in one read."""
        doc = self._read_status()
        grids = {g: Checkpoint(g, c.get("since", 0), c.get("as_of"))
                 for g, c in doc.get("grids", {}).items()}
        workers = {w: WorkerSeen(v["received_at"], v.get("app_version", ""))
                   for w, v in doc.get("workers", {}).items()}
        return grids, workers

    def status(self) -> dict[str, Checkpoint]:
        return self.overview()[0]

    def workers(self) -> dict[str, WorkerSeen]:
        return self.overview()[1]

    def checkpoint(self, grid: str) -> Checkpoint:
        return self.status().get(grid) or Checkpoint(grid, 0, None)

    @staticmethod
    def as_of(checkpoints: Iterable[Checkpoint]) -> str | None:
        """The oldest "data as of" over these grids; None when one was never copied."""
        times = [c.as_of for c in checkpoints]
        if not times or any(t is None for t in times):
            return None
        return min(t for t in times if t is not None)

    # -- copying --------------------------------------------------------------------------

    def copy_grid(self, grid: str) -> CopyResult:
        """Bring the hub up to date with one grid database; safe to call at any time."""
        result = self._copy(grid, self.checkpoint(grid))
        self._save([result])
        return result

    def copy_all(self, grids: Iterable[str],
                 keep_going: Callable[[], bool] = lambda: True) -> list[CopyResult]:
        """Copy each grid in turn; `keep_going()` returning False stops between grids."""
        known = self.status()
        results: list[CopyResult] = []
        unsaved: list[CopyResult] = []
        for grid in grids:
            if not keep_going():
                break
            result = self._copy(grid, known.get(grid) or Checkpoint(grid, 0, None))
            results.append(result)
            unsaved.append(result)
            if len(unsaved) >= SAVE_EVERY:
                self._save(unsaved)
                unsaved = []
        if unsaved:
            self._save(unsaved)
        return results

    def _copy(self, grid: str, start: Checkpoint) -> CopyResult:
        with self._lock(grid):
            source = naming.grid_db_name(grid, self.couch.prefix)
            since, copied = start.since, 0
            started_at = now_iso()
            workers: dict[str, WorkerSeen] = {}
            while True:
                changes = self._changes(source, since)
                results = changes["results"]
                wanted = {
                    r["id"]: [c["rev"] for c in r["changes"]]
                    for r in results if not r["id"].startswith("_design/")
                }
                missing = self._missing(wanted)
                if missing:
                    docs = self._fetch(source, missing)
                    self._store(docs)
                    copied += len(docs)
                    _note_workers(workers, docs, None if start.as_of is None else started_at)
                since = changes["last_seq"]
                if len(results) < BATCH:
                    break
            return CopyResult(grid, copied, Checkpoint(grid, since, started_at), workers)

    def _changes(self, source: str, since: Any) -> dict[str, Any]:
        status, body = self.couch.request(
            "GET", f"{quote(source, safe='')}/_changes",
            params={"since": since if isinstance(since, str) else str(since),
                    "style": "all_docs", "limit": BATCH},
        )
        if status != 200:
            raise CouchUnavailable(f"reading the changes of {source} failed: {status} {body}")
        return body

    def _missing(self, wanted: dict[str, list[str]]) -> dict[str, list[str]]:
        if not wanted:
            return {}
        status, body = self.couch.request("POST", f"{quote(self.db, safe='')}/_revs_diff",
                                          body=wanted)
        if status != 200:
            raise CouchUnavailable(f"_revs_diff on the hub failed: {status} {body}")
        return {doc_id: info["missing"] for doc_id, info in body.items() if info.get("missing")}

    def _fetch(self, source: str, missing: dict[str, list[str]]) -> list[dict[str, Any]]:
        wanted = [{"id": doc_id, "rev": rev} for doc_id, revs in missing.items() for rev in revs]
        status, body = self.couch.request(
            "POST", f"{quote(source, safe='')}/_bulk_get",
            params={"revs": True, "attachments": False}, body={"docs": wanted},
        )
        if status != 200:
            raise CouchUnavailable(f"_bulk_get on {source} failed: {status} {body}")
        docs = []
        for result in body["results"]:
            for item in result["docs"]:
                doc = item.get("ok")
                if doc is None:
                    continue  # compacted away between the feed and the fetch; a newer rev follows
                doc.pop("_attachments", None)  # photos stay in the grid database
                docs.append(doc)
        return docs

    def _store(self, docs: list[dict[str, Any]]) -> None:
        answer = self.couch.bulk_docs(self.db, docs, new_edits=False)
        failed = [r for r in answer if isinstance(r, dict) and r.get("error")]
        if failed:
            raise CouchUnavailable(f"the hub refused {len(failed)} revision(s): {failed[0]}")

    def refresh_views(self, seconds: float = 10) -> None:
        """Index what was just copied, so that the next page does not wait for it.

        Both backends index a view when it is read; reading it here, in the background job,
        moves that cost off the pages. A long first build continues on the server after our
        request gives up, so a timeout is not an error.
        """
        for view in ("grid_rows", "lookup"):
            try:
                self.couch.request("GET", f"{quote(self.db, safe='')}/_design/hub/_view/{view}",
                                   params={"limit": 1}, timeout=seconds)
            except CouchUnavailable:
                return

    # -- the status document ----------------------------------------------------------------

    def _read_status(self) -> dict[str, Any]:
        status, body = self.couch.request("GET", self._status_path)
        if status == 404:
            return {}
        if status != 200:
            raise CouchUnavailable(f"reading the hub status failed: {status} {body}")
        return body

    def _save(self, results: list[CopyResult]) -> None:
        """Merge these copies' checkpoints (and what they saw of workers) into the status.

        Another replica may save at the same time (409): re-read and merge again. Losing a
        race at worst sends a grid's checkpoint back a little, which costs a re-read only.
        """
        with self._status_lock:
            for _ in range(5):
                doc = self._read_status() or {"_id": STATUS_ID}
                grids = doc.setdefault("grids", {})
                workers = doc.setdefault("workers", {})
                for r in results:
                    grids[r.grid] = {"since": r.checkpoint.since, "as_of": r.checkpoint.as_of}
                    for name, seen in r.workers.items():
                        if seen.received_at >= workers.get(name, {}).get("received_at", ""):
                            workers[name] = {"received_at": seen.received_at,
                                             "app_version": seen.app_version}
                status, body = self.couch.request("PUT", self._status_path, body=doc)
                if status in (200, 201, 202):
                    return
                if status != 409:
                    raise CouchUnavailable(f"saving the hub status failed: {status} {body}")
            raise CouchUnavailable("saving the hub status kept conflicting; try again")

    def _lock(self, grid: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(grid, threading.Lock())


def _note_workers(workers: dict[str, WorkerSeen], docs: list[dict[str, Any]],
                  received_at: str | None) -> None:
    """Remember, per author of field documents, the newest arrival and app version.

    `received_at` is None on a grid's first copy: that is history, not a phone syncing
    now, so the document's own time stands in.
    """
    for doc in docs:
        if doc.get("type") not in ("visit", "need_event") or not doc.get("author"):
            continue
        at = received_at or doc.get("created_at") or doc.get("at") or ""
        previous = workers.get(doc["author"])
        version = doc.get("app_version") or (previous.app_version if previous else "")
        if previous is None or at >= previous.received_at:
            workers[doc["author"]] = WorkerSeen(at, version)

"""How far behind the conflict resolver is, as every replica sees it.

Two figures, both read from CouchDB so that any replica reports the same:

- the backlog: documents with conflicting live revisions, by kind (households, which the
  resolver merges; anything else, which it leaves for a person). Counted by a view with a
  `_count` reduce in the hub, which holds every grid's revisions, conflicts included, so one
  cheap request covers all grids instead of one per grid database. It is as fresh as the
  hub's copy (`doorstep_hub_lag_seconds`). The view lives in a design document of its own,
  `_design/resolver`, which each server installs at start, so installing or changing it never
  rebuilds the console's hub views.
- the end of the resolver's last full pass over every grid database: `_local/resolver-pass`
  in `doorstep_leases`, written by whichever replica ran it (a `_local` document keeps no
  revision history and is never replicated, so rewriting it every pass costs nothing).

A household edited on a phone after it moved to another grid counts too: in its old grid
database the edit sits beside a deletion (which CouchDB does not list in `_conflicts`), but
the hub holds both grids' revisions, so there the edit is in conflict with the household's
entry in its new grid until the resolver sets the edit aside.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from server.errors import CouchUnavailable
from sync import naming
from sync.couch import Couch, DocumentRejected
from sync.directory import now
from sync.provision import ensure_database

log = logging.getLogger("doorstep.resolver")

PASS_DOC = "_local/resolver-pass"

BACKLOG_DESIGN: dict[str, Any] = {
    "_id": "_design/resolver",
    "language": "javascript",
    "views": {
        # CouchDB hands map functions `_conflicts` (live losing leaves only) when there are
        # any. Every grid database has its own `config:tags`: one id, so in the hub it always
        # looks conflicted, and is not.
        "backlog": {
            "map": "function (doc) { if (doc._conflicts && doc.type !== 'config')"
            " emit([doc.type === 'household' ? 'household' : 'other'], null); }",
            "reduce": "_count",
        },
    },
}


@dataclass(frozen=True)
class Backlog:
    households: int  # waiting for the resolver
    others: int  # append-only documents in conflict: left for a person, should stay 0


def backlog(couch: Couch, *, timeout: float = 10) -> Backlog:
    """Conflicted documents in the hub. Raises CouchUnavailable when it cannot be read (also
    while CouchDB is still building the view on a large hub and `timeout` runs out)."""
    hub = couch.name(naming.HUB)
    path = f"{quote(hub, safe='')}/_design/resolver/_view/backlog"
    status, body = couch.request("GET", path, params={"group_level": 1}, timeout=timeout)
    if status != 200:
        raise CouchUnavailable(f"resolver backlog view on {hub}: {status} {body}")
    counts = {row["key"][0]: int(row["value"]) for row in body["rows"]}
    return Backlog(counts.get("household", 0), counts.get("other", 0))


def ensure_backlog_view(couch: Couch) -> list[str]:
    """Install or update `_design/resolver` in the hub (idempotent)."""
    try:
        return ensure_database(couch, couch.name(naming.HUB), BACKLOG_DESIGN)
    except DocumentRejected as exc:
        if exc.status == 409:  # another replica wrote it at the same moment
            return []
        raise CouchUnavailable(f"installing the resolver backlog view: {exc}") from None


def record_pass(couch: Couch, grids: int) -> None:
    """Note that a full pass over `grids` grid databases just ended. Last writer wins."""
    path = f"{quote(couch.name(naming.LEASES), safe='')}/{PASS_DOC}"
    for _ in range(2):
        status, current = couch.request("GET", path)
        doc: dict[str, Any] = {"finished_at": now(), "grids": grids}
        if status == 200:
            doc["_rev"] = current["_rev"]
        status, body = couch.request("PUT", path, body=doc)
        if status != 409:  # 409: another resolver wrote it between our read and write
            break
    if status not in (200, 201, 202, 409):  # the merges are done; only the figure goes stale
        log.warning("could not record the resolver pass in %s: %s %s", path, status, body)


def last_pass(couch: Couch, *, timeout: float = 10) -> float | None:
    """Unix time of the end of the last full pass, or None if none was recorded yet."""
    path = f"{quote(couch.name(naming.LEASES), safe='')}/{PASS_DOC}"
    status, doc = couch.request("GET", path, timeout=timeout)
    if status == 404:
        return None
    if status != 200:
        raise CouchUnavailable(f"reading {PASS_DOC}: {status} {doc}")
    return datetime.fromisoformat(doc["finished_at"].replace("Z", "+00:00")).timestamp()

"""Moving a household to another grid: a copy into the new grid, then a deletion in the old.

Devices replicate whole grid databases, so a household changes grid by changing database:
the entry is written into the new grid's database (with `grid` set to the new grid and its
micro-grid cleared, since micro-grids belong to a grid), and then deleted in the old one
with a tombstone that says where it went (`moved_to`). The old grid's phones receive the
deletion on their next sync; the new grid's phones receive the entry. Visits and other
records stay where they were made: the hub's household history spans grids.

The copy comes first, so a failure in between leaves the household in both grids (visible,
and a retry finishes the move), never in neither. An audit record (`source: move`) goes
into both databases.
"""

from __future__ import annotations

import copy
from typing import Any

from sync import clock, naming, schema
from sync.console_actions import ActionError, now_iso
from sync.couch import Couch, DocumentRejected
from sync.merge import derived_id

SERVER_DEVICE = "server"


def move_household(couch: Couch, household_id: str, from_grid: str, to_grid: str,
                   author: str) -> dict[str, Any]:
    """Move one household; returns the entry as written into `to_grid`.

    Whether `author` may move it is `server.authz.can_move_household`'s decision, taken by
    the caller: the documents written here (a deletion, audit records) are the server's own.
    """
    if from_grid == to_grid:
        raise ActionError(400, "the household is already in this grid")
    old_db = naming.grid_db_name(from_grid, couch.prefix)
    new_db = naming.grid_db_name(to_grid, couch.prefix)
    doc_id = f"household:{household_id}"
    current = couch.get(old_db, doc_id, conflicts="true")
    if current is None or current.get("_deleted"):
        raise ActionError(404, f"there is no household {household_id!r} in grid {from_grid}")
    if current.get("_conflicts"):
        raise ActionError(409, "this household has edits still being merged; try again in a "
                               "minute")
    if not couch.exists(new_db):
        raise ActionError(404, f"grid {to_grid} has no database; provision it first")
    there = couch.get(new_db, doc_id)
    if there is not None and not there.get("_deleted"):
        raise ActionError(409, f"grid {to_grid} already has household {household_id!r}")

    at = now_iso()
    moved = _moved_entry(current, to_grid, author, at)
    tombstone = {"_id": doc_id, "_rev": current["_rev"], "_deleted": True, "type": "household",
                 "grid": from_grid, "household_id": household_id, "moved_to": to_grid}
    change = [{"path": "grid", "old": from_grid, "new": to_grid}]
    audits = [
        {"_id": derived_id("audit", "move", household_id, from_grid, to_grid, grid, at),
         "type": "audit", "grid": grid, "household": household_id, "source": "move",
         "changes": change, "author": author, "device": SERVER_DEVICE, "at": at}
        for grid in (to_grid, from_grid)
    ]
    for doc in (moved, tombstone, *audits):
        try:
            schema.validate(doc)
        except schema.SchemaError as exc:
            raise ActionError(400, f"the moved entry would be invalid: {exc}") from None

    _put(couch, new_db, moved)
    _put(couch, new_db, audits[0])
    _put(couch, old_db, tombstone)
    _put(couch, old_db, audits[1])
    return moved


def _moved_entry(current: dict[str, Any], to_grid: str, author: str, at: str
                 ) -> dict[str, Any]:
    entry = {k: copy.deepcopy(v) for k, v in current.items()
             if not k.startswith("_") and k != "moved_to"}
    entry["_id"] = current["_id"]
    entry["grid"] = to_grid
    if entry.get("micro_grid"):
        entry = clock.edit(entry, "micro_grid", None, author, SERVER_DEVICE, at)
    entry["updated_at"] = at
    return entry


def _put(couch: Couch, db: str, doc: dict[str, Any]) -> None:
    """Write, also over a tombstone left by an earlier move away from this grid."""
    try:
        couch.put(db, doc)
    except DocumentRejected as exc:
        if exc.status == 409:
            raise ActionError(409, f"{doc['_id']} changed meanwhile; try the move again") from None
        raise ActionError(502, f"CouchDB refused {doc['_id']}: {exc}") from None

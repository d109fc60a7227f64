"""Valid documents for console tests, written the way devices and the server write them."""

from __future__ import annotations

import uuid
from typing import Any

from sync import naming, schema
from sync.couch import Couch


def household(grid: str, hid: str, *, tags: tuple[str, ...] = (), name: str = "王秀英",
              phone: str = "", building: str = "1", unit: str = "1", room: str = "101",
              created_at: str = "2025-01-01T00:00:00Z", micro_grid: str | None = None,
              member_tags: tuple[str, ...] = ()) -> dict[str, Any]:
    doc = {
        "_id": f"household:{hid}", "type": "household", "grid": grid, "household_id": hid,
        "address": {"building": building, "unit": unit, "floor": 1, "room": room},
        "housing": "owner", "residency": "registered", "tags": list(tags), "phone": phone,
        "note": "",
        "members": {"m1": {"name": name, "relation": "户主", "phone": phone,
                           "tags": list(member_tags), "status": "present"}},
        "clock": {}, "created_at": created_at, "updated_at": created_at,
    }
    if micro_grid:
        doc["micro_grid"] = micro_grid
    return doc


def visit(grid: str, household: str, visited_at: str, *, outcome: str = "met",
          author: str = "w1", amends: str | None = None, assignment: str | None = None,
          needs: list[dict[str, Any]] | None = None, notes: str = "",
          app_version: str = "0.1.0") -> dict[str, Any]:
    return {
        "_id": f"visit:{uuid.uuid4()}", "type": "visit", "grid": grid, "household": household,
        "author": author, "device": f"dev-{author}", "created_at": visited_at,
        "visited_at": visited_at, "outcome": outcome, "visit_type": "sweep", "notes": notes,
        "needs": needs or [], "ledger_changes": [], "assignment": assignment, "amends": amends,
        "app_version": app_version,
    }


def need_event(grid: str, household: str, need_id: str, event: str, at: str,
               author: str = "w1", **extra: Any) -> dict[str, Any]:
    return {"_id": f"need_event:{uuid.uuid4()}", "type": "need_event", "grid": grid,
            "household": household, "need_id": need_id, "event": event, "author": author,
            "at": at, **extra}


def write(couch: Couch, grid: str, *docs: dict[str, Any]) -> list[dict[str, Any]]:
    """Store documents in a grid database (as a device's replication would)."""
    db = naming.grid_db_name(grid, couch.prefix)
    schema.validate_all(docs)
    # By id: pouchdb-server does not always answer in the order the documents were sent.
    answer = {r["id"]: r for r in couch.bulk_docs(db, list(docs))}
    for doc in docs:
        result = answer[doc["_id"]]
        assert result.get("ok"), result
        doc["_rev"] = result["rev"]
    return list(docs)

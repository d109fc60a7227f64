"""Valid grid documents for gateway tests, built the way the field app builds them."""

from __future__ import annotations

import uuid
from typing import Any

from sync import clock

AT = "2026-11-20T09:12:00Z"


def household(grid: str, hid: str, **fields: Any) -> dict[str, Any]:
    doc = {
        "_id": f"household:{hid}", "type": "household", "grid": grid, "household_id": hid,
        "address": {"building": "3", "unit": "2", "floor": 5, "room": "502"},
        "housing": "owner", "residency": "registered", "tags": [], "phone": "", "note": "",
        "members": {"m1": {"name": "王秀英", "relation": "户主", "birth_year": 1941,
                           "status": "present"}},
        "clock": {}, "created_at": "2026-09-01T00:00:00Z",
    }
    doc.update(fields)
    return doc


def visit(grid: str, hid: str, author: str, **fields: Any) -> dict[str, Any]:
    doc = {
        "_id": f"visit:{uuid.uuid4()}", "type": "visit", "grid": grid, "household": hid,
        "author": author, "device": "dev-test", "created_at": AT, "visited_at": AT,
        "outcome": "met", "visit_type": "sweep", "notes": "", "needs": [],
        "ledger_changes": [], "gps": None, "assignment": None, "amends": None,
        "app_version": "0.1.0",
    }
    doc.update(fields)
    return doc


def need_event(grid: str, hid: str, author: str, event: str = "raised",
               **fields: Any) -> dict[str, Any]:
    doc = {
        "_id": f"need_event:{uuid.uuid4()}", "type": "need_event", "grid": grid,
        "household": hid, "need_id": uuid.uuid4().hex, "event": event, "category": "medical",
        "text": "需要上门量血压", "author": author, "at": AT,
    }
    if event == "dispatched":
        doc["to"] = "社区卫生站"
    doc.update(fields)
    return doc


def review(grid: str, hid: str, author: str) -> dict[str, Any]:
    return {"_id": f"review:{uuid.uuid4()}", "type": "review", "grid": grid, "household": hid,
            "visit": "visit:x", "decision": "approved", "author": author, "at": AT}


def assignment(grid: str, hid: str, author: str, worker: str) -> dict[str, Any]:
    return {"_id": f"assignment:{uuid.uuid4()}", "type": "assignment", "grid": grid,
            "household": hid, "worker": worker, "due": "2026-12-01", "reason": "回访",
            "author": author, "at": AT}


def edited(doc: dict[str, Any], path: str, value: Any, user: str,
           device: str = "dev-test") -> dict[str, Any]:
    """The household with one path edited and stamped, as the field app does it."""
    return clock.edit(doc, path, value, user, device, AT)

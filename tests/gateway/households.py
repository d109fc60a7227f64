"""Households added at a door, built the way the field app builds them."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from sync import clock

AT = "2026-11-20T09:12:00Z"


def found_at_door(grid: str, user: str, room: str, building: str = "9", unit: str = "1",
                  hid: str | None = None, device: str = "dev-test", at: str = AT
                  ) -> dict[str, Any]:
    """A new household as the field app builds it (pwa/js/ledger.js `newHousehold`)."""
    hid = hid or f"{grid}-{building}-{unit}-{room}"
    doc: dict[str, Any] = {"_id": f"household:{hid}", "type": "household", "grid": grid,
                           "household_id": hid, "members": {}, "clock": {}, "created_at": at}
    for path, value in {"address": {"building": building, "unit": unit, "floor": 3,
                                    "room": room},
                        "housing": "rented", "residency": "floating", "tags": [],
                        "phone": "13800138000", "members.m1.name": "陈新",
                        "members.m1.relation": "户主", "members.m1.status": "present"}.items():
        doc = clock.edit(doc, path, value, user, device, at)
    return doc


def replicated(doc: dict[str, Any]) -> dict[str, Any]:
    """A first revision as PouchDB pushes it."""
    digest = uuid.uuid4().hex
    return {**copy.deepcopy(doc), "_rev": f"1-{digest}",
            "_revisions": {"start": 1, "ids": [digest]}}

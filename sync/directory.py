"""The grid hierarchy and the tag configuration, kept in the directory database.

street → community → grid → micro-grid. Buildings, units and floors are address parts of
households, not directory entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sync import naming, schema
from sync.couch import Couch

DEFAULT_TAGS: dict[str, Any] = {
    "type": "config",
    "default_frequency_days": 91,  # everyone: at least once a quarter
    "tags": {
        "elderly_alone": {"zh": "独居老人", "en": "Elderly living alone",
                          "frequency_days": 30, "special_care": True},
        "empty_nest": {"zh": "空巢老人", "en": "Empty-nest elderly",
                       "frequency_days": 30, "special_care": True},
        "disabled": {"zh": "残疾人", "en": "Person with disability",
                     "frequency_days": 30, "special_care": True},
        "subsistence": {"zh": "低保户", "en": "Subsistence allowance",
                        "frequency_days": 30, "special_care": True},
        "left_behind_child": {"zh": "留守儿童", "en": "Left-behind child",
                              "frequency_days": 30, "special_care": True},
        "veteran": {"zh": "退役军人", "en": "Veteran",
                    "frequency_days": 91, "special_care": False},
        "rental_watch": {"zh": "出租房屋", "en": "Rented-out flat",
                         "frequency_days": 91, "special_care": False},
    },
}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Grid:
    id: str
    name: str
    community: str
    db: str


class Directory:
    def __init__(self, couch: Couch) -> None:
        self.couch = couch
        self.db = couch.name(naming.DIRECTORY)

    def upsert(self, doc: dict[str, Any]) -> bool:
        """Write a directory entry if it differs; True when something changed."""
        schema.validate(doc)
        current = self.couch.get(self.db, doc["_id"])
        if current and all(current.get(k) == v for k, v in doc.items() if k != "_rev"):
            return False
        if current:
            doc = {**doc, "_rev": current["_rev"]}
        self.couch.put(self.db, {k: v for k, v in doc.items()})
        return True

    def add_street(self, sid: str, name: str) -> bool:
        return self.upsert({"_id": f"street:{sid}", "type": "street", "name": name})

    def add_community(self, cid: str, name: str, street: str) -> bool:
        return self.upsert({"_id": f"community:{cid}", "type": "community", "name": name,
                            "street": street})

    def add_grid(self, gid: str, name: str, community: str) -> bool:
        return self.upsert({"_id": f"grid:{gid}", "type": "grid", "name": name,
                            "community": community})

    def add_micro_grid(self, mid: str, name: str, grid: str) -> bool:
        return self.upsert({"_id": f"micro_grid:{mid}", "type": "micro_grid", "name": name,
                            "grid": grid})

    def entries(self, kind: str) -> list[dict[str, Any]]:
        rows = self.couch.all_docs(self.db, startkey=f"{kind}:", endkey=f"{kind}:\ufff0",
                                   include_docs=True)
        return [r["doc"] for r in rows]

    def grids(self) -> list[Grid]:
        return [
            Grid(d["_id"].split(":", 1)[1], d["name"], d["community"],
                 naming.grid_db_name(d["_id"].split(":", 1)[1], self.couch.prefix))
            for d in self.entries("grid")
        ]

    def grid(self, gid: str) -> Grid | None:
        doc = self.couch.get(self.db, f"grid:{gid}")
        if not doc:
            return None
        return Grid(gid, doc["name"], doc["community"],
                    naming.grid_db_name(gid, self.couch.prefix))

    def community_of(self, gid: str) -> str | None:
        g = self.grid(gid)
        return g.community if g else None

    def tag_config(self) -> dict[str, Any]:
        doc = self.couch.get(self.db, "config:tags")
        return doc or {"_id": "config:tags", **DEFAULT_TAGS}

"""Idempotent provisioning: databases, `_security`, design documents, configuration copies.

Run at start-up and by `doorstep migrate`. Returns the list of changes it made, so running it
twice visibly changes nothing the second time.
"""

from __future__ import annotations

from typing import Any

from sync import design, naming
from sync.couch import Couch
from sync.directory import DEFAULT_TAGS, Directory

# CouchDB 3 single node needs these created once; pouchdb-server has them already.
COUCH_SYSTEM_DBS = ("_users", "_replicator")

SYSTEM_DESIGN = {
    naming.DIRECTORY: design.DIRECTORY,
    naming.HUB: design.HUB,
    naming.SESSIONS: design.SESSIONS,
    naming.LEASES: None,
}


def provision(couch: Couch) -> list[str]:
    changes: list[str] = []
    for name in COUCH_SYSTEM_DBS:
        if couch.ensure_db(name):
            changes.append(f"created {name}")
    for base, ddoc in SYSTEM_DESIGN.items():
        changes += ensure_database(couch, couch.name(base), ddoc)
    # Imported here: the push module builds on ensure_database from this one.
    from sync.push_outbox import ensure_push_db

    changes += ensure_push_db(couch)
    from sync.devices import ensure_devices_db  # phones' sync reports (server-only)

    changes += ensure_devices_db(couch)
    directory = Directory(couch)
    if couch.get(directory.db, "config:tags") is None:
        couch.put(directory.db, {"_id": "config:tags", **DEFAULT_TAGS})
        changes.append("wrote the default tag configuration")
    tags = directory.tag_config()
    for grid in directory.grids():
        changes += provision_grid(couch, grid.id, tags)
    return changes


def provision_grid(couch: Couch, grid_id: str, tags: dict[str, Any] | None = None) -> list[str]:
    """One grid's database: created, admin-only, with its views and a tag-config copy."""
    db = naming.grid_db_name(grid_id, couch.prefix)
    changes = ensure_database(couch, db, design.GRID)
    if tags is None:
        tags = Directory(couch).tag_config()
    if sync_tag_config(couch, db, grid_id, tags):
        changes.append(f"updated the tag configuration in {db}")
    return changes


def ensure_database(couch: Couch, db: str, ddoc: dict[str, Any] | None) -> list[str]:
    changes = []
    if couch.ensure_db(db):
        changes.append(f"created {db}")
    if couch.ensure_security(db):
        changes.append(f"made {db} admin-only")
    if ddoc is not None:
        stored = couch.get(db, ddoc["_id"])
        if not design.same(stored, ddoc):
            doc = dict(ddoc)
            if stored:
                doc["_rev"] = stored["_rev"]
            couch.put(db, doc)
            changes.append(f"{'updated' if stored else 'installed'} {ddoc['_id']} in {db}")
    return changes


def sync_tag_config(couch: Couch, db: str, grid_id: str, tags: dict[str, Any]) -> bool:
    """Devices compute due dates offline, so each grid database carries the tag settings."""
    wanted = {"_id": "config:tags", "type": "config", "grid": grid_id,
              "tags": tags["tags"], "default_frequency_days": tags["default_frequency_days"]}
    stored = couch.get(db, "config:tags")
    if stored and all(stored.get(k) == v for k, v in wanted.items()):
        return False
    if stored:
        wanted["_rev"] = stored["_rev"]
    couch.put(db, wanted)
    return True

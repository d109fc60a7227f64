"""The audit trail of the ledger: who changed which household field, when, old → new.

Every change to a household entry leaves an `audit` record in its grid database: direct edits
(the gateway calls `for_edit` for each household it accepts) and merges (the resolver calls
`for_merge`). Ids are derived from the revision they describe, so writing the same record
twice (a retried push, a resolver re-run after a crash) is a 409, never a duplicate.
"""

from __future__ import annotations

import uuid
from itertools import groupby
from typing import Any

from sync import clock
from sync.clock import MISSING
from sync.couch import Couch
from sync.merge import MergeResult, derived_id, household_key
from sync.schema import household_paths


def diff(old: dict[str, Any] | None, new: dict[str, Any]) -> list[dict[str, Any]]:
    """[{path, old, new}] for every editable path whose value differs (old None: created)."""
    paths = sorted(set(household_paths(new)) | set(household_paths(old or {})))
    out = []
    for path in paths:
        before = clock.get(old, path) if old else MISSING
        after = clock.get(new, path)
        if clock.canonical(before) != clock.canonical(after):
            out.append({"path": path, "old": None if before is MISSING else before,
                        "new": None if after is MISSING else after})
    return out


def for_edit(old_doc: dict[str, Any] | None, new_doc: dict[str, Any], author: str,
             device: str | None, visit: str | None, at: str) -> dict[str, Any] | None:
    """The audit record of a direct edit, or of a new entry (`old_doc` None, source
    "create"); None if nothing changed.

    The id comes from the new revision when it has one, so a push that is retried after a
    lost answer records the change once.
    """
    changes = diff(old_doc, new_doc)
    if not changes:
        return None
    hid = household_key(new_doc)
    rev = new_doc.get("_rev")
    record_id = derived_id("audit", "edit", hid, rev) if rev else f"audit:{uuid.uuid4()}"
    source = "create" if old_doc is None else "edit"  # a household added at a door
    return _record(record_id, new_doc, source, changes, author, device, visit, at)


def for_merge(result: MergeResult, merged_rev: str) -> list[dict[str, Any]]:
    """Audit records of a merge: one per author, device and time whose edits changed the entry.

    `result.changes` are relative to the revision the merge updates, so what was already in
    it (the winning side) is not recorded again; the edits that came in from the other side
    are, under the name of whoever made them.
    """
    def origin(change: dict[str, Any]) -> tuple[str, str, str]:
        return (change["by"] or "", change["device"] or "", change["at"] or "")

    records = []
    for (by, device, at), group in groupby(sorted(result.changes, key=origin), key=origin):
        changes = [{"path": c["path"], "old": c["old"], "new": c["new"]} for c in group]
        hid = household_key(result.doc)
        record_id = derived_id("audit", "merge", hid, merged_rev, by, device, at)
        records.append(_record(record_id, result.doc, "merge", changes, by or "resolver",
                               device or None, None, at or result.doc.get("updated_at", "")))
    return records


def _record(record_id: str, household: dict[str, Any], source: str,
            changes: list[dict[str, Any]], author: str, device: str | None,
            visit: str | None, at: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "_id": record_id,
        "type": "audit",
        "grid": household["grid"],
        "household": household_key(household),
        "source": source,
        "changes": changes,
        "author": author,
        "at": at,
    }
    if device:
        record["device"] = device
    if visit:
        record["visit"] = visit
    return record


def history(couch: Couch, db: str, household_id: str) -> list[dict[str, Any]]:
    """Every audit record of one household, oldest first."""
    body = couch.view(db, "grid", "audit_by_household", startkey=[household_id],
                      endkey=[household_id, {}], include_docs=True)
    return [row["doc"] for row in body["rows"]]

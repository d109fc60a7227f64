"""Merging conflicting revisions of a household into one entry, path by path.

Pure and deterministic: the same leaves in any order give the same entry, the same conflict
records (ids included) and the same change list, so two resolvers working at once write
identical things. The rule, for each editable path (docs/conflicts.md says it for people):

1. Candidates are the leaves' values at that path with their stamps; a leaf that lacks the
   path (it never saw that member) offers nothing.
2. A candidate whose vector is strictly before another's was seen by that edit: it drops out.
3. If the remaining candidates agree on the value, that value goes in. Otherwise it is a real
   conflict: the value with the latest `at` goes in (ties: higher device id, then the larger
   value JSON, then author), and a conflict record keeps every concurrent value.
4. The merged stamp's vector is the pointwise maximum of all candidates, so any later edit
   dominates them all. When that maximum equals a losing candidate's vector (one device
   edited two branches), the resolver's own counter is advanced so the decision is strictly
   newer than every candidate and a re-run finds nothing left to decide.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import Any

from sync import clock
from sync.clock import MISSING
from sync.schema import household_paths

RESOLVER = "resolver"  # the device id (and author) of decisions the resolver makes itself
_IDS = uuid.UUID("5f0b7d36-8f4e-4b8e-9a53-2f3c1d0e7a10")  # namespace of derived record ids
_COUCH_META = ("_conflicts", "_revisions", "_deleted", "_deleted_conflicts")


@dataclass(frozen=True)
class MergeResult:
    doc: dict[str, Any]  # the merged entry; its `_rev` is the leaf it updates
    conflicts: list[dict[str, Any]]  # conflict records, one per disagreeing path
    changes: list[dict[str, Any]]  # {path, old, new, by, device, at} relative to that leaf


@dataclass(frozen=True)
class _Candidate:
    value: Any
    stamp: dict[str, Any] | None
    at: str  # the stamp's time, or the leaf's own time for a never-edited path

    @property
    def vv(self) -> clock.VV:
        return clock.vv_of(self.stamp)

    def rank(self) -> tuple[Any, ...]:
        s = self.stamp or {}
        return (clock.instant(self.at), s.get("device") or "", clock.canonical(self.value),
                s.get("by") or "")

    def record(self) -> dict[str, Any]:
        s = self.stamp or {}
        return {"value": self.value, "by": s.get("by"), "at": self.at, "device": s.get("device")}


def derived_id(kind: str, *parts: Any) -> str:
    """`<kind>:<uuid>` computed from `parts`: a re-run derives the same id, never a twin."""
    return f"{kind}:{uuid.uuid5(_IDS, clock.canonical([kind, *parts]))}"


def household_key(doc: dict[str, Any]) -> str:
    return doc.get("household_id") or doc["_id"].split(":", 1)[1]


def winner(leaves: list[dict[str, Any]]) -> dict[str, Any]:
    """The leaf CouchDB shows as the current revision: highest generation, then highest rev."""
    def key(leaf: dict[str, Any]) -> tuple[int, str, str]:
        rev = leaf.get("_rev", "0-")
        pos, _, rid = rev.partition("-")
        return (int(pos), rid, clock.canonical(strip(leaf)))

    return max(leaves, key=key)


def strip(doc: dict[str, Any]) -> dict[str, Any]:
    """The document's content: everything but CouchDB's revision bookkeeping."""
    return {k: v for k, v in doc.items() if k != "_rev" and k not in _COUCH_META}


def merge(leaves: list[dict[str, Any]]) -> MergeResult:
    """Merge the live leaves of one household (see the module doc for the rule)."""
    if not leaves:
        raise ValueError("merge needs at least one revision")
    if any(leaf.get("_deleted") for leaf in leaves):
        raise ValueError("merge takes live revisions only; deletions are decided by the caller")
    base = winner(leaves)
    out = copy.deepcopy(strip(base))
    if "_rev" in base:
        out["_rev"] = base["_rev"]
    out_clock: dict[str, Any] = {}
    conflicts: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    paths = sorted({p for leaf in leaves for p in household_paths(leaf)})
    for path in paths:
        candidates = [c for c in (_candidate(leaf, path) for leaf in leaves)
                      if c.value is not MISSING]
        if not candidates:
            continue
        first = candidates[0]
        if all(same(c.value, first.value) and same(c.stamp, first.stamp)
               for c in candidates[1:]):
            # Most paths are untouched on every side: nothing to decide.
            value, stamp, record = first.value, copy.deepcopy(first.stamp), None
        else:
            value, stamp, record = _decide(base, path, candidates)
        if stamp:
            out_clock[path] = stamp
        if record:
            conflicts.append(record)
        old = clock.get(base, path)
        if not same(old, value):
            clock.put(out, path, value)
            s = stamp or {}
            changes.append({"path": path, "old": None if old is MISSING else old, "new": value,
                            "by": s.get("by"), "device": s.get("device"), "at": s.get("at")})
    out["clock"] = out_clock
    times = [leaf["updated_at"] for leaf in leaves if "updated_at" in leaf]
    if times:
        out["updated_at"] = max(times, key=lambda t: (clock.instant(t), t))
    return MergeResult(out, conflicts, changes)


def same(a: Any, b: Any) -> bool:
    """Equal as JSON values (unlike ==, which takes True for 1 and 1.0 for 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _decide(base: dict[str, Any], path: str, candidates: list[_Candidate]
            ) -> tuple[Any, dict[str, Any] | None, dict[str, Any] | None]:
    """(value, merged stamp, conflict record or None) for one path."""
    newest = [c for c in candidates
              if not any(clock.compare(c.vv, o.vv) == "before" for o in candidates)]
    by_value: dict[str, _Candidate] = {}
    for c in newest:
        key = clock.canonical(c.value)
        if key not in by_value or c.rank() > by_value[key].rank():
            by_value[key] = c
    ranked = sorted(by_value.values(), key=_Candidate.rank, reverse=True)
    chosen = ranked[0]
    vv = clock.join([c.vv for c in candidates])
    disagree = len(ranked) > 1
    if disagree and any(c.vv == vv for c in newest):
        vv[RESOLVER] = vv.get(RESOLVER, 0) + 1
    stamp = None
    if vv:
        s = chosen.stamp or {}
        stamp = {"vv": vv, "at": chosen.at, "by": s.get("by") or RESOLVER,
                 "device": s.get("device") or RESOLVER}
    record = None
    if disagree:
        record = conflict_record(base, base.get("grid"), path, ranked, chosen.value)
    return chosen.value, stamp, record


def conflict_record(household: dict[str, Any], grid: Any, path: str,
                    candidates: list[_Candidate], chosen: Any) -> dict[str, Any]:
    listed = [c.record() for c in candidates]
    hid = household_key(household)
    return {
        "_id": derived_id("conflict", hid, path, listed),
        "type": "conflict",
        "grid": grid,
        "household": hid,
        "path": path,
        "candidates": listed,
        "chosen": chosen,
        "state": "open",
        "at": max((c.at for c in candidates), key=lambda t: (clock.instant(t), t)),
    }


def moved_conflicts(current: dict[str, Any] | None, stray: dict[str, Any], grid: str
                    ) -> list[dict[str, Any]]:
    """Conflict records for edits made to a household after it moved to another grid.

    The move wins (the entry in the new grid, `current`, stays as it is); each stray edit that
    `current` has not seen and that differs from it is kept as a candidate beside the current
    value, for the new grid's supervisor to decide. `current` is None when the copy is gone.
    """
    records = []
    for path in household_paths(stray):
        value = clock.get(stray, path)
        stamp = stray.get("clock", {}).get(path)
        if value is MISSING or stamp is None:
            continue  # never edited since it was created: the copy has it
        kept_stamp = (current or {}).get("clock", {}).get(path)
        if kept_stamp and clock.dominates(kept_stamp["vv"], stamp["vv"]):
            continue
        kept_value = clock.get(current, path) if current else MISSING
        if clock.canonical(kept_value) == clock.canonical(value):
            continue
        kept = _Candidate(None if kept_value is MISSING else kept_value, kept_stamp,
                          kept_stamp["at"] if kept_stamp else _leaf_time(current or stray))
        records.append(conflict_record(
            stray, grid, path, [kept, _Candidate(value, stamp, stamp["at"])], kept.value
        ))
    return records


def _candidate(leaf: dict[str, Any], path: str) -> _Candidate:
    stamp = leaf.get("clock", {}).get(path)
    return _Candidate(clock.get(leaf, path), stamp, stamp["at"] if stamp else _leaf_time(leaf))


def _leaf_time(doc: dict[str, Any]) -> str:
    return doc.get("updated_at") or doc.get("created_at") or "1970-01-01T00:00:00Z"

"""Per-path change stamps of a household: how an edit is stamped, how two stamps compare.

Every editable path of a household (`schema.household_paths`) may carry a stamp in
`doc["clock"][path]`: `{"vv": {device: counter}, "at", "by", "device"}`. An edit advances
the editing device's counter in that path's version vector (see `tick`). Because the stamps
travel inside the document, a merge of two conflicting revisions needs no common ancestor
(which compaction removes): the vectors alone say whether one edit saw the other.

This module is pure (no I/O) and small on purpose: the field app, the console and the
importer mirror `edit` exactly, so that every writer stamps the same way.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any, Literal

from sync.schema import HOUSEHOLD_FIELDS, MEMBER_FIELDS

VV = dict[str, int]
Order = Literal["equal", "before", "after", "concurrent"]


class _Missing:
    """The value of a path a document does not have (distinct from an explicit null)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


# -- version vectors ------------------------------------------------------------------------


def compare(a: VV, b: VV) -> Order:
    """How vector `a` relates to `b`: equal, before (b saw a), after (a saw b), concurrent."""
    a_le_b = all(n <= b.get(d, 0) for d, n in a.items())
    b_le_a = all(n <= a.get(d, 0) for d, n in b.items())
    if a_le_b and b_le_a:
        return "equal"
    if a_le_b:
        return "before"
    if b_le_a:
        return "after"
    return "concurrent"


def dominates(a: VV, b: VV) -> bool:
    """True when `a` has seen everything `b` has (a ≥ b pointwise)."""
    return all(n <= a.get(d, 0) for d, n in b.items())


def join(vvs: list[VV]) -> VV:
    """Pointwise maximum: the vector of an edit that has seen all of `vvs`."""
    out: VV = {}
    for vv in vvs:
        for d, n in vv.items():
            out[d] = max(out.get(d, 0), n)
    return dict(sorted(out.items()))


def vv_of(stamp: dict[str, Any] | None) -> VV:
    return dict(stamp["vv"]) if stamp else {}


# -- paths ----------------------------------------------------------------------------------


def split(path: str) -> tuple[str | None, str]:
    """`("m1", "phone")` for `members.m1.phone`, `(None, "housing")` for `housing`.

    Member ids may contain dots; field names never do, so the field is after the last dot.
    """
    if path in HOUSEHOLD_FIELDS:
        return None, path
    if path.startswith("members."):
        mid, _, field = path[len("members."):].rpartition(".")
        if mid and field in MEMBER_FIELDS:
            return mid, field
    raise ValueError(f"{path!r} is not an editable household path")


def get(doc: dict[str, Any], path: str) -> Any:
    mid, field = split(path)
    holder = doc if mid is None else doc.get("members", {}).get(mid)
    if not isinstance(holder, dict) or field not in holder:
        return MISSING
    return holder[field]


def put(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set `path` in place, creating the member entry when it does not exist yet."""
    mid, field = split(path)
    holder = doc if mid is None else doc.setdefault("members", {}).setdefault(mid, {})
    if value is MISSING:
        holder.pop(field, None)
    else:
        holder[field] = copy.deepcopy(value)


# -- edits ----------------------------------------------------------------------------------


def edit(doc: dict[str, Any], path: str, value: Any, user: str, device: str, at: str
         ) -> dict[str, Any]:
    """A copy of `doc` with `path` set to `value` and that path's stamp advanced.

    Setting a path to the value it already has changes nothing (and bumps nothing), so a
    form saved without changes never competes with somebody else's real edit.
    """
    if value is MISSING:
        raise ValueError("an edit sets a value; use null or '' to clear a field")
    out = copy.deepcopy(doc)
    if canonical(get(out, path)) == canonical(value):
        return out
    put(out, path, value)
    stamps = out.setdefault("clock", {})
    vv = vv_of(stamps.get(path))
    vv[device] = tick(vv.get(device, 0), at)
    stamps[path] = {"vv": dict(sorted(vv.items())), "at": at, "by": user, "device": device}
    out["updated_at"] = at
    return out


def tick(counter: int, at: str) -> int:
    """The device's next counter: one more than it was, and at least `at` in milliseconds.

    A plain +1 repeats itself when a device edits a revision that lacks its own earlier edit
    (its branch lost CouchDB's pick): two different edits would share one stamp, and the older
    could silently win. Counting in milliseconds keeps a device's counters apart across
    branches; the +1 keeps them increasing when its clock stalls or goes back.
    """
    return max(counter + 1, epoch_ms(at))


def epoch_ms(at: str) -> int:
    """Milliseconds since 1970 of an ISO time; 0 when it cannot be read."""
    t = instant(at)
    return 0 if t.year == 1 else int(t.timestamp() * 1000)


def add_member(doc: dict[str, Any], mid: str, member: dict[str, Any], user: str, device: str,
               at: str) -> dict[str, Any]:
    """Add (or update) member `mid`, stamping every field given."""
    out = doc
    for field in MEMBER_FIELDS:
        if field in member:
            out = edit(out, f"members.{mid}.{field}", member[field], user, device, at)
    return out


# -- helpers shared by merge and audit --------------------------------------------------------


def canonical(value: Any) -> str:
    """One spelling per JSON value, so equal values compare (and hash) equal."""
    if value is MISSING:
        return "\x00missing"
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def instant(at: Any) -> datetime:
    """A stamp's time as an aware datetime; unreadable or absent times sort first."""
    if isinstance(at, str):
        try:
            t = datetime.fromisoformat(at.replace("Z", "+00:00"))
            return t if t.tzinfo else t.replace(tzinfo=UTC)
        except ValueError:
            pass
    return datetime.min.replace(tzinfo=UTC)

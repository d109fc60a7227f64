"""Who may touch what: the one place Doorstep decides it.

Every door asks here: the replication gateway now, the console and the APIs later. Nothing
else in the code base knows which role may read a grid or write a document.

- A **worker** reads and writes the grids named in their roles (`grid:<id>`). Through
  replication they may create visits and needs events, edit existing households, and add a
  household found at a door: in that grid, under the id its address gives, every field
  stamped by them.
- A **supervisor** reads every grid of their communities (`community:<id>`). They replicate
  read-only; in the console they review, assign, dispatch needs and settle conflicts.
- An **admin** reads every grid and may do what a supervisor does anywhere, and also create
  households (the ledger import). Nobody moves or deletes a household but the server.
- A deactivated account may do nothing.

Decisions are pure functions of a `Principal`, a grid (its id and community, as
`sync.directory.Grid` has them) and documents, so they are cheap and unit-tested. Functions
named `can_*` that return `str | None` answer None when allowed, otherwise the reason,
phrased for the person who was refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sync import clock
from sync.accounts import Account
from sync.clock import MISSING
from sync.ledger_import import household_id
from sync.schema import household_paths

WORKER, SUPERVISOR, ADMIN = "worker", "supervisor", "admin"

# Types each role may create (a first revision) in a grid it may write.
CREATABLE: dict[str, frozenset[str]] = {
    WORKER: frozenset({"visit", "need_event", "household"}),
    SUPERVISOR: frozenset({"need_event", "review", "assignment", "assignment_event"}),
    ADMIN: frozenset({"need_event", "review", "assignment", "assignment_event", "household"}),
}
# Types each role may change after they exist (the mutable ones).
EDITABLE: dict[str, frozenset[str]] = {
    WORKER: frozenset({"household"}),
    SUPERVISOR: frozenset({"household", "conflict"}),
    ADMIN: frozenset({"household", "conflict"}),
}
# A need's closed loop: workers raise it and report back, supervisors also dispatch and close.
NEED_EVENTS: dict[str, frozenset[str]] = {
    WORKER: frozenset({"raised", "claimed", "resolved", "evaluated"}),
    SUPERVISOR: frozenset({"raised", "dispatched", "claimed", "resolved", "evaluated", "closed"}),
    ADMIN: frozenset({"raised", "dispatched", "claimed", "resolved", "evaluated", "closed"}),
}
# Documents that name their author: the author is whoever is signed in, nobody else.
AUTHORED = frozenset({"visit", "need_event", "review", "assignment", "assignment_event"})
# Append-only documents: once the server has one, no later revision may change it.
APPEND_ONLY = frozenset({"visit", "need_event", "review", "assignment", "assignment_event",
                         "audit"})
# Fields no later revision may change, named in the refusal.
IMMUTABLE: dict[str, tuple[str, ...]] = {
    "household": ("type", "grid", "household_id", "created_at", "moved_to"),
    "visit": ("type", "grid", "household", "author", "created_at"),
    "need_event": ("type", "grid", "household", "need_id", "author"),
    "review": ("type", "grid", "visit", "author"),
    "assignment": ("type", "grid", "household", "author"),
    "assignment_event": ("type", "grid", "assignment", "author"),
    "conflict": ("type", "grid", "household", "path", "candidates", "at"),
}
# What settling a conflict may change.
CONFLICT_RESOLUTION_FIELDS = frozenset({"chosen", "state", "resolution", "resolved_by",
                                        "resolved_at"})


class GridLike(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def community(self) -> str: ...


G = TypeVar("G", bound=GridLike)


@dataclass(frozen=True)
class Principal:
    name: str
    display_name: str
    role: str  # worker | supervisor | admin | "" (an account without a Doorstep role)
    grids: frozenset[str] = frozenset()
    communities: frozenset[str] = frozenset()
    active: bool = True

    @classmethod
    def from_account(cls, account: Account) -> Principal:
        return cls(account.name, account.display_name, account.role, frozenset(account.grids),
                   frozenset(account.communities), bool(account.active))

    @property
    def roles(self) -> list[str]:
        return ([self.role] if self.role else []) + [f"grid:{g}" for g in sorted(self.grids)] + [
            f"community:{c}" for c in sorted(self.communities)]


# --- grids --------------------------------------------------------------------------------


def can_read_grid(p: Principal, grid: GridLike) -> bool:
    if not p.active:
        return False
    if p.role == WORKER:
        return grid.id in p.grids
    if p.role == SUPERVISOR:
        return grid.community in p.communities
    return p.role == ADMIN


def readable_grids(p: Principal, grids: Iterable[G]) -> list[G]:
    return [g for g in grids if can_read_grid(p, g)]


def can_write_grid(p: Principal, grid: GridLike) -> str | None:
    """May `p` change anything in this grid at all (through any door)?"""
    if not p.active:
        return "this account has been deactivated"
    if p.role == WORKER and grid.id in p.grids:
        return None
    if p.role == SUPERVISOR and grid.community in p.communities:
        return None
    if p.role == ADMIN:
        return None
    return f"grid {grid.id} is not yours"


def can_sync_write(p: Principal, grid: GridLike) -> str | None:
    """May `p` push replicated writes into this grid? Only its own workers' devices do."""
    refusal = can_write_grid(p, grid)
    if refusal:
        return refusal
    if p.role != WORKER:
        return (f"a {p.role} replicates grids read-only; changes are made in the console")
    return None


# --- the console --------------------------------------------------------------------------


def can_use_console(p: Principal) -> str | None:
    """The supervisor console is for supervisors and admins; workers have the field app."""
    if not p.active:
        return "this account has been deactivated"
    if p.role in (SUPERVISOR, ADMIN):
        return None
    return "the console is for community supervisors and administrators"


def can_administer(p: Principal) -> str | None:
    """Grid hierarchy, tag configuration, accounts and ledger imports: admins only."""
    refusal = can_use_console(p)
    if refusal:
        return refusal
    return None if p.role == ADMIN else "only an administrator may do this"


def can_move_household(p: Principal, source: GridLike, target: GridLike) -> str | None:
    """Moving takes a household out of one grid into another: both must be writable by a
    supervisor (so within their communities) or by an admin."""
    refusal = can_use_console(p)
    if refusal:
        return refusal
    return can_write_grid(p, source) or can_write_grid(p, target)


# --- documents ----------------------------------------------------------------------------


def can_write_doc(p: Principal, grid: GridLike, new_doc: dict[str, Any],
                  old_doc: dict[str, Any] | None) -> str | None:
    """May `p` store `new_doc` in this grid's database, where `old_doc` is the current winner?

    `new_doc` has passed `sync.schema.validate`. `old_doc` is None when the database never
    had the id, or a tombstone (`_deleted: true`) when it was deleted there.
    """
    refusal = can_write_grid(p, grid)
    if refusal:
        return refusal
    old_live = old_doc if old_doc and not old_doc.get("_deleted") else None
    kind = _kind(new_doc, old_doc)
    if new_doc.get("_deleted"):
        return _deletion(p, kind, old_live)
    if new_doc.get("grid") != grid.id:
        return f"this document belongs to grid {new_doc.get('grid')!r}, not to grid {grid.id}"
    if kind in AUTHORED and new_doc.get("author") != p.name:
        return f"author must be the signed-in user ({p.name})"
    if old_live is None:
        return _creation(p, kind, new_doc, old_doc)
    if kind == "household" and independent_creation(new_doc, old_live):
        # Two phones added the same address offline: a second first revision, a sibling of
        # the server's, judged as the creation it is; the resolver merges the two.
        return _creation(p, kind, new_doc, None)
    return _change(p, kind, new_doc, old_live)


def independent_creation(new_doc: dict[str, Any], old_doc: dict[str, Any]) -> bool:
    """True when the two revisions share no ancestor: both histories (`_revisions`) reach
    back to their first revision, and those first revisions differ."""
    roots = [_root(doc.get("_revisions")) for doc in (new_doc, old_doc)]
    return None not in roots and roots[0] != roots[1]


def _root(revisions: Any) -> str | None:
    """The id of the first revision, when `revisions` reaches back to it."""
    if not isinstance(revisions, dict):
        return None
    ids = revisions.get("ids")
    if not isinstance(ids, list) or not ids or revisions.get("start") != len(ids):
        return None
    return str(ids[-1])


def _kind(new_doc: dict[str, Any], old_doc: dict[str, Any] | None) -> str:
    for doc in (new_doc, old_doc or {}):
        if isinstance(doc.get("type"), str):
            return doc["type"]
    doc_id = new_doc.get("_id")
    return doc_id.split(":", 1)[0] if isinstance(doc_id, str) and ":" in doc_id else ""


def _deletion(p: Principal, kind: str, old_live: dict[str, Any] | None) -> str | None:
    if kind == "household":  # not even a draft: its tombstone would bar the address for good
        return "a household is never deleted; the server moves it to another grid"
    if old_live is None and kind in CREATABLE.get(p.role, ()):
        return None  # a draft deleted before it ever reached the server
    return f"{kind or 'this'} documents are never deleted"


def _creation(p: Principal, kind: str, new_doc: dict[str, Any],
              old_doc: dict[str, Any] | None) -> str | None:
    if old_doc is not None:
        return f"this {kind} was deleted and cannot be brought back"
    if kind not in CREATABLE.get(p.role, ()):
        if kind in EDITABLE.get(p.role, ()):
            return f"a {p.role} may change existing {kind} records but not create them"
        return f"a {p.role or 'user without a role'} may not create {kind or 'such'} documents"
    if kind == "need_event" and new_doc.get("event") not in NEED_EVENTS[p.role]:
        return f"a {p.role} may not record the need event {new_doc.get('event')!r}"
    if kind == "household" and p.role == WORKER:
        return _household_creation(p, new_doc)
    return None


def _household_creation(p: Principal, doc: dict[str, Any]) -> str | None:
    """A worker adds a household found at a door: under the id its address gives (the ledger
    import's rule, so an import of the same address later meets it), live, and every field
    stamped by the worker herself, who is thereby its author in the audit trail."""
    address = doc.get("address", {})
    expected = household_id(doc["grid"], str(address.get("building", "")),
                            str(address.get("unit", "")), str(address.get("room", "")))
    if doc.get("household_id") != expected:
        return (f"household_id must be {expected!r}: the grid, building, unit and room "
                f"joined by '-'")
    if "moved_to" in doc:
        return "moved_to is set by the server when it moves a household"
    stamps = doc.get("clock", {})
    for path in household_paths(doc):
        if clock.get(doc, path) is MISSING:
            continue
        by = (stamps.get(path) or {}).get("by")
        if by != p.name:
            return (f"{path} must carry a clock stamp by the signed-in user ({p.name}): "
                    f"a new household is all her own edit")
    return None


def _change(p: Principal, kind: str, new_doc: dict[str, Any],
            old_doc: dict[str, Any]) -> str | None:
    for name in IMMUTABLE.get(kind, ("type",)):
        if new_doc.get(name) != old_doc.get(name):
            return f"{name} cannot change once the {kind} exists"
    if kind in APPEND_ONLY:
        if _content(new_doc) == _content(old_doc) and not _has_new_attachments(new_doc):
            return None  # the same record sent again
        return f"a {kind} never changes once the server has it; record a new one instead"
    if kind not in EDITABLE.get(p.role, ()):
        return f"a {p.role} may not change {kind or 'such'} documents"
    if kind == "household":
        return _household_change(p, new_doc, old_doc)
    if kind == "conflict":
        return _conflict_change(p, new_doc, old_doc)
    return None


def _content(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def _has_new_attachments(doc: dict[str, Any]) -> bool:
    atts = doc.get("_attachments") or {}
    return any(not (isinstance(a, dict) and a.get("stub")) for a in atts.values())


def _household_change(p: Principal, new_doc: dict[str, Any],
                      old_doc: dict[str, Any]) -> str | None:
    """Every path this revision changes carries a stamp by `p`.

    A revision may be a sibling of the server's (it branched before edits the server has),
    so a path may legitimately hold an older value under an older stamp: the merge keeps
    the newer one. What it may not hold is a value under a stamp the server has not seen
    from someone else, or a changed value under an unchanged stamp.
    """
    new_clock, old_clock = new_doc.get("clock", {}), old_doc.get("clock", {})
    for path in sorted(set(household_paths(new_doc)) | set(household_paths(old_doc))):
        stamp, old_stamp = new_clock.get(path), old_clock.get(path)
        if stamp == old_stamp:
            value = clock.get(new_doc, path)
            if value is not MISSING and clock.canonical(value) != clock.canonical(
                    clock.get(old_doc, path)):
                return f"{path} changed without a new clock stamp"
            continue
        if stamp is None or stamp.get("by") == p.name:
            continue
        if old_stamp is not None and clock.dominates(old_stamp["vv"], stamp["vv"]):
            continue
        return (f"{path} carries an edit stamped by {stamp.get('by')!r}; "
                f"edits must be stamped by the signed-in user ({p.name})")
    return None


def _conflict_change(p: Principal, new_doc: dict[str, Any],
                     old_doc: dict[str, Any]) -> str | None:
    changed = {k for k in _content(new_doc).keys() | _content(old_doc).keys()
               if new_doc.get(k) != old_doc.get(k)}
    if not changed <= CONFLICT_RESOLUTION_FIELDS:
        return "settling a conflict may change only its resolution"
    if new_doc.get("resolved_by", p.name) != p.name:
        return f"resolved_by must be the signed-in user ({p.name})"
    return None

"""What a supervisor's decisions write: reviews, assignments, needs events, push requests.

Every document goes into the grid database (so it replicates to the worker's phone), is
checked by `sync.schema.validate`, and is first shown to an `authorize` callback — the
console passes one that asks `server.authz`, so no write happens that the authorization
module did not allow. Nothing here trusts a grid named by a form: the visit, household or
need is read from that grid's own database, and a document of another grid is "not found".

Ids are derived where a decision can only be taken once, so a double click or a retried
request meets a conflict instead of writing twice: a visit has one review
(`review:<visit uuid>`), an assignment one cancellation. New assignments ask the push
service to tell the worker, and so does a returned visit: a `push_request` document in the
push database (contract in docs/console.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

from sync import accounts, naming, schema
from sync.couch import Couch, DocumentRejected

Authorize = Callable[[dict[str, Any]], str | None]


class ActionError(Exception):
    """A decision that cannot be recorded; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class GridDb:
    """One grid's database, reached with the server's admin connection."""

    couch: Couch
    grid: str

    @property
    def name(self) -> str:
        return naming.grid_db_name(self.grid, self.couch.prefix)

    def live(self, doc_id: str, kind: str) -> dict[str, Any]:
        doc = self.couch.get(self.name, doc_id)
        if doc is None or doc.get("_deleted") or doc.get("type") != kind:
            raise ActionError(404, f"there is no {kind} {doc_id!r} in grid {self.grid}")
        return doc

    @staticmethod
    def check(doc: dict[str, Any], authorize: Authorize) -> None:
        try:
            schema.validate(doc)
        except schema.SchemaError as exc:
            raise ActionError(400, str(exc)) from None
        refusal = authorize(doc)
        if refusal:
            raise ActionError(403, refusal)

    def write(self, doc: dict[str, Any], authorize: Authorize) -> dict[str, Any]:
        self.check(doc, authorize)
        try:
            return self.couch.put(self.name, doc)
        except DocumentRejected as exc:
            if exc.status == 409:
                raise ActionError(409, f"{doc['_id']} was already recorded") from None
            raise ActionError(502, f"CouchDB refused {doc['_id']}: {exc}") from None


def _suffix(doc_id: str) -> str:
    return doc_id.split(":", 1)[1]


def request_push(couch: Couch, kind: str, user: str, grid: str, household: str, ref: str,
                 at: str) -> None:
    """Ask the push service to notify `user`; one request per subject (`ref`), ever."""
    doc = {"_id": f"push_request:{ref}", "type": "push_request", "kind": kind, "user": user,
           "grid": grid, "household": household, "ref": ref, "at": at}
    db = couch.name(naming.PUSH)
    status, body = couch.request("PUT", f"{quote(db, safe='')}/{quote(doc['_id'], safe='')}",
                                 body=doc)
    if status not in (201, 202, 409):  # 409: already requested
        raise ActionError(502, f"could not queue the notification: {status} {body}")


# --- reviews --------------------------------------------------------------------------------


def review(db: GridDb, visit_id: str, decision: str, reason: str, author: str,
           authorize: Authorize) -> dict[str, Any]:
    """Approve a visit, or return it with a reason (it reaches the worker's phone as a task)."""
    visit = db.live(visit_id, "visit")
    if decision not in schema.REVIEW_DECISIONS:
        raise ActionError(400, f"decision must be one of {', '.join(schema.REVIEW_DECISIONS)}")
    reason = reason.strip()
    if decision == "returned" and not reason:
        raise ActionError(400, "say why the visit is returned, so the worker can correct it")
    at = now_iso()
    doc = {"_id": f"review:{_suffix(visit_id)}", "type": "review", "grid": db.grid,
           "household": visit["household"], "visit": visit_id, "decision": decision,
           "reason": reason, "author": author, "at": at}
    if db.couch.get(db.name, doc["_id"]) is not None:
        raise ActionError(409, "this visit has already been reviewed")
    saved = db.write(doc, authorize)
    if decision == "returned":
        request_push(db.couch, "returned_visit", visit["author"], db.grid, visit["household"],
                     saved["_id"], at)
    return saved


# --- assignments ----------------------------------------------------------------------------


def assign(db: GridDb, households: list[str], worker: str, due: str, reason: str, author: str,
           authorize: Authorize, today: date) -> list[dict[str, Any]]:
    """Ask `worker` to visit these households of the grid by `due`; all or nothing."""
    if not households:
        raise ActionError(400, "choose at least one household")
    account = accounts.account(db.couch, worker)
    if account is None or account.role != "worker" or not account.active \
            or db.grid not in account.grids:
        raise ActionError(400, f"{worker!r} is not an active worker of grid {db.grid}")
    try:
        if date.fromisoformat(due) < today:
            raise ActionError(400, "the due date has passed; choose today or a later day")
    except ValueError:
        raise ActionError(400, "due must be a date such as 2026-12-01") from None
    if not reason.strip():
        raise ActionError(400, "give a reason, so the worker knows what to look at")
    for hid in households:
        db.live(f"household:{hid}", "household")
    at = now_iso()
    docs = [{"_id": f"assignment:{uuid.uuid4()}", "type": "assignment", "grid": db.grid,
             "household": hid, "worker": worker, "due": due, "reason": reason.strip(),
             "author": author, "at": at} for hid in households]
    for doc in docs:  # every document passes before the first is written
        db.check(doc, authorize)
    saved = [db.write(doc, authorize) for doc in docs]
    for doc in saved:
        request_push(db.couch, "assignment", worker, db.grid, doc["household"], doc["_id"], at)
    return saved


def cancel_assignment(db: GridDb, assignment_id: str, author: str, authorize: Authorize
                      ) -> dict[str, Any]:
    db.live(assignment_id, "assignment")
    doc = {"_id": f"assignment_event:{_suffix(assignment_id)}-cancelled",
           "type": "assignment_event", "grid": db.grid, "assignment": assignment_id,
           "event": "cancelled", "author": author, "at": now_iso()}
    return db.write(doc, authorize)


# --- needs ----------------------------------------------------------------------------------


def need_event(db: GridDb, need_id: str, household: str, state: str, event: str, author: str,
               authorize: Authorize, *, to: str = "", evaluation: str = "", note: str = ""
               ) -> dict[str, Any]:
    """Move a need along its loop; `state` is where it stands now (from the hub)."""
    order = schema.NEED_EVENTS
    if event not in order:
        raise ActionError(400, f"event must be one of {', '.join(order)}")
    redispatch = event == state == "dispatched"
    if order.index(event) <= order.index(state) and not redispatch:
        raise ActionError(409, f"this need is already {state}; it cannot go back to {event}")
    db.live(f"household:{household}", "household")
    doc: dict[str, Any] = {"_id": f"need_event:{uuid.uuid4()}", "type": "need_event",
                           "grid": db.grid, "household": household, "need_id": need_id,
                           "event": event, "author": author, "at": now_iso()}
    if to.strip():
        doc["to"] = to.strip()
    if evaluation:
        doc["evaluation"] = evaluation
    if note.strip():
        doc["note"] = note.strip()
    return db.write(doc, authorize)

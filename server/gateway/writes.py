"""Write validation: every document a device sends is checked before CouchDB sees it.

For one batch (a `_bulk_docs` body or one PUT) `review` answers, per document, either the
exact bytes to forward or the reason it is refused. The checks, in order:

1. CouchDB's own rules that pouchdb-server enforces badly or fatally for the whole batch
   (special fields, revision formats, attachment encoding), so one bad document cannot
   fail or corrupt its neighbours;
2. `sync.schema.validate`: the document is valid for its type;
3. attachments: only a visit's `photo.jpg`, a JPEG of at most 200 KB;
4. `server.authz.can_write_doc` against the current revision on the server (who may
   write what, authors, immutable fields, deletions; a household that arrives with another
   `created_at` is judged with both revision histories, since it may be a second phone's
   independent creation of the same address);
5. a visit or needs event names a household of this grid (stored, or accepted in the same
   batch: a household added at a door travels with its first visit).

After CouchDB has stored a household edit, `audit_records` describes it for the audit trail
(`sync.audit.for_edit`), limited to the paths this user's own stamps changed: a revision
that branched before other edits also carries their older values, which are not this
user's doing (the resolver's merge records those).

The current revisions (and the households referred to) come from one `_all_docs` request
per batch. The body forwarded is our own serialisation of what we checked, so a body that
parses differently elsewhere (repeated keys, invalid Unicode) cannot slip through.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from server import authz
from server.gateway.upstream import Upstream, UpstreamError
from sync import audit, schema

log = logging.getLogger("doorstep.gateway")

_REV = re.compile(r"^([1-9][0-9]{0,9})-([0-9a-zA-Z]{1,64})$")
_REV_ID = re.compile(r"^[0-9a-zA-Z]{1,64}$")
WRITABLE_SPECIAL = frozenset({"_id", "_rev", "_revisions", "_deleted", "_attachments"})
ATTACHMENT_FIELDS = frozenset({"content_type", "data", "digest", "length", "revpos", "stub"})
MAX_REVISIONS = 1000  # CouchDB's default revs_limit
MAX_ID_LENGTH = 512


@dataclass(frozen=True)
class Verdict:
    doc_id: str
    body: bytes | None = None  # what to forward, when accepted
    reason: str | None = None  # why not, when refused
    doc: dict[str, Any] = field(default_factory=dict, repr=False)  # the accepted document
    old: dict[str, Any] | None = field(default=None, repr=False)  # the server's revision

    def rejection(self) -> dict[str, str]:
        return {"id": self.doc_id, "error": "forbidden", "reason": self.reason or ""}


async def review(upstream: Upstream, db: str, principal: authz.Principal, grid: authz.GridLike,
                 docs: list[Any], new_edits: bool) -> list[Verdict]:
    shaped: list[tuple[Any, Verdict | bytes]] = []
    for doc in docs:
        problem = couch_shape(doc, new_edits)
        if problem:
            shaped.append((doc, Verdict(_id_of(doc), reason=problem)))
            continue
        try:
            shaped.append((doc, json.dumps(doc, ensure_ascii=False,
                                           separators=(",", ":")).encode("utf-8")))
        except UnicodeEncodeError:
            shaped.append((doc, Verdict(doc["_id"], reason="the document holds text that is "
                                                           "not valid Unicode")))
    wanted = set()
    for doc, outcome in shaped:
        if isinstance(outcome, bytes):
            wanted.add(doc["_id"])
            if isinstance(doc.get("household"), str) and not doc.get("_deleted"):
                wanted.add(f"household:{doc['household']}")
    current = await current_docs(upstream, db, sorted(wanted)) if wanted else {}
    await _add_histories(upstream, db, [d for d, o in shaped if isinstance(o, bytes)], current)
    # Households first: a visit may come in the same batch as the household it is for (one
    # added at a door offline), which counts as there once it is accepted.
    order = sorted(range(len(shaped)), key=lambda i: not (
        isinstance(shaped[i][1], bytes) and shaped[i][0].get("type") == "household"))
    verdicts: list[Verdict | None] = [None] * len(shaped)
    added: set[str] = set()
    for i in order:
        doc, outcome = shaped[i]
        if isinstance(outcome, Verdict):
            verdicts[i] = outcome
            continue
        reason = _refusal(principal, grid, doc, current, added)
        verdicts[i] = (Verdict(doc["_id"], reason=reason) if reason
                       else Verdict(doc["_id"], body=outcome, doc=doc,
                                    old=current.get(doc["_id"])))
        if not reason and doc.get("type") == "household" and not doc.get("_deleted"):
            added.add(doc["_id"])
    return [v for v in verdicts if v is not None]


def _refusal(principal: authz.Principal, grid: authz.GridLike, doc: dict[str, Any],
             current: dict[str, dict[str, Any] | None], added: set[str]) -> str | None:
    try:
        schema.validate(doc)
    except schema.SchemaError as exc:
        return f"invalid document: {exc.field} {exc.rule}"
    old = current.get(doc["_id"])
    problem = attachment_problem(doc, old)
    if problem:
        return problem
    refusal = authz.can_write_doc(principal, grid, doc, old)
    if refusal:
        return refusal
    if doc.get("type") in ("visit", "need_event") and not doc.get("_deleted"):
        household = f"household:{doc['household']}"
        if current.get(household) is None and household not in added:
            return f"household {doc['household']} is not in grid {grid.id}"
    return None


async def current_docs(upstream: Upstream, db: str, ids: list[str]
                       ) -> dict[str, dict[str, Any] | None]:
    """The winning revision of each id: the document, a tombstone, or None if never there."""
    status, body = await upstream.json(
        "POST", f"/{quote(db, safe='')}/_all_docs?include_docs=true", body={"keys": ids})
    if status != 200 or not isinstance(body, dict):
        raise UpstreamError(502, "bad_gateway", f"could not read current documents ({status})")
    found: dict[str, dict[str, Any] | None] = {}
    for row in body.get("rows", []):
        value = row.get("value") or {}
        if "error" in row or not value:
            found[row.get("key")] = None
        elif value.get("deleted"):
            found[row["key"]] = {"_id": row["key"], "_rev": value.get("rev"), "_deleted": True}
        else:
            found[row["key"]] = row.get("doc")
    return found


async def _add_histories(upstream: Upstream, db: str, docs: list[dict[str, Any]],
                         current: dict[str, dict[str, Any] | None]) -> None:
    """Give the server's revision its `_revisions` where a household arrives with another
    `created_at`: only then may it be a second, independent creation of the same address
    (`authz.independent_creation`), which the histories tell. Rare, so one extra request."""
    wanted = []
    for doc in docs:
        old = current.get(doc["_id"])
        if (doc.get("type") == "household" and "_revisions" in doc and old
                and not old.get("_deleted") and old.get("created_at") != doc.get("created_at")):
            wanted.append({"id": old["_id"], "rev": old["_rev"]})
    if not wanted:
        return
    status, body = await upstream.json("POST", f"/{quote(db, safe='')}/_bulk_get?revs=true",
                                       body={"docs": wanted})
    if status != 200 or not isinstance(body, dict):
        raise UpstreamError(502, "bad_gateway", f"could not read revision histories ({status})")
    for result in body.get("results", []):
        for entry in result.get("docs", []):
            found = entry.get("ok") if isinstance(entry, dict) else None
            old = current.get(result.get("id"))
            if found and old and found.get("_rev") == old.get("_rev"):
                old["_revisions"] = found.get("_revisions")


def couch_shape(doc: Any, new_edits: bool) -> str | None:
    """The CouchDB rules for a document body that pouchdb-server does not enforce safely."""
    if not isinstance(doc, dict):
        return "each document must be a JSON object"
    doc_id = doc.get("_id")
    if not isinstance(doc_id, str) or not doc_id or len(doc_id) > MAX_ID_LENGTH:
        return "every document needs an _id, such as visit:<uuid>"
    if doc_id.startswith("_design/"):
        return "design documents are managed by the server"
    if doc_id.startswith("_"):
        return "ids starting with _ are reserved; _local documents are written with PUT"
    for name in doc:
        if name.startswith("_") and name not in WRITABLE_SPECIAL:
            return f"{name} is not a field a document may be written with"
    rev = doc.get("_rev")
    if rev is not None and not (isinstance(rev, str) and _REV.match(rev)):
        return "_rev must look like 3-<hex>"
    if not new_edits:
        if rev is None:
            return "a replicated write (new_edits=false) needs a _rev"
        problem = _revisions_problem(doc.get("_revisions"), rev)
        if problem:
            return problem
    elif "_revisions" in doc:
        return "_revisions is sent only with replicated writes (new_edits=false)"
    if "_deleted" in doc and not isinstance(doc["_deleted"], bool):
        return "_deleted must be true or false"
    if "_attachments" in doc:
        return _attachments_shape(doc["_attachments"])
    return None


def _revisions_problem(revisions: Any, rev: str) -> str | None:
    if revisions is None:
        return None
    match = _REV.match(rev)
    assert match is not None  # checked by the caller
    if not isinstance(revisions, dict) or set(revisions) != {"start", "ids"}:
        return "_revisions must be {\"start\": N, \"ids\": [...]}"
    start, ids = revisions["start"], revisions["ids"]
    if (not isinstance(start, int) or isinstance(start, bool) or not isinstance(ids, list)
            or not ids or len(ids) > MAX_REVISIONS or start < len(ids)
            or not all(isinstance(i, str) and _REV_ID.match(i) for i in ids)):
        return "_revisions must be {\"start\": N, \"ids\": [...]} with N ≥ the number of ids"
    if start != int(match.group(1)) or ids[0] != match.group(2):
        return "_revisions must end with the document's _rev"
    return None


def _attachments_shape(atts: Any) -> str | None:
    if not isinstance(atts, dict):
        return "_attachments must be an object"
    for name, att in atts.items():
        if not isinstance(att, dict) or set(att) - ATTACHMENT_FIELDS:
            return f"attachment {name} must be inline (content_type and base64 data) or a stub"
        if att.get("stub") is True:
            continue
        if not isinstance(att.get("content_type"), str) or not isinstance(att.get("data"), str):
            return f"attachment {name} needs content_type and base64 data"
        try:
            base64.b64decode(att["data"], validate=True)
        except (binascii.Error, ValueError):
            return f"attachment {name} is not valid base64"
    return None


def attachment_problem(doc: dict[str, Any], old: dict[str, Any] | None) -> str | None:
    """Photos are the only attachments: a visit's photo.jpg, a JPEG of at most 200 KB."""
    atts = doc.get("_attachments")
    if not atts:
        return None
    if doc.get("type") != "visit" or doc.get("_deleted"):
        return "only a visit may carry an attachment (its photo)"
    stored = ((old or {}).get("_attachments") or {})
    for name, att in atts.items():
        if name != "photo.jpg":
            return "a visit may carry only photo.jpg"
        if att.get("stub") is True:
            if name not in stored:
                return f"attachment {name} is a stub, but the server has no such attachment"
            continue
        if att["content_type"] != "image/jpeg":
            return "photo.jpg must be a JPEG image (image/jpeg)"
        if len(base64.b64decode(att["data"])) > schema.MAX_PHOTO_BYTES:
            return "photo.jpg must be at most 200 KB"
    return None


def _id_of(doc: Any) -> str:
    doc_id = doc.get("_id") if isinstance(doc, dict) else None
    return doc_id if isinstance(doc_id, str) else ""


# --- the audit trail of household edits ------------------------------------------------------


def audit_records(user: str, stored: list[tuple[Verdict, str]]) -> list[dict[str, Any]]:
    """Audit records for the household edits among `stored` (verdict, stored revision)."""
    visits = {v.doc.get("household"): v.doc_id for v, _ in stored
              if v.doc.get("type") == "visit" and v.doc.get("ledger_changes")}
    records = []
    for verdict, rev in stored:
        doc, old = verdict.doc, verdict.old
        if doc.get("type") != "household" or doc.get("_deleted"):
            continue
        old_live = old if old and not old.get("_deleted") else None
        if old_live and authz.independent_creation(doc, old_live):
            old_live = None  # her own creation of the address, not an edit of the other one
        stamps = _own_stamps(user, doc, old_live)
        if not stamps:
            continue
        latest = max(stamps.values(), key=lambda s: str(s.get("at")))
        record = audit.for_edit(old_live, {**doc, "_rev": rev}, user, latest.get("device"),
                                visits.get(doc.get("household_id")),
                                str(latest.get("at") or _now()))
        if record is not None:
            record["changes"] = [c for c in record["changes"] if c["path"] in stamps]
            if record["changes"]:
                records.append(record)
    return records


def _own_stamps(user: str, doc: dict[str, Any], old: dict[str, Any] | None
                ) -> dict[str, dict[str, Any]]:
    old_clock = (old or {}).get("clock", {})
    return {path: stamp for path, stamp in doc.get("clock", {}).items()
            if stamp.get("by") == user and stamp != old_clock.get(path)}


async def store_audit(upstream: Upstream, db: str, records: list[dict[str, Any]]) -> None:
    """Write audit records with the server's credentials; a failure is logged, not raised,
    because the edit itself is stored (ids are derived from the revision, so a retried
    push that records it again meets a conflict, not a duplicate)."""
    try:
        status, body = await upstream.json("POST", f"/{quote(db, safe='')}/_bulk_docs",
                                           body={"docs": records}, retry=False)
    except UpstreamError as exc:
        log.warning("audit records for %s not written: %s", db, exc)
        return
    failed = [r for r in (body if isinstance(body, list) else [])
              if r.get("error") and r.get("error") != "conflict"]
    if status not in (201, 202) or failed:
        log.warning("audit records for %s not written: %s %s", db, status, failed or body)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

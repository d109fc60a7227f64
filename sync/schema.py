"""The one definition of every document Doorstep stores.

Everything that writes (import, the gateway, the console, tests) calls `validate`, which
raises `SchemaError` naming the field and the rule it broke. The rules are plain Python so
that the message a worker or an importer sees can say exactly what to fix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any

OUTCOMES = ("met", "nobody_home", "refused", "vacant", "moved_away")
VISIT_TYPES = ("sweep", "special_care", "follow_up", "patrol")
HOUSING = ("owner", "rented", "vacant")
RESIDENCY = ("registered", "floating")
MEMBER_STATUS = ("present", "moved_out")
NEED_EVENTS = ("raised", "dispatched", "claimed", "resolved", "evaluated", "closed")
REVIEW_DECISIONS = ("approved", "returned")
AUDIT_SOURCES = ("create", "edit", "merge", "resolution", "import", "move")
CONFLICT_STATES = ("open", "resolved")

# Paths of a household a person may edit; each has a version-vector stamp in `clock`.
HOUSEHOLD_FIELDS = ("micro_grid", "address", "housing", "residency", "tags", "phone", "note")
MEMBER_FIELDS = ("name", "relation", "birth_year", "phone", "id_number", "tags", "status")

# CouchDB's own fields a stored document may carry.
COUCH_FIELDS = {"_id", "_rev", "_revisions", "_deleted", "_attachments", "_conflicts"}

MAX_PHOTO_BYTES = 200 * 1024

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}$")
_ID_NUMBER = re.compile(r"^\d{17}[\dX]$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


class SchemaError(ValueError):
    """A document broke a rule; `field` is the dotted path, `rule` says what was expected."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


# --- single-value rules: each returns the rule text when the value breaks it -----------------

Rule = Callable[[Any], str | None]


def text(max_len: int = 2000, required: bool = True) -> Rule:
    def check(v: Any) -> str | None:
        if not isinstance(v, str):
            return "must be text"
        if required and not v.strip():
            return "must not be empty"
        if len(v) > max_len:
            return f"must be at most {max_len} characters"
        return None

    return check


def one_of(*choices: str) -> Rule:
    def check(v: Any) -> str | None:
        return None if v in choices else f"must be one of {', '.join(choices)}"

    return check


def key(v: Any) -> str | None:
    if isinstance(v, str) and _KEY.match(v):
        return None
    return "must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"


def optional(rule: Rule) -> Rule:
    def check(v: Any) -> str | None:
        return None if v is None else rule(v)

    return check


def timestamp(v: Any) -> str | None:
    if isinstance(v, str):
        try:
            datetime.fromisoformat(v.replace("Z", "+00:00"))
            return None
        except ValueError:
            pass
    return "must be an ISO 8601 time such as 2026-11-20T09:12:00Z"


def day(v: Any) -> str | None:
    if isinstance(v, str):
        try:
            date.fromisoformat(v)
            return None
        except ValueError:
            pass
    return "must be a date such as 2026-12-01"


def phone(v: Any) -> str | None:
    if v == "" or (isinstance(v, str) and (_MOBILE.match(v) or _LANDLINE.match(v))):
        return None
    return "must be an 11-digit mobile number starting with 1, or a landline such as 0571-87654321"


def id_number(v: Any) -> str | None:
    if v == "":
        return None
    if not isinstance(v, str) or not _ID_NUMBER.match(v):
        return "must be an 18-character resident ID number (17 digits and a digit or X)"
    total = sum(int(c) * w for c, w in zip(v[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK[total % 11] != v[17]:
        return "has a wrong check digit (last character); please re-check the number"
    try:
        date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        return "has an impossible birth date in positions 7-14"
    return None


def birth_year(v: Any) -> str | None:
    this_year = date.today().year
    if v is None or (isinstance(v, int) and not isinstance(v, bool) and 1900 <= v <= this_year):
        return None
    return f"must be a year between 1900 and {this_year}"


def floor_number(v: Any) -> str | None:
    if isinstance(v, int) and not isinstance(v, bool) and -5 <= v <= 200:
        return None
    return "must be a whole number between -5 and 200"


def tag_list(v: Any) -> str | None:
    if not isinstance(v, list) or not all(isinstance(t, str) and _KEY.match(t) for t in v):
        return "must be a list of tag keys"
    if len(set(v)) != len(v):
        return "must not repeat a tag"
    return None


def number(lo: float, hi: float) -> Rule:
    def check(v: Any) -> str | None:
        if isinstance(v, int | float) and not isinstance(v, bool) and lo <= v <= hi:
            return None
        return f"must be a number between {lo} and {hi}"

    return check


def boolean(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


# --- structure checks ---------------------------------------------------------------------


def _check(doc: dict[str, Any], fields: dict[str, tuple[bool, Rule]], prefix: str = "") -> None:
    """Check `doc` against {name: (required, rule)}; unknown fields are an error too."""
    for name, (required, rule) in fields.items():
        path = f"{prefix}{name}"
        if name not in doc:
            if required:
                raise SchemaError(path, "is required")
            continue
        problem = rule(doc[name])
        if problem:
            raise SchemaError(path, problem)
    for name in doc:
        if name not in fields and not (not prefix and name in COUCH_FIELDS):
            raise SchemaError(f"{prefix}{name}", "is not a known field")


def _obj(v: Any, path: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise SchemaError(path, "must be an object")
    return v


def _list(v: Any, path: str) -> list[Any]:
    if not isinstance(v, list):
        raise SchemaError(path, "must be a list")
    return v


def _id_matches(doc: dict[str, Any], kind: str, key_field: str | None = None) -> None:
    doc_id = doc.get("_id")
    if not isinstance(doc_id, str) or not doc_id.startswith(f"{kind}:"):
        raise SchemaError("_id", f"must start with '{kind}:'")
    if key_field and doc_id != f"{kind}:{doc.get(key_field)}":
        raise SchemaError("_id", f"must be '{kind}:' followed by {key_field}")


ADDRESS = {
    "building": (True, text(32)),
    "unit": (False, text(32, required=False)),
    "floor": (True, floor_number),
    "room": (True, text(32)),
}

MEMBER = {
    "name": (True, text(64)),
    "relation": (False, text(32, required=False)),
    "birth_year": (False, birth_year),
    "phone": (False, phone),
    "id_number": (False, id_number),
    "tags": (False, tag_list),
    "status": (True, one_of(*MEMBER_STATUS)),
}

STAMP = {
    "vv": (True, lambda v: None if _is_vv(v) else "must map device ids to positive counters"),
    "at": (True, timestamp),
    "by": (True, text(64)),
    "device": (True, text(64)),
}


def _is_object(v: Any) -> str | None:
    return None if isinstance(v, dict) else "must be an object"


def _is_vv(v: Any) -> bool:
    return isinstance(v, dict) and all(
        isinstance(k, str) and isinstance(n, int) and not isinstance(n, bool) and n > 0
        for k, n in v.items()
    )


def household_paths(doc: dict[str, Any]) -> list[str]:
    """Every editable path of a household, as used in `clock`."""
    paths = list(HOUSEHOLD_FIELDS)
    for mid in doc.get("members", {}):
        paths.extend(f"members.{mid}.{f}" for f in MEMBER_FIELDS)
    return paths


def _household(doc: dict[str, Any]) -> None:
    _id_matches(doc, "household", "household_id")
    _check(
        doc,
        {
            "type": (True, one_of("household")),
            "grid": (True, key),
            "household_id": (True, key),
            "micro_grid": (False, optional(key)),
            "address": (True, lambda v: None if isinstance(v, dict) else "must be an object"),
            "housing": (True, one_of(*HOUSING)),
            "residency": (True, one_of(*RESIDENCY)),
            "tags": (True, tag_list),
            "phone": (False, phone),
            "note": (False, text(2000, required=False)),
            "members": (True, lambda v: None if isinstance(v, dict) else "must be an object"),
            "clock": (True, lambda v: None if isinstance(v, dict) else "must be an object"),
            "created_at": (True, timestamp),
            "updated_at": (False, timestamp),
            "moved_to": (False, key),
        },
    )
    _check(doc["address"], ADDRESS, "address.")
    if len(doc["members"]) > 50:
        raise SchemaError("members", "must hold at most 50 people")
    for mid, member in doc["members"].items():
        if not _KEY.match(mid):
            raise SchemaError(f"members.{mid}", "member ids must be short keys")
        _check(_obj(member, f"members.{mid}"), MEMBER, f"members.{mid}.")
    known = set(household_paths(doc))
    for path, stamp in doc["clock"].items():
        if path not in known:
            raise SchemaError(f"clock.{path}", "names no editable field of this household")
        _check(_obj(stamp, f"clock.{path}"), STAMP, f"clock.{path}.")


NEED = {
    "need_id": (True, key),
    "category": (True, text(32)),
    "text": (True, text(1000)),
    "urgent": (False, boolean),
}
LEDGER_CHANGE = {
    "path": (True, text(128)),
    "old": (False, lambda v: None),
    "new": (False, lambda v: None),
}
GPS = {
    "lat": (True, number(-90, 90)),
    "lon": (True, number(-180, 180)),
    "accuracy": (True, number(0, 100000)),
}


def _visit(doc: dict[str, Any]) -> None:
    _id_matches(doc, "visit")
    _check(
        doc,
        {
            "type": (True, one_of("visit")),
            "grid": (True, key),
            "household": (True, key),
            "author": (True, text(64)),
            "device": (True, text(64)),
            "created_at": (True, timestamp),
            "visited_at": (True, timestamp),
            "outcome": (True, one_of(*OUTCOMES)),
            "visit_type": (True, one_of(*VISIT_TYPES)),
            "notes": (False, text(4000, required=False)),
            "needs": (False, lambda v: None if isinstance(v, list) else "must be a list"),
            "ledger_changes": (False, lambda v: None if isinstance(v, list) else "must be a list"),
            "gps": (False, optional(_is_object)),
            "assignment": (False, optional(text(80))),
            "amends": (False, optional(text(80))),
            "app_version": (False, text(32, required=False)),
        },
    )
    for i, need in enumerate(doc.get("needs", [])):
        _check(_obj(need, f"needs.{i}"), NEED, f"needs.{i}.")
    for i, change in enumerate(doc.get("ledger_changes", [])):
        _check(_obj(change, f"ledger_changes.{i}"), LEDGER_CHANGE, f"ledger_changes.{i}.")
    if doc.get("gps") is not None:
        _check(doc["gps"], GPS, "gps.")
    for name, att in (doc.get("_attachments") or {}).items():
        if name != "photo.jpg":
            raise SchemaError(f"_attachments.{name}", "a visit may carry only photo.jpg")
        size = att.get("length") if isinstance(att, dict) else None
        if isinstance(size, int) and size > MAX_PHOTO_BYTES:
            raise SchemaError("_attachments.photo.jpg", "must be at most 200 KB")


def _need_event(doc: dict[str, Any]) -> None:
    _id_matches(doc, "need_event")
    _check(
        doc,
        {
            "type": (True, one_of("need_event")),
            "grid": (True, key),
            "household": (True, key),
            "need_id": (True, key),
            "event": (True, one_of(*NEED_EVENTS)),
            "category": (False, text(32)),
            "text": (False, text(1000, required=False)),
            "urgent": (False, boolean),
            "to": (False, text(64)),
            "evaluation": (False, one_of("satisfied", "basically_satisfied", "unsatisfied")),
            "note": (False, text(1000, required=False)),
            "visit": (False, optional(text(80))),
            "author": (True, text(64)),
            "at": (True, timestamp),
        },
    )
    if doc["event"] == "raised" and not doc.get("category"):
        raise SchemaError("category", "is required when a need is raised")
    if doc["event"] == "dispatched" and not doc.get("to"):
        raise SchemaError("to", "is required when a need is dispatched (a person or a unit)")
    if doc["event"] == "evaluated" and not doc.get("evaluation"):
        raise SchemaError("evaluation", "is required when the resident's evaluation is recorded")


def _review(doc: dict[str, Any]) -> None:
    _id_matches(doc, "review")
    _check(
        doc,
        {
            "type": (True, one_of("review")),
            "grid": (True, key),
            "household": (True, key),
            "visit": (True, text(80)),
            "decision": (True, one_of(*REVIEW_DECISIONS)),
            "reason": (False, text(1000, required=False)),
            "author": (True, text(64)),
            "at": (True, timestamp),
        },
    )
    if doc["decision"] == "returned" and not doc.get("reason", "").strip():
        raise SchemaError("reason", "is required when a visit is returned")


def _assignment(doc: dict[str, Any]) -> None:
    _id_matches(doc, "assignment")
    _check(
        doc,
        {
            "type": (True, one_of("assignment")),
            "grid": (True, key),
            "household": (True, key),
            "worker": (True, text(64)),
            "due": (True, day),
            "reason": (True, text(1000)),
            "author": (True, text(64)),
            "at": (True, timestamp),
        },
    )


def _assignment_event(doc: dict[str, Any]) -> None:
    _id_matches(doc, "assignment_event")
    _check(
        doc,
        {
            "type": (True, one_of("assignment_event")),
            "grid": (True, key),
            "assignment": (True, text(80)),
            "event": (True, one_of("cancelled")),
            "author": (True, text(64)),
            "at": (True, timestamp),
        },
    )


def _audit(doc: dict[str, Any]) -> None:
    _id_matches(doc, "audit")
    _check(
        doc,
        {
            "type": (True, one_of("audit")),
            "grid": (True, key),
            "household": (True, key),
            "source": (True, one_of(*AUDIT_SOURCES)),
            "changes": (True, lambda v: None if isinstance(v, list) else "must be a list"),
            "author": (True, text(64)),
            "device": (False, optional(text(64))),
            "visit": (False, optional(text(80))),
            "at": (True, timestamp),
        },
    )
    for i, change in enumerate(doc["changes"]):
        _check(_obj(change, f"changes.{i}"), LEDGER_CHANGE, f"changes.{i}.")


def _conflict(doc: dict[str, Any]) -> None:
    _id_matches(doc, "conflict")
    _check(
        doc,
        {
            "type": (True, one_of("conflict")),
            "grid": (True, key),
            "household": (True, key),
            "path": (True, text(128)),
            "candidates": (True, lambda v: None if isinstance(v, list) and len(v) >= 2
                           else "must list at least two values"),
            "chosen": (False, lambda v: None),
            "state": (True, one_of(*CONFLICT_STATES)),
            "resolution": (False, lambda v: None),
            "resolved_by": (False, text(64)),
            "resolved_at": (False, timestamp),
            "at": (True, timestamp),
        },
    )


def _config(doc: dict[str, Any]) -> None:
    if doc.get("_id") != "config:tags":
        raise SchemaError("_id", "must be 'config:tags'")
    _check(
        doc,
        {
            "type": (True, one_of("config")),
            "tags": (True, lambda v: None if isinstance(v, dict) else "must be an object"),
            "default_frequency_days": (True, number(1, 366)),
            "grid": (False, key),
            "updated_at": (False, timestamp),
        },
    )
    for tag, spec in doc["tags"].items():
        if not _KEY.match(tag):
            raise SchemaError(f"tags.{tag}", "tag keys must be short keys")
        _check(
            _obj(spec, f"tags.{tag}"),
            {
                "zh": (True, text(32)),
                "en": (True, text(64)),
                "frequency_days": (True, number(1, 366)),
                "special_care": (True, boolean),
            },
            f"tags.{tag}.",
        )


def _named(kind: str, parent: str | None) -> Callable[[dict[str, Any]], None]:
    def check(doc: dict[str, Any]) -> None:
        _id_matches(doc, kind)
        fields: dict[str, tuple[bool, Rule]] = {
            "type": (True, one_of(kind)),
            "name": (True, text(64)),
            "updated_at": (False, timestamp),
        }
        if parent:
            fields[parent] = (True, key)
        _check(doc, fields)
        if not _KEY.match(doc["_id"].split(":", 1)[1]):
            raise SchemaError("_id", key(None) or "")

    return check


VALIDATORS: dict[str, Callable[[dict[str, Any]], None]] = {
    "household": _household,
    "visit": _visit,
    "need_event": _need_event,
    "review": _review,
    "assignment": _assignment,
    "assignment_event": _assignment_event,
    "audit": _audit,
    "conflict": _conflict,
    "config": _config,
    "street": _named("street", None),
    "community": _named("community", "street"),
    "grid": _named("grid", "community"),
    "micro_grid": _named("micro_grid", "grid"),
}

# Types that live in grid databases (and so may pass the gateway at all).
GRID_TYPES = frozenset(
    {"household", "visit", "need_event", "review", "assignment", "assignment_event", "audit",
     "conflict", "config"}
)


def validate(doc: Any) -> dict[str, Any]:
    """Check one document; return it unchanged or raise `SchemaError`."""
    if not isinstance(doc, dict):
        raise SchemaError("(document)", "must be a JSON object")
    if doc.get("_deleted") is True:
        _obj(doc, "(document)")
        if not isinstance(doc.get("_id"), str):
            raise SchemaError("_id", "is required")
        return doc
    kind = doc.get("type")
    validator = VALIDATORS.get(kind) if isinstance(kind, str) else None
    if validator is None:
        raise SchemaError("type", f"must be one of {', '.join(VALIDATORS)}")
    validator(doc)
    return doc


def validate_all(docs: Iterable[Any]) -> list[dict[str, Any]]:
    return [validate(d) for d in docs]

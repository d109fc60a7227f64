"""What a gateway request is: an allow-list of the endpoints PouchDB replication uses.

`parse` names the request (`Target`) or refuses it; `check_query` and the `check_*_body`
functions check every query parameter and request body against what CouchDB documents for
that endpoint. Anything not listed is refused, so no request we have not thought about
reaches CouchDB (pouchdb-server dies on some; see FACTS.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

# Kinds that only read, kinds that write documents, kinds on the user's own checkpoints.
READS = frozenset({"root", "db_info", "changes", "revs_diff", "bulk_get", "all_docs", "doc_get",
                   "attachment_get", "local_get"})
WRITES = frozenset({"bulk_docs", "doc_put"})

FEEDS = ("longpoll", "continuous")
DEFAULT_HEARTBEAT_MS = 30_000  # keeps proxies from closing a quiet feed

_REV = re.compile(r"^[1-9][0-9]{0,9}-[0-9a-zA-Z]{1,64}$")
_SEQ = re.compile(r"^(now|[0-9A-Za-z_\-]{1,4000})$")
_UINT = re.compile(r"^[0-9]{1,12}$")


class Refused(Exception):
    """The gateway answers this request itself, with `status` and a JSON error."""

    def __init__(self, status: int, error: str, reason: str) -> None:
        super().__init__(f"{status} {error}: {reason}")
        self.status = status
        self.error = error
        self.reason = reason


def forbidden(reason: str) -> Refused:
    return Refused(403, "forbidden", reason)


def bad_request(reason: str) -> Refused:
    return Refused(400, "bad_request", reason)


@dataclass(frozen=True)
class Target:
    kind: str
    db: str | None = None
    doc_id: str | None = None  # for _local: the id after `_local/`
    attachment: str | None = None

    @property
    def writes(self) -> bool:
        return self.kind in WRITES


NOT_REPLICATION = ("is not part of replication; the gateway passes only what PouchDB "
                   "replication needs")
_NAMED_REFUSALS = {
    "_security": "database security is set by the server",
    "_design": "design documents are managed by the server",
    "_find": "queries run on the device; _find " + NOT_REPLICATION,
    "_index": "indexes are managed by the server",
    "_explain": "_explain " + NOT_REPLICATION,
    "_compact": "compaction is run by the server",
    "_view_cleanup": "maintenance is run by the server",
    "_purge": "documents are never purged through the gateway",
}


def parse(method: str, raw_path: str) -> Target:
    """Name the request at `raw_path` (the still-encoded path after `/couch`)."""
    parts = raw_path.split("/")
    if parts and parts[0] == "":
        parts = parts[1:]
    if parts and parts[-1] == "":
        parts = parts[:-1]
    try:
        segments = [unquote(p, errors="strict") for p in parts]
    except UnicodeDecodeError:
        raise bad_request("the path is not valid UTF-8") from None
    if not segments:
        return _allow(method, ("GET", "HEAD"), Target("root"), "the server root is read-only")
    db, rest = segments[0], segments[1:]
    if db.startswith("_") or not db:
        raise forbidden(f"{db or 'this'} is a server endpoint; only your own grid databases "
                        "pass the gateway")
    if not rest:
        if method in ("PUT", "DELETE"):
            raise forbidden("databases are created and deleted by the server")
        return _allow(method, ("GET", "HEAD"), Target("db_info", db),
                      "documents are written with _bulk_docs or PUT <db>/<id>")
    head = rest[0]
    if head == "_local":
        if len(rest) != 2 or not rest[1]:
            raise forbidden("_local documents are read and written one at a time")
        kind = {"GET": "local_get", "PUT": "local_put"}.get(method)
        if kind is None:
            raise forbidden("checkpoints may be read and written, nothing else")
        return Target(kind, db, rest[1])
    if head == "_design":
        if len(rest) == 2 and method in ("GET", "HEAD"):
            return Target("doc_get", db, f"_design/{rest[1]}")
        if len(rest) > 2:
            raise forbidden("views and other design functions " + NOT_REPLICATION)
        raise forbidden(_NAMED_REFUSALS["_design"])
    if head.startswith("_"):
        endpoint = {"_changes": (("GET", "POST"), "changes"),
                    "_revs_diff": (("POST",), "revs_diff"),
                    "_bulk_get": (("POST",), "bulk_get"),
                    "_bulk_docs": (("POST",), "bulk_docs"),
                    "_all_docs": (("GET", "POST"), "all_docs")}.get(head)
        if endpoint is None or len(rest) != 1:
            raise forbidden(_NAMED_REFUSALS.get(head, f"{head} {NOT_REPLICATION}"))
        methods, kind = endpoint
        return _allow(method, methods, Target(kind, db), f"{method} {head} {NOT_REPLICATION}")
    if len(rest) == 1:
        if method == "PUT":
            return Target("doc_put", db, head)
        if method == "DELETE":
            raise forbidden("a document on the server is never deleted from a device")
        return _allow(method, ("GET", "HEAD"), Target("doc_get", db, head),
                      f"{method} on a document {NOT_REPLICATION}")
    return _allow(method, ("GET", "HEAD"), Target("attachment_get", db, head, "/".join(rest[1:])),
                  "attachments travel inside their documents (_bulk_docs)")


def _allow(method: str, methods: tuple[str, ...], target: Target, reason: str) -> Target:
    if method not in methods:
        raise forbidden(reason)
    return target


# --- query parameters ---------------------------------------------------------------------

Check = Callable[[str], bool]


def _bool(v: str) -> bool:
    return v in ("true", "false")


def _uint(v: str) -> bool:
    return bool(_UINT.match(v))


def _rev(v: str) -> bool:
    return bool(_REV.match(v))


def _one_of(*choices: str) -> Check:
    return lambda v: v in choices


def _capability(name: str, *choices: str) -> Check:
    """A parameter that selects a feature: an unknown value is refused, not just malformed."""

    def check(v: str) -> bool:
        if v not in choices:
            raise forbidden(f"{name}={v} {NOT_REPLICATION}")
        return True

    return check


def _json(accept: Callable[[Any], bool]) -> Check:
    def check(v: str) -> bool:
        try:
            parsed = loads(v.encode())
        except Refused:
            return False
        return accept(parsed)

    return check


LOCAL_ELSEWHERE = "_local documents are read only with GET <db>/_local/<id>, each user their own"


def _doc_key(v: Any) -> bool:
    if isinstance(v, str) and v.startswith("_local/"):
        raise forbidden(LOCAL_ELSEWHERE)
    return isinstance(v, str)


def _doc_keys(v: Any) -> bool:
    return isinstance(v, list) and all(_doc_key(k) for k in v)


def _revs(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(r, str) and _REV.match(r) for r in v)


_FLAGS = ("conflicts", "attachments", "att_encoding_info")
QUERY: dict[str, dict[str, Check]] = {
    "root": {},
    "db_info": {},
    "changes": {
        "since": lambda v: bool(_SEQ.match(v)), "limit": _uint,
        "feed": _capability("feed", "normal", *FEEDS),
        "heartbeat": lambda v: v == "true" or _uint(v),
        "timeout": _uint, "include_docs": _bool, "style": _one_of("main_only", "all_docs"),
        "descending": _bool, "seq_interval": _uint, "return_docs": _bool,
        "filter": _capability("filter", "_doc_ids"), "doc_ids": _json(_doc_keys),
        **{f: _bool for f in _FLAGS},
    },
    "revs_diff": {},
    "bulk_get": {"revs": _bool, "latest": _bool, **{f: _bool for f in _FLAGS[1:]}},
    "bulk_docs": {},
    "all_docs": {
        "keys": _json(_doc_keys), "limit": _uint, "skip": _uint,
        **{k: _json(_doc_key) for k in ("key", "startkey", "endkey", "start_key", "end_key")},
        **{k: _doc_key
           for k in ("startkey_docid", "endkey_docid", "start_key_doc_id", "end_key_doc_id")},
        **{f: _bool for f in ("descending", "include_docs", "inclusive_end", "update_seq",
                              *_FLAGS)},
    },
    "doc_get": {
        "rev": _rev, "open_revs": lambda v: v == "all" or _json(_revs)(v),
        "atts_since": _json(_revs),
        **{f: _bool for f in ("revs", "revs_info", "latest", "deleted_conflicts", "local_seq",
                              "meta", *_FLAGS)},
    },
    "doc_put": {"new_edits": _bool, "rev": _rev},
    "attachment_get": {"rev": _rev},
    "local_get": {},
    "local_put": {},
}


def check_query(target: Target, query: str) -> list[tuple[str, str]]:
    """Check the query string; return its parameters (a feed gets a heartbeat if it has none)."""
    try:
        params = parse_qsl(query, keep_blank_values=True, strict_parsing=False, errors="strict")
    except UnicodeDecodeError:
        raise bad_request("the query string is not valid UTF-8") from None
    allowed = QUERY[target.kind]
    seen = set()
    for name, value in params:
        if name not in allowed:
            raise forbidden(f"the parameter {name!r} is not allowed here")
        if name in seen:
            raise bad_request(f"the parameter {name!r} is given twice")
        seen.add(name)
        if not allowed[name](value):
            raise bad_request(f"the parameter {name!r} has an invalid value")
    if target.kind == "changes" and feed_of(params) in FEEDS and "heartbeat" not in seen:
        params.append(("heartbeat", str(DEFAULT_HEARTBEAT_MS)))
    return params


def feed_of(params: list[tuple[str, str]]) -> str:
    return dict(params).get("feed", "normal")


def heartbeat_seconds(params: list[tuple[str, str]]) -> float:
    value = dict(params).get("heartbeat", "true")
    return 60.0 if value == "true" else int(value) / 1000


def encode_query(params: list[tuple[str, str]]) -> str:
    return urlencode(params) if params else ""


# --- bodies -------------------------------------------------------------------------------


def loads(body: bytes) -> Any:
    """Parse JSON strictly: no duplicate keys, no NaN, no absurd nesting. 400 otherwise.

    What we check must be exactly what CouchDB stores, so a body with two values for one key
    (which parsers resolve differently) is refused rather than guessed at.
    """

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(items)
        if len(obj) != len(items):
            raise bad_request("a JSON object repeats a key")
        return obj

    def constant(name: str) -> Any:
        raise bad_request(f"{name} is not JSON")

    try:
        return json.loads(body, object_pairs_hook=pairs, parse_constant=constant)
    except (ValueError, RecursionError):
        raise bad_request("the body is not valid JSON") from None


def check_changes_body(body: Any) -> None:
    if not isinstance(body, dict):
        raise bad_request("a _changes body is an object")
    if set(body) - {"doc_ids"}:
        raise forbidden("a _changes body may hold only doc_ids; selectors and filters "
                        + NOT_REPLICATION)
    if "doc_ids" in body and not _doc_keys(body["doc_ids"]):
        raise bad_request("doc_ids must be a list of document ids")


def check_revs_diff_body(body: Any) -> None:
    if not isinstance(body, dict):
        raise bad_request("_revs_diff takes an object of id: [revisions]")
    for doc_id, revs in body.items():
        if not _doc_key(doc_id) or not _revs(revs):
            raise bad_request("_revs_diff takes an object of id: [revisions]")


def check_bulk_get_body(body: Any) -> None:
    docs = body.get("docs") if isinstance(body, dict) and set(body) == {"docs"} else None
    if not isinstance(docs, list):
        raise bad_request("_bulk_get takes {\"docs\": [{\"id\": …, \"rev\": …}]}")
    for d in docs:
        if (not isinstance(d, dict) or set(d) - {"id", "rev", "atts_since"}
                or not _doc_key(d.get("id")) or not d["id"]
                or ("rev" in d and not (isinstance(d["rev"], str) and _REV.match(d["rev"])))
                or ("atts_since" in d and not _revs(d["atts_since"]))):
            raise bad_request("each _bulk_get entry needs an id and may have a rev")


def check_all_docs_body(body: Any) -> None:
    if not isinstance(body, dict) or set(body) != {"keys"} or not _doc_keys(body["keys"]):
        raise bad_request("an _all_docs body holds only keys, a list of document ids")


BODY_CHECKS: dict[str, Callable[[Any], None]] = {
    "changes": check_changes_body,
    "revs_diff": check_revs_diff_body,
    "bulk_get": check_bulk_get_body,
    "all_docs": check_all_docs_body,
}

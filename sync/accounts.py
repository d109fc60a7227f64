"""Accounts in CouchDB `_users`. Roles name the scopes a user has.

A worker holds `worker` and `grid:<id>` per grid; a supervisor `supervisor` and
`community:<id>` per community; an admin `admin`. Deactivated users keep their document
(their visits name them) with `doorstep_active: false` and no roles.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sync.couch import Couch

ROLES = ("worker", "supervisor", "admin")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]{1,63}$")


class AccountError(ValueError):
    pass


@dataclass(frozen=True)
class Account:
    name: str
    display_name: str
    role: str
    grids: tuple[str, ...]
    communities: tuple[str, ...]
    active: bool

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Account:
        roles = doc.get("doorstep_roles") or doc.get("roles", [])
        role = next((r for r in ("admin", "supervisor", "worker") if r in roles), "")
        return cls(
            name=doc["name"],
            display_name=doc.get("display_name") or doc["name"],
            role=role,
            grids=tuple(r.split(":", 1)[1] for r in roles if r.startswith("grid:")),
            communities=tuple(r.split(":", 1)[1] for r in roles if r.startswith("community:")),
            active=doc.get("doorstep_active", True),
        )


def _doc_path(name: str) -> str:
    return "_users/" + quote(f"org.couchdb.user:{name}", safe="")


def roles_for(role: str, grids: list[str], communities: list[str]) -> list[str]:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if role == "worker" and not grids:
        raise AccountError("a worker needs at least one grid (--grid)")
    if role == "supervisor" and not communities:
        raise AccountError("a supervisor needs at least one community (--community)")
    return [role] + [f"grid:{g}" for g in grids] + [f"community:{c}" for c in communities]


def get(couch: Couch, name: str) -> dict[str, Any] | None:
    status, body = couch.request("GET", _doc_path(name))
    return body if status == 200 else None


def create(couch: Couch, name: str, role: str, *, password: str | None = None,
           display_name: str = "", grids: list[str] = (), communities: list[str] = ()
           ) -> tuple[Account, str]:
    """Create (or update) an account; returns it with the password that was set."""
    if not _NAME.match(name):
        raise AccountError(
            f"user name {name!r} must be 2-64 lower-case letters, digits, '_', '.' or '-'"
        )
    roles = roles_for(role, list(grids), list(communities))
    password = password or secrets.token_urlsafe(9)
    if len(password) < 8:
        raise AccountError("a password must have at least 8 characters")
    existing = get(couch, name) or {}
    doc = {
        **existing,
        "_id": f"org.couchdb.user:{name}",
        "name": name,
        "type": "user",
        "roles": roles,
        "doorstep_roles": roles,
        "display_name": display_name or existing.get("display_name") or name,
        "doorstep_active": True,
        "password": password,
    }
    _save(couch, doc)
    return Account.from_doc(doc), password


def reset_password(couch: Couch, name: str, password: str | None = None) -> str:
    doc = _require(couch, name)
    password = password or secrets.token_urlsafe(9)
    if len(password) < 8:
        raise AccountError("a password must have at least 8 characters")
    doc["password"] = password
    _save(couch, doc)
    return password


def deactivate(couch: Couch, name: str) -> None:
    doc = _require(couch, name)
    doc["doorstep_active"] = False
    doc["roles"] = []
    _save(couch, doc)


def account(couch: Couch, name: str) -> Account | None:
    doc = get(couch, name)
    return Account.from_doc(doc) if doc else None


def all_accounts(couch: Couch) -> list[Account]:
    _, body = couch.request("GET", "_users/_all_docs", params={"include_docs": True})
    return [
        Account.from_doc(r["doc"]) for r in (body or {}).get("rows", [])
        if r["id"].startswith("org.couchdb.user:") and "doorstep_roles" in r["doc"]
    ]


def _require(couch: Couch, name: str) -> dict[str, Any]:
    doc = get(couch, name)
    if doc is None:
        raise AccountError(f"no user named {name!r}")
    return doc


def _save(couch: Couch, doc: dict[str, Any]) -> None:
    status, body = couch.request("PUT", _doc_path(doc["name"]), body=doc)
    if status not in (201, 202):
        raise AccountError(f"could not save user {doc['name']!r}: {(body or {}).get('reason')}")

"""Push subscriptions: one document per browser endpoint, in the server-only push database.

A user may have several devices; a device (one endpoint) belongs to whoever subscribed it
last. Subscriptions are never replicated to phones. They go when their user logs out on that
device, turns notifications off, or when the push service answers 404/410.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from typing import Any
from urllib.parse import urlsplit

from sync.couch import Couch
from sync.push_outbox import iso, push_db

MAX_ENDPOINT = 2048


class InvalidSubscription(ValueError):
    pass


def subscription_id(endpoint: str) -> str:
    return "subscription:" + hashlib.sha256(endpoint.encode()).hexdigest()[:32]


def _b64url(value: Any, field: str, size: int) -> str:
    if not isinstance(value, str):
        raise InvalidSubscription(f"keys.{field} must be base64url text")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise InvalidSubscription(f"keys.{field} must be base64url text") from None
    if len(raw) != size:
        raise InvalidSubscription(f"keys.{field} must decode to {size} bytes, got {len(raw)}")
    return value


def parse(body: Any, *, allow_http: bool = False) -> dict[str, Any]:
    """The `PushSubscription.toJSON()` a browser sends, checked; raises InvalidSubscription."""
    if not isinstance(body, dict):
        raise InvalidSubscription("subscription must be an object with endpoint and keys")
    endpoint = body.get("endpoint")
    if not isinstance(endpoint, str) or len(endpoint) > MAX_ENDPOINT:
        raise InvalidSubscription("subscription.endpoint must be a URL")
    parts = urlsplit(endpoint)
    # The server will POST to this URL: only push services (https) may be named, so a
    # subscription cannot point the server at something on its own network.
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise InvalidSubscription("subscription.endpoint must be an https:// URL")
    keys = body.get("keys")
    if not isinstance(keys, dict):
        raise InvalidSubscription("subscription.keys must hold p256dh and auth")
    p256dh = _b64url(keys.get("p256dh"), "p256dh", 65)
    auth = _b64url(keys.get("auth"), "auth", 16)
    return {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}}


class Subscriptions:
    def __init__(self, couch: Couch) -> None:
        self.couch = couch
        self.db = push_db(couch)

    def save(self, user: str, subscription: dict[str, Any], *, device: str = "",
             session: str = "", lang: str = "", now: float | None = None) -> dict[str, Any]:
        """Store (or take over) the subscription of one endpoint for `user`."""
        now = time.time() if now is None else now
        doc_id = subscription_id(subscription["endpoint"])
        current = self.couch.get(self.db, doc_id) or {}
        doc = {
            "_id": doc_id,
            "type": "subscription",
            "user": user,
            "device": device[:64],
            "session": session,
            "lang": lang[:16],
            **subscription,
            "created_at": current.get("created_at", iso(now)) if current.get("user") == user
            else iso(now),
            "updated_at": iso(now),
        }
        if current:
            doc["_rev"] = current["_rev"]
        return self.couch.put(self.db, doc)

    def for_users(self, users: list[str]) -> dict[str, list[dict[str, Any]]]:
        if not users:
            return {}
        status, body = self.couch.request(
            "POST", f"{self.db}/_design/push/_view/subscriptions_by_user",
            params={"include_docs": "true"}, body={"keys": sorted(set(users))},
        )
        found: dict[str, list[dict[str, Any]]] = {}
        for row in (body or {}).get("rows", []) if status == 200 else []:
            if row.get("doc"):
                found.setdefault(row["key"], []).append(row["doc"])
        return found

    def for_user(self, user: str) -> list[dict[str, Any]]:
        return self.for_users([user]).get(user, [])

    def get_many(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        status, body = self.couch.request("POST", f"{self.db}/_all_docs",
                                          params={"include_docs": "true"},
                                          body={"keys": sorted(set(ids))})
        rows = (body or {}).get("rows", []) if status == 200 else []
        return {r["id"]: r["doc"] for r in rows if r.get("doc")}

    def delete_ids(self, ids: list[str]) -> int:
        docs = self.get_many(ids)
        if not docs:
            return 0
        results = self.couch.bulk_docs(
            self.db, [{"_id": d["_id"], "_rev": d["_rev"], "_deleted": True}
                      for d in docs.values()])
        return sum(1 for r in results if r.get("ok"))

    def remove(self, user: str, *, device: str | None = None, session: str | None = None,
               endpoint: str | None = None) -> int:
        """Delete `user`'s subscriptions, narrowed to one device, session or endpoint."""
        doomed = [
            d["_id"] for d in self.for_user(user)
            if (device is None or d.get("device") == device)
            and (session is None or d.get("session") == session)
            and (endpoint is None or d.get("endpoint") == endpoint)
        ]
        return self.delete_ids(doomed)


def remove_user_subscriptions(couch: Couch, user: str, device: str | None = None,
                              session: str | None = None) -> int:
    """For logout: no more notifications for `user` on that device (or session, or any)."""
    return Subscriptions(couch).remove(user, device=device, session=session)

"""What each worker's phone last told the server about its sync: the dashboard's "12 pending
as of 09:14".

Only the phone knows how many of its changes the server does not have yet, so the field app
reports it (`POST /api/device-status`, server/api/devices.py). Reports live in
`doorstep_devices`, a server-only database like the push databases: admin-only, never
replicated to a phone, one document per user and device (`device:<user>:<device>`), the
latest report overwriting the previous one. A user keeps at most MAX_PER_USER devices;
a report from a new one drops the longest silent.

Each document also keeps the grids its user held when reporting, so a dashboard finds the
devices of its grids with one view read; the user's current account then decides whether
they still belong there (a worker moved to another community, or deactivated, drops out).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from server.errors import CouchUnavailable
from sync import naming
from sync.accounts import Account
from sync.console_queries import WorkerActivity, parse_time
from sync.couch import Couch
from sync.hub import WorkerSeen
from sync.provision import ensure_database

MAX_PER_USER = 5
# What the field app's sync.js calls a failure (its `classify`), plus documents refused.
ERROR_KINDS = ("auth", "forbidden", "network", "server", "storage", "refused")
# A supervisor's first look in the morning should catch yesterday's visits still on a phone,
# and a phone that has not synced for two working days.
PENDING_LATE = timedelta(hours=8)
SYNC_LATE = timedelta(days=2)

DESIGN: dict[str, Any] = {
    "_id": "_design/devices",
    "language": "javascript",
    "views": {
        "by_user": {"map": "function (doc) { if (doc.type === 'device') emit(doc.user, null); }"},
        "by_grid": {
            "map": "function (doc) { if (doc.type === 'device') for (var i = 0; i < "
            "doc.grids.length; i++) emit(doc.grids[i], doc.user); }",
        },
    },
}


def devices_db(couch: Couch) -> str:
    return couch.name(naming.DEVICES)


def ensure_devices_db(couch: Couch) -> list[str]:
    return ensure_database(couch, devices_db(couch), DESIGN)


def stamp(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class DeviceReport:
    """One report, as the phone sent it (already checked by the API)."""

    device: str
    app_version: str
    pending: int  # local changes the server is not known to have
    pending_visits: int  # of which visits
    last_sync: str | None  # the phone's last complete sync, both ways
    last_error: str | None  # one of ERROR_KINDS, or None after a clean sync


@dataclass(frozen=True)
class DeviceStatus:
    user: str
    device: str
    app_version: str
    pending: int
    pending_visits: int
    last_sync: str | None
    last_error: str | None
    reported_at: str  # the server's clock: "as of" for the figures above
    first_reported_at: str = ""  # when this device first reported

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> DeviceStatus:
        return cls(doc["user"], doc["device"], doc.get("app_version", ""),
                   doc.get("pending", 0), doc.get("pending_visits", 0), doc.get("last_sync"),
                   doc.get("last_error"), doc["reported_at"],
                   doc.get("first_reported_at", doc["reported_at"]))

    def late(self, now: datetime) -> str | None:
        """"pending" when changes were waiting at a report long ago, "sync" when the phone's
        last complete sync is old (or never happened); None when all is well."""
        if self.pending and now - parse_time(self.reported_at) > PENDING_LATE:
            return "pending"
        if self.last_sync is None or now - parse_time(self.last_sync) > SYNC_LATE:
            return "sync"
        return None


def doc_id(user: str, device: str) -> str:
    return f"device:{user}:{device}"


class Devices:
    def __init__(self, couch: Couch) -> None:
        self.couch = couch
        self.db = devices_db(couch)
        self._db_path = quote(self.db, safe="")

    def save(self, user: str, grids: Iterable[str], report: DeviceReport,
             now: datetime | None = None) -> DeviceStatus:
        """Store `user`'s report from one device, replacing that device's previous one."""
        now = now or datetime.now(UTC)
        reported_at = stamp(now)
        last_sync = report.last_sync
        if last_sync is not None and last_sync > reported_at:
            last_sync = reported_at  # a phone clock ahead of ours: it cannot have synced later
        path = f"{self._db_path}/{quote(doc_id(user, report.device), safe='')}"
        for _ in range(5):  # two tabs of one phone report at once: 409, re-read, write again
            current = self.couch.get(self.db, doc_id(user, report.device))
            doc = {
                "_id": doc_id(user, report.device), "type": "device", "user": user,
                "device": report.device, "grids": sorted(set(grids)),
                # A page not yet controlled by its service worker does not know its version.
                "app_version": report.app_version or (current or {}).get("app_version", ""),
                "pending": report.pending, "pending_visits": report.pending_visits,
                "last_sync": last_sync, "last_error": report.last_error,
                "reported_at": reported_at,
                "first_reported_at": (current or {}).get("first_reported_at", reported_at),
            }
            if current:
                doc["_rev"] = current["_rev"]
            status, body = self.couch.request("PUT", path, body=doc)
            if status in (200, 201, 202):
                if current is None:
                    self._trim(user)
                return DeviceStatus.from_doc(doc)
            if status != 409:
                raise CouchUnavailable(f"saving a device status failed: {status} {body}")
        raise CouchUnavailable("saving a device status kept conflicting; try again")

    def for_user(self, user: str) -> list[DeviceStatus]:
        return _newest_first(DeviceStatus.from_doc(d) for d in self._docs_of(user))

    def _docs_of(self, user: str) -> list[dict[str, Any]]:
        status, body = self.couch.request(
            "GET", f"{self._db_path}/_design/devices/_view/by_user",
            params={"key": user, "include_docs": True})
        if status != 200:
            raise CouchUnavailable(f"reading device statuses failed: {status} {body}")
        return [r["doc"] for r in body["rows"] if r.get("doc")]

    def in_grids(self, grids: Sequence[str]) -> dict[str, list[DeviceStatus]]:
        """Devices of the workers who hold one of these grids now, newest report first."""
        if not grids:
            return {}
        status, body = self.couch.request(
            "POST", f"{self._db_path}/_design/devices/_view/by_grid",
            params={"include_docs": True}, body={"keys": sorted(set(grids))})
        if status != 200:
            raise CouchUnavailable(f"reading device statuses failed: {status} {body}")
        docs = {r["id"]: r["doc"] for r in body["rows"] if r.get("doc")}
        current = self._workers_of(sorted({d["user"] for d in docs.values()}), set(grids))
        found: dict[str, list[DeviceStatus]] = {}
        for doc in docs.values():
            if doc["user"] in current:
                found.setdefault(doc["user"], []).append(DeviceStatus.from_doc(doc))
        return {user: _newest_first(devices) for user, devices in sorted(found.items())}

    def _workers_of(self, users: list[str], grids: set[str]) -> set[str]:
        """Those of `users` whose account is active now and holds one of `grids`."""
        if not users:
            return set()
        status, body = self.couch.request(
            "POST", "_users/_all_docs", params={"include_docs": True},
            body={"keys": [f"org.couchdb.user:{u}" for u in users]})
        if status != 200:
            raise CouchUnavailable(f"reading accounts failed: {status} {body}")
        accounts = [Account.from_doc(r["doc"]) for r in body["rows"] if r.get("doc")]
        return {a.name for a in accounts
                if a.active and a.role == "worker" and grids.intersection(a.grids)}

    def _trim(self, user: str) -> None:
        """Keep the MAX_PER_USER devices heard from last; the others go."""
        docs = sorted(self._docs_of(user), key=lambda d: (d["reported_at"], d["device"]),
                      reverse=True)
        stale = [{"_id": d["_id"], "_rev": d["_rev"], "_deleted": True}
                 for d in docs[MAX_PER_USER:]]
        if stale:
            self.couch.bulk_docs(self.db, stale)  # a 409 means another request trimmed it


def _newest_first(devices: Iterable[DeviceStatus]) -> list[DeviceStatus]:
    return sorted(devices, key=lambda d: (d.reported_at, d.device), reverse=True)


# --- the dashboard's sync health ------------------------------------------------------------


@dataclass(frozen=True)
class WorkerHealth:
    """One worker on the dashboard: what the server received from them (through the hub) and
    what each of their phones last reported."""

    worker: str
    activity: WorkerActivity | None  # their synced visits in the scope; None before the first
    seen: WorkerSeen | None
    devices: list[DeviceStatus]  # newest report first

    @property
    def app_version(self) -> str:
        """Without a report from a phone: the version their newest visit was recorded with."""
        if self.seen and self.seen.app_version:
            return self.seen.app_version
        return self.activity.app_version if self.activity else ""


def sync_health(workers: Sequence[WorkerActivity], seen: dict[str, WorkerSeen],
                devices: dict[str, list[DeviceStatus]]) -> list[WorkerHealth]:
    """Every worker with synced visits in the scope or a phone that reported in it: a worker
    whose pushes all fail has no visit on the server, and is the one to see."""
    activity = {w.worker: w for w in workers}
    return [WorkerHealth(name, activity.get(name), seen.get(name),
                         in_use(devices.get(name, [])))
            for name in sorted(activity.keys() | devices.keys())]


def in_use(devices: Sequence[DeviceStatus]) -> list[DeviceStatus]:
    """Leave out the phones a worker has moved on from: nothing was waiting on it when it fell
    silent, and another phone of hers started reporting after that (a logout wipes the
    phone's id, so every logout and login would otherwise leave a line that turns red). A
    phone still holding changes always stays, and so do two phones used side by side."""
    return [d for d in devices
            if d.pending or not any(e.first_reported_at > d.reported_at for e in devices)]

"""Delivery figures of push notifications for one scope over a period.

Attribution. A delivery names, when it is queued, the scopes it counts in (`scopes`):
`community:<id>` and `street:<id>` of the grid its request is about (an assignment, a
returned visit, an urgent need), or, for a daily digest, of every grid of its worker; and
`all`. Fixed when queued, so a community's history stays its own whatever the directory
says later. The outbox's `figures/by_scope` view (sync/push_outbox.py) has one row per
scope and delivery, keyed [scope, created_at]: the figures of a scope over a period are
one range read, as long as that scope queued in that period and no longer. Deliveries
queued before they named their scopes sit under `legacy` and are attributed when read,
by the current account of their user (a worker's grids, a supervisor's communities).

Figures: deliveries by kind and outcome, attempts and retries, latency from queued to
accepted by the push service (p50/p95, nearest rank), the latest deliveries that ended
undelivered with the reason recorded, and who in the scope has no device to notify.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from server.errors import CouchUnavailable
from sync import accounts
from sync.accounts import Account
from sync.couch import Couch
from sync.directory import Directory
from sync.leases import Lease
from sync.push_outbox import (
    EXPIRED,
    FAILED,
    GONE,
    INTERRUPTED,
    PENDING,
    POLICIES,
    SENDING,
    SENT,
    STATES,
    iso,
    outbox_db,
    parse_iso,
    push_db,
)

log = logging.getLogger("doorstep.push.figures")

ALL, LEGACY = "all", "legacy"
KINDS = tuple(POLICIES)
PERIOD_DAYS = (1, 7, 30)
DEFAULT_DAYS = 7
FAILURES_SHOWN = 20
ATTRIBUTION_SECONDS = 60.0  # how long the queue side trusts its copy of directory and accounts

# What a supervisor asks: was it delivered, is it still on its way, and if not, why not.
OUTCOMES = ("delivered", "waiting", "failed", "expired", "interrupted", "gone")
OUTCOME_OF = {SENT: "delivered", PENDING: "waiting", SENDING: "waiting", FAILED: "failed",
              EXPIRED: "expired", INTERRUPTED: "interrupted", GONE: "gone"}
ENDED_UNDELIVERED = frozenset({FAILED, EXPIRED, INTERRUPTED, GONE})


# --- attribution ------------------------------------------------------------------------------


def scope_keys(communities: Iterable[str], street_of: dict[str, str]) -> list[str]:
    """The scopes a delivery concerning these communities counts in."""
    wanted = sorted(set(communities))
    streets = sorted({street_of[c] for c in wanted if street_of.get(c)})
    return [f"community:{c}" for c in wanted] + [f"street:{s}" for s in streets] + [ALL]


def communities_of(account: Account, grid_community: dict[str, str]) -> list[str]:
    """The communities a person's notifications concern: a worker's grids', a supervisor's."""
    if account.role == "supervisor":
        return list(account.communities)
    return [grid_community[g] for g in account.grids if g in grid_community]


class Attribution:
    """Scopes for requests being queued, from a copy of the directory and the accounts that
    is at most ATTRIBUTION_SECONDS old. Never raises: with CouchDB out of reach it keeps its
    last copy (or counts the delivery under `all` only)."""

    def __init__(self, couch: Couch, max_age: float = ATTRIBUTION_SECONDS) -> None:
        self.couch = couch
        self.max_age = max_age
        self.grid_community: dict[str, str] = {}
        self.street_of: dict[str, str] = {}
        self.user_communities: dict[str, list[str]] = {}
        self._directory_at = self._accounts_at = -math.inf

    def scopes(self, request: dict[str, Any]) -> list[str]:
        self._refresh_directory()
        grid = request.get("grid")
        if grid:
            communities = [self.grid_community[grid]] if grid in self.grid_community else []
        else:  # a digest: about every grid of its worker
            self._refresh_accounts()
            communities = self.user_communities.get(request.get("user", ""), [])
        return scope_keys(communities, self.street_of)

    def _refresh_directory(self) -> None:
        if time.monotonic() - self._directory_at < self.max_age:
            return
        try:
            directory = Directory(self.couch)
            self.grid_community = {g.id: g.community for g in directory.grids()}
            self.street_of = {d["_id"].split(":", 1)[1]: d.get("street", "")
                              for d in directory.entries("community")}
        except CouchUnavailable as exc:
            log.warning("deliveries attributed with an older directory: %s", exc)
        self._directory_at = time.monotonic()

    def _refresh_accounts(self) -> None:
        if time.monotonic() - self._accounts_at < self.max_age:
            return
        try:
            self.user_communities = {a.name: communities_of(a, self.grid_community)
                                     for a in accounts.all_accounts(self.couch) if a.active}
        except CouchUnavailable as exc:
            log.warning("digests attributed with older accounts: %s", exc)
        self._accounts_at = time.monotonic()


# --- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One delivery as the view has it."""

    id: str
    kind: str
    state: str
    attempts: int
    created_at: str
    sent_at: str | None
    user: str
    communities: tuple[str, ...]
    last_status: int | None
    last_error: str | None
    last_attempt_at: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Delivery:
        (kind, state, attempts, sent_at, user, communities, last_status, last_error,
         last_attempt_at) = row["value"]
        return cls(row["id"], kind, state, int(attempts), row["key"][1], sent_at, user or "",
                   tuple(communities), last_status, last_error, last_attempt_at)

    @property
    def latency(self) -> float | None:
        """Seconds from queued to accepted by the push service (delivered ones only)."""
        if self.state != SENT or not self.sent_at:
            return None
        return max(0.0, parse_iso(self.sent_at) - parse_iso(self.created_at))


def read(couch: Couch, scope: str, since: str) -> list[Delivery]:
    """Deliveries queued at or after `since` that count in `scope`."""
    body = couch.view(outbox_db(couch), "figures", "by_scope", startkey=[scope, since],
                      endkey=[scope, "\ufff0"])
    return [Delivery.from_row(r) for r in body["rows"]]


def devices_by_user(couch: Couch, users: Iterable[str]) -> dict[str, int]:
    """How many subscribed devices each of these users has (absent: none)."""
    keys = sorted(set(users))
    if not keys:
        return {}
    db = quote(push_db(couch), safe="")
    status, body = couch.request("POST", f"{db}/_design/push/_view/subscriptions_by_user",
                                 body={"keys": keys})
    if status != 200:
        raise CouchUnavailable(f"subscriptions of {len(keys)} users not read: {status} {body}")
    counts: dict[str, int] = {}
    for row in body["rows"]:
        counts[row["key"]] = counts.get(row["key"], 0) + 1
    return counts


class IndexWarmer:
    """Keeps the figures view built, so the first page after the morning's fan-out does not
    wait for it: on pouchdb-server a view indexes ~1 ms per changed delivery, 10,000 of them
    ~15 s (docs/benchmarks.md). The view is queried once the outbox has been quiet for a
    whole step interval, so the indexing never competes with a fan-out in progress. The
    update sequence is only compared for equality, never parsed."""

    def __init__(self, couch: Couch) -> None:
        self.couch = couch
        self.db = outbox_db(couch)
        self.seen: Any = None  # the outbox's update_seq at the previous step
        self.indexed: Any = None  # … when the view was last brought up to date

    def step(self, lease: Lease | None = None) -> bool:
        """Returns whether the view was brought up to date."""
        status, info = self.couch.request("GET", quote(self.db, safe=""))
        if status != 200:
            raise CouchUnavailable(f"reading {self.db} failed: {status} {info}")
        seq, quiet = info["update_seq"], info["update_seq"] == self.seen
        self.seen = seq
        if not quiet or seq == self.indexed:
            return False
        self.couch.view(self.db, "figures", "by_scope", limit=0)
        self.indexed = seq
        return True


# --- figures ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    name: str
    display_name: str
    role: str  # worker | supervisor
    grids: tuple[str, ...]
    communities: tuple[str, ...]
    devices: int


@dataclass(frozen=True)
class Failure:
    at: str
    kind: str
    user: str
    state: str
    status: int | None
    reason: str


@dataclass
class Figures:
    scope: str
    days: int
    since: str
    total: int = 0
    by_state: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATES, 0))
    by_outcome: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    by_kind: dict[str, dict[str, int]] = field(
        default_factory=lambda: {k: dict.fromkeys(OUTCOMES, 0) for k in KINDS})
    by_community: dict[str, dict[str, int]] = field(default_factory=dict)
    attempts: int = 0
    retries: int = 0  # attempts after the first
    retried: int = 0  # deliveries that needed more than one attempt
    latency_p50: float | None = None  # seconds
    latency_p95: float | None = None
    delivered_measured: int = 0  # deliveries the latency is computed from
    failures: list[Failure] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)

    @property
    def workers(self) -> list[Person]:
        return [p for p in self.people if p.role == "worker"]

    @property
    def supervisors(self) -> list[Person]:
        return [p for p in self.people if p.role == "supervisor"]

    @property
    def devices(self) -> int:
        return sum(p.devices for p in self.people)

    @property
    def without_device(self) -> list[Person]:
        return [p for p in self.people if p.devices == 0]

    def as_json(self) -> dict[str, Any]:
        workers, supervisors = self.workers, self.supervisors
        return {
            "scope": self.scope, "days": self.days, "since": self.since, "total": self.total,
            "by_state": self.by_state, "by_outcome": self.by_outcome, "by_kind": self.by_kind,
            "by_community": self.by_community,
            "attempts": self.attempts, "retries": self.retries, "retried": self.retried,
            "latency_seconds": {"p50": self.latency_p50, "p95": self.latency_p95,
                                "delivered": self.delivered_measured},
            "subscriptions": self.devices,
            "workers": {"total": len(workers),
                        "with_device": sum(1 for p in workers if p.devices)},
            "supervisors": {"total": len(supervisors),
                            "with_device": sum(1 for p in supervisors if p.devices)},
            "without_device": [{"name": p.name, "display_name": p.display_name, "role": p.role,
                                "grids": list(p.grids), "communities": list(p.communities)}
                               for p in self.without_device],
            "failures": [vars(f) for f in self.failures],
        }


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest rank: the smallest value with at least q of all values at or below it."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def compute(scope: str, days: int, since: str, deliveries: Iterable[Delivery],
            people: list[Person]) -> Figures:
    """The figures of these deliveries (already those of the scope and period)."""
    f = Figures(scope, days, since, people=people)
    latencies: list[float] = []
    ended: list[Delivery] = []
    for d in deliveries:
        outcome = OUTCOME_OF.get(d.state)
        if outcome is None:
            continue
        f.total += 1
        f.by_state[d.state] += 1
        f.by_outcome[outcome] += 1
        f.by_kind.setdefault(d.kind, dict.fromkeys(OUTCOMES, 0))[outcome] += 1
        for c in d.communities:
            row = f.by_community.setdefault(c, {"total": 0, **dict.fromkeys(OUTCOMES, 0)})
            row["total"] += 1
            row[outcome] += 1
        f.attempts += d.attempts
        f.retries += max(0, d.attempts - 1)
        f.retried += 1 if d.attempts > 1 else 0
        if d.latency is not None:
            latencies.append(d.latency)
        if d.state in ENDED_UNDELIVERED:
            ended.append(d)
    latencies.sort()
    f.delivered_measured = len(latencies)
    f.latency_p50, f.latency_p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
    ended.sort(key=lambda d: d.last_attempt_at or d.created_at, reverse=True)
    f.failures = [Failure(d.last_attempt_at or d.created_at, d.kind, d.user, d.state,
                          d.last_status, d.last_error or "") for d in ended[:FAILURES_SHOWN]]
    return f


def people_in(couch: Couch, everyone: list[Account], grids: set[str],
              communities: set[str]) -> list[Person]:
    """Active workers of these grids and supervisors of these communities, with their
    subscribed devices: who the scope's notifications go to."""
    chosen = [a for a in everyone if a.active and (
        (a.role == "worker" and grids.intersection(a.grids))
        or (a.role == "supervisor" and communities.intersection(a.communities)))]
    devices = devices_by_user(couch, (a.name for a in chosen))
    return sorted((Person(a.name, a.display_name, a.role, a.grids, a.communities,
                          devices.get(a.name, 0)) for a in chosen),
                  key=lambda p: (p.role != "worker", p.devices > 0, p.name))


def scope_figures(couch: Couch, scope: str, grids: dict[str, str], days: int,
                  now: float | None = None) -> Figures:
    """Figures of `scope` ("community:<id>", "street:<id>" or "all") over the last `days`.

    `grids` maps every grid of the scope to its community (the caller has checked that the
    user may read them). Two range reads of the view (the scope's rows, the legacy rows),
    one read of the accounts and one of the subscriptions of the people found.
    """
    if days not in PERIOD_DAYS:
        raise ValueError(f"days must be one of {PERIOD_DAYS}")
    now = time.time() if now is None else now
    since = iso(now - days * 86400)
    communities = set(grids.values())
    everyone = accounts.all_accounts(couch)
    deliveries = read(couch, scope, since)
    legacy = read(couch, LEGACY, since)
    if legacy:
        deliveries += _attributed(legacy, everyone, grids, communities, scope == ALL)
    return compute(scope, days, since, deliveries,
                   people_in(couch, everyone, set(grids), communities))


def _attributed(legacy: list[Delivery], everyone: list[Account], grids: dict[str, str],
                communities: set[str], everything: bool) -> list[Delivery]:
    """Older deliveries that belong to the scope by their user's account as it is now."""
    grid_community = dict(grids)
    of_user = {a.name: communities_of(a, grid_community) for a in everyone}
    out = []
    for d in legacy:
        mine = sorted(set(of_user.get(d.user, [])) & communities)
        if mine or everything:
            out.append(Delivery(d.id, d.kind, d.state, d.attempts, d.created_at, d.sent_at,
                                d.user, tuple(mine), d.last_status, d.last_error,
                                d.last_attempt_at))
    return out

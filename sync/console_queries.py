"""What the supervisor console shows, computed from the hub.

Cross-grid pages read the hub view `grid_rows` (sync/design.py) one grid at a time into a
`GridSnapshot`: the grid's households, its visits and reviews since the start of the
window, its needs, assignments and open conflicts. Every figure (coverage, overdue
households, the review queue, needs by state…) is a pure function of snapshots.

The window reaches back far enough for every rule that looks at the past: the current
quarter (coverage), the longest visit interval (overdue: a household with no visit in the
window is overdue whatever its tags) and the last 14 days (visits per worker and day).
Visits older than the window are history: they show on household pages and in exports,
not in the review queue.

Only the hub copier writes to the hub, so a snapshot stays right until that grid's copy
moves on: snapshots are cached per grid under the grid's copy checkpoint and the window,
and a page recomputes only the grids whose data changed.
"""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from time import monotonic
from typing import Any

from sync import digest, schema
from sync.couch import Couch
from sync.hub import Checkpoint, Hub

OUTCOMES = schema.OUTCOMES
NEED_STATES = schema.NEED_EVENTS  # a need's state is the furthest event it reached
NEED_OPEN_DAYS = 7  # a need not resolved this many days after it was raised is overdue
NEED_URGENT_DAYS = 1
WORKER_DAYS = 14  # the "visits per worker per day" chart
LOADERS = 4  # grids read from the hub at once
FRESH_WAIT = 0.3  # seconds a page waits for re-reads before showing the previous snapshot


# --- time -----------------------------------------------------------------------------------


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def utc_key(day: date, tz: tzinfo) -> str:
    """Local midnight of `day` as the UTC time string documents use (and views sort by)."""
    return datetime.combine(day, time(), tz).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Period:
    """"Today" in the community's time zone, and the windows that follow from it."""

    today: date
    tz: tzinfo
    default_frequency_days: int = 91

    @classmethod
    def now(cls, tz: tzinfo, config: dict[str, Any]) -> Period:
        return cls(datetime.now(tz).date(), tz, int(config["default_frequency_days"]))

    @property
    def quarter_start(self) -> date:
        return quarter_start(self.today)

    @property
    def window_start(self) -> date:
        # One day more than the longest interval: a household whose latest visit is older
        # than the window is overdue today, so the window decides every due state.
        return min(self.quarter_start, self.today - timedelta(days=self.default_frequency_days + 1),
                   self.today - timedelta(days=WORKER_DAYS - 1))

    @property
    def worker_days(self) -> list[date]:
        return [self.today - timedelta(days=n) for n in range(WORKER_DAYS - 1, -1, -1)]

    def key(self, day: date) -> str:
        return utc_key(day, self.tz)

    def local_day(self, timestamp: str) -> date:
        return parse_time(timestamp).astimezone(self.tz).date()


# --- rows -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Visit:
    id: str
    grid: str
    household: str
    visited_at: str
    author: str
    outcome: str
    visit_type: str
    amends: str | None
    assignment: str | None
    app_version: str
    created_at: str


@dataclass(frozen=True)
class Review:
    id: str
    grid: str
    visit: str
    decision: str
    author: str
    reason: str
    at: str


@dataclass
class Need:
    need_id: str
    grid: str
    household: str = ""
    category: str = ""
    text: str = ""
    urgent: bool = False
    state: str = "raised"
    to: str = ""
    evaluation: str = ""
    raised_at: str = ""
    updated_at: str = ""
    raised_by: str = ""

    @property
    def deadline(self) -> datetime | None:
        if not self.raised_at:
            return None
        days = NEED_URGENT_DAYS if self.urgent else NEED_OPEN_DAYS
        return parse_time(self.raised_at) + timedelta(days=days)

    def overdue(self, now: datetime) -> bool:
        unresolved = NEED_STATES.index(self.state) < NEED_STATES.index("resolved")
        return unresolved and self.deadline is not None and now > self.deadline


@dataclass
class Assignment:
    id: str
    grid: str
    household: str
    worker: str
    due: str
    reason: str
    author: str
    at: str
    cancelled: bool = False
    visited_at: str = ""

    def status(self, today: date) -> str:
        """open, visited, overdue or cancelled."""
        if self.cancelled:
            return "cancelled"
        if self.visited_at:
            return "visited"
        return "overdue" if date.fromisoformat(self.due) < today else "open"


@dataclass(frozen=True)
class Conflict:
    id: str
    grid: str
    household: str
    path: str
    at: str


@dataclass(frozen=True)
class GridSnapshot:
    grid: str
    version: str  # the hub copy this was read from
    window: str  # UTC key of the window start
    households: dict[str, tuple[str, list[str], str]]  # id → (created_at, tags, building)
    visits: list[Visit]  # in the window, oldest first
    reviews: list[Review]  # in the window, oldest first
    needs: list[Need]
    assignments: list[Assignment]
    conflicts: list[Conflict]  # open ones
    as_of: str | None = None  # the hub copy's "data as of" when this was read


def as_of(snaps: Iterable[GridSnapshot]) -> str | None:
    """The oldest "data as of" of these snapshots; None when one grid was never copied."""
    times = [s.as_of for s in snaps]
    if not times or any(t is None for t in times):
        return None
    return min(t for t in times if t is not None)


def _rows(couch: Couch, hub_db: str, start: list[Any], end: list[Any]) -> list[dict[str, Any]]:
    return couch.view(hub_db, "hub", "grid_rows", startkey=start, endkey=end,
                      reduce=False)["rows"]


def load_snapshot(couch: Couch, hub_db: str, grid: str, window: str,
                  version: str = "", as_of: str | None = None) -> GridSnapshot:
    """Read one grid's console rows from the hub (five key ranges of `grid_rows`)."""
    g = grid
    households = {r["key"][2]: (r["value"][0], r["value"][1], r["value"][2])
                  for r in _rows(couch, hub_db, [g, "household"], [g, "household", {}])}
    visits = [
        Visit(r["id"], g, v[0], r["key"][2], v[1], v[2], v[3], v[4], v[5], v[6], v[7])
        for r in _rows(couch, hub_db, [g, "visit", window], [g, "visit", {}])
        for v in [r["value"]]
    ]
    reviews = [
        Review(r["id"], g, v[0], v[1], v[2], v[3], r["key"][2])
        for r in _rows(couch, hub_db, [g, "review", window], [g, "review", {}])
        for v in [r["value"]]
    ]
    needs = _needs(g, _rows(couch, hub_db, [g, "need"], [g, "need", {}]))
    # 'assignment' < 'assignment_done' < 'conflict' in CouchDB's collation: one range.
    tail = _rows(couch, hub_db, [g, "assignment"], [g, "conflict", {}])
    assignments, conflicts = _assignments(g, tail), _conflicts(g, tail)
    return GridSnapshot(g, version, window, households, visits, reviews, needs, assignments,
                        conflicts, as_of)


def _needs(grid: str, rows: Iterable[dict[str, Any]]) -> list[Need]:
    needs: dict[str, Need] = {}
    for r in rows:
        need_id, at = r["key"][2], r["key"][3]
        event, household, category, text, urgent, to, evaluation, author = r["value"]
        n = needs.setdefault(need_id, Need(need_id, grid))
        n.household = n.household or household
        if event == "raised":
            n.category, n.text = n.category or category or "", n.text or text or ""
            n.urgent = n.urgent or bool(urgent)
            if not n.raised_at or at < n.raised_at:
                n.raised_at, n.raised_by = at, author
        if event == "dispatched" and to:
            n.to = to
        if event == "evaluated" and evaluation:
            n.evaluation = evaluation
        if event in NEED_STATES and NEED_STATES.index(event) > NEED_STATES.index(n.state):
            n.state = event
        n.updated_at = max(n.updated_at, at)
    return list(needs.values())


def _assignments(grid: str, rows: list[dict[str, Any]]) -> list[Assignment]:
    found = {
        r["id"]: Assignment(r["id"], grid, *r["value"], at=r["key"][2])
        for r in rows if r["key"][1] == "assignment"
    }
    for r in rows:
        if r["key"][1] != "assignment_done" or r["key"][2] not in found:
            continue
        a = found[r["key"][2]]
        event, at = r["value"][0], r["value"][1]
        if event == "cancelled":
            a.cancelled = True
        elif event == "visited" and (not a.visited_at or at < a.visited_at):
            a.visited_at = at
    return sorted(found.values(), key=lambda a: (a.due, a.at))


def _conflicts(grid: str, rows: list[dict[str, Any]]) -> list[Conflict]:
    return [Conflict(r["id"], grid, r["value"][0], r["value"][1], r["key"][3])
            for r in rows if r["key"][1] == "conflict" and r["key"][2] == "open"]


# --- due dates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    grid: str
    household: str
    tags: list[str]
    special_care: bool
    last_visit: str | None  # visited_at of the latest visit in the window
    due: date | None  # None: no visit in the window
    status: str  # overdue | week | later


def due_states(snap: GridSnapshot, config: dict[str, Any], period: Period) -> list[Due]:
    """Each household's due state by the field app's rule (sync/digest.py)."""
    last: dict[str, tuple[str, str]] = {}
    for v in snap.visits:  # oldest first: the last one wins
        last[v.household] = (v.visited_at, v.outcome)
    out = []
    for hid, (_created, tags, _building) in snap.households.items():
        household = {"tags": tags}
        visit = last.get(hid)
        due = digest.due_date(household, visit, config, period.tz)
        out.append(Due(snap.grid, hid, tags, digest.is_special_care(household, config),
                       visit[0] if visit else None, due, digest.status(due, period.today)))
    return out


# --- reviews --------------------------------------------------------------------------------


def visit_states(snap: GridSnapshot) -> dict[str, str]:
    """submitted → approved, or returned → amended (by a newer visit) → that one approved."""
    latest: dict[str, Review] = {}
    for r in snap.reviews:
        if r.visit not in latest or r.at >= latest[r.visit].at:
            latest[r.visit] = r
    amended = {v.amends for v in snap.visits if v.amends}
    states = {}
    for v in snap.visits:
        review = latest.get(v.id)
        if review is None:
            states[v.id] = "submitted"
        elif review.decision == "approved":
            states[v.id] = "approved"
        else:
            states[v.id] = "amended" if v.id in amended else "returned"
    return states


@dataclass(frozen=True)
class QueueFilter:
    grid: str = ""
    worker: str = ""
    day_from: date | None = None
    day_to: date | None = None
    outcome: str = ""


@dataclass(frozen=True)
class QueueItem:
    visit: Visit
    returned_reason: str  # when this visit amends a returned one: why it was returned


def review_queue(snaps: Sequence[GridSnapshot], period: Period,
                 f: QueueFilter = QueueFilter()) -> list[QueueItem]:
    """Synced visits awaiting review, newest first."""
    items = []
    for snap in snaps:
        if f.grid and snap.grid != f.grid:
            continue
        states = visit_states(snap)
        reasons = {r.visit: r.reason for r in snap.reviews if r.decision == "returned"}
        for v in snap.visits:
            if states[v.id] != "submitted":
                continue
            if (f.worker and v.author != f.worker) or (f.outcome and v.outcome != f.outcome):
                continue
            day = period.local_day(v.visited_at)
            if (f.day_from and day < f.day_from) or (f.day_to and day > f.day_to):
                continue
            items.append(QueueItem(v, reasons.get(v.amends or "", "")))
    items.sort(key=lambda i: i.visit.visited_at, reverse=True)
    return items


# --- the dashboard --------------------------------------------------------------------------


@dataclass
class GridCoverage:
    grid: str
    total: int = 0
    visited: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)  # latest outcome this quarter
    overdue: int = 0
    special_care_overdue: int = 0
    awaiting_review: int = 0
    open_conflicts: int = 0


@dataclass(frozen=True)
class WorkerActivity:
    worker: str
    per_day: list[int]  # one count per day of Period.worker_days
    last_visit_at: str  # when their latest synced visit was recorded on the phone
    app_version: str


@dataclass
class Dashboard:
    grids: list[GridCoverage]
    special_care_past_due: list[Due]
    workers: list[WorkerActivity]
    needs_by_state: dict[str, int]
    overdue_needs: list[Need]

    @property
    def total(self) -> GridCoverage:
        t = GridCoverage("")
        for g in self.grids:
            t.total += g.total
            t.visited += g.visited
            t.overdue += g.overdue
            t.special_care_overdue += g.special_care_overdue
            t.awaiting_review += g.awaiting_review
            t.open_conflicts += g.open_conflicts
            for k, n in g.by_outcome.items():
                t.by_outcome[k] = t.by_outcome.get(k, 0) + n
        return t


@dataclass(frozen=True)
class GridFigures:
    """Everything the dashboard takes from one grid: computed once per snapshot and day."""

    coverage: GridCoverage
    past_due: list[Due]  # special-care households overdue
    per_day: dict[str, dict[date, int]]  # worker → local day → visits, last 14 days
    latest: dict[str, Visit]  # worker → their most recently recorded visit


def grid_figures(snap: GridSnapshot, config: dict[str, Any], period: Period) -> GridFigures:
    since = period.key(period.quarter_start)
    first = period.key(period.worker_days[0])
    latest_outcome: dict[str, str] = {}
    per_day: dict[str, Counter[date]] = defaultdict(Counter)
    latest: dict[str, Visit] = {}
    for v in snap.visits:  # oldest first
        if v.visited_at >= since and v.household in snap.households:
            latest_outcome[v.household] = v.outcome
        if v.visited_at >= first:
            per_day[v.author][period.local_day(v.visited_at)] += 1
        if v.author not in latest or v.created_at > latest[v.author].created_at:
            latest[v.author] = v
    dues = due_states(snap, config, period)
    states = visit_states(snap)
    cov = GridCoverage(
        snap.grid, len(snap.households), len(latest_outcome),
        dict(Counter(latest_outcome.values())),
        sum(d.status == "overdue" for d in dues),
        sum(d.status == "overdue" and d.special_care for d in dues),
        sum(s == "submitted" for s in states.values()), len(snap.conflicts),
    )
    past_due = [d for d in dues if d.special_care and d.status == "overdue"]
    return GridFigures(cov, past_due, {w: dict(c) for w, c in per_day.items()}, latest)


def coverage(snap: GridSnapshot, config: dict[str, Any], period: Period) -> GridCoverage:
    return grid_figures(snap, config, period).coverage


def dashboard(snaps: Sequence[GridSnapshot], config: dict[str, Any], period: Period,
              now: datetime | None = None,
              figures: Sequence[GridFigures] | None = None) -> Dashboard:
    """The dashboard of these grids; `figures` (one per snapshot) when already computed."""
    now = now or datetime.now(UTC)
    if figures is None:
        figures = [grid_figures(s, config, period) for s in snaps]
    days = period.worker_days
    per_day: dict[str, Counter[date]] = defaultdict(Counter)
    latest: dict[str, Visit] = {}
    past_due: list[Due] = []
    for f in figures:
        for worker, counts in f.per_day.items():
            per_day[worker].update(counts)
        for worker, v in f.latest.items():
            if worker not in latest or v.created_at > latest[worker].created_at:
                latest[worker] = v
        past_due += f.past_due
    workers = [
        WorkerActivity(w, [per_day[w][d] for d in days], v.created_at, v.app_version)
        for w, v in sorted(latest.items())
    ]
    past_due.sort(key=lambda d: (d.due or date.min, d.grid, d.household))
    needs = [n for s in snaps for n in s.needs]
    overdue_needs = sorted((n for n in needs if n.overdue(now)), key=lambda n: n.raised_at)
    return Dashboard(
        [f.coverage for f in figures], past_due, workers,
        {s: c for s in NEED_STATES if (c := sum(n.state == s for n in needs))}, overdue_needs,
    )


# --- assignments and needs across grids -----------------------------------------------------


def assignments(snaps: Sequence[GridSnapshot], period: Period, status: str = ""
                ) -> list[tuple[Assignment, str]]:
    out = [(a, a.status(period.today)) for s in snaps for a in s.assignments]
    return [(a, s) for a, s in out if not status or s == status]


def needs(snaps: Sequence[GridSnapshot], now: datetime, state: str = "",
          overdue_only: bool = False) -> list[Need]:
    out = [n for s in snaps for n in s.needs
           if (not state or n.state == state) and (not overdue_only or n.overdue(now))]
    out.sort(key=lambda n: (not n.overdue(now), n.raised_at))
    return out


# --- search and household pages -------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    grid: str
    household: str
    term: str


def search(couch: Couch, hub_db: str, text: str, grids: set[str], limit: int = 50
           ) -> tuple[list[Found], bool]:
    """Households whose name, phone, address or id starts with `text`, in these grids.

    Returns (matches, more): `more` when there were more than `limit`.
    """
    term = text.strip().lower()
    if not term:
        return [], False
    found: dict[str, Found] = {}
    skip = 0
    while len(found) <= limit:
        rows = couch.view(hub_db, "hub", "lookup", startkey=["term", term],
                          endkey=["term", term + "\ufff0"], limit=500, skip=skip)["rows"]
        for r in rows:
            grid, household = r["value"]
            if grid in grids and household not in found:
                found[household] = Found(grid, household, r["key"][1])
        if len(rows) < 500:
            break
        skip += 500
    ordered = sorted(found.values(), key=lambda f: (f.term != term, f.household))
    return ordered[:limit], len(ordered) > limit


def household_history(couch: Couch, hub_db: str, household: str) -> list[dict[str, Any]]:
    """Every document about a household in any grid (visits, reviews, needs, assignments,
    ledger changes, conflicts), oldest first."""
    rows = couch.view(hub_db, "hub", "lookup", startkey=["household", household],
                      endkey=["household", household, {}], include_docs=True)["rows"]
    return [r["doc"] for r in rows if r.get("doc")]


# --- the cache ------------------------------------------------------------------------------


class Snapshots:
    """Snapshots per grid, re-read only when the hub holds a newer copy of the grid.

    A page waits for the re-reads it needs at most `wait` seconds; a grid whose re-read is
    not done by then is shown from its previous snapshot (the page's "data as of" is the
    snapshots' own, so it says so) and the re-read finishes in the background. A grid never
    read before is always waited for. The hub job and the console's own writes re-read
    (`warm`) the grids they changed, so pages rarely wait at all.
    """

    def __init__(self, couch: Couch, hub: Hub, wait: float = FRESH_WAIT) -> None:
        self.couch = couch
        self.hub = hub
        self.wait = wait
        self._cache: dict[str, GridSnapshot] = {}
        self._figures: dict[str, tuple[tuple[Any, ...], GridFigures]] = {}
        self._loading: dict[tuple[str, str, str], Future[GridSnapshot]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(LOADERS, thread_name_prefix="console-load")

    def get(self, grids: Iterable[str], period: Period,
            status: dict[str, Checkpoint] | None = None,
            wait: float | None = None) -> list[GridSnapshot]:
        grids = list(grids)
        status = self.hub.status() if status is None else status
        window = period.key(period.window_start)
        found: dict[str, GridSnapshot] = {}
        pending: dict[str, Future[GridSnapshot]] = {}
        for g in grids:
            checkpoint = status.get(g) or Checkpoint(g, 0, None)
            with self._lock:
                cached = self._cache.get(g)
            if cached is not None and cached.window == window \
                    and cached.version == checkpoint.version:
                found[g] = cached
            else:
                pending[g] = self._load(g, window, checkpoint)
        deadline = monotonic() + (self.wait if wait is None else wait)
        for g, future in pending.items():
            with self._lock:
                cached = self._cache.get(g)
            fallback = cached if cached is not None and cached.window == window else None
            try:
                found[g] = future.result(
                    None if fallback is None else max(0.0, deadline - monotonic()))
            except TimeoutError:
                found[g] = fallback  # type: ignore[assignment]
        return [found[g] for g in grids]

    def cached(self) -> int:
        with self._lock:
            return len(self._cache)

    def warm(self, grids: Iterable[str]) -> None:
        """Re-read these grids now if a page has looked at them (their window is known)."""
        status = self.hub.status()
        futures = []
        for g in grids:
            with self._lock:
                cached = self._cache.get(g)
            checkpoint = status.get(g) or Checkpoint(g, 0, None)
            if cached is not None and cached.version != checkpoint.version:
                futures.append(self._load(g, cached.window, checkpoint))
        for future in futures:
            future.result()

    def _load(self, grid: str, window: str, checkpoint: Checkpoint) -> Future[GridSnapshot]:
        """One re-read per grid, window and hub copy, however many pages ask meanwhile."""
        key = (grid, window, checkpoint.version)
        with self._lock:
            future = self._loading.get(key)
            if future is None:
                future = self._pool.submit(self._read, key, checkpoint)
                self._loading[key] = future
        return future

    def _read(self, key: tuple[str, str, str], checkpoint: Checkpoint) -> GridSnapshot:
        grid, window, version = key
        try:
            snap = load_snapshot(self.couch, self.hub.db, grid, window, version,
                                 checkpoint.as_of)
            with self._lock:
                self._cache[grid] = snap
            return snap
        finally:
            with self._lock:
                self._loading.pop(key, None)

    def figures(self, snaps: Sequence[GridSnapshot], config: dict[str, Any], period: Period
                ) -> list[GridFigures]:
        """Each snapshot's dashboard figures, computed once per snapshot, day and config."""
        setting = json.dumps(config.get("tags"), sort_keys=True) + str(
            config.get("default_frequency_days"))
        out = []
        for snap in snaps:
            key = (snap.grid, snap.version, snap.window, period.today, setting)
            with self._lock:
                found = self._figures.get(snap.grid)
            if found is None or found[0] != key:
                found = (key, grid_figures(snap, config, period))
                with self._lock:
                    self._figures[snap.grid] = found
            out.append(found[1])
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

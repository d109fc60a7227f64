"""The daily digest's counts: households due this week, overdue, and special-care among them.

The due rule is the field app's (pwa/js/due.js, docs/field-app.md), in Python, so the
morning notification and the phone's list agree:

- interval = the smallest `frequency_days` among the household's tags and its present
  members' tags, or `default_frequency_days` when smaller (all from the grid's config:tags);
- next due = local date of the last visit + interval; when that visit reached nobody
  (nobody_home, refused) the revisit is due after min(interval, 7) days;
- never visited → overdue; due before today → overdue; due by Sunday of this week
  (weeks run Monday to Sunday) → due this week.

`special_care` counts the households with a special-care tag among those due this week or
overdue. Dates are local dates in the configured time zone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sync import naming
from sync.couch import Couch

FAILED_REVISIT_DAYS = 7
FAILED_OUTCOMES = frozenset({"nobody_home", "refused"})


@dataclass(frozen=True)
class Digest:
    due_this_week: int = 0
    overdue: int = 0
    special_care: int = 0

    def __add__(self, other: Digest) -> Digest:
        return Digest(self.due_this_week + other.due_this_week, self.overdue + other.overdue,
                      self.special_care + other.special_care)

    @property
    def empty(self) -> bool:
        return not (self.due_this_week or self.overdue)


def tags_of(household: dict[str, Any]) -> set[str]:
    tags = set(household.get("tags") or [])
    for member in (household.get("members") or {}).values():
        if member.get("status") != "moved_out":
            tags.update(member.get("tags") or [])
    return tags


def is_special_care(household: dict[str, Any], config: dict[str, Any]) -> bool:
    specs = config.get("tags") or {}
    return any((specs.get(t) or {}).get("special_care") for t in tags_of(household))


def interval_days(household: dict[str, Any], config: dict[str, Any]) -> int:
    days = config["default_frequency_days"]
    specs = config.get("tags") or {}
    for tag in tags_of(household):
        f = (specs.get(tag) or {}).get("frequency_days")
        if isinstance(f, int | float) and f < days:
            days = f
    return int(days)


def local_day(timestamp: str, tz: tzinfo) -> date:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).astimezone(tz).date()


def due_date(household: dict[str, Any], last_visit: tuple[str, str] | None,
             config: dict[str, Any], tz: tzinfo) -> date | None:
    """`last_visit` is (visited_at, outcome) of the latest visit; None: never visited."""
    if last_visit is None:
        return None
    interval = interval_days(household, config)
    visited_at, outcome = last_visit
    wait = min(interval, FAILED_REVISIT_DAYS) if outcome in FAILED_OUTCOMES else interval
    return local_day(visited_at, tz) + timedelta(days=wait)


def end_of_week(day: date) -> date:
    return day + timedelta(days=6 - day.weekday())  # Monday is 0, Sunday 6


def status(due: date | None, today: date) -> str:
    """'overdue', 'week' or 'later', as the field app says it."""
    if due is None or due < today:
        return "overdue"
    return "week" if due <= end_of_week(today) else "later"


def count(households: Iterable[dict[str, Any]], last_visits: dict[str, tuple[str, str]],
          config: dict[str, Any], today: date, tz: tzinfo) -> Digest:
    """The digest of one grid: `last_visits` maps household_id → (visited_at, outcome)."""
    week = overdue = special = 0
    for h in households:
        s = status(due_date(h, last_visits.get(h["household_id"]), config, tz), today)
        if s == "later":
            continue
        week += s == "week"
        overdue += s == "overdue"
        special += is_special_care(h, config)
    return Digest(week, overdue, special)


def grid_digest(couch: Couch, grid: str, today: date, tz: tzinfo) -> Digest:
    """Read one grid database (households, the visit index, config:tags) and count."""
    db = naming.grid_db_name(grid, couch.prefix)
    config = couch.get(db, "config:tags")
    if config is None:
        return Digest()
    rows = couch.all_docs(db, startkey="household:", endkey="household:\ufff0",
                          include_docs=True)
    households = [r["doc"] for r in rows if r.get("doc") and not r["doc"].get("_deleted")]
    # visits_by_household emits [household, visited_at] → outcome, sorted, so the last row
    # of each household is its latest visit.
    view = couch.view(db, "grid", "visits_by_household")
    last: dict[str, tuple[str, str]] = {}
    for row in view["rows"]:
        household, visited_at = row["key"]
        last[household] = (visited_at, row["value"])
    return count(households, last, config, today, tz)


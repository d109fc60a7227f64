"""The console's long-lived parts on `app.state.console`: the hub, the snapshot cache, the
time zone, and the names pages show — the directory's and people's (cached briefly: they
change when an admin edits)."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from server import metrics
from server.settings import number_setting, timezone_setting
from sync import accounts
from sync.console_queries import FRESH_WAIT, Period, Snapshots
from sync.couch import Couch
from sync.directory import Directory
from sync.hub import Hub
from sync.leases import Lease

log = logging.getLogger("doorstep.console")

HUB_JOB = "hub-copy"
HUB_INTERVAL = 15.0  # seconds between two passes over every grid (DOORSTEP_HUB_INTERVAL)
NAMES_SECONDS = 30.0
WARM_INTERVAL = 60.0  # seconds between two checks that every grid's snapshot is current


def timezone(env: dict[str, str] | None = None) -> ZoneInfo:
    """What "today" and a day mean on pages (DOORSTEP_TIMEZONE)."""
    return timezone_setting(os.environ if env is None else env)


def hub_interval(env: dict[str, str] | None = None) -> float:
    return number_setting(os.environ if env is None else env, "DOORSTEP_HUB_INTERVAL",
                          HUB_INTERVAL, 0.2, 3600)


def fresh_wait(env: dict[str, str] | None = None) -> float:
    """DOORSTEP_CONSOLE_WAIT: seconds a page waits for grids the hub just copied before it
    shows their previous figures (and says as of when)."""
    return number_setting(os.environ if env is None else env, "DOORSTEP_CONSOLE_WAIT",
                          FRESH_WAIT, 0, 600)


@dataclass(frozen=True)
class Names:
    streets: dict[str, str]  # id → name
    communities: dict[str, tuple[str, str]]  # id → (name, street)
    people: dict[str, str]  # account name → display name (pages show people by name)


class Console:
    def __init__(self, couch: Couch, tz: ZoneInfo) -> None:
        self.couch = couch
        self.tz = tz
        self.hub = Hub(couch)
        self.snapshots = Snapshots(couch, self.hub, fresh_wait())
        self.directory = Directory(couch)
        self._names: Names | None = None
        self._names_at = -1e9
        self._stop = threading.Event()
        metrics.register_gauge(
            "doorstep_console_cached_grids",
            "Grids whose snapshot this replica's console holds in memory (~0.8 MiB each).",
            self.snapshots.cached)

    def keep_warm(self, interval: float = WARM_INTERVAL) -> None:
        """Read every grid's snapshot now and again whenever one is missing or out of date, in
        a thread of this replica: after a start, after midnight (each day has its own window)
        and after the other replica's hub copy, the first page would otherwise read the
        grids while someone waits (a county-wide dashboard: 270 grids, ~30 s cold)."""
        threading.Thread(target=self._warm_loop, args=(interval,), name="console-warm",
                         daemon=True).start()

    def _warm_loop(self, interval: float) -> None:
        while not self._stop.is_set():
            try:
                period = Period.now(self.tz, self.tag_config())
                self.snapshots.get([g.id for g in self.directory.grids()], period)
            except Exception as exc:  # noqa: BLE001 - CouchDB away or stopping: pages read lazily
                if not self._stop.is_set():
                    log.warning("console warm-up: %s", exc)
            self._stop.wait(interval)

    def names(self) -> Names:
        if self._names is None or time.monotonic() - self._names_at > NAMES_SECONDS:
            self._names = Names(
                {d["_id"].split(":", 1)[1]: d["name"] for d in self.directory.entries("street")},
                {d["_id"].split(":", 1)[1]: (d["name"], d["street"])
                 for d in self.directory.entries("community")},
                {a.name: a.display_name for a in accounts.all_accounts(self.couch)},
            )
            self._names_at = time.monotonic()
        return self._names

    def forget_names(self) -> None:
        self._names = None

    def tag_config(self) -> dict[str, Any]:
        return self.directory.tag_config()

    def copy(self, grid: str) -> None:
        """After a console write: the hub (and so every page) shows it at once."""
        self.hub.copy_grid(grid)
        self.snapshots.warm([grid])

    def job_step(self, lease: Lease) -> None:
        """One pass of the background hub copy over every grid in the directory."""
        grids = [g.id for g in self.directory.grids()]
        results = self.hub.copy_all(grids, keep_going=lease.keep)
        changed = [r.grid for r in results if r.copied]
        if changed:
            log.info("hub: copied %d revision(s) from %d grid(s)",
                     sum(r.copied for r in results), len(changed))
            self.hub.refresh_views()
            self.snapshots.warm(changed)

    def close(self) -> None:
        self._stop.set()
        self.snapshots.close()

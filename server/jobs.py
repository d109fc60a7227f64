"""This replica's background jobs, each run under a lease so that one replica runs it at once.

A subsystem adds its job with `app.state.jobs.add(name, step, interval=…)` before start-up
ends; `step(lease)` does one bounded round of work and calls `lease.keep()` between units
of work when a round can be long (see sync/leases.py). With DOORSTEP_BACKGROUND=0 a
replica runs no job at all (a pure web replica).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from server import metrics
from server.settings import Settings, number_setting
from sync.couch import Couch
from sync.leases import DEFAULT_TTL, Lease, LeasedJob, new_holder_id


def lease_ttl(env: dict[str, str] | None = None) -> float:
    """DOORSTEP_LEASE_TTL: seconds after which a silent holder's jobs move to another replica."""
    return number_setting(os.environ if env is None else env, "DOORSTEP_LEASE_TTL",
                          DEFAULT_TTL, 3, 3600)


class Jobs:
    def __init__(self, couch: Couch, settings: Settings, *, ttl: float | None = None) -> None:
        self.couch = couch
        self.enabled = settings.background
        self.holder = new_holder_id()
        self.ttl = lease_ttl() if ttl is None else ttl
        self.jobs: list[LeasedJob] = []
        metrics.register_gauge(
            "doorstep_job_lease_held",
            "1 when this replica holds the job's lease and runs it, else 0.", self._held)
        metrics.register_gauge(
            "doorstep_job_steps_total", "Rounds of work this replica ran, per job.",
            self._steps, kind="counter")

    def add(self, name: str, step: Callable[[Lease], None], *, interval: float = 5.0) -> None:
        # Keep the check interval under a third of the ttl, so renewals are never late.
        interval = min(interval, self.ttl / 3)
        margin = min(5.0, self.ttl / 6)
        self.jobs.append(LeasedJob(self.couch, name, step, holder=self.holder,
                                   interval=interval, ttl=self.ttl, margin=margin))

    def start(self) -> None:
        if self.enabled:
            for job in self.jobs:
                job.start()

    def stop(self) -> None:
        for job in self.jobs:
            job.stop()

    def _held(self) -> list[tuple[dict[str, str], float]] | None:
        if not self.enabled:
            return None
        return [({"job": j.job}, 1.0 if j.holding else 0.0) for j in self.jobs]

    def _steps(self) -> list[tuple[dict[str, str], float]] | None:
        if not self.enabled:
            return None
        return [({"job": j.job}, float(j.steps)) for j in self.jobs]

"""Rate limits on failed logins, per account and per client address.

A sliding window of failure times per key. Once a key has its limit of failures inside the
window, every login for it is refused with the seconds until the oldest failure leaves the
window, even with the right password: otherwise a guesser would learn when they hit it.
A success clears the account's failures (not the address's: one address may be guessing
many accounts).

Counts live in this process. With several replicas an attacker gets the limit once per
replica, which still bounds guessing to a handful per minute; a shared store is not worth
its cost here.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class LoginLimits:
    MAX_KEYS = 100_000  # memory bound when someone sprays random names

    def __init__(self, per_account: int, per_address: int, window: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_account = per_account
        self.per_address = per_address
        self.window = window
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, account: str, address: str) -> int | None:
        """Seconds to wait before another attempt, or None when one is allowed now."""
        waits = [self._wait(f"account:{account.lower()}", self.per_account),
                 self._wait(f"address:{address}", self.per_address)]
        blocked = [w for w in waits if w is not None]
        return max(blocked) if blocked else None

    def failed(self, account: str, address: str) -> None:
        now = self.clock()
        if len(self._failures) >= self.MAX_KEYS:
            self._prune(now)
        for key in (f"account:{account.lower()}", f"address:{address}"):
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, account: str) -> None:
        self._failures.pop(f"account:{account.lower()}", None)

    def _wait(self, key: str, limit: int) -> int | None:
        times = self._failures.get(key)
        if not times:
            return None
        now = self.clock()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        if len(times) < limit:
            return None
        return max(1, math.ceil(times[-limit] + self.window - now))

    def _prune(self, now: float) -> None:
        for key in [k for k, t in self._failures.items() if not t or t[-1] <= now - self.window]:
            del self._failures[key]
        while len(self._failures) >= self.MAX_KEYS:
            del self._failures[next(iter(self._failures))]

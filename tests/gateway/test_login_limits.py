"""Failed-login limits on a clock the test controls."""

from __future__ import annotations

from server.login_limits import LoginLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_account_is_locked_after_its_failures_until_the_window_passes() -> None:
    clock = Clock()
    limits = LoginLimits(per_account=3, per_address=100, window=60, clock=clock)
    for _ in range(3):
        assert limits.retry_after("zhang", "10.0.0.1") is None
        limits.failed("Zhang", "10.0.0.1")  # names are compared case-insensitively
        clock.now += 10
    assert limits.retry_after("zhang", "10.0.0.2") == 30  # now 1030; the first leaves at 1060
    assert limits.retry_after("li", "10.0.0.1") is None
    clock.now = 1060
    assert limits.retry_after("zhang", "10.0.0.1") is None


def test_an_address_is_limited_across_accounts() -> None:
    clock = Clock()
    limits = LoginLimits(per_account=100, per_address=4, window=60, clock=clock)
    for i in range(4):
        limits.failed(f"user{i}", "10.0.0.9")
    assert limits.retry_after("anyone", "10.0.0.9") == 60
    assert limits.retry_after("anyone", "10.0.0.8") is None


def test_a_success_clears_the_account_but_not_the_address() -> None:
    limits = LoginLimits(per_account=2, per_address=3, window=60, clock=Clock())
    limits.failed("zhang", "10.0.0.1")
    limits.succeeded("zhang")
    limits.failed("zhang", "10.0.0.1")
    assert limits.retry_after("zhang", "10.0.0.2") is None
    limits.failed("li", "10.0.0.1")
    assert limits.retry_after("wang", "10.0.0.1") == 60


def test_memory_stays_bounded_when_names_are_sprayed() -> None:
    clock = Clock()
    limits = LoginLimits(per_account=5, per_address=10**9, window=60, clock=clock)
    limits.MAX_KEYS = 50
    for i in range(500):
        clock.now += 1
        limits.failed(f"spray{i}", "10.0.0.1")
    assert len(limits._failures) <= 51

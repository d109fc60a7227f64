"""How bench scripts print what they measured: one line at a time, latencies as p50/p95."""

from __future__ import annotations

import statistics


def say(line: str = "") -> None:
    print(line, flush=True)  # flushed: a long run is followed through a pipe or a log


def pct(values: list[float], p: float) -> float:
    """The p-th percentile by nearest rank (no interpolation: small samples stay honest)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def ms(values: list[float]) -> str:
    return (f"p50 {1000 * statistics.median(values):7.1f} ms  "
            f"p95 {1000 * pct(values, 95):7.1f} ms  (n={len(values)})")

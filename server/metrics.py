"""Prometheus metrics of this server process, in the text exposition format (version 0.0.4).

Two kinds of figures:
- measured here: gateway requests (count and latency per CouchDB endpoint, method and
  status), recorded by `GatewayMetrics`, an ASGI middleware around the app, or by calling
  `observe_request` directly;
- read at scrape time from the subsystem that owns them: each registers a collector with
  `register_gauge(name, help, fn)`. A collector returns one number, a list of
  (labels, number), or None when it has no honest figure right now (the series is left
  out rather than reported as 0).

Written by hand rather than with prometheus_client: the format is a few lines of text and
the process has one registry.
"""

from __future__ import annotations

import math
import os
import resource
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

Labels = dict[str, str]
Sample = float | int | list[tuple[Labels, float]] | None

# Replication requests range from a cached _local checkpoint (ms) to a full _bulk_get (s).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# The path segments we name in labels (what replication uses); anything else is "other", so
# a label never carries a database name or a document id.
COUCH_ENDPOINTS = frozenset({
    "_session", "_changes", "_bulk_docs", "_bulk_get", "_revs_diff", "_local", "_all_docs",
})


@dataclass
class _Histogram:
    counts: list[int]
    total: float = 0.0
    n: int = 0


@dataclass(frozen=True)
class _Gauge:
    help: str
    fn: Callable[[], Sample]
    kind: str


class Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], _Histogram] = {}
        self._gauges: dict[str, _Gauge] = {}

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        key = (endpoint, method, str(status))
        with self._lock:
            h = self._requests.get(key)
            if h is None:
                h = self._requests[key] = _Histogram([0] * len(BUCKETS))
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    h.counts[i] += 1
            h.total += seconds
            h.n += 1

    def register_gauge(self, name: str, help: str, fn: Callable[[], Sample], *,
                       kind: str = "gauge") -> None:
        """Add (or replace) a collector read at every scrape; `kind` may be "counter"."""
        with self._lock:
            self._gauges[name] = _Gauge(help, fn, kind)

    def unregister(self, name: str) -> None:
        with self._lock:
            self._gauges.pop(name, None)

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            requests = {k: _Histogram(list(h.counts), h.total, h.n)
                        for k, h in self._requests.items()}
            gauges = dict(self._gauges)
        lines += _render_requests(requests)
        for name, gauge in sorted(gauges.items()):
            try:
                sample = gauge.fn()
            except Exception:  # a broken collector must not take the whole page down
                sample = None
            lines += _render_gauge(name, gauge, sample)
        return "\n".join(lines) + "\n"


def _render_requests(requests: dict[tuple[str, str, str], _Histogram]) -> list[str]:
    count = "doorstep_gateway_requests_total"
    hist = "doorstep_gateway_request_duration_seconds"
    lines = [f"# HELP {count} Requests through the replication gateway (/couch/).",
             f"# TYPE {count} counter"]
    for (endpoint, method, status), h in sorted(requests.items()):
        labels = _labels({"endpoint": endpoint, "method": method, "status": status})
        lines.append(f"{count}{labels} {h.n}")
    lines += [f"# HELP {hist} Time from request to the last byte of the gateway's answer.",
              f"# TYPE {hist} histogram"]
    for (endpoint, method, status), h in sorted(requests.items()):
        base = {"endpoint": endpoint, "method": method, "status": status}
        for bound, n in zip(BUCKETS, h.counts, strict=True):
            lines.append(f"{hist}_bucket{_labels({**base, 'le': _num(bound)})} {n}")
        lines.append(f"{hist}_bucket{_labels({**base, 'le': '+Inf'})} {h.n}")
        lines.append(f"{hist}_sum{_labels(base)} {_num(h.total)}")
        lines.append(f"{hist}_count{_labels(base)} {h.n}")
    return lines


def _render_gauge(name: str, gauge: _Gauge, sample: Sample) -> list[str]:
    if sample is None:
        return []
    rows: Iterable[tuple[Labels, float]] = (
        [({}, sample)] if isinstance(sample, int | float) else sample
    )
    body = [f"{name}{_labels(labels)} {_num(value)}" for labels, value in rows]
    if not body:
        return []
    return [f"# HELP {name} {gauge.help}", f"# TYPE {name} {gauge.kind}", *body]


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


REGISTRY = Registry()


def observe_request(endpoint: str, method: str, status: int, seconds: float) -> None:
    REGISTRY.observe_request(endpoint, method, status, seconds)


def register_gauge(name: str, help: str, fn: Callable[[], Sample], *,
                   kind: str = "gauge") -> None:
    REGISTRY.register_gauge(name, help, fn, kind=kind)


def couch_endpoint(path: str, mount: str = "/couch") -> str | None:
    """The endpoint label of a gateway path, or None when the path is not the gateway's."""
    if path != mount and not path.startswith(mount + "/"):
        return None
    parts = [p for p in path[len(mount):].split("/") if p]
    if not parts:
        return "root"
    if parts[0].startswith("_"):
        return parts[0] if parts[0] in COUCH_ENDPOINTS else "other"
    if len(parts) == 1:
        return "db"
    if parts[1].startswith("_"):
        return parts[1] if parts[1] in COUCH_ENDPOINTS else "other"
    return "doc" if len(parts) == 2 else "attachment"


class GatewayMetrics:
    """Times every /couch/ request, from its arrival to the end of the response body."""

    def __init__(self, app: ASGIApp, registry: Registry = REGISTRY, mount: str = "/couch"
                 ) -> None:
        self.app = app
        self.registry = registry
        self.mount = mount

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = couch_endpoint(scope["path"], self.mount) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            self.registry.observe_request(endpoint, scope["method"], status,
                                          time.perf_counter() - started)


# -- figures of the process itself (for sizing: memory and CPU per worker count) -------------

_STARTED = time.time()


def _resident_bytes() -> float | None:
    try:
        with open(f"/proc/{os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


register_gauge("process_start_time_seconds", "Start of this process, Unix time.",
               lambda: _STARTED)
register_gauge("process_resident_memory_bytes", "Resident memory of this process.",
               _resident_bytes)
register_gauge("process_cpu_seconds_total", "CPU time used by this process.", _cpu_seconds,
               kind="counter")

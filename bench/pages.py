"""Pages timed over HTTP as a signed-in user, for the bench scripts."""

from __future__ import annotations

import time

import httpx

HTML = {"accept": "text/html"}  # what a browser asks for: the console answers with its page


def signed_in(url: str, name: str, password: str) -> httpx.Client:
    c = httpx.Client(base_url=url, timeout=300)
    c.post("/api/login", json={"name": name, "password": password}).raise_for_status()
    return c


def timed(c: httpx.Client, path: str, headers: dict[str, str] | None = None) -> float:
    """Seconds for one GET; anything but a 200 ends the bench, since its figure would lie."""
    t = time.perf_counter()
    r = c.get(path, headers=headers)
    dt = time.perf_counter() - t
    if r.status_code != 200:
        raise SystemExit(f"{path}: HTTP {r.status_code} {r.text[:200]}")
    return dt

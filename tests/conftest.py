"""Shared fixtures: one real embedded CouchDB per test session, real servers over HTTP.

Each test gets its own database prefix (and so its own databases), and makes user names with
`unique_name`, so tests never see each other's data on the shared CouchDB process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from server.embedded_couch import EmbeddedCouch, free_port
from server.settings import Settings
from sync.couch import Couch
from sync.directory import Directory
from sync.provision import provision

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class CouchServer:
    url: str
    user: str
    password: str
    embedded: EmbeddedCouch


@pytest.fixture(scope="session")
def couch_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CouchServer]:
    var = tmp_path_factory.mktemp("couch-var")
    embedded = EmbeddedCouch(Settings(var_dir=var))
    embedded.start()
    try:
        yield CouchServer(embedded.url, embedded.user, embedded.password, embedded)
    finally:
        embedded.stop()


def wait_for(condition: Callable[[], Any], what: str, seconds: float = 20) -> Any:
    """Poll `condition` until it returns something truthy, and return that; fail naming
    `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def unique_name(stem: str) -> str:
    return f"{stem}{uuid.uuid4().hex[:8]}"


@pytest.fixture
def prefix() -> str:
    return unique_name("t") + "_"


@pytest.fixture
def couch(couch_server: CouchServer, prefix: str) -> Couch:
    """An admin connection with this test's own, freshly provisioned databases."""
    c = Couch(couch_server.url, couch_server.user, couch_server.password, prefix)
    provision(c)
    return c


@dataclass(frozen=True)
class Community:
    """A small hierarchy: one street, one community (A) with two grids, and a community B."""

    street: str
    community: str
    grids: tuple[str, str]
    other_community: str
    other_grid: str


def add_community(couch: Couch) -> Community:
    """Write the small hierarchy into the directory and provision its grid databases."""
    d = Directory(couch)
    d.add_street("S1", "城南街道")
    d.add_community("C1", "桂花社区", "S1")
    d.add_community("C2", "梧桐社区", "S1")
    d.add_grid("G1", "第一网格", "C1")
    d.add_grid("G2", "第二网格", "C1")
    d.add_grid("G9", "第九网格", "C2")
    provision(couch)
    return Community("S1", "C1", ("G1", "G2"), "C2", "G9")


@pytest.fixture
def community(couch: Couch) -> Community:
    return add_community(couch)


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    log: Path

    def client(self, **kw: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kw)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_server(couch_server: CouchServer, prefix: str, var: Path,
                 extra_env: dict[str, str] | None = None) -> RunningServer:
    """Run `doorstep serve` as its own process against the shared CouchDB."""
    port = free_port()
    env = {
        **os.environ,
        "DOORSTEP_COUCHDB_URL": couch_server.url,
        "DOORSTEP_COUCHDB_USER": couch_server.user,
        "DOORSTEP_COUCHDB_PASSWORD": couch_server.password,
        "DOORSTEP_DB_PREFIX": prefix,
        "DOORSTEP_VAR": str(var),
        "DOORSTEP_PORT": str(port),
        **(extra_env or {}),
    }
    log = var / "server.log"
    var.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve"], cwd=ROOT, env=env,
        stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    server = RunningServer(f"http://127.0.0.1:{port}", proc, env, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()}")
        try:
            if httpx.get(server.url + "/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not start:\n{log.read_text()}")


@pytest.fixture
def server(couch_server: CouchServer, couch: Couch, community: Community, prefix: str,
           tmp_path: Path) -> Iterator[RunningServer]:
    """A real Doorstep server over HTTP, on this test's databases."""
    s = start_server(couch_server, prefix, tmp_path / "server-var")
    try:
        yield s
    finally:
        s.stop()


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_options() -> dict[str, object]:
    """Launch options: Debian's Chromium when DOORSTEP_CHROMIUM names it, else Playwright's."""
    path = os.environ.get("DOORSTEP_CHROMIUM", "playwright")
    return {"args": CHROMIUM_ARGS, **({} if path == "playwright" else {"executable_path": path})}


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """One Playwright driver for the whole run: a second sync driver in the same thread fails."""
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(**chromium_options())
    try:
        yield b
    finally:
        b.close()

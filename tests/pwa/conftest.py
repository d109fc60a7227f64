"""The field app in a real Chromium against a real server and the embedded CouchDB.

Each test gets its own databases (a prefix), a server, a worker of grid G1 and a phone: a
persistent Chromium profile, so the service worker and IndexedDB survive closing and
reopening the browser, exactly as on a phone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, Playwright, expect

from sync import accounts, naming, schema
from sync.couch import Couch
from sync.directory import Directory
from sync.provision import provision
from tests.conftest import CouchServer, RunningServer, start_server, unique_name

PASSWORD = "correct-horse-1"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = {"width": 360, "height": 740}


def chromium_path() -> str | None:
    """DOORSTEP_CHROMIUM names a Chromium; 'playwright' (or nothing) means Playwright's own."""
    path = os.environ.get("DOORSTEP_CHROMIUM", "")
    return None if path in ("", "playwright") else path


@dataclass
class Field:
    """One grid (G1) with its worker, on a running server."""

    couch: Couch
    server: RunningServer
    worker: str
    db: str
    grid: str = "G1"
    other_db: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def put(self, *docs: dict[str, Any], db: str | None = None) -> None:
        """Write documents as the server would: each one valid by sync/schema.py."""
        for d in docs:
            schema.validate(d)
        results = self.couch.bulk_docs(db or self.db, list(docs))
        assert all("error" not in r for r in results), results

    def all(self, kind: str, db: str | None = None) -> list[dict[str, Any]]:
        rows = self.couch.all_docs(db or self.db, startkey=f"{kind}:", endkey=f"{kind}:\ufff0",
                                   include_docs=True)
        return [r["doc"] for r in rows]

    def get(self, doc_id: str) -> dict[str, Any] | None:
        return self.couch.get(self.db, doc_id)


def make_field(couch_server: CouchServer, var: Path, env: dict[str, str] | None = None) -> Field:
    prefix = unique_name("pwa") + "_"
    couch = Couch(couch_server.url, couch_server.user, couch_server.password, prefix)
    provision(couch)
    d = Directory(couch)
    d.add_street("S1", "城南街道")
    d.add_community("C1", "桂花社区", "S1")
    d.add_grid("G1", "第一网格", "C1")
    d.add_grid("G2", "第二网格", "C1")
    provision(couch)
    worker = unique_name("w")
    accounts.create(couch, worker, "worker", password=PASSWORD, grids=["G1"],
                    display_name="张网格")
    server = start_server(couch_server, prefix, var,
                          {"DOORSTEP_BACKGROUND": "0", "DOORSTEP_SESSION_CACHE_SECONDS": "0.2",
                           **(env or {})})
    return Field(couch, server, worker, naming.grid_db_name("G1", prefix),
                 other_db=naming.grid_db_name("G2", prefix))


@pytest.fixture
def field_server(couch_server: CouchServer, tmp_path: Path) -> Iterator[Field]:
    f = make_field(couch_server, tmp_path / "server")
    try:
        yield f
    finally:
        f.server.stop()


class Phone:
    """A Chromium profile on disk: close it and open it again like a phone's browser."""

    def __init__(self, playwright: Playwright, profile: Path, base_url: str) -> None:
        self.playwright = playwright
        self.profile = profile
        self.base_url = base_url
        self.context: BrowserContext | None = None
        self.errors: list[str] = []

    def open(self, offline: bool = False, service_workers: str = "allow") -> Page:
        """Start the browser. Requests that pass through a service worker's fetch handler
        (even untouched) escape Playwright's routing now and then, so tests that cut requests
        by routing run with service workers blocked; the worker never touches /couch anyway."""
        self.context = self.playwright.chromium.launch_persistent_context(
            str(self.profile), executable_path=chromium_path(), args=CHROMIUM_ARGS,
            headless=True, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
            locale="zh-CN", timezone_id="Asia/Shanghai", service_workers=service_workers,
            offline=offline, base_url=self.base_url,
        )
        self.context.set_default_timeout(15_000)
        page = self.context.pages[0] if self.context.pages else self.context.new_page()
        self.watch(page)
        return page

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda e: self.errors.append(
            f"pageerror: {e.name}: {e.message}\n{e.stack or ''}"))

    def new_page(self) -> Page:
        assert self.context is not None
        page = self.context.new_page()
        self.watch(page)
        return page

    def close(self) -> None:
        if self.context is not None:
            self.context.close()
            self.context = None


@pytest.fixture
def phone(playwright: Playwright, tmp_path: Path, field_server: Field) -> Iterator[Phone]:
    p = Phone(playwright, tmp_path / "phone-profile", field_server.server.url)
    # The machines running the suite are shared and slow at times: waits are generous (a test
    # that passes waits only as long as the app needs), for these tests only.
    expect.set_options(timeout=15_000)
    try:
        yield p
    finally:
        expect.set_options(timeout=5_000)
        p.close()
    assert not p.errors, p.errors

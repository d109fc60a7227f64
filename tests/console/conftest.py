"""A community office for the console's HTTP and browser tests: one real server per module.

Communities C1 (grids G1, G2) and C2 (grid G9) under street S1. Accounts by key (real names
are unique per module, `_users` being shared by the session): `sup1` supervisor of C1,
`sup2` supervisor of C2, `adm` admin, workers `w1` (G1), `w2` (G2), `w9` (G9). The hub copy
runs every second, so what a phone syncs reaches the console within a moment, and pages wait
for what the hub copied rather than show the previous figures (DOORSTEP_CONSOLE_WAIT).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from sync import accounts, naming, schema
from sync.couch import Couch
from sync.hub import Hub
from sync.provision import provision
from tests.conftest import (
    CouchServer,
    RunningServer,
    add_community,
    start_server,
    unique_name,
    wait_for,
)

PASSWORD = "correct-horse-1"
ACCOUNTS = {
    "sup1": ("supervisor", [], ["C1"]),
    "sup2": ("supervisor", [], ["C2"]),
    "adm": ("admin", [], []),
    "w1": ("worker", ["G1"], []),
    "w2": ("worker", ["G2"], []),
    "w9": ("worker", ["G9"], []),
}
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


class Console(httpx.Client):
    """A logged-in browser-less client of the console, with its CSRF token."""

    token: str = ""

    def csrf(self) -> str:
        if not self.token:
            page = self.get("/console/search", headers={"accept": "text/html"})
            assert page.status_code == 200, page.text
            self.token = _CSRF.search(page.text).group(1)
        return self.token

    def send_form(self, path: str, data: dict[str, Any] | None = None, *,
                  csrf: str | None = None, **kw: Any) -> httpx.Response:
        body = dict(data or {})
        body["csrf"] = self.csrf() if csrf is None else csrf
        return self.post(path, data=body, **kw)


@dataclass
class Office:
    couch: Couch
    server: RunningServer
    names: dict[str, str]
    hub: Hub
    extra: dict[str, Any] = field(default_factory=dict)

    def db(self, grid: str) -> str:
        return naming.grid_db_name(grid, self.couch.prefix)

    def put(self, grid: str, *docs: dict[str, Any]) -> list[dict[str, Any]]:
        schema.validate_all(docs)
        answer = self.couch.bulk_docs(self.db(grid), list(docs))
        assert all(r.get("ok") for r in answer), answer
        for doc, r in zip(docs, answer, strict=True):
            doc["_rev"] = r["rev"]
        return list(docs)

    def all(self, grid: str, kind: str) -> list[dict[str, Any]]:
        rows = self.couch.all_docs(self.db(grid), startkey=f"{kind}:", endkey=f"{kind}:\ufff0",
                                   include_docs=True)
        return [r["doc"] for r in rows]

    def login(self, key: str) -> Console:
        client = Console(base_url=self.server.url, timeout=60)
        r = client.post("/api/login", json={"name": self.names[key], "password": PASSWORD})
        assert r.status_code == 200, r.text
        return client

    def copy(self, *grids: str) -> None:
        for grid in grids or ("G1", "G2", "G9"):
            self.hub.copy_grid(grid)


@pytest.fixture(scope="module")
def office(couch_server: CouchServer, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Office]:
    prefix = unique_name("con") + "_"
    couch = Couch(couch_server.url, couch_server.user, couch_server.password, prefix)
    provision(couch)
    add_community(couch)
    names = {}
    for key, (role, grids, communities) in ACCOUNTS.items():
        names[key] = unique_name(key)
        accounts.create(couch, names[key], role, password=PASSWORD, grids=grids,
                        communities=communities, display_name=f"{key} 测试")
    var: Path = tmp_path_factory.mktemp("console-server")
    server = start_server(couch_server, prefix, var, {
        "DOORSTEP_HUB_INTERVAL": "1", "DOORSTEP_SESSION_CACHE_SECONDS": "0.3",
        "DOORSTEP_LEASE_TTL": "6", "DOORSTEP_CONSOLE_WAIT": "60"})
    try:
        yield Office(couch, server, names, Hub(couch))
    finally:
        server.stop()


# --- browsers -----------------------------------------------------------------------------------

def console(browser: Browser, office: Office, key: str) -> Page:
    """The supervisor's browser: the real login page, the real CSP."""
    page = browser.new_context(locale="zh-CN").new_page()
    page.goto(office.server.url + "/console/review")
    page.fill("input[name=name]", office.names[key])
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/review")
    return page


def reload_until(page: Page, url: str, selector: str, what: str) -> None:
    def shown() -> bool:
        page.goto(url)
        return page.locator(selector).count() > 0
    wait_for(shown, what)


def iso(days_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")

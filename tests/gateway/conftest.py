"""One small world per test module: a hierarchy, accounts of every role, households, and a
real Doorstep server over HTTP on the shared embedded CouchDB.

Communities C1 (grids G1, G2) and C2 (grid G9). Accounts, by key (the real names are unique
per module because `_users` is shared by the whole test session): `w1` worker of G1, `w2`
worker of G2, `w9` worker of G9, `sup1` supervisor of C1, `adm` admin.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from sync import accounts, naming
from sync.couch import Couch
from sync.provision import provision
from tests.conftest import (
    CouchServer,
    RunningServer,
    add_community,
    start_server,
    unique_name,
)
from tests.gateway import factories

PASSWORD = "correct-horse-1"
ACCOUNTS = {
    "w1": ("worker", ["G1"], []),
    "w2": ("worker", ["G2"], []),
    "w9": ("worker", ["G9"], []),
    "sup1": ("supervisor", [], ["C1"]),
    "adm": ("admin", [], []),
}
GRIDS = ("G1", "G2", "G9")


@dataclass
class World:
    couch: Couch
    server: RunningServer
    names: dict[str, str]  # account key → user name
    households: dict[str, str] = field(default_factory=dict)  # grid → a household id in it

    def db(self, grid: str) -> str:
        return naming.grid_db_name(grid, self.couch.prefix)

    def add_account(self, key: str, role: str, grids: list[str] = (),
                    communities: list[str] = ()) -> str:
        name = unique_name(key)
        accounts.create(self.couch, name, role, password=PASSWORD, grids=list(grids),
                        communities=list(communities), display_name=f"{key} 测试")
        self.names[key] = name
        return name

    def login(self, key: str) -> httpx.Client:
        client = self.server.client()
        r = client.post("/api/login", json={"name": self.names[key], "password": PASSWORD})
        assert r.status_code == 200, r.text
        return client


def build_world(couch_server: CouchServer, var: Path, extra_env: dict[str, str] | None = None
                ) -> tuple[Couch, dict[str, str], dict[str, str]]:
    prefix = unique_name("gw") + "_"
    couch = Couch(couch_server.url, couch_server.user, couch_server.password, prefix)
    provision(couch)
    add_community(couch)
    households = {}
    for grid in GRIDS:
        hid = f"{grid}-3-2-502"
        couch.put(naming.grid_db_name(grid, prefix), factories.household(grid, hid))
        households[grid] = hid
    return couch, {}, households


@pytest.fixture(scope="module")
def world(couch_server: CouchServer, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[World]:
    var = tmp_path_factory.mktemp("gateway-server")
    couch, names, households = build_world(couch_server, var)
    server = start_server(couch_server, couch.prefix, var,
                          {"DOORSTEP_SESSION_CACHE_SECONDS": "0.3", "DOORSTEP_BACKGROUND": "0"})
    w = World(couch, server, names, households)
    for key, (role, grids, communities) in ACCOUNTS.items():
        w.add_account(key, role, grids, communities)
    try:
        yield w
    finally:
        server.stop()

"""Probes and metrics a load balancer and Prometheus read from a real server over HTTP."""

from __future__ import annotations

import re
import time

from sync import naming
from sync.couch import Couch
from sync.provision import provision
from tests.conftest import RunningServer

SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? \S+$')


def metric_lines(server: RunningServer) -> list[str]:
    with server.client() as http:
        r = http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return r.text.splitlines()


def test_healthz_and_readyz_on_a_provisioned_server(server: RunningServer) -> None:
    with server.client() as http:
        assert http.get("/healthz").json()["ok"] is True
        r = http.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"ok": True}


def test_readyz_says_what_is_missing_until_provisioning_is_done(server: RunningServer,
                                                                 couch: Couch) -> None:
    leases = couch.name(naming.LEASES)
    couch.request("DELETE", leases)
    with server.client() as http:
        r = http.get("/readyz")
        assert r.status_code == 503
        assert r.json()["error"] == "not_ready"
        assert leases in r.json()["reason"] and "doorstep migrate" in r.json()["reason"]
        assert http.get("/healthz").status_code == 200, "alive, only not ready"
        provision(couch)
        assert http.get("/readyz").status_code == 200


def test_metrics_are_valid_exposition_text(server: RunningServer) -> None:
    lines = metric_lines(server)
    samples = [line for line in lines if line and not line.startswith("#")]
    assert samples, "some figures are always there"
    for line in samples:
        assert SAMPLE.match(line), line
    names = {line.split("{")[0].split(" ")[0] for line in samples}
    assert {"process_resident_memory_bytes", "process_cpu_seconds_total"} <= names


def test_gateway_requests_are_counted_and_timed_without_naming_the_database(
        server: RunningServer, couch: Couch) -> None:
    db = naming.grid_db_name("G1", couch.prefix)
    with server.client() as http:
        for _ in range(3):
            http.get(f"/couch/{db}/_changes", params={"since": "0"})
        http.post(f"/couch/{db}/_revs_diff", json={})
        http.get("/healthz")  # not the gateway: not counted
    lines = metric_lines(server)
    counts = [line for line in lines if line.startswith("doorstep_gateway_requests_total{")]
    changes = [line for line in counts if 'endpoint="_changes",method="GET"' in line]
    assert len(changes) == 1 and changes[0].endswith(" 3"), counts
    assert any('endpoint="_revs_diff",method="POST"' in line and line.endswith(" 1")
               for line in counts), counts
    assert not any(db in line for line in lines), "no database name in a label"
    inf = [line for line in lines if line.startswith(
        "doorstep_gateway_request_duration_seconds_bucket{") and 'endpoint="_changes"' in line
        and 'le="+Inf"' in line]
    assert inf and inf[0].endswith(" 3")



def test_hub_freshness_is_reported_from_the_hub_checkpoints(couch_server, couch: Couch,
                                                            community, prefix: str,
                                                            tmp_path) -> None:
    from sync.hub import Hub
    from tests.conftest import start_server

    Hub(couch).copy_all(["G1", "G2"])  # G9 never copied
    # No background jobs: the server's own hub copy would otherwise copy G9 first.
    s = start_server(couch_server, prefix, tmp_path / "hub-figures",
                     extra_env={"DOORSTEP_BACKGROUND": "0"})
    try:
        lines = metric_lines(s)
    finally:
        s.stop()
    figures = dict(line.rsplit(" ", 1) for line in lines
                   if line.startswith(("doorstep_hub_lag_seconds", "doorstep_hub_grids_not")))
    assert float(figures["doorstep_hub_grids_not_copied"]) == 1
    assert 0 <= float(figures["doorstep_hub_lag_seconds"]) < 3600


def figures_of(server: RunningServer) -> dict[str, float]:
    """Unlabelled samples by name."""
    return {name: float(value) for name, value in (
        line.rsplit(" ", 1) for line in metric_lines(server)
        if line and not line.startswith("#") and "{" not in line)}


def test_resolver_backlog_counts_conflicted_households_until_the_resolver_merges_them(
        couch_server, couch: Couch, community, prefix: str, tmp_path) -> None:
    from sync.hub import Hub
    from sync.resolver import Resolver
    from tests.conftest import start_server
    from tests.test_resolver import push_conflicts

    g1, g2 = (naming.grid_db_name(g, couch.prefix) for g in ("G1", "G2"))
    push_conflicts(couch, g1, "G1", 2)  # two phones edited the same households offline
    push_conflicts(couch, g2, "G2", 1)
    hub = Hub(couch)
    hub.copy_all(["G1", "G2", "G9"])
    # No background jobs: the test decides when the resolver and the hub copy run.
    s = start_server(couch_server, prefix, tmp_path / "backlog",
                     extra_env={"DOORSTEP_BACKGROUND": "0",
                                "DOORSTEP_METRICS_CACHE_SECONDS": "1"})
    try:
        before = figures_of(s)
        assert before["doorstep_resolver_backlog_households"] == 3, "summed over grids"
        assert before["doorstep_conflicted_other_documents"] == 0
        assert "doorstep_resolver_last_pass_timestamp_seconds" not in before, "never ran"

        started = time.time()
        Resolver(couch).run_once()
        hub.copy_all(["G1", "G2", "G9"])
        time.sleep(1.2)  # the replica's cache of installation figures
        after = figures_of(s)
    finally:
        s.stop()
    assert after["doorstep_resolver_backlog_households"] == 0
    assert started - 1 <= after["doorstep_resolver_last_pass_timestamp_seconds"] <= time.time()


def test_metrics_answer_without_the_installation_figures_while_couchdb_is_down(
        tmp_path) -> None:
    from server.embedded_couch import EmbeddedCouch
    from server.settings import Settings
    from tests.conftest import CouchServer, start_server

    own = EmbeddedCouch(Settings(var_dir=tmp_path / "couch"))
    own.start()
    stopped = False
    try:
        provision(Couch(own.url, own.user, own.password))
        s = start_server(CouchServer(own.url, own.user, own.password, own), "",
                         tmp_path / "server", {"DOORSTEP_BACKGROUND": "0",
                                               "DOORSTEP_METRICS_CACHE_SECONDS": "1"})
        try:
            assert "doorstep_resolver_backlog_households" in figures_of(s)
            own.stop()
            stopped = True
            time.sleep(1.2)
            figures = figures_of(s)  # a 200, not a 500
        finally:
            s.stop()
    finally:
        if not stopped:
            own.stop()
    assert "process_resident_memory_bytes" in figures
    for gone in ("doorstep_resolver_backlog_households",
                 "doorstep_resolver_last_pass_timestamp_seconds", "doorstep_hub_lag_seconds"):
        assert gone not in figures, f"{gone} left out rather than made up"

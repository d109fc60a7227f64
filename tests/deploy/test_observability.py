"""Probes and metrics a load balancer and Prometheus read from a real server over HTTP."""

from __future__ import annotations

import re

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

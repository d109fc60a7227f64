"""The embedded CouchDB: loopback only, CORS off, secrets private, supervised and persistent."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx

from server.embedded_couch import EmbeddedCouch, free_port
from server.settings import Settings
from sync.couch import Couch
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parent.parent


def test_lifecycle(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var")
    embedded = EmbeddedCouch(settings)
    embedded.start()
    try:
        assert embedded.url.startswith("http://127.0.0.1:")
        mode = stat.S_IMODE(os.stat(settings.secrets_path).st_mode)
        assert mode == 0o600
        couch = Couch(embedded.url, embedded.user, embedded.password)
        couch.check()
        couch.ensure_db("kept")
        couch.put("kept", {"_id": "doc1", "n": 1})

        # CORS is off: no browser on another origin can talk to it directly.
        r = httpx.get(embedded.url + "/", headers={"Origin": "http://elsewhere.example"})
        assert "access-control-allow-origin" not in r.headers

        # The admin account is required: anonymous requests cannot create databases.
        assert httpx.put(embedded.url + "/_config/admins/intruder", json="x").status_code == 401

        # Killed from outside: the supervisor restarts it on the same port, data intact.
        first_pid = embedded.pid
        os.kill(first_pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if embedded.pid != first_pid and embedded.restarts == 1:
                try:
                    if couch.get("kept", "doc1"):
                        break
                except Exception:  # noqa: BLE001 - still coming up
                    pass
            time.sleep(0.2)
        assert embedded.restarts == 1
        assert couch.get("kept", "doc1")["n"] == 1
    finally:
        embedded.stop()
    pid = embedded.pid
    assert pid is not None
    # Stopped with us: the process is gone (reaped, so signalling it fails).
    try:
        os.kill(pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive

    # Restarted later on the same folder: same credentials, data kept.
    again = EmbeddedCouch(settings)
    again.start()
    try:
        assert (again.user, again.password) == (embedded.user, embedded.password)
        couch = Couch(again.url, again.user, again.password)
        assert couch.get("kept", "doc1")["n"] == 1
    finally:
        again.stop()


def test_serve_stopped_by_sigterm_stops_its_couchdb_and_starts_again(tmp_path: Path) -> None:
    """What a service manager does (systemctl stop, docker stop): the embedded CouchDB goes
    with the server, and the next start finds the folder free."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DOORSTEP_")},
           "DOORSTEP_VAR": str(tmp_path / "var"), "DOORSTEP_PORT": str(free_port())}
    endpoint = tmp_path / "var" / "couchdb" / "endpoint.json"
    for _ in range(2):
        server = subprocess.Popen([sys.executable, "-m", "server.cli", "serve"], cwd=ROOT,
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for(lambda s=server: s.poll() is not None or _healthy(env["DOORSTEP_PORT"]),
                     "the server to start", seconds=60)
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            couch_pid = json.loads(endpoint.read_text())["pid"]
            server.send_signal(signal.SIGTERM)
            assert server.wait(30) == 0
        finally:
            if server.poll() is None:
                server.kill()
        assert not _running(couch_pid)
        assert not endpoint.exists()


def _healthy(port: str) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True

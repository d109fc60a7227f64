"""The embedded CouchDB: loopback only, CORS off, secrets private, supervised and persistent."""

from __future__ import annotations

import os
import signal
import stat
import time
from pathlib import Path

import httpx

from server.embedded_couch import EmbeddedCouch
from server.settings import Settings
from sync.couch import Couch


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

"""The embedded CouchDB stand-in: pouchdb-server as a supervised child process.

Started when no CouchDB URL is configured. It listens on 127.0.0.1 only, on a free port,
keeps its data under `<var>/couchdb`, has CORS off and an admin generated on first run. Its
log lines go to our log; if it dies it is restarted; it stops when we stop.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from server import settings as settings_mod
from server.errors import ConfigError

log = logging.getLogger("doorstep.couchdb")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
POUCHDB_SERVER = PROJECT_ROOT / "node_modules" / "pouchdb-server" / "bin" / "pouchdb-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedCouch:
    def __init__(self, settings: settings_mod.Settings, port: int | None = None) -> None:
        secrets = settings_mod.load_secrets(settings)
        self.user = secrets["embedded_admin_user"]
        self.password = secrets["embedded_admin_password"]
        self.node = settings.node
        self.data_dir = settings.var_dir / "couchdb"
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.restarts = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 30) -> None:
        if shutil.which(self.node) is None:
            raise ConfigError(
                f"Node.js ('{self.node}') was not found; install Node 20 or newer, "
                "or set DOORSTEP_NODE to its path"
            )
        if not POUCHDB_SERVER.exists():
            raise ConfigError(
                f"the embedded CouchDB is not installed ({POUCHDB_SERVER} is missing); "
                "run `npm ci` in the project folder"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        self._spawn()
        self._wait_ready(timeout)
        threading.Thread(target=self._supervise, name="couchdb-supervisor", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            proc = self._proc
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    # -- internals --------------------------------------------------------------------------

    def _write_config(self) -> None:
        """pouchdb-server hashes a plain admin password it finds in its config on start."""
        path = self.data_dir / "config.json"
        config = {
            "admins": {self.user: self.password},
            "httpd": {"enable_cors": False},
            "log": {"file": str(self.data_dir / "log.txt"), "level": "warning"},
            "couch_httpd_auth": {"timeout": 600},
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(config, f)

    def _spawn(self) -> None:
        port_in_use = _port_taken(self.port)
        if port_in_use:
            raise ConfigError(f"port {self.port} for the embedded CouchDB is already in use")
        cmd = [
            self.node, str(POUCHDB_SERVER), "--host", "127.0.0.1", "--port", str(self.port),
            "--dir", str(self.data_dir), "--config", str(self.data_dir / "config.json"),
        ]
        proc = subprocess.Popen(
            cmd, cwd=self.data_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        with self._lock:
            self._proc = proc
        threading.Thread(target=self._pump_log, args=(proc,), daemon=True).start()

    def _pump_log(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line:
                log.info("%s", _strip_ansi(line))

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc and self._proc.poll() is not None:
                raise ConfigError(
                    f"the embedded CouchDB exited at start (code {self._proc.returncode}); "
                    f"see {self.data_dir / 'log.txt'}"
                )
            try:
                with urllib.request.urlopen(self.url + "/", timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise ConfigError(f"the embedded CouchDB did not answer within {timeout:.0f} s")

    def _supervise(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            proc = self._proc
            if proc is None:
                return
            code = proc.wait()
            if self._stopping.is_set():
                return
            self.restarts += 1
            log.error("embedded CouchDB exited with code %s; restarting in %.1f s", code, backoff)
            time.sleep(backoff)
            backoff = min(backoff * 2, 10)
            try:
                self._spawn()
                self._wait_ready(30)
                backoff = 0.5
            except ConfigError as exc:
                log.error("restart failed: %s", exc)


def _port_taken(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _strip_ansi(line: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", line)

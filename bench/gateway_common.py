"""What the gateway benchmarks share: a fresh embedded CouchDB, a Doorstep server in front of
it (its own process, as in production), and CPU/memory figures of both from /proc.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.embedded_couch import EmbeddedCouch, free_port  # noqa: E402
from server.settings import Settings  # noqa: E402
from sync.couch import Couch  # noqa: E402
from sync.provision import provision  # noqa: E402

PREFIX = "bench_"


@dataclass
class Stack:
    couch: Couch
    embedded: EmbeddedCouch
    server_url: str
    server: subprocess.Popen[bytes]


@contextlib.contextmanager
def stack(extra_env: dict[str, str] | None = None) -> Iterator[Stack]:
    """An embedded CouchDB in a temporary folder and a Doorstep server on 127.0.0.1."""
    with tempfile.TemporaryDirectory(prefix="doorstep-gateway-bench-") as tmp:
        var = Path(tmp)
        embedded = EmbeddedCouch(Settings(var_dir=var / "couch"))
        embedded.start()
        server = None
        try:
            couch = Couch(embedded.url, embedded.user, embedded.password, PREFIX)
            provision(couch)
            port = free_port()
            env = {**os.environ, "DOORSTEP_COUCHDB_URL": embedded.url,
                   "DOORSTEP_COUCHDB_USER": embedded.user,
                   "DOORSTEP_COUCHDB_PASSWORD": embedded.password,
                   "DOORSTEP_DB_PREFIX": PREFIX, "DOORSTEP_VAR": str(var / "server"),
                   "DOORSTEP_PORT": str(port), "DOORSTEP_BACKGROUND": "0",
                   **(extra_env or {})}
            server = subprocess.Popen([sys.executable, "-m", "server.cli", "serve"], cwd=ROOT,
                                      env=env, stdout=(var / "server.log").open("wb"),
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            url = f"http://127.0.0.1:{port}"
            wait_for_server(url, server, var / "server.log")
            yield Stack(couch, embedded, url, server)
        finally:
            if server is not None:
                server.terminate()
                server.wait(10)
            embedded.stop()


def wait_for_server(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit("the server did not start within 60 s")


@dataclass(frozen=True)
class ProcessUsage:
    cpu_seconds: float  # user + system, since the process started
    rss_mb: float  # resident now
    peak_mb: float  # resident at its highest


def usage(pid: int) -> ProcessUsage:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    kb = lambda key: int(status.get(key, "0 kB").split()[0])  # noqa: E731
    return ProcessUsage(cpu, kb("VmRSS") / 1024, kb("VmHWM") / 1024)

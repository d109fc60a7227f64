"""What the bench scripts share: a fresh embedded CouchDB, a Doorstep server in front of it
(its own process, as in production), and CPU/memory figures of a process from /proc.
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
def embedded_couch(var: Path, prefix: str = PREFIX) -> Iterator[tuple[EmbeddedCouch, Couch]]:
    """A fresh embedded CouchDB in `var`, provisioned; stopped afterwards."""
    embedded = EmbeddedCouch(Settings(var_dir=var))
    embedded.start()
    try:
        couch = Couch(embedded.url, embedded.user, embedded.password, prefix)
        provision(couch)
        yield embedded, couch
    finally:
        embedded.stop()


@contextlib.contextmanager
def doorstep_server(couch: Couch, var: Path, extra_env: dict[str, str] | None = None
                    ) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`doorstep serve` on 127.0.0.1 against `couch`, with no background jobs unless
    `extra_env` turns them on; yields its URL and process, stops it afterwards."""
    var.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "DOORSTEP_COUCHDB_URL": couch.url,
           "DOORSTEP_COUCHDB_USER": couch.auth[0], "DOORSTEP_COUCHDB_PASSWORD": couch.auth[1],
           "DOORSTEP_DB_PREFIX": couch.prefix, "DOORSTEP_VAR": str(var),
           "DOORSTEP_PORT": str(port), "DOORSTEP_BACKGROUND": "0", **(extra_env or {})}
    log = var / "server.log"
    server = subprocess.Popen([sys.executable, "-m", "server.cli", "serve"], cwd=ROOT, env=env,
                              stdout=log.open("wb"), stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_server(url, server, log)
        yield url, server
    finally:
        server.terminate()
        server.wait(20)


@contextlib.contextmanager
def stack(extra_env: dict[str, str] | None = None) -> Iterator[Stack]:
    """An embedded CouchDB in a temporary folder and a Doorstep server on 127.0.0.1."""
    with tempfile.TemporaryDirectory(prefix="doorstep-bench-") as tmp, \
            embedded_couch(Path(tmp) / "couch") as (embedded, couch), \
            doorstep_server(couch, Path(tmp) / "server", extra_env) as (url, server):
        yield Stack(couch, embedded, url, server)


def wait_for_server(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120  # a county-sized hub takes a while to provision
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"the server did not start within 120 s; see {log}")


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

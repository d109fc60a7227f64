"""Join CouchDB 3 nodes into one cluster with the documented `_cluster_setup` API.

    python deploy/couchdb/cluster_setup.py couchdb-1.cluster couchdb-2.cluster couchdb-3.cluster

The first host coordinates. Credentials come from DOORSTEP_COUCHDB_USER and
DOORSTEP_COUCHDB_PASSWORD (the same admin on every node). Run it again at any time: once the
cluster is finished it only checks that every node is a member. Python's standard library
only, so it runs in the Doorstep image or on any machine with Python 3.11.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any

PORT = 5984


class SetupError(Exception):
    pass


def call(host: str, method: str, path: str, body: Any = None, *, auth: tuple[str, str]
         ) -> tuple[int, Any]:
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    req = urllib.request.Request(
        f"http://{host}:{PORT}/{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def wait_up(host: str, auth: tuple[str, str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if call(host, "GET", "_up", auth=auth)[0] == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SetupError(f"{host} did not come up within {timeout:.0f} s")
        time.sleep(2)


def setup(hosts: list[str], auth: tuple[str, str]) -> list[str]:
    coordinator, others = hosts[0], hosts[1:]
    user, password = auth
    for host in hosts:
        wait_up(host, auth)
    status, state = call(coordinator, "GET", "_cluster_setup", auth=auth)
    if status == 200 and state.get("state") == "cluster_finished":
        return check_membership(coordinator, hosts, auth)
    common = {"bind_address": "0.0.0.0", "username": user, "password": password,
              "node_count": len(hosts)}
    # "Cluster is already enabled" (400) is fine: the image set the admin up already.
    _expect(call(coordinator, "POST", "_cluster_setup",
                 {"action": "enable_cluster", **common}, auth=auth), ok_400=True)
    for host in others:
        _expect(call(coordinator, "POST", "_cluster_setup", {
            "action": "enable_cluster", **common, "port": PORT, "remote_node": host,
            "remote_current_user": user, "remote_current_password": password,
        }, auth=auth), ok_400=True)
        _expect(call(coordinator, "POST", "_cluster_setup", {
            "action": "add_node", "host": host, "port": PORT, "username": user,
            "password": password,
        }, auth=auth), ok_409=True)
    _expect(call(coordinator, "POST", "_cluster_setup", {"action": "finish_cluster"},
                 auth=auth), ok_400=True)
    return check_membership(coordinator, hosts, auth)


def check_membership(coordinator: str, hosts: list[str], auth: tuple[str, str],
                     timeout: float = 60) -> list[str]:
    wanted = {f"couchdb@{h}" for h in hosts}
    deadline = time.monotonic() + timeout
    while True:
        status, body = call(coordinator, "GET", "_membership", auth=auth)
        joined = set((body or {}).get("cluster_nodes", [])) & set((body or {}).get("all_nodes", []))
        if status == 200 and wanted <= joined:
            return sorted(joined)
        if time.monotonic() > deadline:
            raise SetupError(f"nodes not connected after setup: {sorted(wanted - joined)}; "
                             "check COUCHDB_COOKIE and NODENAME on each node")
        time.sleep(2)


def _expect(result: tuple[int, Any], *, ok_400: bool = False, ok_409: bool = False) -> None:
    status, body = result
    if status in (200, 201) or (ok_400 and status == 400) or (ok_409 and status == 409):
        return
    raise SetupError(f"_cluster_setup answered {status}: {body}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hosts", nargs="+", help="node host names; the first coordinates")
    args = parser.parse_args(argv)
    user = os.environ.get("DOORSTEP_COUCHDB_USER")
    password = os.environ.get("DOORSTEP_COUCHDB_PASSWORD")
    if not (user and password):
        print("cluster_setup: set DOORSTEP_COUCHDB_USER and DOORSTEP_COUCHDB_PASSWORD",
              file=sys.stderr)
        return 2
    try:
        members = setup(args.hosts, (user, password))
    except (SetupError, OSError) as exc:
        print(f"cluster_setup: {exc}", file=sys.stderr)
        return 1
    print(f"cluster ready: {', '.join(members)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

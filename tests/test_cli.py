"""The `doorstep` command: configuration errors are one clear line and a non-zero exit, and
the user commands manage real CouchDB accounts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from server.embedded_couch import free_port
from sync import accounts
from sync.couch import Couch

ROOT = Path(__file__).resolve().parent.parent


def doorstep(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DOORSTEP_")}
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args], cwd=ROOT, env={**clean, **env},
        input=stdin, capture_output=True, text=True, timeout=60,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("doorstep:")]
    assert len(lines) == 1, result.stderr
    assert words in lines[0], lines[0]


def test_unreachable_couchdb(tmp_path: Path) -> None:
    env = {"DOORSTEP_VAR": str(tmp_path), "DOORSTEP_COUCHDB_URL": f"http://127.0.0.1:{free_port()}",
           "DOORSTEP_COUCHDB_USER": "admin", "DOORSTEP_COUCHDB_PASSWORD": "x"}
    assert_one_line_error(doorstep("migrate", env=env), "is unreachable")


def test_wrong_credentials(tmp_path: Path, couch_server) -> None:
    env = {"DOORSTEP_VAR": str(tmp_path), "DOORSTEP_COUCHDB_URL": couch_server.url,
           "DOORSTEP_COUCHDB_USER": couch_server.user, "DOORSTEP_COUCHDB_PASSWORD": "wrong"}
    assert_one_line_error(doorstep("migrate", env=env), "refused the admin credentials")


def test_url_without_credentials(tmp_path: Path) -> None:
    env = {"DOORSTEP_VAR": str(tmp_path), "DOORSTEP_COUCHDB_URL": "http://127.0.0.1:5984"}
    assert_one_line_error(doorstep("migrate", env=env), "DOORSTEP_COUCHDB_USER")


def test_port_in_use(tmp_path: Path, couch_server) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {"DOORSTEP_VAR": str(tmp_path), "DOORSTEP_PORT": str(port),
               "DOORSTEP_COUCHDB_URL": couch_server.url,
               "DOORSTEP_COUCHDB_USER": couch_server.user,
               "DOORSTEP_COUCHDB_PASSWORD": couch_server.password}
        assert_one_line_error(doorstep("serve", env=env), f"port {port}")


def test_bad_port_setting(tmp_path: Path) -> None:
    env = {"DOORSTEP_VAR": str(tmp_path), "DOORSTEP_PORT": "eighty"}
    assert_one_line_error(doorstep("serve", env=env), "DOORSTEP_PORT must be a whole number")


def test_node_missing(tmp_path: Path) -> None:
    env = {"DOORSTEP_VAR": str(tmp_path), "DOORSTEP_NODE": str(tmp_path / "no-node")}
    assert_one_line_error(doorstep("migrate", env=env), "Node.js")


def test_unwritable_var(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    env = {"DOORSTEP_VAR": str(blocker / "var")}
    assert_one_line_error(doorstep("migrate", env=env), "cannot write to the data folder")


@pytest.fixture
def cli_env(couch_server, couch: Couch, community, tmp_path: Path) -> dict[str, str]:
    return {"DOORSTEP_VAR": str(tmp_path), "DOORSTEP_COUCHDB_URL": couch_server.url,
            "DOORSTEP_COUCHDB_USER": couch_server.user,
            "DOORSTEP_COUCHDB_PASSWORD": couch_server.password,
            "DOORSTEP_DB_PREFIX": couch.prefix}


def can_log_in(couch: Couch, name: str, password: str) -> bool:
    r = httpx.post(f"{couch.url}/_session", json={"name": name, "password": password})
    return r.status_code == 200


def test_user_lifecycle(cli_env: dict[str, str], couch: Couch) -> None:
    from tests.conftest import unique_name

    name = unique_name("w")
    made = doorstep("user", "add", name, "--role", "worker", "--grid", "G1", "--grid", "G2",
                    "--display-name", "张伟", "--password-stdin", env=cli_env,
                    stdin="first-pass-1\n")
    assert made.returncode == 0, made.stderr
    account = accounts.account(couch, name)
    assert (account.role, account.grids, account.display_name) == ("worker", ("G1", "G2"), "张伟")
    assert can_log_in(couch, name, "first-pass-1")

    reset = doorstep("user", "passwd", name, env=cli_env)
    assert reset.returncode == 0
    new_password = reset.stdout.strip().rsplit(": ", 1)[1]
    assert can_log_in(couch, name, new_password)
    assert not can_log_in(couch, name, "first-pass-1")

    listed = doorstep("user", "list", env=cli_env)
    assert f"{name}\tworker\tG1,G2\tactive\t张伟" in listed.stdout

    assert doorstep("user", "deactivate", name, env=cli_env).returncode == 0
    account = accounts.account(couch, name)
    assert account.active is False
    assert accounts.get(couch, name)["roles"] == []


def test_supervisor_and_admin(cli_env: dict[str, str], couch: Couch) -> None:
    from tests.conftest import unique_name

    sup, adm = unique_name("s"), unique_name("a")
    assert doorstep("user", "add", sup, "--role", "supervisor", "--community", "C1",
                    env=cli_env).returncode == 0
    assert accounts.account(couch, sup).communities == ("C1",)
    assert doorstep("user", "add", adm, "--role", "admin", env=cli_env).returncode == 0
    assert accounts.account(couch, adm).role == "admin"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["user", "add", "wx1", "--role", "worker"], "needs at least one grid"),
        (["user", "add", "wx2", "--role", "worker", "--grid", "NOPE"], "unknown grid 'NOPE'"),
        (["user", "add", "Bad Name", "--role", "admin"], "must be 2-64 lower-case"),
        (["user", "add", "sx1", "--role", "supervisor", "--community", "C7"],
         "unknown community 'C7'"),
        (["user", "passwd", "nobody-here"], "no user named 'nobody-here'"),
    ],
)
def test_user_errors(cli_env: dict[str, str], couch: Couch, args: list[str], words: str) -> None:
    assert_one_line_error(doorstep(*args, env=cli_env), words)
    name = args[2]
    assert accounts.get(couch, name) is None or name == "nobody-here"

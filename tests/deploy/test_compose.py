"""The deployment files: both compose files validate with the real Docker Compose client,
wire the proxy as the only public door, and the env template lists every setting."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
EXAMPLE = DEPLOY / "doorstep.env.example"


def compose_command() -> list[str]:
    """Compose v2 (the `docker compose` plugin) when present, else the standalone client."""
    if shutil.which("docker") and subprocess.run(
            ["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("no Docker Compose client: install the docker compose plugin or docker-compose")


def config(compose_file: str, *extra: str, env_file: Path = EXAMPLE
           ) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(ROOT),
           "DOORSTEP_ENV_FILE": str(env_file)}
    return subprocess.run(
        [*compose_command(), "--env-file", str(env_file), "-f", str(DEPLOY / compose_file),
         "config", *extra], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("compose_file, services, replicas", [
    ("compose.single.yml", {"couchdb", "doorstep", "caddy", "backup"}, 1),
    ("compose.cluster.yml", {"couchdb-1", "couchdb-2", "couchdb-3", "couchdb-setup", "migrate",
                             "doorstep-1", "doorstep-2", "caddy", "backup"}, 2),
])
def test_compose_file_is_valid_and_only_the_proxy_is_public(compose_file: str, services: set[str],
                                                            replicas: int) -> None:
    result = config(compose_file)
    assert result.returncode == 0, result.stderr
    listed = config(compose_file, "--services")
    assert set(listed.stdout.split()) == services
    text = result.stdout
    assert len(re.findall(r"^\s+ports:", text, re.M)) == 1, "only Caddy publishes ports"
    proxy = re.search(r"ipv4_address: (\S+)", text).group(1)
    trusting = re.findall(r"DOORSTEP_TRUSTED_PROXIES: '?([^'\s]+)", text)
    assert trusting == [proxy] * replicas, "each replica believes forwarded headers of the proxy"
    assert len(re.findall(r"DOORSTEP_HTTPS: '1'|DOORSTEP_HTTPS: \"1\"", text)) == replicas


def test_cluster_nodes_share_one_erlang_cookie_and_each_replica_its_own_node() -> None:
    text = config("compose.cluster.yml").stdout
    assert len(set(re.findall(r"COUCHDB_ERLANG_COOKIE: (\S+)", text))) == 1
    assert len(re.findall(r"COUCHDB_ERLANG_COOKIE: ", text)) == 3
    nodes = re.findall(r"DOORSTEP_COUCHDB_URL: (http://couchdb-\d\.cluster:5984)", text)
    assert len(set(nodes)) >= 2, nodes


def test_a_missing_required_setting_is_named(tmp_path: Path) -> None:
    env = tmp_path / "partial.env"
    env.write_text("".join(line + "\n" for line in EXAMPLE.read_text().splitlines()
                           if not line.startswith("DOORSTEP_DOMAIN=")))
    result = config("compose.single.yml", env_file=env)
    assert result.returncode != 0
    assert "DOORSTEP_DOMAIN" in result.stderr


def test_env_template_lists_every_setting_the_server_reads() -> None:
    read = set()
    for path in [*ROOT.glob("server/**/*.py"), *ROOT.glob("sync/**/*.py")]:
        read |= set(re.findall(r"[\"'](DOORSTEP_[A-Z0-9_]+)[\"']", path.read_text()))
    listed = set(re.findall(r"^#? ?(DOORSTEP_[A-Z0-9_]+)=", EXAMPLE.read_text(), re.M))
    assert read, "the scan finds the settings"
    assert read - listed == set(), "add these to deploy/doorstep.env.example"


@pytest.mark.parametrize("compose_file", ["compose.single.yml", "compose.cluster.yml"])
def test_scheduled_backups_carry_the_servers_secrets(compose_file: str) -> None:
    text = config(compose_file).stdout
    backup = text[text.index("\n  backup:"):]
    backup = backup[:re.search(r"\n  [a-z]", backup[1:]).start() + 1]  # up to the next service
    assert "- --every-hours" in backup and "- /var/lib/doorstep/secrets.json" in backup
    assert re.search(r"- doorstep-var:/var/lib/doorstep:ro", backup), "read-only"
    assert "condition: service_healthy" in backup, "after the server wrote its secrets"

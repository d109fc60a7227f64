"""Push settings: every bad value is one clear line, at start-up, not a traceback later."""

from __future__ import annotations

import subprocess
import sys
from datetime import time

import pytest

from server.errors import ConfigError
from server.push.config import PushConfig
from tests.conftest import ROOT


def test_defaults_and_a_full_configuration():
    assert PushConfig.from_env({}) == PushConfig()
    cfg = PushConfig.from_env({"DOORSTEP_PUSH_DIGEST_TIME": "7:30",
                               "DOORSTEP_TIMEZONE": "Asia/Urumqi",
                               "DOORSTEP_PUSH_CONTACT": "https://doorstep.example.org/contact",
                               "DOORSTEP_PUSH_CONCURRENCY": "32",
                               "DOORSTEP_PUSH_URGENT_ALERTS": "0"})
    assert cfg.digest_time == time(7, 30) and str(cfg.timezone) == "Asia/Urumqi"
    assert cfg.concurrency == 32 and cfg.urgent_alerts is False


@pytest.mark.parametrize("name, value, words", [
    ("DOORSTEP_PUSH_DIGEST_TIME", "8am", "time of day such as 08:00"),
    ("DOORSTEP_PUSH_DIGEST_TIME", "24:00", "time of day such as 08:00"),
    ("DOORSTEP_TIMEZONE", "Mars/Olympus", "time zone name such as Asia/Shanghai"),
    ("DOORSTEP_PUSH_CONTACT", "admin@example.org", "mailto:"),
    ("DOORSTEP_PUSH_CONCURRENCY", "0", "from 1 to 256"),
    ("DOORSTEP_PUSH_TIMEOUT", "ten", "from 0.1 to 120"),
])
def test_a_bad_setting_names_itself_and_the_fix(name, value, words):
    with pytest.raises(ConfigError) as err:
        PushConfig.from_env({name: value})
    assert name in str(err.value) and words in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name, value, line", [
    ("DOORSTEP_PUSH_DIGEST_TIME", "8am",
     "doorstep: DOORSTEP_PUSH_DIGEST_TIME must be a time of day such as 08:00, got '8am'"),
    ("DOORSTEP_PUSH_KEEP_DAYS", "7",
     "doorstep: DOORSTEP_PUSH_KEEP_DAYS must be a number from 31 to 3650, got '7'"),
])
def test_serve_refuses_a_bad_setting_with_one_line(couch_server, couch, tmp_path, name, value,
                                                   line):
    env = {"PATH": "/usr/bin:/bin", "DOORSTEP_VAR": str(tmp_path),
           "DOORSTEP_COUCHDB_URL": couch_server.url, "DOORSTEP_COUCHDB_USER": couch_server.user,
           "DOORSTEP_COUCHDB_PASSWORD": couch_server.password, "DOORSTEP_DB_PREFIX": couch.prefix,
           "DOORSTEP_PORT": "0", name: value}
    run = subprocess.run([sys.executable, "-m", "server.cli", "serve"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [line]

"""Push settings, from the environment (each one is listed in deploy/doorstep.env.example)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import time
from zoneinfo import ZoneInfo

from server.errors import ConfigError
from server.settings import number_setting, timezone_setting

_CONTACT = re.compile(r"^(mailto:[^@\s]+@[^@\s]+|https://\S+)$")


@dataclass(frozen=True)
class PushConfig:
    contact: str = "mailto:admin@localhost"  # VAPID `sub`: who push services may contact
    digest_time: time = time(8, 0)
    timezone: ZoneInfo = ZoneInfo("Asia/Shanghai")
    concurrency: int = 16  # sends in flight at once, per server process
    send_timeout: float = 10.0  # seconds for one send, connect to answer
    retry_base: float = 30.0  # first retry after ~this many seconds, doubling each time
    poll_interval: float = 2.0  # how often the worker looks for work nobody woke it for
    urgent_alerts: bool = True  # tell supervisors when a synced visit raises an urgent need
    # Push services speak https; plain http endpoints only for a local stand-in in tests.
    allow_http_endpoints: bool = False

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> PushConfig:
        env = dict(os.environ if env is None else env)
        d = cls()
        contact = env.get("DOORSTEP_PUSH_CONTACT", d.contact)
        if not _CONTACT.match(contact):
            raise ConfigError(
                f"DOORSTEP_PUSH_CONTACT must be mailto:someone@example.org or an https:// URL, "
                f"got {contact!r}"
            )
        return cls(
            contact=contact,
            digest_time=_clock("DOORSTEP_PUSH_DIGEST_TIME",
                               env.get("DOORSTEP_PUSH_DIGEST_TIME"), d.digest_time),
            timezone=timezone_setting(env),
            concurrency=int(number_setting(env, "DOORSTEP_PUSH_CONCURRENCY",
                                           d.concurrency, 1, 256)),
            send_timeout=number_setting(env, "DOORSTEP_PUSH_TIMEOUT", d.send_timeout, 0.1, 120),
            retry_base=number_setting(env, "DOORSTEP_PUSH_RETRY_BASE", d.retry_base, 0.01, 3600),
            poll_interval=number_setting(env, "DOORSTEP_PUSH_POLL", d.poll_interval, 0.05, 300),
            urgent_alerts=env.get("DOORSTEP_PUSH_URGENT_ALERTS", "1") not in ("0", "false", "no"),
            allow_http_endpoints=env.get("DOORSTEP_PUSH_ALLOW_HTTP", "") in ("1", "true", "yes"),
        )


def _clock(name: str, value: str | None, default: time) -> time:
    if not value:
        return default
    m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value.strip())
    if not m:
        raise ConfigError(f"{name} must be a time of day such as 08:00, got {value!r}")
    return time(int(m.group(1)), int(m.group(2)))

"""Push in the running server: keys, configuration, its background jobs and the API."""

from __future__ import annotations

import os

from starlette.applications import Starlette

from server import metrics
from server.push.config import PushConfig
from server.push.digest_job import DigestJob
from server.push.keys import VapidKeys
from server.push.sender import Sender
from server.push.subscriptions import Subscriptions
from server.push.urgent import UrgentNeedWatcher
from server.push.worker import OutboxWorker
from sync.couch import Couch
from sync.push_figures import IndexWarmer
from sync.push_outbox import ensure_push_db
from sync.push_retention import Retention, ensure_retention_views, keep_days

DIGEST_CHECK_SECONDS = 30.0
URGENT_CHECK_SECONDS = 15.0
FIGURES_INDEX_SECONDS = 30.0
RETENTION_CHECK_SECONDS = 60.0  # the job itself runs a round a day, or until caught up


class Push:
    def __init__(self, couch: Couch, secrets: dict[str, str], holder: str,
                 config: PushConfig | None = None) -> None:
        self.couch = couch
        self.config = config or PushConfig.from_env()
        self.keys = VapidKeys.from_secrets(secrets)
        self.subscriptions = Subscriptions(couch)
        sender = Sender(self.keys, self.config.contact, self.config.send_timeout)
        self.worker = OutboxWorker(couch, self.config, sender, holder)
        self.digest = DigestJob(couch, self.config)
        self.urgent = UrgentNeedWatcher(couch)
        self.figures_index = IndexWarmer(couch)
        self.retention = Retention(couch, keep_days(os.environ))

    def stop(self) -> None:
        self.worker.stop()


def install(app: Starlette, couch: Couch) -> Push:
    """Set up push on `app`: its database views, `app.state.push`, and its leased jobs."""
    ensure_push_db(couch)
    jobs = app.state.jobs
    push = Push(couch, app.state.secrets, jobs.holder)
    ensure_retention_views(couch)
    app.state.push = push
    jobs.add("push-outbox", push.worker.step, interval=push.config.poll_interval)
    jobs.add("push-digest", push.digest.step, interval=DIGEST_CHECK_SECONDS)
    jobs.add("push-figures-index", push.figures_index.step, interval=FIGURES_INDEX_SECONDS)
    jobs.add("push-retention", push.retention.step, interval=RETENTION_CHECK_SECONDS)
    metrics.register_gauge(
        "doorstep_push_history_removed_total",
        "Push requests and deliveries this process removed as older than "
        "DOORSTEP_PUSH_KEEP_DAYS.",
        lambda: [({"doc": "request"}, float(push.retention.removed.requests)),
                 ({"doc": "delivery"}, float(push.retention.removed.deliveries))],
        kind="counter")
    if push.config.urgent_alerts:
        jobs.add("push-urgent-needs", push.urgent.step, interval=URGENT_CHECK_SECONDS)
    return push

"""Push in the running server: keys, configuration, its background jobs and the API."""

from __future__ import annotations

from starlette.applications import Starlette

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

DIGEST_CHECK_SECONDS = 30.0
URGENT_CHECK_SECONDS = 15.0
FIGURES_INDEX_SECONDS = 30.0


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

    def stop(self) -> None:
        self.worker.stop()


def install(app: Starlette, couch: Couch) -> Push:
    """Set up push on `app`: its database views, `app.state.push`, and its leased jobs."""
    ensure_push_db(couch)
    jobs = app.state.jobs
    push = Push(couch, app.state.secrets, jobs.holder)
    app.state.push = push
    jobs.add("push-outbox", push.worker.step, interval=push.config.poll_interval)
    jobs.add("push-digest", push.digest.step, interval=DIGEST_CHECK_SECONDS)
    jobs.add("push-figures-index", push.figures_index.step, interval=FIGURES_INDEX_SECONDS)
    if push.config.urgent_alerts:
        jobs.add("push-urgent-needs", push.urgent.step, interval=URGENT_CHECK_SECONDS)
    return push

"""Web Push end to end in a real Chromium, with no outside push service.

The page's real flow runs: the worker taps the button on the "me" page, the app asks for
permission, fetches the VAPID key and subscribes — `PushManager.subscribe` is stubbed by an
init script to hand back a subscription the test made (its own keys, an endpoint on the
local stand-in), because a real one needs the browser vendor's push service. The server
sends to the stand-in, which checks the VAPID token and decrypts with the test's keys; the
test hands the plaintext to the service worker over CDP, sees the notification, and calls
the click logic the `notificationclick` listener wraps (a headless browser cannot click).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from server.push.subscriptions import Subscriptions
from sync import console_actions
from tests.conftest import CouchServer
from tests.push.standin import PushStandin
from tests.pwa.conftest import Field, Phone, make_field
from tests.pwa.helpers import assignment, household, log_in, wait_idle

STUB = """
(() => {
  const SUB = %s;
  const KEY = 'test.push.subscribed';
  window.__push = { permissionAsked: 0, subscribeKeys: [] };
  const asked = Notification.requestPermission.bind(Notification);
  Notification.requestPermission = (...args) => {
    window.__push.permissionAsked += 1;
    return asked(...args);
  };
  const make = () => ({
    endpoint: SUB.endpoint, expirationTime: null, options: { userVisibleOnly: true },
    toJSON: () => SUB,
    unsubscribe: async () => { localStorage.removeItem(KEY); return true; },
  });
  PushManager.prototype.subscribe = async function (options) {
    const raw = String.fromCharCode(...new Uint8Array(options.applicationServerKey));
    window.__push.subscribeKeys.push(
      btoa(raw).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, ''));
    localStorage.setItem(KEY, '1');
    return make();
  };
  PushManager.prototype.getSubscription = async function () {
    return localStorage.getItem(KEY) ? make() : null;
  };
})();
"""

ENV = {"DOORSTEP_BACKGROUND": "1", "DOORSTEP_PUSH_ALLOW_HTTP": "1", "DOORSTEP_PUSH_POLL": "0.1"}


@pytest.fixture
def field(couch_server: CouchServer, tmp_path: Path) -> Iterator[Field]:
    f = make_field(couch_server, tmp_path / "server", ENV)
    try:
        yield f
    finally:
        f.server.stop()


def notifications(page: Page) -> list[dict]:
    return page.evaluate("""async () => {
      const reg = await navigator.serviceWorker.ready;
      return (await reg.getNotifications()).map((n) => ({
        title: n.title, body: n.body, tag: n.tag, url: n.data && n.data.url }));
    }""")


def test_assignment_notification_from_opt_in_to_tap(field: Field, playwright, tmp_path):
    vapid = field.server.client().get("/api/push/vapid-public-key").json()["public_key"]
    hh = household("G1-3-2-502", building="3", unit="2", floor=5, room="502")
    task = assignment(hh["household_id"], field.worker, "2026-12-01", "回访独居老人")
    field.put(hh, task)
    with PushStandin(vapid) as standin:
        device = standin.device("phone")
        phone = Phone(playwright, tmp_path / "profile", field.server.url)
        try:
            page = phone.open()
            assert phone.context is not None
            phone.context.grant_permissions(["notifications"], origin=field.server.url)
            phone.context.add_init_script(STUB % json.dumps(device.subscription()))
            log_in(page, field.worker)
            wait_idle(page)

            # Opt in on the "me" page; nothing asked for permission before the tap.
            page.goto("/app/#/me")
            settings = page.locator(".push-settings")
            expect(settings.locator(".push-status")).to_have_text("本机不接收通知")
            assert page.evaluate("window.__push.permissionAsked") == 0
            settings.locator("button.push-toggle").click()
            expect(settings.locator(".push-status")).to_have_text("本机会收到派单、退回和每日提醒")
            assert page.evaluate("window.__push") == {"permissionAsked": 1,
                                                      "subscribeKeys": [vapid]}

            # The supervisor assigns; the console asks for a push; the outbox sends it.
            console_actions.request_push(field.couch, "assignment", field.worker, "G1",
                                         hh["household_id"], task["_id"], task["at"])
            deadline = time.monotonic() + 20
            while not standin.delivered("phone"):
                assert time.monotonic() < deadline, standin.attempts
                time.sleep(0.1)
            assert standin.problems() == []
            sent, = standin.delivered("phone")
            assert sent.payload["body"] == "3栋2单元502室，请于2026-12-01前走访"

            # The push service would now wake the service worker with that payload. The
            # worker shows it and tells the open pages, which is what we watch: headless
            # Chromium lists a notification shown inside a push event only some of the time.
            page.evaluate("""() => { window.__pushed = [];
              navigator.serviceWorker.addEventListener('message', (e) => {
                if (e.data && e.data.type === 'doorstep-push') window.__pushed.push(e.data.payload);
              }); }""")
            cdp = phone.context.new_cdp_session(page)
            registrations: list[dict] = []
            cdp.on("ServiceWorker.workerRegistrationUpdated",
                   lambda e: registrations.extend(e["registrations"]))
            cdp.send("ServiceWorker.enable")
            deadline = time.monotonic() + 10
            while not (live := [r for r in registrations if r["scopeURL"].endswith("/app/")
                                and not r.get("isDeleted")]):
                assert time.monotonic() < deadline, registrations
                page.wait_for_timeout(100)
            cdp.send("ServiceWorker.deliverPushMessage", {
                "origin": field.server.url + "/", "registrationId": live[-1]["registrationId"],
                "data": json.dumps(sent.payload, ensure_ascii=False)})
            deadline = time.monotonic() + 20
            while not page.evaluate("window.__pushed.length"):
                assert time.monotonic() < deadline, "the service worker got no push"
                page.wait_for_timeout(100)
            assert page.evaluate("window.__pushed") == [sent.payload]

            # What the notification says and where it leads: the same function, called in
            # the worker outside a push event, where the notification list is dependable.
            worker = next(w for w in phone.context.service_workers if "/app/sw.js" in w.url)
            worker.evaluate("(payload) => showPush(payload)", sent.payload)
            shown, = notifications(page)
            link = f"{field.server.url}/app/#/assignment/{task['_id']}"
            assert shown == {"title": "新派单", "body": "3栋2单元502室，请于2026-12-01前走访",
                             "tag": f"assignment:{task['_id']}", "url": link}

            # A tap with the app open: the open window follows the link, no reload.
            page.goto("/app/#/")
            outcome = worker.evaluate("""async () => {
              const calls = [];
              const clients = {
                matchAll: async (options) => (await self.clients.matchAll(options)).map((c) => ({
                  url: c.url, postMessage: (m) => c.postMessage(m),
                  focus: async () => { calls.push('focus'); } })),
                openWindow: async (url) => { calls.push(['open', url]); },
              };
              const [n] = await self.registration.getNotifications();
              const result = await openFromNotification(n, clients);
              const left = (await self.registration.getNotifications()).length;
              return { result, calls, left };
            }""")
            assert outcome == {"result": {"action": "focused", "url": link}, "calls": ["focus"],
                               "left": 0}
            expect(page).to_have_url(link)
            expect(page.locator(".household-view h2.address")).to_contain_text("502")

            # A tap with no window open opens the link: the shell serves it offline too.
            opened = worker.evaluate("""async (url) => {
              const calls = [];
              const clients = { matchAll: async () => [],
                                openWindow: async (u) => { calls.push(u); } };
              const result = await openFromNotification({ data: { url }, close() {} }, clients);
              return { result, calls };
            }""", "https://elsewhere.example/phish")
            assert opened["result"] == {"action": "opened", "url": field.server.url + "/app/"}
            phone.context.set_offline(True)
            offline = phone.new_page()
            offline.goto(link)
            expect(offline.locator(".household-view h2.address")).to_contain_text("502")
            offline.close()
            phone.context.set_offline(False)

            # Turning it off: unsubscribed here and forgotten by the server.
            page.goto("/app/#/me")
            settings.locator("button.push-toggle").click()
            expect(settings.locator(".push-status")).to_have_text("本机不接收通知")
            assert Subscriptions(field.couch).for_user(field.worker) == []
        finally:
            phone.close()
    assert not phone.errors, phone.errors

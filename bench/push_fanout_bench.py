"""Push fan-out: 10,000 notifications through the outbox to a local push stand-in.

    .venv/bin/python bench/push_fanout_bench.py [--devices 10000] [--concurrency 16]

Sets up an embedded CouchDB (a temporary folder) with N/2 workers, two phones each, and
one morning digest request per worker, as at 08:00. The stand-in runs as its own process
on 127.0.0.1 and does what a push service does (checks the VAPID token, decrypts the body).
Measured:

- fan-out: wall time and sends per second from the first step of the outbox worker until
  the stand-in has every message (expansion into deliveries, claims, encryption, VAPID
  signing, the POSTs, writing outcomes back);
- baseline in the same run: plain POSTs of the same size to the same stand-in with the same
  concurrency and no crypto, CouchDB or outbox; the ratio says what the outbox costs;
- CPU per message of the encryption (aes128gcm with a fresh ECDH key) and of the VAPID
  signature, by process time over 2,000 messages.

Bounded: at most 20,000 devices, and it gives up after 300 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from pywebpush import WebPusher

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.embedded_couch import EmbeddedCouch  # noqa: E402
from server.push.config import PushConfig  # noqa: E402
from server.push.keys import SECRET_NAME, VapidKeys, new_private_key  # noqa: E402
from server.push.sender import Sender  # noqa: E402
from server.push.subscriptions import subscription_id  # noqa: E402
from server.push.worker import OutboxWorker  # noqa: E402
from server.settings import Settings  # noqa: E402
from sync.couch import Couch  # noqa: E402
from sync.provision import provision  # noqa: E402
from sync.push_outbox import SENT, Outbox, ensure_push_db, iso, push_db  # noqa: E402
from tests.push.standin import Device  # noqa: E402

SEED = "bench"
GIVE_UP = 300.0


def start_standin(public_key: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.push.standin", "--seed", SEED, "--vapid-key", public_key],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def standin_figures(url: str) -> dict[str, int]:
    return requests.get(url + "/", timeout=10).json()


def seed_data(couch: Couch, url: str, devices: int) -> None:
    db = push_db(couch)
    now = time.time()
    batch: list[dict] = []
    for i in range(devices):
        user = f"w{i // 2:05d}"
        name = f"d{i:05d}"
        sub = Device.derived(name, f"{url}/push/{name}", SEED).subscription()
        batch.append({"_id": subscription_id(sub["endpoint"]), "type": "subscription",
                      "user": user, "device": name, "session": "", "lang": "zh-CN",
                      "endpoint": sub["endpoint"], "keys": sub["keys"],
                      "created_at": iso(now), "updated_at": iso(now)})
        if i % 2 == 0:
            batch.append({"_id": f"push_request:digest:{user}:bench", "type": "push_request",
                          "kind": "digest", "user": user, "date": "2026-11-26",
                          "counts": {"due": 12, "overdue": 3, "special_care": 2},
                          "at": iso(now)})
        if len(batch) >= 1000:
            couch.bulk_docs(db, batch)
            batch = []
    couch.bulk_docs(db, batch)


def baseline(url: str, n: int, concurrency: int, size: int) -> float:
    """Plain POSTs per second to the stand-in: HTTP alone."""
    body = b"x" * size
    sessions: dict[int, requests.Session] = {}

    def post(_: int) -> None:
        import threading

        s = sessions.setdefault(threading.get_ident(), requests.Session())
        s.post(url + "/plain", data=body, timeout=10)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(post, range(n)))
    return n / (time.perf_counter() - started)


def crypto_cost(keys: VapidKeys, n: int = 2000) -> tuple[float, float]:
    """Process-time µs per message: (encryption, VAPID signature)."""
    sub = Device.derived("cpu", "http://127.0.0.1:1/push/cpu", SEED).subscription()
    data = json.dumps({"kind": "digest", "title": "今日走访提醒",
                       "body": "本周到期 12 户，逾期 3 户，特殊人群 2 户", "url": "/app/#/",
                       "tag": "digest", "lang": "zh-CN"}, ensure_ascii=False).encode()
    pusher = WebPusher(sub)
    started = time.process_time()
    for _ in range(n):
        pusher.encode(data, "aes128gcm")
    encrypt = (time.process_time() - started) / n * 1e6
    started = time.process_time()
    for _ in range(n):
        keys.vapid.sign({"sub": "mailto:admin@localhost", "aud": "http://127.0.0.1:1",
                         "exp": int(time.time()) + 3600})
    sign = (time.process_time() - started) / n * 1e6
    return encrypt, sign


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    devices = max(2, min(args.devices, 20_000))
    keys = VapidKeys.from_secrets({SECRET_NAME: new_private_key()})
    with tempfile.TemporaryDirectory() as var:
        embedded = EmbeddedCouch(Settings(var_dir=Path(var)))
        embedded.start()
        proc, url = start_standin(keys.public_key)
        try:
            couch = Couch(embedded.url, embedded.user, embedded.password, "bench_")
            provision(couch)
            ensure_push_db(couch)
            seed_data(couch, url, devices)
            config = PushConfig(concurrency=args.concurrency, send_timeout=10, retry_base=1)
            worker = OutboxWorker(couch, config, Sender(keys, config.contact, 10), "bench")

            plain = baseline(url, 2000, args.concurrency, 400)
            started = time.perf_counter()
            deadline = time.monotonic() + GIVE_UP
            while standin_figures(url)["delivered"] < devices:
                if time.monotonic() > deadline:
                    raise SystemExit(f"gave up after {GIVE_UP:.0f} s: {standin_figures(url)}")
                worker.step()
            wall = time.perf_counter() - started
            worker.stop()
            figures = standin_figures(url)
            outbox = Outbox(couch).figures()
            encrypt, sign = crypto_cost(keys)
        finally:
            proc.stdin.close()  # type: ignore[union-attr]
            proc.wait(10)
            embedded.stop()
    rate = devices / wall
    print(f"devices (deliveries)        {devices}")
    print(f"concurrency                 {args.concurrency}")
    print(f"fan-out wall time           {wall:.1f} s")
    print(f"fan-out sends per second    {rate:.0f}")
    print(f"baseline plain POSTs/s      {plain:.0f}")
    print(f"fan-out / baseline          {rate / plain:.2f}")
    print(f"encryption CPU per message  {encrypt:.0f} µs")
    print(f"VAPID signing CPU per msg   {sign:.0f} µs")
    print(f"stand-in: delivered {figures['delivered']}, devices {figures['devices']}, "
          f"problems {figures['problems']}; outbox sent {outbox['by_state'][SENT]}")


if __name__ == "__main__":
    main()

"""A local stand-in for a push service, for tests and the fan-out bench.

It does what a real push service checks and what the phone would do: verifies the VAPID
token (signature, audience, expiry, contact) and decrypts the aes128gcm body with the
subscription keys the test made itself. It can be told to answer 201, 429 with Retry-After,
500, 410, or to hang, per subscription, in order.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import jwt


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Device:
    """A browser's side of one subscription: its key pair and auth secret."""

    name: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @classmethod
    def derived(cls, name: str, endpoint: str, seed: str) -> Device:
        """Keys computed from (seed, name): another process can make the same device."""
        secret = hashlib.sha256(f"{seed}:{name}".encode()).digest()
        key = ec.derive_private_key(int.from_bytes(secret, "big") % (2**255) + 1,
                                    ec.SECP256R1())
        return cls(name, endpoint, key, hashlib.sha256(secret).digest()[:16])

    def subscription(self) -> dict[str, Any]:
        """What `PushSubscription.toJSON()` gives the page."""
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": b64url(point), "auth": b64url(self.auth)}}


@dataclass(frozen=True)
class Answer:
    status: int = 201
    retry_after: str | None = None
    hang: float = 0.0  # seconds to hold the request and then drop it without an answer
    delay: float = 0.0  # seconds to take before answering (a slow push service)


@dataclass
class Attempt:
    device: str
    at: float
    status: int  # 0: held without an answer (a hang)
    headers: dict[str, str]
    claims: dict[str, Any] | None = None
    payload: dict[str, Any] | None = None
    problem: str = ""


class PushStandin:
    def __init__(self, vapid_public_key: str | None = None, seed: str | None = None,
                 port: int = 0) -> None:
        self.vapid_public_key = vapid_public_key  # None: accept any key the token names
        self.seed = seed  # set: unknown devices are derived from it (Device.derived)
        self.devices: dict[str, Device] = {}
        self.scripts: dict[str, list[Answer]] = {}
        self.attempts: list[Attempt] = []
        self.lock = threading.Lock()
        self._closing = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> PushStandin:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()

    # -- what tests use -------------------------------------------------------------------

    def device(self, name: str) -> Device:
        endpoint = f"{self.url}/push/{name}"
        d = Device.derived(name, endpoint, self.seed) if self.seed else Device(name, endpoint)
        self.devices[name] = d
        return d

    def figures(self) -> dict[str, int]:
        with self.lock:
            return {"attempts": len(self.attempts),
                    "delivered": sum(1 for a in self.attempts if a.status == 201),
                    "devices": len({a.device for a in self.attempts if a.status == 201}),
                    "problems": sum(1 for a in self.attempts if a.problem)}

    def always(self, name: str, answer: Answer, times: int = 1000) -> None:
        self.script(name, *[answer] * times)

    def script(self, name: str, *answers: Answer) -> None:
        """Answer the next requests for `name` like this, in order; then 201 again."""
        with self.lock:
            self.scripts.setdefault(name, []).extend(answers)

    def delivered(self, name: str | None = None) -> list[Attempt]:
        with self.lock:
            return [a for a in self.attempts
                    if a.status == 201 and (name is None or a.device == name)]

    def tried(self, name: str) -> list[Attempt]:
        with self.lock:
            return [a for a in self.attempts if a.device == name]

    def problems(self) -> list[str]:
        with self.lock:
            return [f"{a.device}: {a.problem}" for a in self.attempts if a.problem]

    # -- the push service -----------------------------------------------------------------

    def _receive(self, name: str, headers: dict[str, str], body: bytes) -> Attempt:
        attempt = Attempt(name, time.time(), 201, headers)
        device = self.devices.get(name)
        if device is None and self.seed:
            with self.lock:
                device = self.device(name)
        if device is None:
            attempt.status, attempt.problem = 404, "no such subscription"
            return attempt
        try:
            attempt.claims = self._verify(headers.get("authorization", ""))
            if headers.get("content-encoding") != "aes128gcm":
                raise ValueError(f"content-encoding {headers.get('content-encoding')!r}")
            plain = http_ece.decrypt(body, private_key=device.private_key,
                                     auth_secret=device.auth, version="aes128gcm")
            attempt.payload = json.loads(plain)
        except Exception as exc:  # any flaw is the sender's: report it as a real service would
            attempt.status, attempt.problem = 400, f"{type(exc).__name__}: {exc}"
        return attempt

    def _verify(self, authorization: str) -> dict[str, Any]:
        scheme, _, params = authorization.partition(" ")
        if scheme.lower() != "vapid":
            raise ValueError(f"authorization scheme {scheme!r}, wanted vapid")
        parts = dict(p.split("=", 1) for p in params.split(","))
        key = parts["k"]
        if self.vapid_public_key and key != self.vapid_public_key:
            raise ValueError("the token is signed with another server's key")
        claims = jwt.decode(parts["t"], key)
        if claims.get("aud") != self.url:
            raise ValueError(f"aud {claims.get('aud')!r} is not {self.url}")
        if not time.time() < claims.get("exp", 0) <= time.time() + 86400:
            raise ValueError("exp must lie within the next 24 hours")
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
            raise ValueError("sub must be mailto: or https:")
        return claims

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (the http.server API)
                body = json.dumps(standin.figures()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                name = self.path.rsplit("/", 1)[-1]
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/plain":  # the bench's baseline: HTTP alone, no crypto
                    self.send_response(201)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                with standin.lock:
                    script = standin.scripts.get(name)
                    answer = script.pop(0) if script else Answer()
                attempt = standin._receive(name, headers, body)
                if attempt.status == 201:
                    attempt.status = 0 if answer.hang else answer.status
                with standin.lock:
                    standin.attempts.append(attempt)
                if answer.hang:
                    standin._closing.wait(answer.hang)
                    self.close_connection = True
                    return  # the sender gave up long ago; it never sees an answer
                standin._closing.wait(answer.delay)
                self.send_response(attempt.status)
                if answer.retry_after is not None and attempt.status == answer.status:
                    self.send_header("Retry-After", answer.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in as its own process (the bench does, so it does not share our GIL)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", required=True)
    parser.add_argument("--vapid-key", required=True)
    args = parser.parse_args(argv)
    with PushStandin(args.vapid_key, seed=args.seed) as standin:
        print(standin.url, flush=True)
        sys.stdin.read()  # run until the parent closes our stdin


if __name__ == "__main__":
    main()

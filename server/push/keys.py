"""The server's VAPID key pair: generated once into the secrets file, public half served."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid

from server.errors import ConfigError

SECRET_NAME = "vapid_private_key"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_private_key() -> str:
    """A fresh P-256 private key as raw base64url (the form py_vapid reads back)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return b64url(key.private_numbers().private_value.to_bytes(32, "big"))


@dataclass(frozen=True)
class VapidKeys:
    vapid: Vapid
    public_key: str  # uncompressed point, base64url: the browser's applicationServerKey

    @classmethod
    def from_secrets(cls, secrets: dict[str, str]) -> VapidKeys:
        try:
            vapid = Vapid.from_string(private_key=secrets[SECRET_NAME])
        except (KeyError, ValueError) as exc:
            raise ConfigError(
                f"the VAPID key in the secrets file is missing or unreadable ({exc}); "
                f"remove '{SECRET_NAME}' from it to generate a new one (phones must then "
                "turn notifications on again)"
            ) from None
        point = vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return cls(vapid, b64url(point))

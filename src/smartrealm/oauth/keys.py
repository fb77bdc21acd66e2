"""The AS's signing keys: RSA 2048 for RS256 (SMART §8: id_tokens SHALL support RS256;
RFC 9068 access tokens use the same keys).

Keys live behind ``KeyStore``: in the realm database (``auth_server.key_storage =
"database"``, ``storage.key_store.SqlKeyStore``) or as one JSON file per key in a directory
(any other value is that path).
The newest key signs; every stored key is published so tokens signed before a rotation
still verify. The AS itself uses ``key_rotation.RotatingKeyRing``, which follows the store
while running and publishes retired keys only as long as their tokens can be valid.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from joserfc.jwk import KeySet, RSAKey

from smartrealm.oauth.key_sealing import CLEAR, KeySealer

ALGORITHM = "RS256"
KEY_SIZE = 2048


@dataclass(frozen=True)
class SigningKey:
    kid: str
    key: RSAKey
    created_at: int

    def public_jwk(self) -> dict[str, Any]:
        """Public members only (RSA n/e) with kid, use and alg (SMART §8: bare JWKs)."""
        data = dict(self.key.as_dict(private=False))
        return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": ALGORITHM,
                "n": data["n"], "e": data["e"]}


class KeyStore(Protocol):
    def load(self) -> list[SigningKey]:
        """Every stored key, oldest first."""
        ...

    def add(self, key: SigningKey) -> None: ...

    def remove(self, kid: str) -> None:
        """Forget a key (rotation drops keys once no valid token can carry their kid)."""
        ...

    def version(self) -> str:
        """Changes whenever a key is added or removed; cheap enough to poll (a running AS
        notices `smartrealm keys rotate` without a restart)."""
        ...

    def secret_key(self, name: str) -> bytes:
        """A named 256-bit symmetric key (e.g. the client-secret HMAC key), created on first
        use; when several processes start at once the first one written wins and all use it.
        Signing-key rotation never touches it."""
        ...


def new_secret_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def generate_key(now: int | None = None) -> SigningKey:
    key = RSAKey.generate_key(KEY_SIZE, parameters={"use": "sig", "alg": ALGORITHM},
                              auto_kid=True)
    return SigningKey(kid=str(key.kid), key=key, created_at=int(now or time.time()))


def key_to_json(key: SigningKey) -> str:
    return json.dumps({"created_at": key.created_at, "jwk": key.key.as_dict(private=True)})


def key_from_json(text: str) -> SigningKey:
    data = json.loads(text)
    key = RSAKey.import_key(data["jwk"])
    return SigningKey(kid=str(key.kid), key=key, created_at=int(data["created_at"]))


class DirectoryKeyStore:
    """One ``<kid>.json`` file per key; the files are private to the AS's user (0600).
    With a sealing ``sealer`` (oauth/key_sealing.py) their content is encrypted."""

    def __init__(self, directory: Path, sealer: KeySealer = CLEAR) -> None:
        self._dir = directory
        self.sealer = sealer

    def load(self) -> list[SigningKey]:
        if not self._dir.is_dir():
            return []
        keys = [key_from_json(self.sealer.open(p.read_text("utf-8"), p.stem))
                for p in sorted(self._dir.glob("*.json"))]
        return sorted(keys, key=lambda k: k.created_at)

    def add(self, key: SigningKey) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        self._write(self._dir / f"{key.kid}.json", self.sealer.seal(key_to_json(key), key.kid))

    def reseal(self) -> int:
        """Rewrite every key and secret with this store's sealer (``keys encrypt``)."""
        count = 0
        for path in sorted(self._dir.glob("*.json")) if self._dir.is_dir() else []:
            opened = self.sealer.open(path.read_text("utf-8"), path.stem)
            self._replace(path, self.sealer.seal(opened, path.stem))
            count += 1
        for path in sorted(self._dir.glob("*.secret")) if self._dir.is_dir() else []:
            name = f"secret:{path.stem}"
            opened = self.sealer.open(path.read_text("ascii").strip(), name)
            self._replace(path, self.sealer.seal(opened, name))
            count += 1
        return count

    @staticmethod
    def _write(path: Path, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)

    def _replace(self, path: Path, text: str) -> None:
        temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        self._write(temp, text)
        os.replace(temp, path)

    def remove(self, kid: str) -> None:
        (self._dir / f"{kid}.json").unlink(missing_ok=True)

    def version(self) -> str:
        if not self._dir.is_dir():
            return ""
        return ",".join(sorted(p.name for p in self._dir.glob("*.json")))

    def secret_key(self, name: str) -> bytes:
        """``<name>.secret`` (0600), beside the signing keys but not one of them (``*.json``)."""
        path = self._dir / f"{name}.secret"
        if not path.exists():
            self._dir.mkdir(parents=True, exist_ok=True)
            # Written aside, then linked into place: a concurrent reader never sees a
            # partial file, and link() fails if another process won the race.
            temp = self._dir / f".{name}.{secrets.token_hex(8)}.tmp"
            self._write(temp, self.sealer.seal(new_secret_key(), f"secret:{name}"))
            try:
                os.link(temp, path)
            except FileExistsError:
                pass
            finally:
                temp.unlink()
        return base64.b64decode(self.sealer.open(path.read_text("utf-8").strip(),
                                                  f"secret:{name}"))


class KeyRing:
    """The loaded keys: the newest signs, all are published."""

    def __init__(self, keys: list[SigningKey]) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self._keys = sorted(keys, key=lambda k: k.created_at)

    @property
    def active(self) -> SigningKey:
        return self._keys[-1]

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        return {"keys": [k.public_jwk() for k in reversed(self._keys)]}

    def public_key_set(self) -> KeySet:
        """The published keys as a joserfc KeySet (to verify this AS's tokens in-process)."""
        return KeySet([RSAKey.import_key(k.public_jwk()) for k in self._keys])


def ensure_keys(store: KeyStore) -> KeyRing:
    """Load the keys, generating the first one on first start."""
    keys = store.load()
    if not keys:
        key = generate_key()
        store.add(key)
        keys = store.load()
    return KeyRing(keys)

"""Stored form of client secrets: a keyed hash, HMAC-SHA-256 (RFC 2104) under a realm key.

Why not the password KDF (``passwords.py``, scrypt): a KDF is slow on purpose so that a
guessable human password resists an offline search, and it then costs every confidential
request ~40 ms of CPU — a stream of wrong secrets for a known client_id becomes a cheap
denial of service. Client secrets are not human passwords: the AS generates them (256 bits
from ``secrets``), and only the realm file may set one by hand. For such values a single
HMAC is as strong as any KDF, and costs microseconds.

Why keyed (a realm secret rather than a plain hash or a pepper in the configuration): the key
lives with the other key material of the AS (``KeyStore.secret_key``: the key directory, or
the database table of the signing keys), generated on first start, so a copy of the clients
table alone — a backup, a replica, a report query — does not allow an offline search even
for a weak secret set by hand in the realm file, and an operator has nothing to configure.

Stored form: ``hmac-sha256$<key id>$<base64url digest>``. The key id (a hash of the key)
lets a later key change recognise hashes made under another key; such a hash does not match
(fail closed). Hashes of the earlier scrypt scheme still verify, reported as ``OUTDATED``, so
the caller replaces them with the fast form on that first successful use.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac

from smartrealm.oauth.passwords import verify_secret

SCHEME = "hmac-sha256"
KEY_NAME = "client-secrets"  # the name of the realm key in the key store
KEY_BYTES = 32


class Match(enum.Enum):
    NO = "no"
    YES = "yes"
    OUTDATED = "outdated"  # right secret, stored in an earlier scheme: rehash it now


class ClientSecrets:
    def __init__(self, key: bytes) -> None:
        if len(key) < KEY_BYTES:
            raise ValueError(f"the client-secret key must have at least {KEY_BYTES} bytes")
        self._key = key
        self._key_id = hashlib.sha256(b"key id\x00" + key).hexdigest()[:12]
        # A well-formed hash no secret matches: unknown clients cost the same HMAC.
        self._dummy = f"{SCHEME}${self._key_id}${'A' * 43}"

    def hash(self, secret: str) -> str:
        return f"{SCHEME}${self._key_id}${self._digest(secret)}"

    def _digest(self, secret: str) -> str:
        mac = hmac.new(self._key, secret.encode("utf-8"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode("ascii").rstrip("=")

    def check(self, secret: str, stored: str | None) -> Match:
        """Constant-time comparison (``hmac.compare_digest``) of the secret's hash with the
        stored one; ``None`` (unknown client) spends the same work and never matches."""
        scheme, _, rest = (stored or self._dummy).partition("$")
        if scheme == "scrypt":
            return Match.OUTDATED if verify_secret(secret, stored) else Match.NO
        key_id, _, digest = rest.partition("$")
        actual = self._digest(secret)
        same = hmac.compare_digest(actual.encode(), digest.encode())
        if scheme != SCHEME or key_id != self._key_id or stored is None or not same:
            return Match.NO
        return Match.YES

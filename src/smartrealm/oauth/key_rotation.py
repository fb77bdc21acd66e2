"""Signing-key rotation: a new key is published at once and becomes the signing key
``PREPUBLISH`` seconds later; older keys stay published in the JWKS until every token they
signed has expired, then they are dropped.

Why the short pre-publication: a resource server refetches the JWKS when a token names a kid
it does not know, but at most every 10 s (guard/jwks.py). Were the new key to sign at once,
a server that had just fetched the old set would refuse the first new tokens — the AS's own
patient-lookup tokens included — for up to 10 s. Published ``PREPUBLISH`` seconds ahead
(more than that interval plus the AS's ``RELOAD_INTERVAL``), every fetch made in the 10 s
before the first new token already holds the new key. A key's ``created_at`` is the moment
it starts signing.

A key *retires* when the next key starts signing. It may still have signed tokens for a
short while after that (a running AS looks at its store every ``RELOAD_INTERVAL``), and those
live at most the longest token lifetime (access token or id_token). So a retired key stays
published while ``now < retired_at + max_lifetime + MARGIN``; the margin also covers the
resource servers' clock leeway (30 s).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc.jwk import KeySet, RSAKey

from smartrealm.core.defaults import ID_TOKEN_LIFETIME, SELF_TOKEN_LIFETIME
from smartrealm.core.defaults import KEY_RELOAD_INTERVAL as RELOAD_INTERVAL
from smartrealm.oauth.keys import KeyRing, KeyStore, SigningKey, generate_key

PREPUBLISH = 20  # seconds a new key is published before it signs
MARGIN = 120
# HTTP caching of the JWKS: well under PREPUBLISH - RELOAD_INTERVAL.
JWKS_CACHE_CONTROL = "public, max-age=10"


def max_token_lifetime(access_token_lifetime: int) -> int:
    return max(access_token_lifetime, ID_TOKEN_LIFETIME, SELF_TOKEN_LIFETIME)


@dataclass(frozen=True)
class KeyStatus:
    key: SigningKey
    retired_at: int | None  # when the next key starts signing; None: no next key yet
    published_until: int | None  # None: published for as long as it is the newest

    def published(self, now: int) -> bool:
        return self.published_until is None or now < self.published_until

    def state(self, now: int) -> str:
        if now < self.key.created_at:
            return "pending"
        if self.retired_at is None or now < self.retired_at:
            return "signing"
        return "retired" if self.published(now) else "expired"


def key_statuses(keys: list[SigningKey], max_lifetime: int) -> list[KeyStatus]:
    """Every key, oldest first, with its retirement (the next key's creation)."""
    ordered = sorted(keys, key=lambda k: k.created_at)
    successors: list[SigningKey | None] = [*ordered[1:], None]
    return [KeyStatus(key, None if nxt is None else nxt.created_at,
                      None if nxt is None else nxt.created_at + max_lifetime + MARGIN)
            for key, nxt in zip(ordered, successors, strict=True)]


def published_keys(keys: list[SigningKey], now: int, max_lifetime: int) -> list[SigningKey]:
    return [s.key for s in key_statuses(keys, max_lifetime) if s.published(now)]


def prune(store: KeyStore, now: int, max_lifetime: int) -> list[str]:
    """Delete the keys no valid token can name any more; returns their kids."""
    gone = [s.key.kid for s in key_statuses(store.load(), max_lifetime) if not s.published(now)]
    for kid in gone:
        store.remove(kid)
    return gone


def signing_key(keys: list[SigningKey], now: int) -> SigningKey:
    """The newest key whose time has come (the oldest if none has: a clock set back)."""
    ordered = sorted(keys, key=lambda k: k.created_at)
    started = [k for k in ordered if k.created_at <= now]
    return started[-1] if started else ordered[0]


def rotate(store: KeyStore, now: int, max_lifetime: int,
           prepublish: int = PREPUBLISH) -> tuple[SigningKey, list[str]]:
    """Add a key that starts signing ``prepublish`` seconds from now (and after every stored
    key) and prune the keys nothing needs; returns the key and the pruned kids."""
    newest = max((k.created_at for k in store.load()), default=now - 1)
    key = generate_key(now=max(now + prepublish, newest + 1))
    store.add(key)
    return key, prune(store, now, max_lifetime)


class RotatingKeyRing(KeyRing):
    """A key ring that follows its store: rotations made by `smartrealm keys rotate` (or by
    another AS process) are picked up within ``interval`` seconds, without a restart."""

    def __init__(self, store: KeyStore, max_lifetime: int, *,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 interval: float = RELOAD_INTERVAL) -> None:
        if not store.load():
            store.add(generate_key())
        super().__init__(store.load())
        self._store, self._max_lifetime = store, max_lifetime
        self._clock, self._monotonic, self._interval = clock, monotonic, interval
        self._version = store.version()
        self._checked = monotonic()

    def reload_if_changed(self) -> None:
        if self._monotonic() - self._checked < self._interval:
            return
        self._checked = self._monotonic()
        version = self._store.version()
        if version == self._version:
            return
        keys = self._store.load()
        if keys:  # a store emptied by hand keeps the keys we have
            self._keys = sorted(keys, key=lambda k: k.created_at)
        self._version = version

    def _published(self) -> list[SigningKey]:
        self.reload_if_changed()
        return published_keys(self._keys, int(self._clock()), self._max_lifetime)

    @property
    def active(self) -> SigningKey:
        self.reload_if_changed()
        return signing_key(self._keys, int(self._clock()))

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        return {"keys": [k.public_jwk() for k in reversed(self._published())]}

    def public_key_set(self) -> KeySet:
        return KeySet([RSAKey.import_key(k.public_jwk()) for k in self._published()])

    def drop_expired_keys(self, now: int) -> list[str]:
        """Delete from the store the keys no valid token can name (the periodic purge)."""
        return prune(self._store, now, self._max_lifetime)

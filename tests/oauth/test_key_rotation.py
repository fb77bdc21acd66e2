"""Signing-key rotation: which keys are published, pruning, and a key ring that follows its
store without a restart (both key stores: the SQL one on every backend, and a directory)."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartrealm.oauth.key_rotation import (
    MARGIN,
    PREPUBLISH,
    RotatingKeyRing,
    key_statuses,
    max_token_lifetime,
    prune,
    published_keys,
    rotate,
    signing_key,
)
from smartrealm.oauth.keys import DirectoryKeyStore, KeyStore, generate_key
from smartrealm.oauth.tokens import ID_TOKEN_LIFETIME
from smartrealm.storage import make_engine
from smartrealm.storage.key_store import SqlKeyStore

LIFETIME = 3600


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sql", "directory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> KeyStore:
    if request.param == "directory":
        return DirectoryKeyStore(tmp_path / "keys")
    sql = SqlKeyStore(make_engine(f"sqlite:///{tmp_path / 'keys.db'}"))
    sql.create_tables()
    return sql


def test_max_lifetime_covers_id_tokens() -> None:
    assert max_token_lifetime(3600) == 3600
    assert max_token_lifetime(60) == ID_TOKEN_LIFETIME


def test_a_retired_key_stays_published_until_its_tokens_expire() -> None:
    old, new = generate_key(now=1000), generate_key(now=5000)
    statuses = key_statuses([new, old], LIFETIME)
    assert [s.key.kid for s in statuses] == [old.kid, new.kid]
    assert statuses[0].retired_at == 5000
    assert statuses[0].published_until == 5000 + LIFETIME + MARGIN
    assert statuses[1].retired_at is None and statuses[1].published_until is None
    assert published_keys([old, new], 5000 + LIFETIME + MARGIN - 1, LIFETIME) == [old, new]
    assert published_keys([old, new], 5000 + LIFETIME + MARGIN, LIFETIME) == [new]


def test_states_of_a_key() -> None:
    old, new = generate_key(now=1000), generate_key(now=5000)
    first, second = key_statuses([old, new], LIFETIME)
    assert [first.state(4999), second.state(4999)] == ["signing", "pending"]
    assert [first.state(5000), second.state(5000)] == ["retired", "signing"]
    assert first.state(5000 + LIFETIME + MARGIN) == "expired"
    assert signing_key([old, new], 4999) == old and signing_key([old, new], 5000) == new
    assert signing_key([old, new], 0) == old  # a clock set back: the oldest key


def test_rotate_adds_a_newer_key_and_prunes_expired_ones(store: KeyStore) -> None:
    first = generate_key(now=1000)
    store.add(first)
    second, dropped = rotate(store, 1000, LIFETIME)
    assert second.created_at == 1000 + PREPUBLISH and dropped == []
    # Always after every stored key, so the newest key is the one that ends up signing.
    extra, _ = rotate(store, 1000, LIFETIME, prepublish=0)
    assert extra.created_at == second.created_at + 1
    store.remove(extra.kid)
    third, dropped = rotate(store, second.created_at + LIFETIME + MARGIN, LIFETIME)
    assert dropped == [first.kid]
    assert [k.kid for k in store.load()] == [second.kid, third.kid]
    assert prune(store, 10**9, LIFETIME) == [second.kid]
    assert [k.kid for k in store.load()] == [third.kid]


def test_the_ring_follows_its_store(store: KeyStore) -> None:
    wall, mono = Clock(1000), Clock(0)
    store.add(generate_key(now=900))
    ring = RotatingKeyRing(store, LIFETIME, clock=wall, monotonic=mono, interval=5)
    first = ring.active
    assert [k["kid"] for k in ring.jwks()["keys"]] == [first.kid]
    new, _ = rotate(store, 1000, LIFETIME)
    mono.now = 4.9  # not looked yet
    assert [k["kid"] for k in ring.jwks()["keys"]] == [first.kid]
    mono.now = 5.0  # published at once, but it does not sign before its time
    assert [k["kid"] for k in ring.jwks()["keys"]] == [new.kid, first.kid]
    assert ring.active.kid == first.kid
    wall.now = 1000 + PREPUBLISH
    assert ring.active.kid == new.kid
    assert [k["kid"] for k in ring.jwks()["keys"]] == [new.kid, first.kid]
    assert {k.kid for k in ring.public_key_set().keys} == {new.kid, first.kid}
    # Once every token the old key signed has expired, it leaves the JWKS.
    wall.now = new.created_at + LIFETIME + MARGIN
    assert [k["kid"] for k in ring.jwks()["keys"]] == [new.kid]
    assert ring.drop_expired_keys(int(wall.now)) == [first.kid]
    assert [k.kid for k in store.load()] == [new.kid]


def test_the_ring_creates_the_first_key(store: KeyStore) -> None:
    ring = RotatingKeyRing(store, LIFETIME)
    assert [k.kid for k in store.load()] == [ring.active.kid]


def test_a_secret_key_is_created_once_kept_apart_and_survives_rotation(
        store: KeyStore, tmp_path: Path) -> None:
    """The client-secret HMAC key (oauth/client_secrets.py) lives with the key material, is
    the same for every reader, and is neither a signing key nor touched by rotation."""
    first = store.secret_key("client-secrets")
    assert len(first) == 32 and store.secret_key("client-secrets") == first
    assert store.secret_key("other") != first
    assert store.load() == []  # not a signing key
    store.add(generate_key(now=1000))
    store.add(generate_key(now=9_000_000))
    prune(store, 10_000_000, LIFETIME)
    assert store.secret_key("client-secrets") == first
    if isinstance(store, DirectoryKeyStore):
        path = tmp_path / "keys" / "client-secrets.secret"
        assert path.stat().st_mode & 0o777 == 0o600
        assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(".")) == []

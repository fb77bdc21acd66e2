"""Client authentication (RFC 6749 §2.3): methods, the keyed secret hash, the upgrade of
scrypt hashes on first use, and the failure throttle."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartrealm.oauth.client_auth import (
    ClientAuth,
    authenticate,
    extract_credentials,
    parse_basic,
)
from smartrealm.oauth.client_secrets import ClientSecrets, Match
from smartrealm.oauth.errors import InvalidClient, InvalidRequest, TooManyFailures
from smartrealm.oauth.passwords import hash_secret, verify_secret
from smartrealm.oauth.store import Client
from tests.oauth.memory_clients import MemoryClients

SECRETS = ClientSecrets(b"realm key " * 4)
CLIENTS = {
    "pub": Client("pub", "Public", ("https://a/cb",)),
    "conf": Client("conf", "Conf", ("https://a/cb",), "client_secret_basic",
                   SECRETS.hash("s3cret")),
}


@dataclass
class CountingThrottle:
    """Locks a client_id after ``limit`` failures (the SQL one: tests/authz)."""

    limit: int = 3
    failures: dict[str, int] = field(default_factory=dict)

    def retry_after(self, client_id: str) -> int:
        return 60 if self.failures.get(client_id, 0) >= self.limit else 0

    def failed(self, client_id: str) -> int:
        self.failures[client_id] = self.failures.get(client_id, 0) + 1
        return self.retry_after(client_id)

    def succeeded(self, client_id: str) -> None:
        self.failures.pop(client_id, None)


def _auth(clients: dict[str, Client] | None = None) -> ClientAuth:
    return ClientAuth(MemoryClients(CLIENTS if clients is None else clients), SECRETS)


def _basic(raw: str) -> str:
    return "Basic " + base64.b64encode(raw.encode()).decode()


def test_basic_accepts_plain_and_form_encoded_parts() -> None:
    assert parse_basic(_basic("conf:s3cret")) == ("conf", "s3cret")
    assert parse_basic(_basic("a%3Ab:x%2By")) == ("a:b", "x+y")
    for bad in ("Bearer x", "Basic !!!", _basic("nocolon"), "Basic "):
        with pytest.raises(InvalidClient):
            parse_basic(bad)


def test_methods() -> None:
    assert extract_credentials(None, {"client_id": ["pub"]}).method == "none"
    assert extract_credentials(None, {"client_id": ["c"], "client_secret": ["s"]}).method == \
        "client_secret_post"
    assert extract_credentials(_basic("c:s"), {}).method == "client_secret_basic"
    with pytest.raises(InvalidRequest):
        extract_credentials(_basic("c:s"), {"client_secret": ["s"]})
    with pytest.raises(InvalidClient):
        extract_credentials(_basic("c:s"), {"client_id": ["other"]})
    with pytest.raises(InvalidClient):
        extract_credentials(None, {})


@pytest.mark.parametrize(("header", "form", "ok"), [
    (None, {"client_id": ["pub"]}, True),
    (None, {"client_id": ["pub"], "client_secret": ["x"]}, False),
    (None, {"client_id": ["conf"]}, False),
    (None, {"client_id": ["conf"], "client_secret": ["s3cret"]}, True),
    (None, {"client_id": ["conf"], "client_secret": ["nope"]}, False),
    ("conf:s3cret", {}, True),
    ("conf:nope", {}, False),
    ("ghost:s3cret", {}, False),
])
def test_authenticate(header: str | None, form: dict[str, list[str]], ok: bool) -> None:
    credentials = extract_credentials(_basic(header) if header else None, form)
    if ok:
        assert authenticate(credentials, _auth()).client_id == credentials.client_id
    else:
        with pytest.raises(InvalidClient):
            authenticate(credentials, _auth())


def test_password_hashes_are_salted_and_verify() -> None:
    assert hash_secret("x") != hash_secret("x")
    assert verify_secret("x", hash_secret("x"))
    assert not verify_secret("y", hash_secret("x"))
    assert not verify_secret("x", None)
    assert not verify_secret("x", "garbage")


def test_client_secrets_use_the_fast_keyed_hash() -> None:
    stored = SECRETS.hash("x")
    assert stored.startswith("hmac-sha256$") and stored == SECRETS.hash("x")
    assert SECRETS.check("x", stored) is Match.YES
    assert SECRETS.check("y", stored) is Match.NO
    assert SECRETS.check("x", None) is Match.NO
    assert SECRETS.check("x", "garbage") is Match.NO
    # Keyed: the same secret under another realm's key neither hashes alike nor verifies.
    other = ClientSecrets(b"another key " * 3)
    assert other.hash("x") != stored
    assert other.check("x", stored) is Match.NO
    assert SECRETS.check("x", other.hash("x")) is Match.NO
    with pytest.raises(ValueError, match="32 bytes"):
        ClientSecrets(b"short")


def test_a_hash_from_another_key_never_matches_even_with_the_right_digest() -> None:
    """The key id is checked too: a digest pasted under a foreign key id does not pass."""
    scheme, _, digest = SECRETS.hash("x").split("$")
    assert SECRETS.check("x", f"{scheme}$000000000000${digest}") is Match.NO
    assert SECRETS.check("x", f"sha256$x${digest}") is Match.NO


@given(st.text(max_size=40), st.text(max_size=40))
def test_only_the_right_secret_matches(secret: str, other: str) -> None:
    stored = SECRETS.hash(secret)
    assert SECRETS.check(secret, stored) is Match.YES
    assert SECRETS.check(other, stored) is (Match.YES if other == secret else Match.NO)


def test_an_scrypt_hash_is_replaced_on_its_first_successful_use() -> None:
    old = hash_secret("s3cret")  # what earlier versions stored
    auth = _auth({"conf": replace(CLIENTS["conf"], secret_hash=old)})
    assert SECRETS.check("s3cret", old) is Match.OUTDATED
    with pytest.raises(InvalidClient):  # a wrong secret upgrades nothing
        authenticate(extract_credentials(None, {"client_id": ["conf"],
                                                "client_secret": ["nope"]}), auth)
    assert auth.clients.get("conf") == replace(CLIENTS["conf"], secret_hash=old)

    authenticate(extract_credentials(_basic("conf:s3cret"), {}), auth)
    stored = auth.clients.get("conf")
    assert stored is not None and stored.secret_hash is not None
    assert stored.secret_hash.startswith("hmac-sha256$")
    assert SECRETS.check("s3cret", stored.secret_hash) is Match.YES
    authenticate(extract_credentials(_basic("conf:s3cret"), {}), auth)  # and it still works


def test_the_upgrade_never_overwrites_a_secret_changed_meanwhile() -> None:
    store = MemoryClients({"conf": replace(CLIENTS["conf"], secret_hash=hash_secret("a"))})
    assert not store.replace_secret_hash("conf", "stale", SECRETS.hash("a"))
    assert not store.replace_secret_hash("ghost", "stale", SECRETS.hash("a"))
    assert store.get("ghost") is None


def test_too_many_failures_refuse_even_the_right_secret() -> None:
    throttle = CountingThrottle(limit=3)
    auth = ClientAuth(MemoryClients(CLIENTS), SECRETS, throttle)
    wrong = extract_credentials(_basic("conf:nope"), {})
    right = extract_credentials(_basic("conf:s3cret"), {})
    assert authenticate(right, auth).client_id == "conf"
    for _ in range(2):
        with pytest.raises(InvalidClient) as plain:
            authenticate(wrong, auth)
        assert plain.value.status == 401
    with pytest.raises(TooManyFailures) as third:  # the failure that starts the lock
        authenticate(wrong, auth)
    with pytest.raises(TooManyFailures) as locked:
        authenticate(right, auth)
    for error in (third.value, locked.value):
        assert error.status == 429 and error.error == "invalid_client"
        assert error.headers()["Retry-After"] == "60"
    throttle.failures.clear()  # the lock ends
    assert authenticate(right, auth).client_id == "conf"


def test_unknown_clients_are_throttled_like_known_ones() -> None:
    """The lock does not tell whether a client_id exists."""
    throttle = CountingThrottle(limit=1)
    auth = ClientAuth(MemoryClients(CLIENTS), SECRETS, throttle)
    with pytest.raises(TooManyFailures):
        authenticate(extract_credentials(_basic("ghost:x"), {}), auth)
    assert throttle.failures == {"ghost": 1}


def test_a_right_secret_forgets_earlier_failures() -> None:
    throttle = CountingThrottle(limit=3)
    auth = ClientAuth(MemoryClients(CLIENTS), SECRETS, throttle)
    with pytest.raises(InvalidClient):
        authenticate(extract_credentials(_basic("conf:nope"), {}), auth)
    authenticate(extract_credentials(_basic("conf:s3cret"), {}), auth)
    assert throttle.failures == {}


def test_public_clients_and_missing_secrets_are_not_counted() -> None:
    """Nothing was guessed: no count that a misconfigured app could run into."""
    throttle = CountingThrottle(limit=1)
    auth = ClientAuth(MemoryClients(CLIENTS), SECRETS, throttle)
    with pytest.raises(InvalidClient):
        authenticate(extract_credentials(None, {"client_id": ["conf"]}), auth)
    with pytest.raises(InvalidClient):
        authenticate(extract_credentials(None, {"client_id": ["pub"],
                                                "client_secret": ["x"]}), auth)
    assert throttle.failures == {}

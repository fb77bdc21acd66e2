"""Client secrets at the AS: stored with the realm's keyed hash (oauth/client_secrets.py),
scrypt hashes of earlier versions replaced on their next successful use, and failed client
authentication limited per client_id and caller address in the realm database
(authz/client_guard.py) — shared by every AS instance."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request

from smartrealm.authz.client_guard import caller_address
from smartrealm.authz.stores.sql import sql_stores
from smartrealm.oauth.client_secrets import Match
from smartrealm.oauth.keys import KeyRing
from smartrealm.oauth.passwords import hash_secret
from smartrealm.oauth.store import SECRET_BASIC, Client, ClientStore
from smartrealm.realm.config import RealmConfig
from smartrealm.storage import make_engine
from tests.authz.consent_helpers import Clock, as_client, realm_secrets
from tests.authz.fhir_stub import FhirStub
from tests.authz.lifecycle import basic, introspect, register_confidential, rs_auth

ELSEWHERE = ("203.0.113.9", 40000)  # another caller address (TEST-NET-3)


def _clients(realm: RealmConfig) -> ClientStore:
    return sql_stores(make_engine(realm.database_url_for(None))).clients


def _status(response: httpx.Response) -> tuple[int, str | None]:
    error = response.json().get("error") if response.status_code != 200 else None
    return response.status_code, error


@asynccontextmanager
async def _from(app: Starlette, realm: RealmConfig, client: tuple[str, int]
                ) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=client)
    async with httpx.AsyncClient(transport=transport, base_url=realm.auth_server.issuer) as ua:
        yield ua


async def test_a_registered_secret_is_stored_with_the_keyed_hash(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    app = await register_confidential(ua)
    stored = _clients(realm).get(app.client_id)
    assert stored is not None and stored.secret_hash is not None
    assert stored.secret_hash.startswith("hmac-sha256$")
    assert app.secret not in stored.secret_hash
    assert realm_secrets(realm).check(app.secret, stored.secret_hash) is Match.YES


async def test_an_scrypt_hash_is_upgraded_on_the_next_successful_use(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    legacy = hash_secret("legacy-secret")  # as earlier versions stored every client secret
    _clients(realm).put(Client("legacy", "Legacy", ("http://127.0.0.1:9/cb",), SECRET_BASIC,
                               legacy))
    wrong = await introspect(ua, "x", basic("legacy", "nope"))
    assert _status(wrong) == (401, "invalid_client")
    assert (stored := _clients(realm).get("legacy")) and stored.secret_hash == legacy

    right = await introspect(ua, "x", basic("legacy", "legacy-secret"))
    assert right.status_code == 200 and right.json() == {"active": False}
    stored = _clients(realm).get("legacy")
    assert stored is not None and stored.secret_hash is not None
    assert stored.secret_hash.startswith("hmac-sha256$")
    assert realm_secrets(realm).check("legacy-secret", stored.secret_hash) is Match.YES
    again = await ua.post("/revoke", data={"token": "x"},
                          headers=basic("legacy", "legacy-secret"))
    assert again.status_code == 200  # the new hash authenticates at every endpoint
    assert _status(await introspect(ua, "x", basic("legacy", "nope"))) == (401, "invalid_client")


async def test_wrong_secrets_lock_the_client_id_from_that_address(
        realm: RealmConfig, keys: KeyRing, stub: FhirStub) -> None:
    clock = Clock()
    async with as_client(realm, keys, stub, clock=clock) as (ua, app):
        conf = await register_confidential(ua)
        wrong, right = basic(conf.client_id, "wrong"), basic(conf.client_id, conf.secret)
        for _ in range(9):
            assert _status(await introspect(ua, "x", wrong)) == (401, "invalid_client")
        locked = await introspect(ua, "x", wrong)  # the 10th failure starts the lock
        assert _status(locked) == (429, "invalid_client")
        assert locked.headers["retry-after"] == "300"
        assert locked.headers["cache-control"] == "no-store"
        # While locked nothing is checked from here: the right secret too, at every endpoint.
        assert _status(await introspect(ua, "x", right)) == (429, "invalid_client")
        token = await ua.post("/token", headers=right,
                              data={"grant_type": "authorization_code", "code": "x"})
        assert _status(token) == (429, "invalid_client")
        assert token.headers["retry-after"] == "300"
        # Another address is not locked out: a lock per client_id alone would let anyone
        # shut a client out.
        async with _from(app, realm, ELSEWHERE) as other:
            assert (await introspect(other, "x", right)).status_code == 200
        clock.now += 300
        assert (await introspect(ua, "x", right)).status_code == 200
        # The success forgot the count: one wrong secret is an ordinary 401 again.
        assert _status(await introspect(ua, "x", wrong)) == (401, "invalid_client")


async def test_unknown_client_ids_are_locked_alike(realm: RealmConfig, keys: KeyRing,
                                                   stub: FhirStub) -> None:
    async with as_client(realm, keys, stub) as (ua, _):
        answers = [_status(await introspect(ua, "x", basic("nobody", "guess")))
                   for _ in range(10)]
    assert answers == [(401, "invalid_client")] * 9 + [(429, "invalid_client")]


async def test_the_count_is_shared_by_every_as_instance(realm: RealmConfig, keys: KeyRing,
                                                        stub: FhirStub) -> None:
    clock = Clock()
    async with as_client(realm, keys, stub, clock=clock) as (first, _):
        conf = await register_confidential(first)
        wrong = basic(conf.client_id, "wrong")
        async with as_client(realm, keys, stub, clock=clock) as (second, _):
            for ua in (first, second) * 4 + (first,):
                assert _status(await introspect(ua, "x", wrong)) == (401, "invalid_client")
            assert _status(await introspect(second, "x", wrong)) == (429, "invalid_client")
            right = basic(conf.client_id, conf.secret)
            assert _status(await introspect(first, "x", right)) == (429, "invalid_client")


async def test_resource_server_secrets_are_limited_too(realm: RealmConfig, keys: KeyRing,
                                                       stub: FhirStub) -> None:
    async with as_client(realm, keys, stub) as (ua, _):
        for _ in range(9):
            response = await introspect(ua, "x", basic("rs:ehr", "wrong"))
            assert _status(response) == (401, "invalid_client")
        assert _status(await introspect(ua, "x", basic("rs:ehr", "wrong"))) == \
            (429, "invalid_client")
        assert _status(await introspect(ua, "x", rs_auth(realm, "ehr"))) == \
            (429, "invalid_client")


async def test_a_public_client_sending_a_secret_is_not_counted(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    """Nothing guessable was presented: a misconfigured public app is never locked out."""
    for _ in range(12):
        response = await ua.post("/revoke", data={"token": "x", "client_secret": "s",
                                                  "client_id": "smartrealm-demo-app"})
        assert _status(response) == (401, "invalid_client")


def _request(host: str) -> Request:
    return Request({"type": "http", "client": (host, 1), "headers": []})


@pytest.mark.parametrize(("host", "key"), [
    ("192.0.2.7", "192.0.2.7"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
    ("::ffff:192.0.2.7", "192.0.2.7"),
    ("testclient", "testclient"),
])
def test_callers_are_keyed_by_address_and_ipv6_by_its_64(host: str, key: str) -> None:
    assert caller_address(_request(host)) == key

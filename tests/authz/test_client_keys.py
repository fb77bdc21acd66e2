"""Fetching and caching clients' jwks_uri documents (SMART §4.5): within Cache-Control, a
rate-limited refetch on an unknown kid, failures never cached as keys. The JWKS is served by
a real Starlette app (in-process ASGI); the clock is the test's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from smartrealm.authz.client_keys import (
    DEFAULT_MAX_AGE,
    MAX_CACHE_AGE,
    ClientJwksCache,
    cache_lifetime,
)
from smartrealm.authz.stores.sql import sql_stores
from smartrealm.oauth.assertions import request_assertion
from smartrealm.oauth.store import PRIVATE_KEY_JWT, Client, ClientStore
from smartrealm.storage import make_engine
from tests.oauth.assertion_keys import ClientKey, assertion_form

URI = "https://client.example/jwks.json"
KEY_1 = ClientKey.generate("RS384", "k1")
KEY_2 = ClientKey.generate("ES384", "k2")


@dataclass
class JwksServer:
    """What the client's server answers; counts the requests it gets."""

    keys: list[ClientKey] = field(default_factory=lambda: [KEY_1])
    cache_control: str | None = "max-age=60"
    status: int = 200
    body: bytes | None = None
    hits: int = 0

    async def jwks(self, request: Request) -> Response:
        self.hits += 1
        assert request.headers["accept"] == "application/json"
        headers = {"Cache-Control": self.cache_control} if self.cache_control else {}
        if self.body is not None:
            return Response(self.body, status_code=self.status, headers=headers)
        return JSONResponse({"keys": [k.public_jwk() for k in self.keys]},
                            status_code=self.status, headers=headers)

    async def moved(self, request: Request) -> Response:
        return Response(status_code=302, headers={"Location": URI})


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> JwksServer:
    return JwksServer()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def cache(server: JwksServer, clock: Clock) -> AsyncIterator[ClientJwksCache]:
    app = Starlette(routes=[Route("/jwks.json", server.jwks), Route("/moved", server.moved)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        yield ClientJwksCache(http, clock=clock)


def _kids(jwks: dict[str, Any] | None) -> list[str]:
    assert jwks is not None
    return [k["kid"] for k in jwks["keys"]]


async def test_cached_within_max_age(cache: ClientJwksCache, server: JwksServer,
                                     clock: Clock) -> None:
    assert _kids(await cache.document(URI, "k1")) == ["k1"]
    clock.now += 59
    assert _kids(await cache.document(URI, "k1")) == ["k1"]
    assert server.hits == 1
    clock.now += 2
    await cache.document(URI, "k1")
    assert server.hits == 2


@pytest.mark.parametrize("header", ["no-store", "no-cache", "max-age=0", "max-age=abc"])
async def test_not_cached_when_the_client_forbids_it(cache: ClientJwksCache,
                                                     server: JwksServer, header: str) -> None:
    server.cache_control = header
    for _ in range(3):
        assert _kids(await cache.document(URI, "k1")) == ["k1"]
    assert server.hits == 3


async def test_unknown_kid_refetches_at_most_every_ten_seconds(
        cache: ClientJwksCache, server: JwksServer, clock: Clock) -> None:
    await cache.document(URI, "k1")
    server.keys = [KEY_1, KEY_2]  # the client rotates in a new key
    clock.now += 11
    assert _kids(await cache.document(URI, "k2")) == ["k1", "k2"]
    assert server.hits == 2
    clock.now += 1
    assert _kids(await cache.document(URI, "made-up")) == ["k1", "k2"]  # rate limited
    assert _kids(await cache.document(URI, "made-up-too")) == ["k1", "k2"]
    assert server.hits == 2
    clock.now += 10
    await cache.document(URI, "made-up")
    assert server.hits == 3


@pytest.mark.parametrize(("status", "body"), [
    (500, None), (404, None), (200, b"not json"), (200, b'{"no": "keys"}'), (200, b"[]"),
    (200, b"[" * 60_000), (200, b"[" * 70_000), (200, b'{"keys": []' + b" " * 70_000 + b"}"),
])
async def test_a_failing_document_gives_no_keys_and_is_not_hammered(
        cache: ClientJwksCache, server: JwksServer, clock: Clock, status: int,
        body: bytes | None) -> None:
    server.status, server.body = status, body
    assert await cache.document(URI, "k1") is None
    assert await cache.document(URI, "k1") is None
    assert server.hits == 1
    clock.now += 10
    server.status, server.body = 200, None
    assert _kids(await cache.document(URI, "k1")) == ["k1"]


async def test_a_failed_refetch_keeps_a_fresh_document_but_never_a_stale_one(
        cache: ClientJwksCache, server: JwksServer, clock: Clock) -> None:
    await cache.document(URI, "k1")
    server.status = 503
    clock.now += 15
    assert _kids(await cache.document(URI, "k2")) == ["k1"]  # still within max-age
    clock.now += 60
    assert await cache.document(URI, "k1") is None


async def test_redirects_are_not_followed(cache: ClientJwksCache, server: JwksServer) -> None:
    assert await cache.document("https://client.example/moved", "k1") is None
    assert server.hits == 0


async def test_an_unreachable_host_gives_no_keys(clock: Clock) -> None:
    async with httpx.AsyncClient() as http:
        cache = ClientJwksCache(http, clock=clock)
        assert await cache.document("http://127.0.0.1:9/jwks", "k1") is None


@pytest.fixture
def clients(tmp_path: Path) -> ClientStore:
    store = sql_stores(make_engine(f"sqlite:///{tmp_path / 'as.db'}")).clients
    store.put(Client("remote", "R", (), PRIVATE_KEY_JWT, jwks_uri=URI))
    store.put(Client("inline", "I", (), PRIVATE_KEY_JWT, jwks=KEY_2.jwks()))
    return store


def _form(client_id: str, **header: Any) -> dict[str, list[str]]:
    token = KEY_1.assertion(client_id, "https://as/token", header=header or None)
    return {k: [str(v)] for k, v in assertion_form(token).items()}


async def test_keys_for_request(cache: ClientJwksCache, server: JwksServer,
                                clients: ClientStore) -> None:
    remote, inline = clients.get("remote"), clients.get("inline")
    assert remote is not None and inline is not None
    source = await cache.keys_for_request(request_assertion(_form("remote")), clients)
    assert _kids(dict(source(remote) or {})) == ["k1"]
    assert source(inline) == KEY_2.jwks()
    assert server.hits == 1
    for form in (_form("inline"), _form("nobody"), {"grant_type": ["client_credentials"]},
                 _form("remote", jku="https://evil.example/jwks"),
                 {"client_assertion": ["garbage"]}):
        source = await cache.keys_for_request(request_assertion(form), clients)
        assert source(remote) is None
    assert server.hits == 1


@pytest.mark.parametrize(("header", "seconds"), [
    (None, DEFAULT_MAX_AGE), ("max-age=120", 120), ("public, max-age=5", 5),
    ("MAX-AGE=7", 7), ('max-age="9"', 9), ("max-age=99999999", MAX_CACHE_AGE),
    ("no-store", 0), ("max-age=60, no-cache", 0), ("private", DEFAULT_MAX_AGE),
    ("max-age=-1", 0), ("max-age=", 0), ("s-maxage=30", 30),
])
def test_cache_lifetime(header: str | None, seconds: float) -> None:
    assert cache_lifetime(header) == seconds


@given(st.text(max_size=80))
def test_cache_lifetime_is_total_and_bounded(header: str) -> None:
    assert 0 <= cache_lifetime(header) <= MAX_CACHE_AGE

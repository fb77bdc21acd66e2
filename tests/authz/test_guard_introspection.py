"""The guard's introspection mode against the real AS app (in-process): each server's view,
the short cache, revocation biting (where the JWT mode does not), and failures of the AS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
from starlette.applications import Starlette

from smartrealm.guard import (
    IntrospectionUnavailable,
    IntrospectionValidator,
    TokenRejected,
    TokenValidator,
    checker_for_server,
)
from smartrealm.oauth.keys import KeyRing
from smartrealm.oauth.tokens import TokenMinter
from smartrealm.realm.config import RealmConfig
from tests.authz.lifecycle import MULTI, revoke, tokens


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def as_http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        yield client


def _validator(realm: RealmConfig, server_id: str, http: httpx.AsyncClient,
               **options: object) -> IntrospectionValidator:
    return IntrospectionValidator.for_server(realm, server_id, http, **options)


async def test_each_server_gets_its_own_context(ua: httpx.AsyncClient, realm: RealmConfig,
                                                as_http: httpx.AsyncClient) -> None:
    token = (await tokens(ua, realm, scope=MULTI, resources=("ehr", "imaging")))["access_token"]
    ehr = await _validator(realm, "ehr", as_http).validate(token)
    imaging = await _validator(realm, "imaging", as_http).validate(token)
    assert ehr.patient == "p0012" and imaging.patient == "img0012"
    assert ehr.subject == imaging.subject == "patient"
    assert ehr.client_id == "smartrealm-demo-app"
    assert "patient/ImagingStudy.rs" in imaging.scopes.raw
    assert "patient/ImagingStudy.rs" not in ehr.scopes.raw
    with pytest.raises(TokenRejected) as refused:
        await _validator(realm, "lab", as_http).validate(token)
    assert refused.value.error == "invalid_token"


async def test_revocation_bites_after_the_cache_while_jwt_mode_still_accepts(
        ua: httpx.AsyncClient, realm: RealmConfig, as_http: httpx.AsyncClient) -> None:
    token = (await tokens(ua, realm))["access_token"]
    mono = Clock()
    checker = _validator(realm, "ehr", as_http, ttl=30.0, monotonic=mono)
    jwt_mode = TokenValidator.for_server(realm, "ehr", as_http)
    await checker.validate(token)
    await checker.validate(token)
    assert checker.calls == 1  # the second answer came from the cache
    assert (await revoke(ua, token)).status_code == 200
    mono.now = 29.9
    await checker.validate(token)  # still cached: revocation bites within ttl seconds
    mono.now = 30.0
    with pytest.raises(TokenRejected, match="not active"):
        await checker.validate(token)
    assert checker.calls == 2
    # A server that checks signatures only keeps accepting it until it expires.
    assert (await jwt_mode.validate(token)).subject == "patient"


async def test_no_token_and_garbage(realm: RealmConfig, as_http: httpx.AsyncClient) -> None:
    checker = _validator(realm, "ehr", as_http)
    with pytest.raises(TokenRejected) as missing:
        await checker.validate(None)
    assert missing.value.error is None
    with pytest.raises(TokenRejected, match="not active"):
        await checker.validate("garbage")
    assert checker.calls == 1


async def test_the_as_self_token_is_accepted(realm: RealmConfig, keys: KeyRing,
                                             as_http: httpx.AsyncClient) -> None:
    # The AS resolves patients with its own 60-s tokens, also at introspection-mode servers.
    minter = TokenMinter(realm.auth_server.issuer, keys, 3600)
    base = realm.server("imaging").base_url
    context = await _validator(realm, "imaging", as_http).validate(minter.self_token(base))
    assert context.client_id == "smartrealm-as" and "system/Patient.rs" in context.scopes.raw


async def test_wrong_credentials_and_unreachable_as_are_unavailable(
        ua: httpx.AsyncClient, realm: RealmConfig, as_http: httpx.AsyncClient) -> None:
    token = (await tokens(ua, realm))["access_token"]
    wrong = IntrospectionValidator(
        endpoint=realm.auth_server.introspection_endpoint, issuer=realm.auth_server.issuer,
        audience=realm.server("ehr").base_url, client_id="rs:ehr", secret="wrong", http=as_http)
    with pytest.raises(IntrospectionUnavailable):
        await wrong.validate(token)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as down:
        with pytest.raises(IntrospectionUnavailable):
            await _validator(realm, "ehr", down).validate(token)


async def test_configuration_chooses_the_check(realm: RealmConfig,
                                               as_http: httpx.AsyncClient) -> None:
    assert isinstance(checker_for_server(realm, "ehr", as_http), TokenValidator)
    servers = tuple(replace(rs, token_check="introspection") if rs.id == "lab" else rs
                    for rs in realm.resource_servers)
    changed = replace(realm, resource_servers=servers)
    assert isinstance(checker_for_server(changed, "lab", as_http), IntrospectionValidator)

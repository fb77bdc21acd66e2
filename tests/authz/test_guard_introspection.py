"""The guard's introspection mode against the real AS app (in-process): each server's view,
the short cache, revocation biting (where the JWT mode does not), and failures of the AS."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

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
from smartrealm.oauth.tokens import SELF_CLIENT_ID, TokenMinter
from smartrealm.realm.config import RealmConfig
from smartrealm.storage.rs_credentials import resource_server_secret
from tests.authz.lifecycle import MULTI, revoke, tokens
from tests.guard.tokens import details_entry, rs256_token


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
    return IntrospectionValidator.for_server(
        realm, server_id, http, secret=resource_server_secret(realm, server_id), **options)


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
    assert isinstance(checker_for_server(changed, "lab", as_http,
                                         secret=lambda: resource_server_secret(changed, "lab")),
                      IntrospectionValidator)
    # The guard opens no database: introspection without the secret is refused at start-up.
    with pytest.raises(ValueError, match="needs the server's rs: client secret"):
        checker_for_server(changed, "lab", as_http)


# ------------------------------------------------ fail closed: whose share, crit (as the JWT path)


def _signed_by_the_as(realm: RealmConfig, keys: KeyRing, aud: list[str], scope: str,
                      details: list[dict[str, Any]], **header: Any) -> str:
    """A token really signed with the AS's key, shaped as the AS never shapes one. It is a
    self-token (client ``smartrealm-as``) so that introspection needs no registry entry."""
    now = int(time.time())
    claims = {"iss": realm.auth_server.issuer, "aud": aud, "sub": SELF_CLIENT_ID,
              "client_id": SELF_CLIENT_ID, "scope": scope, "iat": now, "exp": now + 60,
              "jti": f"forged-{now}", "authorization_details": details}
    active = keys.active
    return rs256_token({"alg": "RS256", "typ": "at+jwt", "kid": active.kid, **header},
                       claims, active.key)


async def test_a_token_without_an_entry_for_this_server_is_inactive_for_it(
        realm: RealmConfig, keys: KeyRing, as_http: httpx.AsyncClient) -> None:
    ehr, imaging = realm.server("ehr").base_url, realm.server("imaging").base_url
    token = _signed_by_the_as(realm, keys, [ehr, imaging], "system/*.cruds system/Patient.rs",
                              [details_entry(imaging, "system/Patient.rs")])
    # Imaging has its entry and gets exactly it; the EHR must not get the union.
    assert (await _validator(realm, "imaging", as_http).validate(token)).scopes.raw \
        == ("system/Patient.rs",)
    with pytest.raises(TokenRejected, match="not active") as refused:
        await _validator(realm, "ehr", as_http).validate(token)
    assert refused.value.error == "invalid_token"


async def test_the_guard_refuses_an_answer_without_its_entry(realm: RealmConfig) -> None:
    # Whatever the AS answers, the guard applies the same rule as for a JWT: an active
    # answer whose authorization_details have no entry for this server grants nothing here.
    ehr, imaging = realm.server("ehr").base_url, realm.server("imaging").base_url
    answer = {"active": True, "iss": realm.auth_server.issuer, "aud": [ehr, imaging],
              "exp": int(time.time()) + 60, "sub": "u", "client_id": "c",
              "scope": "system/*.cruds",
              "authorization_details": [details_entry(imaging, "system/*.cruds")]}

    def as_answers(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=answer)

    async with httpx.AsyncClient(transport=httpx.MockTransport(as_answers)) as fake_as:
        with pytest.raises(TokenRejected) as refused:
            await _validator(realm, "ehr", fake_as).validate("a-token")
    assert refused.value.reason == "the token's authorization_details grant nothing at " \
        "this server"


@pytest.mark.parametrize("crit", [{"crit": ["b64"], "b64": True}, {"crit": ["kid"]},
                                  {"crit": []}])
async def test_a_crit_header_is_inactive_at_the_as_too(
        realm: RealmConfig, keys: KeyRing, as_http: httpx.AsyncClient,
        crit: dict[str, Any]) -> None:
    ehr = realm.server("ehr").base_url
    plain = _signed_by_the_as(realm, keys, [ehr], "system/Patient.rs",
                              [details_entry(ehr, "system/Patient.rs")])
    assert (await _validator(realm, "ehr", as_http).validate(plain)).client_id \
        == SELF_CLIENT_ID
    token = _signed_by_the_as(realm, keys, [ehr], "system/Patient.rs",
                              [details_entry(ehr, "system/Patient.rs")], **crit)
    with pytest.raises(TokenRejected, match="not active"):
        await _validator(realm, "ehr", as_http).validate(token)

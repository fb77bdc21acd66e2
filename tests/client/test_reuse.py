"""The token-reuse decision (seed "Discovery"): same AS endpoints and auth-multi-aud-token
on every server, with an exact reason per failing server."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from smartrealm.client import (
    TokenReuseNotPossible,
    check_token_reuse,
    discover,
)
from tests.client.conftest import Live


async def test_two_realm_servers_can_share_a_token(live: Live, http: httpx.AsyncClient) -> None:
    ehr = await discover(http, live.base("ehr"))
    imaging = await discover(http, live.base("imaging"))
    # imaging spells the AS URLs with an upper-case scheme and trailing slash.
    assert imaging.token_endpoint != ehr.token_endpoint
    decision = check_token_reuse([ehr, imaging])
    assert decision.possible
    assert decision.reasons == ()
    assert decision.authorization_endpoint == f"{live.origin}/as/authorize"
    assert decision.token_endpoint == f"{live.origin}/as/token"
    decision.raise_if_impossible()


async def test_server_naming_another_as(live: Live, http: httpx.AsyncClient) -> None:
    ehr = await discover(http, live.base("ehr"))
    other = await discover(http, live.base("other"))
    decision = check_token_reuse([ehr, other])
    o = live.origin
    assert not decision.possible
    assert decision.reasons == (
        f"{o}/other/fhir: authorization_endpoint {o}/other-as/authorize differs from "
        f"{o}/as/authorize of {o}/ehr/fhir",
        f"{o}/other/fhir: token_endpoint {o}/other-as/token differs from "
        f"{o}/as/token of {o}/ehr/fhir",
    )
    assert decision.authorization_endpoint is None and decision.token_endpoint is None


async def test_server_lacking_multi_aud_capability(live: Live, http: httpx.AsyncClient) -> None:
    ehr = await discover(http, live.base("ehr"))
    nomulti = await discover(http, live.base("nomulti"))
    decision = check_token_reuse([ehr, nomulti])
    assert decision.reasons == (
        f"{live.origin}/nomulti/fhir: does not advertise the auth-multi-aud-token capability",
    )
    with pytest.raises(TokenReuseNotPossible) as caught:
        decision.raise_if_impossible()
    assert caught.value.reasons == list(decision.reasons)


async def test_legacy_metadata_server_cannot_share(live: Live, http: httpx.AsyncClient) -> None:
    legacy = await discover(http, live.base("legacy"))
    ehr = await discover(http, live.base("ehr"))
    decision = check_token_reuse([ehr, legacy])
    assert decision.reasons == (
        f"{live.origin}/legacy/fhir: does not advertise the auth-multi-aud-token capability",
    )


async def test_scheme_host_case_and_trailing_slash_are_normalised(
    live: Live, http: httpx.AsyncClient
) -> None:
    ehr = await discover(http, live.base("ehr"))
    a = dataclasses.replace(
        ehr,
        authorization_endpoint="https://as.example/authorize",
        token_endpoint="https://as.example/token",
    )
    b = dataclasses.replace(
        a,
        base_url="https://img.example/fhir",
        authorization_endpoint="HTTPS://AS.Example/authorize/",
        token_endpoint="https://AS.EXAMPLE/token",
    )
    decision = check_token_reuse([a, b])
    assert decision.possible
    assert decision.token_endpoint == "https://as.example/token"
    # The path is case-sensitive: a different path is a different endpoint.
    c = dataclasses.replace(b, token_endpoint="https://as.example/Token")
    assert not check_token_reuse([a, c]).possible


def test_no_servers() -> None:
    assert check_token_reuse([]).reasons == ("no servers given",)

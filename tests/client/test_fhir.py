"""FhirSession against the recording server: headers, typed errors with the parsed
WWW-Authenticate challenge (spec §4.6), paging that never leaves the base."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartrealm.client import (
    ClientUsageError,
    FhirError,
    FhirForbidden,
    FhirNotFound,
    FhirResponseError,
    FhirServerError,
    FhirSession,
    FhirTransportError,
    FhirUnauthorized,
    ForeignNextLink,
    TokenSet,
    parse_bearer_challenge,
)
from tests.client.conftest import Live
from tests.client.server import EXPIRED_TOKEN, GOOD_TOKEN, PATIENT_ID


async def test_read_sends_bearer_and_fhir_json(live: Live, http: httpx.AsyncClient) -> None:
    ts = TokenSet.from_response(
        {"access_token": GOOD_TOKEN, "token_type": "Bearer", "patient": PATIENT_ID}
    )
    ehr = FhirSession(http, live.base("ehr") + "/", ts)
    assert ehr.patient_id == PATIENT_ID
    patient = await ehr.read("Patient", PATIENT_ID)
    assert patient == {"resourceType": "Patient", "id": PATIENT_ID}
    seen = live.recorder.last(f"/ehr/fhir/Patient/{PATIENT_ID}")
    assert seen.headers["authorization"] == f"Bearer {GOOD_TOKEN}"
    assert seen.headers["accept"] == "application/fhir+json"


async def test_401_without_token_has_no_error_code(live: Live, http: httpx.AsyncClient) -> None:
    with pytest.raises(FhirUnauthorized) as caught:
        await FhirSession(http, live.base("ehr"), None).read("Patient", PATIENT_ID)
    assert caught.value.status == 401
    assert caught.value.error is None
    assert caught.value.challenge == {"realm": live.base("ehr")}


async def test_401_invalid_token(live: Live, http: httpx.AsyncClient) -> None:
    with pytest.raises(FhirUnauthorized) as caught:
        await FhirSession(http, live.base("ehr"), EXPIRED_TOKEN).read("Patient", PATIENT_ID)
    error = caught.value
    assert error.error == "invalid_token"
    assert error.error_description == 'token "expired"'
    assert error.outcome is not None and error.outcome["issue"][0]["code"] == "expired"
    assert "expired: token expired" in str(error)


async def test_403_insufficient_scope(live: Live, http: httpx.AsyncClient) -> None:
    with pytest.raises(FhirForbidden) as caught:
        await FhirSession(http, live.base("ehr"), GOOD_TOKEN).read("Observation", "o1")
    assert caught.value.status == 403 and caught.value.error == "insufficient_scope"
    assert caught.value.challenge["scope"] == "patient/Observation.rs"


async def test_404_and_other_statuses(live: Live, http: httpx.AsyncClient) -> None:
    ehr = FhirSession(http, live.base("ehr"), GOOD_TOKEN)
    with pytest.raises(FhirNotFound) as not_found:
        await ehr.read("Patient", "nobody")
    assert not_found.value.outcome is not None
    with pytest.raises(FhirError) as crash:
        await ehr.read("Crash", "x")
    assert type(crash.value) is FhirServerError and crash.value.status == 500
    with pytest.raises(FhirResponseError):
        await ehr.read("Binary", "x")


async def test_ids_cannot_change_the_path(live: Live, http: httpx.AsyncClient) -> None:
    ehr = FhirSession(http, live.base("ehr"), GOOD_TOKEN)
    for rtype, rid in [("Patient", "../x"), ("Patient", "a/b"), ("patient", "x"), ("P?x", "1")]:
        with pytest.raises(ClientUsageError):
            await ehr.read(rtype, rid)
    assert live.recorder.requests == []


async def test_search_and_iterate_follow_same_base_next(
    live: Live, http: httpx.AsyncClient
) -> None:
    ehr = FhirSession(http, live.base("ehr"), GOOD_TOKEN)
    bundle = await ehr.search("Patient", {"identifier": "urn:mrn|MRN000012"})
    assert bundle["resourceType"] == "Bundle"
    assert live.recorder.last("/ehr/fhir/Patient").query == "identifier=urn%3Amrn%7CMRN000012"
    for next_kind in ("", "upper"):
        ids = [r["id"] async for r in ehr.iterate("Patient", {"next": next_kind})]
        assert ids == ["p0001", "p0002", "p0003"]


@pytest.mark.parametrize("next_kind", ["foreign", "sibling"])
async def test_iterate_refuses_next_links_off_the_base(
    live: Live, http: httpx.AsyncClient, next_kind: str
) -> None:
    ehr = FhirSession(http, live.base("ehr"), GOOD_TOKEN)
    seen = []
    with pytest.raises(ForeignNextLink) as caught:
        async for resource in ehr.iterate("Patient", {"next": next_kind}):
            seen.append(resource["id"])
    assert seen == ["p0001", "p0002"]
    assert caught.value.base_url == live.base("ehr")
    assert live.recorder.count("/ehr/fhir/Patient") == 1


async def test_transport_error(http: httpx.AsyncClient) -> None:
    with pytest.raises(FhirTransportError):
        await FhirSession(http, "http://127.0.0.1:9/fhir", "t").read("Patient", "x")


def test_base_must_be_absolute() -> None:
    with pytest.raises(ClientUsageError):
        FhirSession(httpx.AsyncClient(), "/fhir", "t")


def test_bearer_challenge_parsing() -> None:
    header = 'Basic realm="x", Bearer realm="r, s", error=invalid_token, ERROR_description="a\\"b"'
    assert parse_bearer_challenge(header) == {
        "realm": "r, s",
        "error": "invalid_token",
        "error_description": 'a"b',
    }
    assert parse_bearer_challenge("Basic realm=x") == {}
    assert parse_bearer_challenge("bearer") == {}


quoted_safe = st.text(st.characters(codec="latin-1", exclude_characters="\r\n"), max_size=40)


@given(realm=quoted_safe, description=quoted_safe)
def test_bearer_challenge_round_trip(realm: str, description: str) -> None:
    def quote(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    header = (
        f'Bearer realm={quote(realm)}, error="invalid_token", '
        f"error_description={quote(description)}"
    )
    assert parse_bearer_challenge(header) == {
        "realm": realm,
        "error": "invalid_token",
        "error_description": description,
    }

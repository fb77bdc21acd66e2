"""Discovery (spec §1): well-known, relative URL resolution, /metadata fallback, errors."""

from __future__ import annotations

import httpx
import pytest

from smartrealm.client import DiscoveryError, SmartConfiguration, discover
from smartrealm.client.discovery import SOURCE_METADATA
from tests.client.conftest import Live
from tests.client.server import BRAND_ID, MULTI


async def test_discovers_realm_server(live: Live, http: httpx.AsyncClient) -> None:
    config = await discover(http, live.base("ehr") + "/")
    o = live.origin
    assert config.base_url == f"{o}/ehr/fhir"
    assert config.authorization_endpoint == f"{o}/as/authorize"
    assert config.token_endpoint == f"{o}/as/token"
    assert config.registration_endpoint == f"{o}/as/register"
    assert config.jwks_uri == f"{o}/as/jwks"
    assert config.issuer == f"{o}/as"
    assert MULTI in config.capabilities and config.has_capability("context-style")
    assert "patient/*.rs" in config.scopes_supported
    assert [(a.url, a.capabilities) for a in config.associated_endpoints] == [
        (f"{o}/imaging/fhir", (MULTI,))
    ]
    assert config.brand_bundle_url == f"{o}/brands.json"
    assert config.brand_identifier == BRAND_ID
    assert config.raw["grant_types_supported"] == ["authorization_code", "refresh_token"]
    seen = live.recorder.last("/ehr/fhir/.well-known/smart-configuration")
    assert seen.headers["accept"] == "application/json"


async def test_relative_urls_resolve_against_the_fhir_base(
    live: Live, http: httpx.AsyncClient
) -> None:
    config = await discover(http, live.base("relative"))
    o = live.origin
    assert config.authorization_endpoint == f"{o}/relative/fhir/authorize"
    assert config.token_endpoint == f"{o}/as/token"
    assert config.registration_endpoint == f"{o}/relative/register"
    assert config.brand_bundle_url == f"{o}/relative/fhir/brands"
    assert config.associated_endpoints[0].url == f"{o}/relative/imaging/fhir"


async def test_falls_back_to_metadata_oauth_uris(live: Live, http: httpx.AsyncClient) -> None:
    config = await discover(http, live.base("legacy"))
    o = live.origin
    assert config.source == SOURCE_METADATA
    assert config.authorization_endpoint == f"{o}/as/authorize"
    assert config.token_endpoint == f"{o}/as/token"  # relative "/as/token" resolved
    assert config.registration_endpoint == f"{o}/as/register"
    assert config.capabilities == ()
    assert config.raw["resourceType"] == "CapabilityStatement"
    seen = live.recorder.last("/legacy/fhir/metadata")
    assert seen.headers["accept"] == "application/fhir+json"
    assert live.recorder.count("/legacy/fhir/.well-known/smart-configuration") == 1


async def test_no_usable_configuration_is_a_discovery_error(
    live: Live, http: httpx.AsyncClient
) -> None:
    with pytest.raises(DiscoveryError) as caught:
        await discover(http, live.base("broken"))
    message = str(caught.value)
    assert "smart-configuration returned HTTP 500" in message
    assert "metadata returned HTTP 404" in message


async def test_server_without_s256_is_refused(live: Live, http: httpx.AsyncClient) -> None:
    with pytest.raises(DiscoveryError, match="lacks S256"):
        await discover(http, live.base("nos256"))


async def test_unreachable_server_is_a_discovery_error(http: httpx.AsyncClient) -> None:
    with pytest.raises(DiscoveryError, match="ConnectError"):
        await discover(http, "http://127.0.0.1:9/fhir")


VALID = {
    "authorization_endpoint": "https://as.example/authorize",
    "token_endpoint": "https://as.example/token",
    "capabilities": ["launch-standalone"],
}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"token_endpoint": None}, "token_endpoint is missing"),
        ({"authorization_endpoint": ""}, "authorization_endpoint is not a non-empty string"),
        ({"capabilities": None}, "capabilities is missing"),
        ({"capabilities": ["ok", 3]}, "capabilities is not an array of strings"),
        ({"token_endpoint": "ftp://as.example/token"}, "token_endpoint is not an http(s) URL"),
        ({"associated_endpoints": [{"capabilities": []}]}, "associated_endpoints[0].url"),
        ({"associated_endpoints": {}}, "associated_endpoints is not an array"),
        ({"user_access_brand_identifier": {"system": "x"}}, "user_access_brand_identifier"),
    ],
)
async def test_invalid_documents_name_the_field(
    live: Live, http: httpx.AsyncClient, change: dict[str, object], problem: str
) -> None:
    doc = {**VALID, **change}
    live.recorder.configs["custom"] = {k: v for k, v in doc.items() if v is not None}
    with pytest.raises(DiscoveryError) as caught:
        await discover(http, live.base("custom"))
    assert problem in str(caught.value)


async def test_minimal_document_is_accepted(live: Live, http: httpx.AsyncClient) -> None:
    live.recorder.configs["custom"] = VALID
    config = await discover(http, live.base("custom"))
    assert isinstance(config, SmartConfiguration)
    assert config.registration_endpoint is None and config.associated_endpoints == ()
    assert config.brand_identifier is None and config.scopes_supported == ()

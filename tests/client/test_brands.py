"""User-access Brands (spec §2.4): primary brand by identifier, portals → Endpoints,
affiliates by partOf, the ETag / If-None-Match path, and publisher errors."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from smartrealm.client import (
    BrandEndpoint,
    BrandsCache,
    BrandsError,
    discover,
    fetch_brand_endpoints,
    resolve_brand_endpoints,
)
from tests.client.conftest import Live, realm_brands_bundle
from tests.client.server import BRAND_ID, BRANDS_ETAG


def expected(origin: str) -> list[BrandEndpoint]:
    return [
        BrandEndpoint(f"{origin}/ehr/fhir", "EHR FHIR R4", ("4.0.1",), "Good Health EHR"),
        BrandEndpoint(
            f"{origin}/imaging/fhir", "Imaging FHIR R4", ("4.0.1",), "Good Health Imaging"
        ),
    ]


async def test_resolves_realm_endpoints(live: Live, http: httpx.AsyncClient) -> None:
    config = await discover(http, live.base("ehr"))
    endpoints = await fetch_brand_endpoints(http, config)
    assert endpoints == expected(live.origin)


async def test_etag_cache_sends_if_none_match_and_uses_304(
    live: Live, http: httpx.AsyncClient
) -> None:
    config = await discover(http, live.base("ehr"))
    cache = BrandsCache()
    first = await fetch_brand_endpoints(http, config, cache)
    assert "if-none-match" not in live.recorder.last("/brands.json").headers
    cached = cache.get(f"{live.origin}/brands.json")
    assert cached is not None and cached.etag == BRANDS_ETAG
    second = await fetch_brand_endpoints(http, config, cache)
    assert live.recorder.last("/brands.json").headers["if-none-match"] == BRANDS_ETAG
    assert second == first == expected(live.origin)
    assert live.recorder.count("/brands.json") == 2


async def test_without_cache_never_sends_if_none_match(live: Live, http: httpx.AsyncClient) -> None:
    config = await discover(http, live.base("ehr"))
    await fetch_brand_endpoints(http, config)
    await fetch_brand_endpoints(http, config)
    assert all(
        "if-none-match" not in r.headers for r in live.recorder.requests if r.path == "/brands.json"
    )


async def test_missing_bundle_url_and_http_errors(live: Live, http: httpx.AsyncClient) -> None:
    config = await discover(http, live.base("legacy"))
    with pytest.raises(BrandsError, match="advertises no user_access_brand_bundle"):
        await fetch_brand_endpoints(http, config)
    relative = await discover(http, live.base("relative"))  # bundle URL resolves to a 404
    with pytest.raises(BrandsError, match="HTTP 404"):
        await fetch_brand_endpoints(http, relative)


def _bundle() -> dict[str, Any]:
    return copy.deepcopy(realm_brands_bundle("https://h.example"))


def test_portal_endpoints_come_before_organization_endpoint() -> None:
    bundle = _bundle()
    primary = bundle["entry"][0]["resource"]
    # Only the primary, no affiliates: brand names are the primary's.
    bundle["entry"] = [e for e in bundle["entry"] if "partOf" not in e["resource"]]
    primary["extension"][0]["extension"].reverse()
    got = resolve_brand_endpoints(bundle, BRAND_ID)
    assert [e.address for e in got] == [
        "https://h.example/imaging/fhir",
        "https://h.example/ehr/fhir",
    ]
    assert {e.brand_name for e in got} == {"Good Health Hospital"}


def test_falls_back_to_organization_endpoint_without_portals() -> None:
    bundle = _bundle()
    bundle["entry"][0]["resource"].pop("extension")
    got = resolve_brand_endpoints(bundle, BRAND_ID)
    assert [e.address for e in got] == [
        "https://h.example/ehr/fhir",
        "https://h.example/imaging/fhir",
    ]


def test_single_brand_without_identifier_is_used() -> None:
    bundle = _bundle()
    bundle["entry"] = [bundle["entry"][3], bundle["entry"][6]]
    got = resolve_brand_endpoints(bundle, None)
    assert got == [
        BrandEndpoint(
            "https://h.example/elsewhere/fhir", "Elsewhere", ("4.0.1",), "Elsewhere Clinic"
        )
    ]


def test_identifier_without_system_matches_on_value() -> None:
    got = resolve_brand_endpoints(_bundle(), {"value": BRAND_ID["value"]})
    assert len(got) == 2


@pytest.mark.parametrize(
    ("identifier", "problem"),
    [
        ({"system": "urn:ietf:rfc:3986", "value": "https://nowhere.example"}, "matches 0 brands"),
        ({"system": "urn:wrong", "value": BRAND_ID["value"]}, "matches 0 brands"),
        (None, "several brands"),
    ],
)
def test_unmatched_brand_is_an_error(identifier: dict[str, str] | None, problem: str) -> None:
    with pytest.raises(BrandsError, match=problem):
        resolve_brand_endpoints(_bundle(), identifier)


def test_dangling_endpoint_reference_is_an_error() -> None:
    bundle = _bundle()
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"].get("id") != "imaging"]
    with pytest.raises(BrandsError, match="Endpoint/imaging"):
        resolve_brand_endpoints(bundle, BRAND_ID)


def test_endpoint_without_address_is_an_error() -> None:
    bundle = _bundle()
    bundle["entry"][4]["resource"]["address"] = "not a url"
    with pytest.raises(BrandsError, match="no http"):
        resolve_brand_endpoints(bundle, BRAND_ID)

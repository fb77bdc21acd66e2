"""User-access Brands (spec §2): from a server's smart-configuration to the FHIR endpoints
its brand publishes.

Algorithm (spec §2.4): fetch the bundle (``If-None-Match`` when cached, §2.1), find the
Organization matching ``user_access_brand_identifier`` (system+value), take the Endpoints
its ``organization-portal`` extensions reference, else its ``Organization.endpoint``; then
add those of its affiliates (Organizations whose ``partOf`` is the brand). An endpoint an
affiliate lists is reported under the affiliate's name, the most specific brand.

Being listed grants nothing (§2.4.7): callers still discover each endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from smartrealm.client._http import JSON, is_absolute_http, json_object
from smartrealm.client.discovery import SmartConfiguration
from smartrealm.client.errors import BrandsError
from smartrealm.core.media_types import FHIR_JSON

PORTAL_EXT = "http://hl7.org/fhir/StructureDefinition/organization-portal"
FHIR_VERSION_EXT = "http://hl7.org/fhir/StructureDefinition/endpoint-fhir-version"


@dataclass(frozen=True)
class BrandEndpoint:
    address: str
    name: str | None
    fhir_versions: tuple[str, ...]
    brand_name: str


@dataclass(frozen=True)
class CachedBundle:
    etag: str
    bundle: dict[str, Any]


class BrandsCache:
    """ETag cache of brand bundles, one entry per URL (spec §2.1: apps SHOULD cache by
    ETag). Create one per app and pass it in; the library keeps no global state."""

    def __init__(self) -> None:
        self._entries: dict[str, CachedBundle] = {}

    def get(self, url: str) -> CachedBundle | None:
        return self._entries.get(url)

    def put(self, url: str, etag: str, bundle: dict[str, Any]) -> None:
        self._entries[url] = CachedBundle(etag, bundle)

    def __len__(self) -> int:
        return len(self._entries)


async def fetch_brand_endpoints(
    http: httpx.AsyncClient,
    config: SmartConfiguration,
    cache: BrandsCache | None = None,
) -> list[BrandEndpoint]:
    """The endpoints of the server's primary brand and its affiliates, in bundle order."""
    if config.brand_bundle_url is None:
        raise BrandsError(f"{config.base_url} advertises no user_access_brand_bundle")
    bundle = await fetch_brands_bundle(http, config.brand_bundle_url, cache)
    return resolve_brand_endpoints(bundle, config.brand_identifier)


async def fetch_brands_bundle(
    http: httpx.AsyncClient, url: str, cache: BrandsCache | None = None
) -> dict[str, Any]:
    cached = cache.get(url) if cache is not None else None
    headers = {"Accept": f"{FHIR_JSON}, {JSON}"}
    if cached is not None:
        headers["If-None-Match"] = cached.etag
    try:
        response = await http.get(url, headers=headers)
    except httpx.HTTPError as exc:
        raise BrandsError(f"GET {url} failed: {exc.__class__.__name__}") from exc
    if response.status_code == 304 and cached is not None:
        return cached.bundle
    if response.status_code != 200:
        raise BrandsError(f"GET {url} returned HTTP {response.status_code}")
    bundle = json_object(response)
    if bundle is None or bundle.get("resourceType") != "Bundle":
        raise BrandsError(f"GET {url} did not return a Bundle")
    etag = response.headers.get("ETag")
    if cache is not None and etag:
        cache.put(url, etag, bundle)
    return bundle


def resolve_brand_endpoints(
    bundle: dict[str, Any], identifier: dict[str, Any] | None
) -> list[BrandEndpoint]:
    index = _BundleIndex(bundle)
    brand = index.primary_brand(identifier)
    # Keyed by the Endpoint object: ``Endpoint/x`` and its fullUrl name the same entry.
    found: dict[int, BrandEndpoint] = {}
    for org in [brand, *index.affiliates_of(brand)]:
        for reference in _endpoint_refs(org):
            endpoint = index.endpoint(reference)
            # An affiliate overrides the primary brand name: it is the more specific brand.
            found[id(endpoint)] = _brand_endpoint(endpoint, str(org.get("name", "")))
    if not found:
        raise BrandsError(f"brand {brand.get('name')!r} lists no endpoints")
    return list(found.values())


class _BundleIndex:
    """Organizations and Endpoints of a brands bundle, addressable by local reference."""

    def __init__(self, bundle: dict[str, Any]) -> None:
        self.organizations: list[dict[str, Any]] = []
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.org_keys: list[set[str]] = []
        for entry in _objects(bundle.get("entry")):
            resource = entry.get("resource")
            if not isinstance(resource, dict):
                continue
            keys = _entry_keys(entry, resource)
            if resource.get("resourceType") == "Organization":
                self.organizations.append(resource)
                self.org_keys.append(keys)
            elif resource.get("resourceType") == "Endpoint":
                self.endpoints.update(dict.fromkeys(keys, resource))

    def primary_brand(self, identifier: dict[str, Any] | None) -> dict[str, Any]:
        if identifier is None:
            # Spec §2.4.3: with a single Brand and no identifier, use it.
            if len(self.organizations) == 1:
                return self.organizations[0]
            raise BrandsError("no user_access_brand_identifier and the bundle has several brands")
        matches = [org for org in self.organizations if _has_identifier(org, identifier)]
        if len(matches) != 1:
            # Spec §1.4: the identifier SHALL match exactly one Organization.identifier.
            raise BrandsError(f"brand identifier {identifier!r} matches {len(matches)} brands")
        return matches[0]

    def affiliates_of(self, brand: dict[str, Any]) -> list[dict[str, Any]]:
        keys = self.org_keys[self.organizations.index(brand)]
        return [
            org
            for org in self.organizations
            if org is not brand and _reference(org.get("partOf")) in keys
        ]

    def endpoint(self, reference: str) -> dict[str, Any]:
        endpoint = self.endpoints.get(reference)
        if endpoint is None:
            # Spec §2.2: the reference is to an Endpoint in the same bundle.
            raise BrandsError(f"reference {reference!r} names no Endpoint in the bundle")
        return endpoint


def _entry_keys(entry: dict[str, Any], resource: dict[str, Any]) -> set[str]:
    """Every string a reference may use for this entry: ``Type/id``, and the fullUrl and its
    ``Type/id`` tail (spec §2.4.4)."""
    keys: set[str] = set()
    if isinstance(resource.get("id"), str):
        keys.add(f"{resource['resourceType']}/{resource['id']}")
    full_url = entry.get("fullUrl")
    if isinstance(full_url, str):
        keys.add(full_url)
        keys.add("/".join(full_url.rstrip("/").split("/")[-2:]))
    return keys


def _has_identifier(org: dict[str, Any], wanted: dict[str, Any]) -> bool:
    for ident in _objects(org.get("identifier")):
        if ident.get("value") != wanted.get("value"):
            continue
        # An identifier without system matches on value alone (system is only a SHOULD).
        if wanted.get("system") is None or ident.get("system") == wanted.get("system"):
            return True
    return False


def _endpoint_refs(org: dict[str, Any]) -> list[str]:
    """Portal endpoints first (spec §2.4.4); ``Organization.endpoint`` repeats them for
    clients that ignore portals, and is the fallback when there are none (§2.4.5)."""
    refs: list[str] = []
    for ext in _objects(org.get("extension")):
        if ext.get("url") == PORTAL_EXT:
            refs += [
                ref
                for sub in _objects(ext.get("extension"))
                if sub.get("url") == "portalEndpoint"
                and (ref := _reference(sub.get("valueReference")))
            ]
    refs += [ref for item in _objects(org.get("endpoint")) if (ref := _reference(item))]
    return list(dict.fromkeys(refs))


def _brand_endpoint(endpoint: dict[str, Any], brand_name: str) -> BrandEndpoint:
    address = endpoint.get("address")
    if not isinstance(address, str) or not is_absolute_http(address):
        raise BrandsError(f"Endpoint {endpoint.get('id')!r} has no http(s) address")
    versions = tuple(
        ext["valueCode"]
        for ext in _objects(endpoint.get("extension"))
        if ext.get("url") == FHIR_VERSION_EXT and isinstance(ext.get("valueCode"), str)
    )
    name = endpoint.get("name")
    return BrandEndpoint(
        address=address,
        name=name if isinstance(name, str) else None,
        fhir_versions=versions,
        brand_name=brand_name,
    )


def _reference(value: object) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("reference"), str):
        return str(value["reference"])
    return None


def _objects(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []

"""SMART discovery (spec §1): read ``{base}/.well-known/smart-configuration``, falling back
to the legacy ``/metadata`` CapabilityStatement ``oauth-uris`` extension (spec §1.5).

Required fields are validated; so are the optional fields this library acts on
(``capabilities``, ``associated_endpoints``, the brand identifier), because a wrong shape
there would silently change a reuse decision. Other fields stay available in ``raw``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from smartrealm.client._http import (
    JSON,
    is_absolute_http,
    json_object,
    resolve_against_base,
    strip,
)
from smartrealm.client.errors import DiscoveryError
from smartrealm.core.media_types import FHIR_JSON

WELL_KNOWN = "/.well-known/smart-configuration"
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
SOURCE_WELL_KNOWN = "smart-configuration"
SOURCE_METADATA = "metadata"


@dataclass(frozen=True)
class AssociatedEndpoint:
    """An ``associated_endpoints`` entry (spec §1.3): shares this server's authorization."""

    url: str
    capabilities: tuple[str, ...]


@dataclass(frozen=True)
class SmartConfiguration:
    """One FHIR server's SMART configuration; every URL is absolute."""

    base_url: str
    authorization_endpoint: str
    token_endpoint: str
    registration_endpoint: str | None
    jwks_uri: str | None
    issuer: str | None
    capabilities: tuple[str, ...]
    scopes_supported: tuple[str, ...]
    associated_endpoints: tuple[AssociatedEndpoint, ...]
    brand_bundle_url: str | None
    brand_identifier: dict[str, Any] | None
    raw: dict[str, Any]
    # Where the document came from: "smart-configuration" or "metadata" (legacy, no
    # capabilities: such a server can never pass a token-reuse check).
    source: str = SOURCE_WELL_KNOWN

    def has_capability(self, capability: str) -> bool:
        return capability in self.capabilities


async def discover(http: httpx.AsyncClient, base_url: str) -> SmartConfiguration:
    """Discover the SMART configuration of the FHIR server at ``base_url``."""
    base = strip(base_url)
    try:
        return await _from_well_known(http, base)
    except DiscoveryError as well_known_error:
        try:
            return await _from_metadata(http, base)
        except DiscoveryError as metadata_error:
            raise DiscoveryError(
                f"{base}: {well_known_error}; fallback {metadata_error}"
            ) from metadata_error


async def _get_json(http: httpx.AsyncClient, url: str, accept: str) -> dict[str, Any]:
    try:
        response = await http.get(url, headers={"Accept": accept})
    except httpx.HTTPError as exc:
        raise DiscoveryError(f"GET {url} failed: {exc.__class__.__name__}") from exc
    if response.status_code != 200:
        raise DiscoveryError(f"GET {url} returned HTTP {response.status_code}")
    body = json_object(response)
    if body is None:
        raise DiscoveryError(f"GET {url} did not return a JSON object")
    return body


# --- .well-known/smart-configuration (spec §1.1) ----------------------------------------


async def _from_well_known(http: httpx.AsyncClient, base: str) -> SmartConfiguration:
    # Spec §1.1: the suffix is appended to the base even when the base has a path.
    doc = await _get_json(http, base + WELL_KNOWN, JSON)
    fields = _Fields(base, doc)
    capabilities = fields.strings("capabilities", required=True)
    challenge_methods = fields.strings("code_challenge_methods_supported")
    # Spec §1.1: SHALL include S256. This client only speaks S256 (§3.4).
    if "code_challenge_methods_supported" in doc and "S256" not in challenge_methods:
        raise DiscoveryError(f"{base}: code_challenge_methods_supported lacks S256")
    return SmartConfiguration(
        base_url=base,
        authorization_endpoint=fields.url("authorization_endpoint", required=True) or "",
        token_endpoint=fields.url("token_endpoint", required=True) or "",
        registration_endpoint=fields.url("registration_endpoint"),
        jwks_uri=fields.url("jwks_uri"),
        issuer=fields.text("issuer"),
        capabilities=capabilities,
        scopes_supported=fields.strings("scopes_supported"),
        associated_endpoints=fields.associated_endpoints(),
        brand_bundle_url=fields.url("user_access_brand_bundle"),
        brand_identifier=fields.brand_identifier(),
        raw=doc,
        source=SOURCE_WELL_KNOWN,
    )


class _Fields:
    """Typed access to a smart-configuration document; every problem is a DiscoveryError
    naming the server and the field."""

    def __init__(self, base: str, doc: dict[str, Any]) -> None:
        self.base = base
        self.doc = doc

    def fail(self, key: str, problem: str) -> DiscoveryError:
        return DiscoveryError(f"{self.base}: smart-configuration {key} {problem}")

    def text(self, key: str, *, required: bool = False) -> str | None:
        value = self.doc.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "is missing" if value is None else "is not a non-empty string")
        return value

    def url(self, key: str, *, required: bool = False) -> str | None:
        value = self.text(key, required=required)
        if value is None:
            return None
        # Spec §1.1: URLs SHALL be absolute; clients SHOULD resolve legacy relative ones.
        resolved = resolve_against_base(self.base, value)
        if not is_absolute_http(resolved):
            raise self.fail(key, f"is not an http(s) URL: {value!r}")
        return resolved

    def strings(self, key: str, *, required: bool = False) -> tuple[str, ...]:
        value = self.doc.get(key)
        if value is None and not required:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "is missing" if value is None else "is not an array of strings")
        return tuple(value)

    def associated_endpoints(self) -> tuple[AssociatedEndpoint, ...]:
        value = self.doc.get("associated_endpoints")
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail("associated_endpoints", "is not an array")
        return tuple(self._associated(i, item) for i, item in enumerate(value))

    def _associated(self, index: int, item: object) -> AssociatedEndpoint:
        key = f"associated_endpoints[{index}]"
        if not isinstance(item, dict):
            raise self.fail(key, "is not an object")
        url, caps = item.get("url"), item.get("capabilities", [])
        if not isinstance(url, str) or not is_absolute_http(resolve_against_base(self.base, url)):
            raise self.fail(key + ".url", "is not an http(s) URL")
        if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
            raise self.fail(key + ".capabilities", "is not an array of strings")
        return AssociatedEndpoint(resolve_against_base(self.base, url), tuple(caps))

    def brand_identifier(self) -> dict[str, Any] | None:
        value = self.doc.get("user_access_brand_identifier")
        if value is None:
            return None
        # Spec §1.4: a FHIR Identifier object that SHALL have a value.
        if not isinstance(value, dict) or not isinstance(value.get("value"), str):
            raise self.fail("user_access_brand_identifier", "is not an Identifier with a value")
        return value


# --- /metadata fallback (spec §1.5) -----------------------------------------------------


async def _from_metadata(http: httpx.AsyncClient, base: str) -> SmartConfiguration:
    statement = await _get_json(http, base + "/metadata", FHIR_JSON)
    if statement.get("resourceType") != "CapabilityStatement":
        raise DiscoveryError(f"{base}/metadata is not a CapabilityStatement")
    uris = _oauth_uris(statement)
    if "authorize" not in uris or "token" not in uris:
        raise DiscoveryError(f"{base}/metadata has no oauth-uris authorize and token")
    resolved = {name: resolve_against_base(base, uri) for name, uri in uris.items()}
    bad = sorted(name for name, uri in resolved.items() if not is_absolute_http(uri))
    if bad:
        raise DiscoveryError(f"{base}/metadata oauth-uris not http(s) URLs: {', '.join(bad)}")
    return SmartConfiguration(
        base_url=base,
        authorization_endpoint=resolved["authorize"],
        token_endpoint=resolved["token"],
        registration_endpoint=resolved.get("register"),
        jwks_uri=None,
        issuer=None,
        capabilities=(),
        scopes_supported=(),
        associated_endpoints=(),
        brand_bundle_url=None,
        brand_identifier=None,
        raw=statement,
        source=SOURCE_METADATA,
    )


def _oauth_uris(statement: dict[str, Any]) -> dict[str, str]:
    """Sub-extension name → valueUri of the first ``oauth-uris`` extension found in
    ``rest[].security.extension``."""
    for rest in _objects(statement.get("rest")):
        security = rest.get("security")
        if not isinstance(security, dict):
            continue
        for ext in _objects(security.get("extension")):
            if ext.get("url") == OAUTH_URIS:
                return {
                    sub["url"]: sub["valueUri"]
                    for sub in _objects(ext.get("extension"))
                    if isinstance(sub.get("url"), str) and isinstance(sub.get("valueUri"), str)
                }
    return {}


def _objects(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []

"""The realm's User-access Brands bundle (spec §2): the hospital's primary brand, whose portal
lists every FHIR endpoint of the realm, and one affiliate brand and one Endpoint per server.

Each server's smart-configuration names this bundle and the primary brand's identifier, so an
app starting at any server finds all the others (§2.4: iss1 → brands → iss2).
"""

from __future__ import annotations

from typing import Any

from smartrealm.realm.config import RealmConfig, ResourceServerConfig

BUNDLE_PROFILE = "http://hl7.org/fhir/smart-app-launch/StructureDefinition/user-access-brands-bundle"
BRAND_PROFILE = "http://hl7.org/fhir/smart-app-launch/StructureDefinition/user-access-brand"
ENDPOINT_PROFILE = "http://hl7.org/fhir/smart-app-launch/StructureDefinition/user-access-endpoint"
ORG_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/organization-type"
# Organization types from the user-access-category value set (§2.2).
PROFILE_ORG_TYPE = {"ehr": "prov", "imaging": "imaging", "lab": "laboratory", "empty": "prov"}
PRIMARY_ID = "realm"
# A fixed instant: the bundle changes only when the configuration does, and a deterministic
# timestamp keeps the weak ETag stable across restarts (§2.1 wants timestamp + lastUpdated).
CONTENT_TIMESTAMP = "2026-01-01T00:00:00Z"


def build_brands_bundle(realm: RealmConfig) -> dict[str, Any]:
    base = realm.auth_server.issuer
    entries = [_entry(base, _primary_brand(realm))]
    for rs in realm.resource_servers:
        entries.append(_entry(base, _affiliate_brand(realm, rs)))
        entries.append(_entry(base, _endpoint(rs)))
    return {
        "resourceType": "Bundle",
        "id": "user-access-brands",
        "meta": {"lastUpdated": CONTENT_TIMESTAMP, "profile": [BUNDLE_PROFILE]},
        "type": "collection",
        "timestamp": CONTENT_TIMESTAMP,
        "entry": entries,
    }


def endpoint_id(rs: ResourceServerConfig) -> str:
    return f"endpoint-{rs.id}"


def _entry(base: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}", "resource": resource}


def _primary_brand(realm: RealmConfig) -> dict[str, Any]:
    brands = realm.brands
    refs = [{"reference": f"Endpoint/{endpoint_id(rs)}"} for rs in realm.resource_servers]
    portal = [
        {"url": "portalName", "valueString": brands.portal_name},
        {"url": "portalUrl", "valueUrl": brands.portal_url},
        *({"url": "portalEndpoint", "valueReference": ref} for ref in refs),
    ]
    return {
        "resourceType": "Organization",
        "id": PRIMARY_ID,
        "meta": {"lastUpdated": CONTENT_TIMESTAMP, "profile": [BRAND_PROFILE]},
        "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/organization-portal",
                       "extension": portal}],
        "identifier": [{"system": brands.identifier_system, "value": brands.identifier_value}],
        "active": True,
        "type": [{"coding": [{"system": ORG_TYPE_SYSTEM, "code": "prov"}]}],
        "name": brands.organization_name,
        "telecom": [{"system": "url", "value": brands.website}],
        # uab-1: every portalEndpoint is also in Organization.endpoint.
        "endpoint": refs,
    }


def _affiliate_brand(realm: RealmConfig, rs: ResourceServerConfig) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": f"brand-{rs.id}",
        "meta": {"lastUpdated": CONTENT_TIMESTAMP, "profile": [BRAND_PROFILE]},
        "identifier": [{"system": realm.brands.identifier_system,
                        "value": f"{realm.brands.identifier_value}/{rs.id}"}],
        "active": True,
        "type": [{"coding": [{"system": ORG_TYPE_SYSTEM, "code": PROFILE_ORG_TYPE[rs.profile]}]}],
        "name": rs.name,
        "telecom": [{"system": "url", "value": realm.brands.website}],
        "partOf": {"reference": f"Organization/{PRIMARY_ID}"},
        "endpoint": [{"reference": f"Endpoint/{endpoint_id(rs)}"}],
    }


def _endpoint(rs: ResourceServerConfig) -> dict[str, Any]:
    return {
        "resourceType": "Endpoint",
        "id": endpoint_id(rs),
        "meta": {"lastUpdated": CONTENT_TIMESTAMP, "profile": [ENDPOINT_PROFILE]},
        "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/endpoint-fhir-version",
                       "valueCode": rs.fhir_version}],
        "status": "active",
        "connectionType": {"system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                           "code": "hl7-fhir-rest"},
        "name": rs.name,
        "contact": [{"system": "url", "value": f"{rs.base_url}/.well-known/smart-configuration"}],
        "payloadType": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/endpoint-payload-type",
                                     "code": "none"}]}],
        "address": rs.base_url,
    }

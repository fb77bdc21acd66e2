"""Discovery documents: ``.well-known/smart-configuration`` (spec §1.1) and the R4
CapabilityStatement at ``/metadata`` (§1.5). Both come from the realm configuration, so
they name the same endpoints (§1.5 "Recommendation: serve both ... so they never disagree")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from smartrealm.oauth.client_jwks import ASSERTION_ALGORITHMS
from smartrealm.realm.config import ResourceServerConfig

from .interactions import scope_suffix, system_interactions, type_interactions, writable
from .params import search_capability, supported_types
from .settings import FhirSettings

# design.md: every realm server lists both, exactly as the seed spells them.
MULTI_AUD = "auth-multi-aud-token"
REALM_CAPABILITIES = (MULTI_AUD, "context-style")
SMART_CAPABILITIES = (
    "launch-ehr", "launch-standalone", "authorize-post", "client-public",
    "client-confidential-symmetric", "client-confidential-asymmetric", "sso-openid-connect",
    "context-standalone-patient",
    "context-ehr-patient", "permission-patient", "permission-user", "permission-v1",
    "permission-v2", "permission-offline",
    # EHR launch (§1.2): context-style is listed with REALM_CAPABILITIES below.
    "context-banner", "context-ehr-encounter",
)
GRANT_TYPES = ("authorization_code", "client_credentials", "refresh_token")
TOKEN_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
NON_RESOURCE_SCOPES = ("openid", "fhirUser", "launch", "launch/patient", "offline_access")
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"


def smart_configuration(settings: FhirSettings) -> dict[str, Any]:
    auth = settings.realm.auth_server
    config: dict[str, Any] = {
        "issuer": auth.issuer,
        "jwks_uri": auth.jwks_uri,
        "authorization_endpoint": auth.authorization_endpoint,
        "token_endpoint": auth.token_endpoint,
        "grant_types_supported": list(GRANT_TYPES),
        "token_endpoint_auth_methods_supported": list(TOKEN_AUTH_METHODS),
        # §9: Backend Services discovery names the private_key_jwt signing algorithms.
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "scopes_supported": scopes_supported(settings),
        "response_types_supported": ["code"],
        # §1.1: SHALL include S256 and SHALL NOT include plain.
        "code_challenge_methods_supported": ["S256"],
        "management_endpoint": auth.management_endpoint,
        "introspection_endpoint": auth.introspection_endpoint,
        "revocation_endpoint": auth.revocation_endpoint,
        "capabilities": [*SMART_CAPABILITIES, *_realm_capabilities(settings.server)],
        # §1.3 / design.md: the other servers, and whether each accepts the same token.
        "associated_endpoints": [
            {"url": rs.base_url, "capabilities": [MULTI_AUD] if rs.multi_aud_token else []}
            for rs in settings.other_servers
        ],
        "user_access_brand_bundle": auth.brands_url,
        "user_access_brand_identifier": {"system": settings.realm.brands.identifier_system,
                                         "value": settings.realm.brands.identifier_value},
    }
    if settings.realm.registration_open():
        config["registration_endpoint"] = auth.registration_endpoint
    return config


def _realm_capabilities(server: ResourceServerConfig) -> list[str]:
    """``multi_aud_token = false`` (realm config): the server takes only single-server
    tokens, so it does not list the capability (§10.2) and the AS refuses to put it in a
    multi-server audience (authz/multi_aud.py)."""
    return [c for c in REALM_CAPABILITIES if server.multi_aud_token or c != MULTI_AUD]


def scopes_supported(settings: FhirSettings) -> list[str]:
    """§1.1: the server SHALL support every scope listed: its own types, in every context,
    with the letters its profile honours (``cruds`` or ``rs``, fhir/interactions.py)."""
    suffix = scope_suffix(settings.server.profile)
    scopes = list(NON_RESOURCE_SCOPES)
    for context in ("patient", "user", "system"):
        scopes.append(f"{context}/*.{suffix}")
        scopes.extend(f"{context}/{t}.{suffix}" for t in settings.resource_types)
    return scopes


def capability_statement(settings: FhirSettings, now: datetime | None = None) -> dict[str, Any]:
    moment = now or datetime.now(UTC)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": moment.date().isoformat(),
        "publisher": settings.realm.name,
        "kind": "instance",
        "software": {"name": "smartrealm"},
        "implementation": {"description": settings.server.name, "url": settings.base_url},
        "fhirVersion": settings.server.fhir_version,
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "security": _security(settings),
            "resource": [_resource(t, settings.server.profile)
                         for t in settings.resource_types],
            "interaction": [{"code": c} for c in system_interactions(settings.server.profile)],
        }],
    }


def _security(settings: FhirSettings) -> dict[str, Any]:
    auth = settings.realm.auth_server
    uris = [("authorize", auth.authorization_endpoint), ("token", auth.token_endpoint)]
    if settings.realm.registration_open():
        uris.append(("register", auth.registration_endpoint))
    uris += [("manage", auth.management_endpoint), ("introspect", auth.introspection_endpoint),
             ("revoke", auth.revocation_endpoint)]
    return {
        "cors": True,
        "service": [{
            "coding": [{"system": SECURITY_SERVICE, "code": "SMART-on-FHIR",
                        "display": "SMART-on-FHIR"}],
            "text": "OAuth2 using SMART-on-FHIR profile (see .well-known/smart-configuration)",
        }],
        "extension": [{
            "url": OAUTH_URIS,
            "extension": [{"url": name, "valueUri": url} for name, url in uris],
        }],
    }


def _resource(resource_type: str, profile: str) -> dict[str, Any]:
    return {
        "type": resource_type,
        "interaction": [{"code": c} for c in type_interactions(profile)],
        **_versioning(profile),
        # searchInclude, searchRevInclude, searchParam (fhir/params.py)
        **search_capability(resource_type, supported_types(profile)),
    }


def _versioning(profile: str) -> dict[str, Any]:
    """R4 CapabilityStatement.rest.resource flags for what fhir/writes.py does."""
    flags: dict[str, Any] = {"versioning": "versioned", "readHistory": True}
    if writable(profile):
        flags.update({"versioning": "versioned-update", "updateCreate": True,
                      "conditionalCreate": False, "conditionalUpdate": False,
                      "conditionalDelete": "not-supported"})
    return flags

"""Discovery documents: ``.well-known/smart-configuration`` (spec §1.1) and the R4
CapabilityStatement at ``/metadata`` (§1.5). Both come from the realm configuration, so
they name the same endpoints (§1.5 "Recommendation: serve both ... so they never disagree")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from smartrealm.core.capabilities import MULTI_AUD_TOKEN
from smartrealm.core.profiles import supported_types
from smartrealm.fhir.interactions import (
    scope_suffix,
    system_interactions,
    type_interactions,
    writable,
)
from smartrealm.fhir.search.params import search_capability
from smartrealm.fhir.settings import FhirSettings
from smartrealm.oauth import metadata
from smartrealm.realm.config import ResourceServerConfig

NON_RESOURCE_SCOPES = ("openid", "fhirUser", "launch", "launch/patient", "offline_access")
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"


def smart_configuration(settings: FhirSettings) -> dict[str, Any]:
    """The AS's SMART configuration (oauth/metadata.py, one source for every discovery
    document), with this server's own ``scopes_supported`` and ``capabilities`` and, §1.3 /
    docs/behaviour.md, the other servers and whether each accepts the same token."""
    config = metadata.smart_configuration(settings.realm, scopes=scopes_supported(settings),
                                          capabilities=_capabilities(settings.server))
    config["associated_endpoints"] = [
        {"url": rs.base_url, "capabilities": [MULTI_AUD_TOKEN] if rs.multi_aud_token else []}
        for rs in settings.other_servers
    ]
    return config


def _capabilities(server: ResourceServerConfig) -> list[str]:
    """``multi_aud_token = false`` (realm config): the server takes only single-server
    tokens, so it does not list the capability (§10.2) and the AS refuses to put it in a
    multi-server audience (authz/multi_aud.py)."""
    return [c for c in metadata.SMART_CAPABILITIES
            if server.multi_aud_token or c != MULTI_AUD_TOKEN]


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
        # searchInclude, searchRevInclude, searchParam (fhir/search/params.py)
        **search_capability(resource_type, supported_types(profile)),
    }


def _versioning(profile: str) -> dict[str, Any]:
    """R4 CapabilityStatement.rest.resource flags for what fhir/rest/writes.py does."""
    flags: dict[str, Any] = {"versioning": "versioned", "readHistory": True}
    if writable(profile):
        flags.update({"versioning": "versioned-update", "updateCreate": True,
                      # If-None-Exist (fhir/rest/conditional.py); the proxy says False
                      "conditionalCreate": True, "conditionalUpdate": False,
                      "conditionalDelete": "not-supported"})
    return flags

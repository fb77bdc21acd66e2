"""The realm AS's metadata (RFC 8414 §2): the one source of every discovery document.

Derived from ``authorization_server_metadata`` and nothing else:

* RFC 8414 ``/.well-known/oauth-authorization-server`` (generic OAuth clients look there
  first) and OIDC Discovery ``{issuer}/.well-known/openid-configuration``: the metadata as
  it is;
* SMART App Launch 2.2 §1.1 ``.well-known/smart-configuration``, at the AS and at every FHIR
  server: the metadata plus ``capabilities`` and the user-access brand (§2). A FHIR server
  narrows ``scopes_supported`` and ``capabilities`` to what it supports (§1.1: a server
  SHALL support every scope it lists) and adds ``associated_endpoints`` (fhir/http/capability.py);
  every other member is the AS's, so the documents cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from smartrealm.core.capabilities import MULTI_AUD_TOKEN
from smartrealm.oauth.client_jwks import ASSERTION_ALGORITHMS
from smartrealm.oauth.endpoints.token import GRANT_TYPES
from smartrealm.oauth.realm_view import Realm
from smartrealm.oauth.store import AUTH_METHODS, PRIVATE_KEY_JWT, SECRET_BASIC, SECRET_POST

RFC8414_WELL_KNOWN = "/.well-known/oauth-authorization-server"

# What the AS grants, realm-wide (each FHIR server lists its own, fhir/http/capability.py).
SCOPES_SUPPORTED = (
    "openid", "fhirUser", "profile", "launch", "launch/patient", "offline_access",
    "online_access",
    "patient/*.rs", "patient/*.cruds", "patient/*.read", "patient/*.write", "patient/*.*",
    "user/*.rs", "user/*.cruds", "user/*.read", "user/*.write", "user/*.*",
    "system/*.rs", "system/*.read",
)
# SMART 2.2 §1.2 capabilities of the realm (the g10 scenarios need each of them).
SMART_CAPABILITIES = (
    "launch-ehr", "launch-standalone", "authorize-post", "client-public",
    "client-confidential-symmetric", "client-confidential-asymmetric", "sso-openid-connect",
    "context-standalone-patient", "context-ehr-patient", "context-ehr-encounter",
    "context-banner", "context-style", "permission-patient", "permission-user",
    "permission-v1", "permission-v2", "permission-offline", MULTI_AUD_TOKEN,
)
# RFC 7662 / RFC 7009 callers authenticate as clients; revocation also takes public clients.
CLIENT_METHODS = (SECRET_BASIC, SECRET_POST, PRIVATE_KEY_JWT)


def authorization_server_metadata(realm: Realm) -> dict[str, Any]:
    """RFC 8414 §2 (with the OIDC Discovery §3 and RFC 9207 members the AS honours)."""
    a = realm.auth_server
    meta: dict[str, Any] = {
        "issuer": a.issuer,
        "authorization_endpoint": a.authorization_endpoint,
        "token_endpoint": a.token_endpoint,
        "jwks_uri": a.jwks_uri,
        "scopes_supported": list(SCOPES_SUPPORTED),
        "response_types_supported": ["code"],
        "grant_types_supported": list(GRANT_TYPES),
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        # SMART §1.1: SHALL include S256 and SHALL NOT include plain.
        "code_challenge_methods_supported": ["S256"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "authorization_response_iss_parameter_supported": True,
        "management_endpoint": a.management_endpoint,
        "introspection_endpoint": a.introspection_endpoint,
        "introspection_endpoint_auth_methods_supported": list(CLIENT_METHODS),
        "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "revocation_endpoint": a.revocation_endpoint,
        "revocation_endpoint_auth_methods_supported": ["none", *CLIENT_METHODS],
        "revocation_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
    }
    if realm.registration_open():
        meta["registration_endpoint"] = a.registration_endpoint
    return meta


def smart_configuration(realm: Realm, *, scopes: Sequence[str] | None = None,
                        capabilities: Sequence[str] = SMART_CAPABILITIES) -> dict[str, Any]:
    """SMART 2.2 §1.1: the AS metadata, ``capabilities`` and the user-access brand (§2).
    A FHIR server passes its own ``scopes`` and ``capabilities``."""
    config = authorization_server_metadata(realm)
    if scopes is not None:
        config["scopes_supported"] = list(scopes)
    config["capabilities"] = list(capabilities)
    config["user_access_brand_bundle"] = realm.auth_server.brands_url
    config["user_access_brand_identifier"] = {"system": realm.brands.identifier_system,
                                              "value": realm.brands.identifier_value}
    return config


def rfc8414_paths(issuer: str) -> list[str]:
    """Where the AS answers RFC 8414 metadata requests (paths on its host).

    §3.1: the well-known suffix goes *between* the host and the issuer's path
    (``https://h/realm`` → ``https://h/.well-known/oauth-authorization-server/realm``). For an
    issuer with a path the OIDC-style form (the suffix appended to the issuer) is answered
    too, as §5 notes some deployed clients build it that way."""
    path = urlsplit(issuer).path.rstrip("/")
    paths = [RFC8414_WELL_KNOWN + path]
    if path:
        paths.append(path + RFC8414_WELL_KNOWN)
    return paths

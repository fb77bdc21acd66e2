"""smartrealm client library: discovery, brands, the token-reuse check, the multi-server
authorization code flow with PKCE, and FHIR calls with one multi-audience token.

Async-first: every network call takes an ``httpx.AsyncClient`` the caller owns. Every
failure is a typed ``SmartClientError`` (see ``smartrealm.client.errors``).

Typical flow (seed, "Reuse access token")::

    configs = [await discover(http, base) for base in bases]
    decision = check_token_reuse(configs)
    decision.raise_if_impossible()
    request = AuthorizationRequest.create(
        authorization_endpoint=decision.authorization_endpoint, client_id=cid,
        redirect_uri=redirect, scope=scope, resources=bases)
    # send the user to request.url; on return:
    code = parse_callback(callback_url, request)
    tokens = await exchange_code(http, decision.token_endpoint, request, code, client_id=cid)
    ehr = FhirSession(http, bases[0], tokens)
    patient = await ehr.read("Patient", tokens.patient_id_for(bases[0]))
"""

from smartrealm.client.auth import (
    AuthorizationRequest,
    exchange_code,
    parse_callback,
    pkce_challenge,
    refresh,
    register_client,
)
from smartrealm.client.authorize_post import authorize_post_page, supports_authorize_post
from smartrealm.client.backend import client_credentials
from smartrealm.client.brands import (
    BrandEndpoint,
    BrandsCache,
    fetch_brand_endpoints,
    fetch_brands_bundle,
    resolve_brand_endpoints,
)
from smartrealm.client.credentials import (
    ClientCredentials,
    ClientSecretBasic,
    PrivateKeyJwt,
    PublicClient,
)
from smartrealm.client.discovery import AssociatedEndpoint, SmartConfiguration, discover
from smartrealm.client.ehr_launch import (
    LaunchRequest,
    check_issuer,
    ehr_authorization_request,
    parse_launch,
)
from smartrealm.client.errors import (
    AccessDenied,
    AuthorizationError,
    BrandsError,
    CallbackError,
    ClientUsageError,
    DiscoveryError,
    FhirBadRequest,
    FhirClientError,
    FhirConflict,
    FhirError,
    FhirForbidden,
    FhirGone,
    FhirMethodNotAllowed,
    FhirNotFound,
    FhirPreconditionFailed,
    FhirResponseError,
    FhirServerError,
    FhirTransportError,
    FhirUnauthorized,
    FhirUnprocessable,
    ForeignNextLink,
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    LaunchRequestError,
    RegistrationError,
    ServerError,
    SmartClientError,
    StateMismatch,
    TemporarilyUnavailable,
    TokenError,
    TokenReuseNotPossible,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    UntrustedIssuer,
    authorization_error,
)
from smartrealm.client.fhir import FhirSession, parse_bearer_challenge
from smartrealm.client.keys import ClientKey
from smartrealm.client.planning import (
    Refusal,
    ScopePlan,
    ServerFacts,
    ServerPlan,
    plan_scopes,
    plan_scopes_for,
)
from smartrealm.client.realm_app import RealmApp
from smartrealm.client.refresher import TokenRefresher
from smartrealm.client.reuse import MULTI_AUD_CAPABILITY, ReuseDecision, check_token_reuse
from smartrealm.client.storage import (
    FileTokenStore,
    MemoryTokenStore,
    TokenStore,
    TokenStoreError,
)
from smartrealm.client.tokens import TokenSet

__all__ = [
    "MULTI_AUD_CAPABILITY",
    "AccessDenied",
    "AssociatedEndpoint",
    "AuthorizationError",
    "AuthorizationRequest",
    "BrandEndpoint",
    "BrandsCache",
    "BrandsError",
    "CallbackError",
    "ClientCredentials",
    "ClientKey",
    "ClientSecretBasic",
    "ClientUsageError",
    "DiscoveryError",
    "FhirBadRequest",
    "FhirClientError",
    "FhirConflict",
    "FhirError",
    "FhirForbidden",
    "FhirGone",
    "FhirMethodNotAllowed",
    "FhirNotFound",
    "FhirPreconditionFailed",
    "FhirResponseError",
    "FhirServerError",
    "FhirSession",
    "FhirTransportError",
    "FhirUnauthorized",
    "FhirUnprocessable",
    "FileTokenStore",
    "ForeignNextLink",
    "InvalidClient",
    "InvalidGrant",
    "InvalidRequest",
    "InvalidScope",
    "InvalidTarget",
    "LaunchRequest",
    "LaunchRequestError",
    "MemoryTokenStore",
    "PrivateKeyJwt",
    "PublicClient",
    "RealmApp",
    "Refusal",
    "RegistrationError",
    "ReuseDecision",
    "ScopePlan",
    "ServerError",
    "ServerFacts",
    "ServerPlan",
    "SmartClientError",
    "SmartConfiguration",
    "StateMismatch",
    "TemporarilyUnavailable",
    "TokenError",
    "TokenRefresher",
    "TokenReuseNotPossible",
    "TokenSet",
    "TokenStore",
    "TokenStoreError",
    "UnauthorizedClient",
    "UnsupportedGrantType",
    "UnsupportedResponseType",
    "UntrustedIssuer",
    "authorization_error",
    "authorize_post_page",
    "check_issuer",
    "check_token_reuse",
    "client_credentials",
    "discover",
    "ehr_authorization_request",
    "exchange_code",
    "fetch_brand_endpoints",
    "fetch_brands_bundle",
    "parse_bearer_challenge",
    "parse_callback",
    "parse_launch",
    "pkce_challenge",
    "plan_scopes",
    "plan_scopes_for",
    "refresh",
    "register_client",
    "resolve_brand_endpoints",
    "supports_authorize_post",
]

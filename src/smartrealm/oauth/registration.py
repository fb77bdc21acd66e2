"""Dynamic client registration (RFC 7591): validate the metadata, build the client record
and the response. The same validation serves ``smartrealm client add``.

* ``token_endpoint_auth_method``: ``none`` (public), ``client_secret_basic`` (the RFC 7591
  default), ``client_secret_post``, or ``private_key_jwt`` with exactly one of ``jwks`` and
  ``jwks_uri`` (SMART §4.5; RFC 7591 §2: never both).
* ``grant_types``: ``authorization_code`` (with ``response_types: ["code"]`` and redirect
  URIs), ``refresh_token`` (only alongside ``authorization_code``), ``client_credentials``
  (Backend Services, SMART §9: private_key_jwt and a ``system/`` scope ceiling).
* ``scope``: the ceiling of what the client may ever be granted.
* ``allowed_servers`` (realm extension): server ids or base URLs; absent or empty = all.

Errors are ``invalid_redirect_uri`` or ``invalid_client_metadata`` (RFC 7591 §3.2.2), 400.

Who registers matters (RFC 7591 §3: the server may limit what an anonymous request gets). An
``Authority`` says which ``PRIVILEGES`` the registering party may give the client: none for an
open (anonymous) request, what its initial access token allows (RFC 7591 §3), all of them
for the operator (the realm file, ``smartrealm client add``). A request for a privilege the
authority lacks is refused with ``invalid_client_metadata`` naming the field — never quietly
narrowed, so the client learns at once that it needs an initial access token.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from secrets import token_urlsafe
from typing import Any
from urllib.parse import urlsplit

from smartrealm.core.addresses import AddressPolicy, literal_address
from smartrealm.core.rs_clients import PREFIX as RS_PREFIX
from smartrealm.core.urls import is_loopback_url
from smartrealm.oauth.client_jwks import JwksError, check_jwks
from smartrealm.oauth.client_secrets import ClientSecrets
from smartrealm.oauth.errors import (
    InvalidClientMetadata,
    InvalidRedirectUri,
    UnapprovedSoftwareStatement,
)
from smartrealm.oauth.realm_view import Realm
from smartrealm.oauth.scopes import ScopeSet, ScopeSyntaxError, parse_scopes
from smartrealm.oauth.store import (
    AUTH_METHODS,
    DEFAULT_GRANT_TYPES,
    PRIVATE_KEY_JWT,
    SECRET_BASIC,
    SECRET_POST,
    Client,
)

AUTHORIZATION_CODE = "authorization_code"
CLIENT_CREDENTIALS = "client_credentials"
GRANT_TYPES = (AUTHORIZATION_CODE, "refresh_token", CLIENT_CREDENTIALS)
RESPONSE_TYPES = ("code",)
LOOPBACK = ipaddress.IPv4Address("127.0.0.1")

# Privileges only a trusted registration may give a client, and why each is one.
BACKEND_SERVICES = "backend-services"
EHR_LAUNCH = "ehr-launch"
PRIVILEGES = {
    # SMART §9: a system/ ceiling reads (and may write) every patient on every server with
    # no user present and no consent; client_credentials is the grant that uses it.
    BACKEND_SERVICES: "the client_credentials grant and system/ scopes (Backend Services)",
    # initiate_login_uri lists the app in the realm's EHR launcher (SMART §6.1): the realm
    # presenting the app to clinicians as one of its own is an endorsement.
    EHR_LAUNCH: "a launch URL (initiate_login_uri): the app is listed in the EHR launcher",
}


@dataclass(frozen=True)
class Authority:
    """The privileges the party registering a client may give it."""

    privileges: frozenset[str]
    source: str  # how the refusal tells the caller to get the privilege


ANONYMOUS = Authority(frozenset(), "an initial access token that allows it (RFC 7591 §3)")
OPERATOR = Authority(frozenset(PRIVILEGES), "the realm operator")


@dataclass(frozen=True)
class _Asked:
    """What a request asks for, as far as privileges are concerned."""

    grants: tuple[str, ...]
    contexts: frozenset[str]  # scope contexts of the ceiling: patient, user, system
    fields: frozenset[str]  # metadata names present in the request


# (privilege, the metadata that asks for it, does this request ask for it?)
PRIVILEGED_METADATA: tuple[tuple[str, str, Callable[[_Asked], bool]], ...] = (
    (BACKEND_SERVICES, "grant_types: client_credentials",
     lambda a: CLIENT_CREDENTIALS in a.grants),
    (BACKEND_SERVICES, "scope: system/ scopes", lambda a: "system" in a.contexts),
    (EHR_LAUNCH, "initiate_login_uri", lambda a: "initiate_login_uri" in a.fields),
)


def check_privileges(asked: _Asked, authority: Authority) -> None:
    for privilege, field_name, asks in PRIVILEGED_METADATA:
        if asks(asked) and privilege not in authority.privileges:
            raise InvalidClientMetadata(
                f"{field_name} needs the {privilege} privilege, which only {authority.source} "
                "grants; open registration never does")


@dataclass(frozen=True)
class Registration:
    client: Client
    secret: str | None

    def response(self) -> dict[str, Any]:
        """RFC 7591 §3.2.1: the registered metadata plus client_id (and the secret)."""
        c = self.client
        body: dict[str, Any] = {
            "client_id": c.client_id, "client_id_issued_at": c.created_at,
            "client_name": c.name, "redirect_uris": list(c.redirect_uris),
            "token_endpoint_auth_method": c.auth_method, "grant_types": list(c.grant_types),
            "response_types": response_types_for(c.grant_types),
        }
        optional = {"scope": c.scope or None, "jwks": c.jwks, "jwks_uri": c.jwks_uri,
                    "allowed_servers": list(c.allowed_servers) or None}
        body.update({k: v for k, v in optional.items() if v is not None})
        if self.secret is not None:
            body["client_secret"] = self.secret
            body["client_secret_expires_at"] = 0
        return body


def response_types_for(grant_types: tuple[str, ...]) -> list[str]:
    return list(RESPONSE_TYPES) if AUTHORIZATION_CODE in grant_types else []


def check_redirect_uri(uri: object) -> str:
    """Absolute, no fragment (RFC 6749 §3.1.2); plain http only on loopback (RFC 8252 §7.3);
    a custom scheme only in reverse-domain form (RFC 8252 §7.1)."""
    if not isinstance(uri, str) or not uri:
        raise InvalidRedirectUri("every redirect URI must be a non-empty string")
    parts = _split(uri, InvalidRedirectUri)
    if "#" in uri:
        raise InvalidRedirectUri(f"{uri} must not contain a fragment")
    if parts.scheme == "https" and parts.hostname:
        return uri
    if parts.scheme == "http" and parts.hostname:
        if is_loopback_url(uri):
            return uri
        raise InvalidRedirectUri(f"{uri}: plain http is allowed only on loopback")
    if parts.scheme and "." in parts.scheme and not parts.scheme.startswith("."):
        return uri
    raise InvalidRedirectUri(f"{uri} is not an acceptable absolute redirect URI")


def check_jwks_uri(uri: object, policy: AddressPolicy) -> str:
    """SMART §4.5: the JWKS URL is fetched over TLS; plain http only on loopback. A host
    that is itself a forbidden address (an IP literal, or a ``localhost`` name, RFC 6761
    §6.3) is refused now; names are judged on the address the AS connects to at fetch time
    (authz/safe_fetch.py), so DNS cannot smuggle one in later."""
    if not isinstance(uri, str) or not uri or "#" in uri:
        raise InvalidClientMetadata("jwks_uri must be an absolute URL without a fragment")
    parts = _split(uri, InvalidClientMetadata)
    secure = parts.scheme == "https" or (parts.scheme == "http" and is_loopback_url(uri))
    if not parts.hostname or not secure:
        raise InvalidClientMetadata("jwks_uri must be an https URL (http only on loopback)")
    host = parts.hostname.rstrip(".").lower()
    loopback_name = host == "localhost" or host.endswith(".localhost")
    address = LOOPBACK if loopback_name else literal_address(host)
    reason = policy.refusal(address) if address is not None else None
    if reason is not None:
        raise InvalidClientMetadata(f"jwks_uri: {parts.hostname} is a {reason} address, "
                                    "which this realm does not fetch from")
    return uri


def _split(uri: str, error: type[InvalidRedirectUri | InvalidClientMetadata]) -> Any:
    try:
        parts = urlsplit(uri)
        _ = parts.hostname, parts.port  # both raise on a malformed authority
    except ValueError:
        raise error(f"{uri!r} is not a valid URL") from None
    return parts


def _string_list(meta: dict[str, Any], name: str, default: tuple[str, ...]) -> list[str]:
    value = meta.get(name, list(default))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidClientMetadata(f"{name} must be an array of strings")
    return value


def _string(meta: dict[str, Any], name: str) -> str:
    value = meta.get(name, "")
    if not isinstance(value, str):
        raise InvalidClientMetadata(f"{name} must be a string")
    return value


def _grant_types(meta: dict[str, Any]) -> tuple[str, ...]:
    """RFC 7591 §2.1: grant_types and response_types must agree."""
    grants = tuple(dict.fromkeys(_string_list(meta, "grant_types", DEFAULT_GRANT_TYPES)))
    if not grants or not set(grants) <= set(GRANT_TYPES):
        raise InvalidClientMetadata(f"grant_types must be among {', '.join(GRANT_TYPES)}")
    if "refresh_token" in grants and AUTHORIZATION_CODE not in grants:
        raise InvalidClientMetadata("refresh_token is issued only with authorization_code")
    responses = _string_list(meta, "response_types", tuple(response_types_for(grants)))
    if sorted(set(responses)) != response_types_for(grants):
        raise InvalidClientMetadata("response_types must be [\"code\"] with "
                                    "authorization_code and [] without it")
    return grants


def _redirect_uris(meta: dict[str, Any], grants: tuple[str, ...]) -> tuple[str, ...]:
    uris = meta.get("redirect_uris", [])
    if not isinstance(uris, list):
        raise InvalidRedirectUri("redirect_uris must be an array")
    if AUTHORIZATION_CODE in grants and not uris:
        raise InvalidRedirectUri("redirect_uris is required (authorization_code clients)")
    return tuple(check_redirect_uri(u) for u in uris)


def _auth_method(meta: dict[str, Any], grants: tuple[str, ...]) -> str:
    method = meta.get("token_endpoint_auth_method", SECRET_BASIC)
    if method not in AUTH_METHODS:
        raise InvalidClientMetadata(f"token_endpoint_auth_method must be one of "
                                    f"{', '.join(AUTH_METHODS)}")
    if CLIENT_CREDENTIALS in grants and method != PRIVATE_KEY_JWT:
        # SMART §4.5/§9: Backend Services authenticate with private_key_jwt only.
        raise InvalidClientMetadata("client_credentials requires private_key_jwt")
    return str(method)


def _keys(meta: dict[str, Any], method: str,
          policy: AddressPolicy) -> tuple[dict[str, Any] | None, str | None]:
    jwks, uri = meta.get("jwks"), meta.get("jwks_uri")
    if method != PRIVATE_KEY_JWT:
        if jwks is not None or uri is not None:
            raise InvalidClientMetadata("jwks and jwks_uri are used only with private_key_jwt")
        return None, None
    if (jwks is None) == (uri is None):
        raise InvalidClientMetadata("private_key_jwt needs exactly one of jwks and jwks_uri")
    if uri is not None:
        return None, check_jwks_uri(uri, policy)
    try:
        return check_jwks(jwks), None
    except JwksError as exc:
        raise InvalidClientMetadata(str(exc)) from None


def _ceiling(meta: dict[str, Any]) -> ScopeSet:
    try:
        return parse_scopes(_string(meta, "scope"))
    except ScopeSyntaxError as exc:
        raise InvalidClientMetadata(str(exc)) from None


def _scope(ceiling: ScopeSet, grants: tuple[str, ...]) -> str:
    if CLIENT_CREDENTIALS in grants and "system" not in ceiling.contexts():
        raise InvalidClientMetadata("client_credentials needs system/ scopes in scope (§9)")
    return " ".join(ceiling.raw)


def _allowed_servers(meta: dict[str, Any], realm: Realm) -> tuple[str, ...]:
    ids = {rs.id for rs in realm.resource_servers}
    allowed: list[str] = []
    for value in _string_list(meta, "allowed_servers", ()):
        server = value if value in ids else _server_id(realm, value)
        if server is None:
            raise InvalidClientMetadata(f"allowed_servers: {value!r} is not a server of "
                                        "this realm")
        if server not in allowed:
            allowed.append(server)
    return tuple(allowed)


def _server_id(realm: Realm, url: str) -> str | None:
    try:
        found = realm.server_by_url(url) if "://" in url else None
    except ValueError:  # not a URL at all
        return None
    return found.id if found is not None else None


def register(meta: object, now: int, realm: Realm, client_id: str | None = None,
             authority: Authority = ANONYMOUS, *, secrets: ClientSecrets) -> Registration:
    """Validate ``meta`` (a parsed JSON body) and build the client (not stored yet).
    ``client_id`` is the operator's choice (``client add``); a request body's own
    ``client_id`` or ``client_secret`` is never used (RFC 7591 §3.2.1: the server issues
    them), so no one can take over or shadow an existing client by naming it."""
    if not isinstance(meta, dict):
        raise InvalidClientMetadata("the body must be a JSON object")
    if client_id is not None and client_id.startswith(RS_PREFIX):
        # rs:<server id> are the resource servers' own introspection identities.
        raise InvalidClientMetadata(f"the client_id prefix {RS_PREFIX} is reserved")
    if "software_statement" in meta:
        # RFC 7591 §3.2.2: this server trusts no software publisher's statements; refusing
        # (rather than ignoring) tells the client its signed claims were not honoured.
        raise UnapprovedSoftwareStatement("software statements are not accepted here")
    grants, ceiling = _grant_types(meta), _ceiling(meta)
    check_privileges(_Asked(grants, frozenset(ceiling.contexts()), frozenset(meta)), authority)
    redirect_uris = _redirect_uris(meta, grants)
    method = _auth_method(meta, grants)
    jwks, jwks_uri = _keys(meta, method, realm.auth_server.fetch_policy)
    name, scope = _string(meta, "client_name"), _scope(ceiling, grants)
    allowed = _allowed_servers(meta, realm)
    client_id = client_id or token_urlsafe(16)
    secret = token_urlsafe(32) if method in (SECRET_BASIC, SECRET_POST) else None
    client = Client(client_id=client_id, name=name or client_id, redirect_uris=redirect_uris,
                    auth_method=method, secret_hash=secrets.hash(secret) if secret else None,
                    scope=scope, allowed_servers=allowed, created_at=now, grant_types=grants,
                    jwks=jwks, jwks_uri=jwks_uri)
    return Registration(client, secret)

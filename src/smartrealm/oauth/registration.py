"""Dynamic client registration (RFC 7591): validate the metadata, build the client record
and the response. Public clients use ``token_endpoint_auth_method: none``; confidential ones
``client_secret_basic`` (the RFC 7591 default) or ``client_secret_post``."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from smartrealm.oauth.errors import InvalidClientMetadata, InvalidRedirectUri
from smartrealm.oauth.passwords import hash_secret
from smartrealm.oauth.scopes import ScopeSyntaxError, parse_scopes
from smartrealm.oauth.store import AUTH_METHODS, PUBLIC, SECRET_BASIC, Client
from smartrealm.realm.config import is_loopback_url

GRANT_TYPES = ("authorization_code", "refresh_token")
RESPONSE_TYPES = ("code",)


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
            "token_endpoint_auth_method": c.auth_method, "grant_types": list(GRANT_TYPES),
            "response_types": list(RESPONSE_TYPES),
        }
        if c.scope:
            body["scope"] = c.scope
        if self.secret is not None:
            body["client_secret"] = self.secret
            body["client_secret_expires_at"] = 0
        return body


def check_redirect_uri(uri: object) -> str:
    """Absolute, no fragment (RFC 6749 §3.1.2); plain http only on loopback (RFC 8252 §7.3);
    a custom scheme only in reverse-domain form (RFC 8252 §7.1)."""
    if not isinstance(uri, str) or not uri:
        raise InvalidRedirectUri("every redirect URI must be a non-empty string")
    parts = urlsplit(uri)
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


def _string_list(meta: dict[str, Any], name: str, default: tuple[str, ...]) -> list[str]:
    value = meta.get(name, list(default))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidClientMetadata(f"{name} must be an array of strings")
    return value


def _check_metadata(meta: dict[str, Any]) -> tuple[list[str], str, str, str]:
    uris = meta.get("redirect_uris")
    if not isinstance(uris, list) or not uris:
        raise InvalidRedirectUri("redirect_uris is required (authorization_code clients)")
    redirect_uris = [check_redirect_uri(u) for u in uris]
    method = meta.get("token_endpoint_auth_method", SECRET_BASIC)
    if method not in AUTH_METHODS:
        raise InvalidClientMetadata(f"token_endpoint_auth_method must be one of "
                                    f"{', '.join(AUTH_METHODS)}")
    if not set(_string_list(meta, "grant_types", GRANT_TYPES)) <= set(GRANT_TYPES):
        raise InvalidClientMetadata("only authorization_code and refresh_token are supported")
    if not set(_string_list(meta, "response_types", RESPONSE_TYPES)) <= set(RESPONSE_TYPES):
        raise InvalidClientMetadata("only response_type code is supported")
    name, scope = meta.get("client_name", ""), meta.get("scope", "")
    if not isinstance(name, str) or not isinstance(scope, str):
        raise InvalidClientMetadata("client_name and scope must be strings")
    try:
        parse_scopes(scope)
    except ScopeSyntaxError as exc:
        raise InvalidClientMetadata(str(exc)) from None
    return redirect_uris, str(method), name, scope


def register(meta: object, now: int) -> Registration:
    if not isinstance(meta, dict):
        raise InvalidClientMetadata("the body must be a JSON object")
    redirect_uris, method, name, scope = _check_metadata(meta)
    client_id = secrets.token_urlsafe(16)
    secret = None if method == PUBLIC else secrets.token_urlsafe(32)
    client = Client(client_id=client_id, name=name or client_id,
                    redirect_uris=tuple(redirect_uris), auth_method=method,
                    secret_hash=hash_secret(secret) if secret else None, scope=scope,
                    created_at=now)
    return Registration(client, secret)

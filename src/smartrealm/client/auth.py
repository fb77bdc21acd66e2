"""Authorization code flow with PKCE (spec §3, §4), one request for several servers.

* ``AuthorizationRequest.create`` draws ``state``, the PKCE verifier and a ``nonce``;
  ``.url`` / ``.form_fields()`` give the GET and POST (``authorize-post``) forms.
  One server → ``aud`` (plain SMART 2.2). Several → one RFC 8707 ``resource`` per server
  and no ``aud`` (the multi-server request). ``aud`` plus resources is allowed only
  when ``aud`` is one of them (docs/behaviour.md: it becomes the primary server).
* ``parse_callback`` checks ``state`` first, then maps an ``error`` to its class.
* ``exchange_code`` / ``refresh`` post the forms spec §4.2/§4.3 (and Inferno's client
  suite, §12.5) expect; see ``smartrealm.client.token_endpoint``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx

from smartrealm.client._http import JSON, is_absolute_http, json_object, normalize_url
from smartrealm.client.errors import (
    CallbackError,
    ClientUsageError,
    RegistrationError,
    StateMismatch,
    authorization_error,
)
from smartrealm.client.token_endpoint import exchange_code, refresh

__all__ = [
    "AuthorizationRequest",
    "exchange_code",
    "parse_callback",
    "pkce_challenge",
    "refresh",
    "register_client",
]

# 32 random bytes: 256 bits, well above the 122 bits spec §3.2 asks of ``state``.
STATE_BYTES = 32
# 64 random bytes → 86 base64url characters, inside RFC 7636's 43..128.
VERIFIER_BYTES = 64


def pkce_challenge(verifier: str) -> str:
    """BASE64URL-no-padding(SHA-256(ASCII(verifier))): always 43 characters (spec §3.4)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class AuthorizationRequest:
    authorization_endpoint: str
    client_id: str
    redirect_uri: str
    scope: str
    resources: tuple[str, ...]
    aud: str | None
    launch: str | None
    state: str
    code_verifier: str
    code_challenge: str
    nonce: str
    code_challenge_method: str = "S256"

    @classmethod
    def create(
        cls,
        *,
        authorization_endpoint: str,
        client_id: str,
        redirect_uri: str,
        scope: str,
        resources: Sequence[str] = (),
        aud: str | None = None,
        launch: str | None = None,
    ) -> AuthorizationRequest:
        targets = _targets(resources, aud)
        if len(targets) == 1 and aud is None:
            # One server: the ordinary SMART request carries it as ``aud`` (spec §3.2).
            aud, targets = targets[0], ()
        if not scope.strip():
            raise ClientUsageError("scope is required (spec §3.2)")
        if not is_absolute_http(authorization_endpoint):
            raise ClientUsageError("authorization_endpoint must be an absolute http(s) URL")
        verifier = secrets.token_urlsafe(VERIFIER_BYTES)
        return cls(
            authorization_endpoint=authorization_endpoint,
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            resources=targets,
            aud=aud,
            launch=launch,
            state=secrets.token_urlsafe(STATE_BYTES),
            code_verifier=verifier,
            code_challenge=pkce_challenge(verifier),
            nonce=secrets.token_urlsafe(STATE_BYTES),
        )

    def form_fields(self) -> list[tuple[str, str]]:
        """The parameters in order, ``resource`` repeated: the body of a POST to the
        authorization endpoint (spec §3.1) and the query of ``url``."""
        fields = [
            ("response_type", "code"),
            ("client_id", self.client_id),
            ("redirect_uri", self.redirect_uri),
            ("scope", self.scope),
            ("state", self.state),
        ]
        if self.aud is not None:
            fields.append(("aud", self.aud))
        fields += [("resource", resource) for resource in self.resources]
        fields += [
            ("code_challenge", self.code_challenge),
            ("code_challenge_method", self.code_challenge_method),
        ]
        if self.launch is not None:
            fields.append(("launch", self.launch))
        if "openid" in self.scope.split():
            # OIDC Core §3.1.2.1: the id_token echoes it; only meaningful with openid.
            fields.append(("nonce", self.nonce))
        return fields

    @property
    def url(self) -> str:
        """The GET form, keeping any query the endpoint URL already has."""
        parts = urlsplit(self.authorization_endpoint)
        query = urlencode(parse_qs(parts.query, keep_blank_values=True), doseq=True)
        ours = urlencode(self.form_fields())
        return urlunsplit(parts._replace(query=f"{query}&{ours}" if query else ours))


def _targets(resources: Sequence[str], aud: str | None) -> tuple[str, ...]:
    """Validated, de-duplicated (normalised) resource indicators (RFC 8707 §2)."""
    if isinstance(resources, str):
        raise ClientUsageError("resources must be a sequence of URLs, not one string")
    for url in [*resources, *([aud] if aud is not None else [])]:
        if not is_absolute_http(url):
            raise ClientUsageError(f"{url!r} is not an absolute http(s) URL without fragment")
    first_by_key: dict[str, str] = {}
    for url in resources:
        first_by_key.setdefault(normalize_url(url), url)
    unique = tuple(first_by_key.values())
    if aud is None and not unique:
        raise ClientUsageError("give aud or at least one resource (spec §3.2)")
    if aud is not None and unique and normalize_url(aud) not in map(normalize_url, unique):
        raise ClientUsageError("aud must be one of the resources when both are given")
    return unique


def parse_callback(callback_url: str, request: AuthorizationRequest) -> str:
    """The authorization code from the redirect back to the app (spec §3.5).

    ``state`` is checked before anything else, so a forged error redirect is reported as
    ``StateMismatch`` rather than trusted."""
    query = urlsplit(callback_url).query if "?" in callback_url else callback_url.lstrip("?")
    params = parse_qs(query, keep_blank_values=True)
    states = params.get("state", [])
    if len(states) != 1 or not hmac.compare_digest(
        states[0].encode("utf-8"), request.state.encode("utf-8")
    ):
        raise StateMismatch("callback state is missing or does not match the request")
    errors = params.get("error", [])
    if errors:
        descriptions = params.get("error_description", [])
        raise authorization_error(errors[0], descriptions[0] if descriptions else None)
    codes = params.get("code", [])
    if len(codes) != 1 or not codes[0]:
        raise CallbackError("callback has no single code parameter")
    return codes[0]


async def register_client(
    http: httpx.AsyncClient,
    registration_endpoint: str,
    *,
    redirect_uris: Sequence[str],
    client_name: str,
    scope: str | None = None,
    token_endpoint_auth_method: str = "none",  # noqa: S107 (RFC 7591 method name)
    grant_types: Sequence[str] = ("authorization_code", "refresh_token"),
    jwks: dict[str, Any] | None = None,
    jwks_uri: str | None = None,
    initial_access_token: str | None = None,
) -> dict[str, Any]:
    """RFC 7591 dynamic registration; returns the client information response (which holds
    ``client_id`` and, for confidential clients, ``client_secret``). An asymmetric client
    registers its public keys as ``jwks`` (``ClientKey.public_jwks()``) or ``jwks_uri``
    (spec §4.5). ``initial_access_token`` (RFC 7591 §3) is the operator-issued token that
    privileged registrations need, such as a Backend Services client."""
    metadata: dict[str, Any] = {
        "redirect_uris": list(redirect_uris),
        "client_name": client_name,
        "token_endpoint_auth_method": token_endpoint_auth_method,
        "grant_types": list(grant_types),
        # RFC 7591 §2.1: response types follow the grant types (none for backend services).
        "response_types": ["code"] if "authorization_code" in grant_types else [],
    }
    optional = {"scope": scope, "jwks": jwks, "jwks_uri": jwks_uri}
    metadata.update({name: value for name, value in optional.items() if value is not None})
    try:
        headers = {"Accept": JSON}
        if initial_access_token is not None:
            headers["Authorization"] = f"Bearer {initial_access_token}"
        response = await http.post(registration_endpoint, json=metadata, headers=headers)
    except httpx.HTTPError as exc:
        raise RegistrationError(f"POST {registration_endpoint} failed: {exc!r}") from exc
    body = json_object(response)
    if response.status_code in (200, 201) and body and isinstance(body.get("client_id"), str):
        return body
    error = body.get("error") if body else None
    detail = body.get("error_description") if body else None
    raise RegistrationError(
        f"registration refused (HTTP {response.status_code}): {error or 'no client_id'}"
        + (f": {detail}" if detail else ""),
        error=error if isinstance(error, str) else None,
        status=response.status_code,
    )

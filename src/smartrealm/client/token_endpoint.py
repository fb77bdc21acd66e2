"""Token endpoint calls (spec §4): the ``authorization_code`` and ``refresh_token`` grants.

Client authentication (spec §4.5): a public client sends ``client_id`` in the body and no
credentials; a confidential symmetric client sends HTTP Basic and *omits* ``client_id``
(spec §4.2; Inferno's client suite checks both, §12.5); an asymmetric client passes
``auth=PrivateKeyJwt(...)`` (``smartrealm.client.credentials``). ``client_id`` /
``client_secret`` remain as the short form of ``PublicClient`` / ``ClientSecretBasic``.

Nothing here logs or puts a token, code or secret into an exception message."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

import httpx

from smartrealm.client._http import JSON, json_object
from smartrealm.client.credentials import (
    ClientCredentials,
    Form,
    basic_credentials,
    credentials_for,
)
from smartrealm.client.errors import ClientUsageError, TokenError, authorization_error
from smartrealm.client.tokens import TokenSet


class AuthorizationRequest(Protocol):
    """What a code exchange needs of the authorization request that produced the code
    (``client.auth.AuthorizationRequest``): its client, redirect URI and PKCE verifier."""

    @property
    def client_id(self) -> str: ...

    @property
    def redirect_uri(self) -> str: ...

    @property
    def code_verifier(self) -> str: ...

__all__ = ["basic_credentials", "exchange_code", "post_token_request", "refresh"]


async def exchange_code(
    http: httpx.AsyncClient,
    token_endpoint: str,
    request: AuthorizationRequest,
    code: str,
    *,
    client_id: str,
    client_secret: str | None = None,
    resources: Sequence[str] = (),
    auth: ClientCredentials | None = None,
) -> TokenSet:
    """Exchange the authorization code (spec §4.2). ``resources`` may narrow the audience
    of this token to a subset of the authorized servers (RFC 8707 §2.2); by default the
    token covers everything that was authorized."""
    if client_id != request.client_id:
        raise ClientUsageError("client_id differs from the one in the authorization request")
    form: Form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": request.redirect_uri,
        "code_verifier": request.code_verifier,
    }
    if resources:
        form["resource"] = list(resources)
    credentials = credentials_for(client_id, client_secret, auth)
    body = await post_token_request(http, token_endpoint, form, credentials)
    return TokenSet.from_response(body)


async def refresh(
    http: httpx.AsyncClient,
    token_endpoint: str,
    token_set: TokenSet,
    *,
    client_id: str,
    client_secret: str | None = None,
    scope: str | None = None,
    auth: ClientCredentials | None = None,
) -> TokenSet:
    """Use the refresh token (spec §4.3). ``scope`` may narrow (never widen) the grant.

    The result keeps what the response leaves out: the old refresh token when none is
    issued (no rotation) and the launch context (spec §4.3: context MAY be repeated)."""
    if token_set.refresh_token is None:
        raise ClientUsageError("this token set has no refresh_token")
    form: Form = {"grant_type": "refresh_token", "refresh_token": token_set.refresh_token}
    if scope is not None:
        form["scope"] = scope
    credentials = credentials_for(client_id, client_secret, auth)
    body = await post_token_request(http, token_endpoint, form, credentials)
    fresh = TokenSet.from_response(body)
    return replace(
        fresh,
        refresh_token=fresh.refresh_token or token_set.refresh_token,
        patient=fresh.patient if "patient" in body else token_set.patient,
        fhir_context=fresh.fhir_context if "fhirContext" in body else token_set.fhir_context,
        authorization_details=(
            fresh.authorization_details
            if "authorization_details" in body
            else token_set.authorization_details
        ),
    )


async def post_token_request(
    http: httpx.AsyncClient, token_endpoint: str, form: Form, auth: ClientCredentials
) -> dict[str, Any]:
    """POST one form-encoded token request (spec §4.1) and return the JSON body of a 200;
    an OAuth error body becomes ``TokenError`` with the mapped ``oauth`` exception."""
    headers = {"Accept": JSON}
    auth.apply(form, headers, token_endpoint)
    try:
        response = await http.post(token_endpoint, data=form, headers=headers)
    except httpx.HTTPError as exc:
        raise TokenError(f"POST {token_endpoint} failed: {exc.__class__.__name__}") from exc
    body = json_object(response)
    if response.status_code == 200 and body is not None:
        return body
    error = body.get("error") if body is not None else None
    if isinstance(error, str):
        description = body.get("error_description") if body is not None else None
        oauth = authorization_error(error, description if isinstance(description, str) else None)
        raise TokenError(
            f"token endpoint refused (HTTP {response.status_code}): {oauth}",
            status=response.status_code,
            oauth=oauth,
        ) from oauth
    raise TokenError(
        f"token endpoint returned HTTP {response.status_code} without an OAuth error",
        status=response.status_code,
    )

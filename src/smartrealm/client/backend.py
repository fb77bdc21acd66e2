"""Backend Services (spec §9): a ``client_credentials`` token, authenticated with
``private_key_jwt``, for one or several FHIR servers.

Several servers are named with one RFC 8707 ``resource`` each (spec §3.6: the parameter may
repeat for ``client_credentials`` too); the AS of this realm then issues one token whose
``aud`` lists them, with one ``authorization_details`` entry per server (``TokenSet``
``scopes_for(base)`` gives what each granted). Spec §9: no refresh token is expected; a new
assertion gets a new token."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from smartrealm.client._http import is_absolute_http
from smartrealm.client.credentials import ClientCredentials, Form, PrivateKeyJwt
from smartrealm.client.errors import ClientUsageError
from smartrealm.client.keys import ClientKey
from smartrealm.client.token_endpoint import post_token_request
from smartrealm.client.tokens import TokenSet


async def client_credentials(
    http: httpx.AsyncClient,
    token_endpoint: str,
    *,
    client_id: str,
    key: ClientKey | None = None,
    scope: str,
    resources: Sequence[str] = (),
    auth: ClientCredentials | None = None,
) -> TokenSet:
    """One ``client_credentials`` token (spec §9) for every server in ``resources``.
    ``key`` is the short form of ``auth=PrivateKeyJwt(client_id, key)``."""
    credentials = _credentials(client_id, key, auth)
    if not scope.strip():
        raise ClientUsageError("scope is required for client_credentials (spec §9)")
    if isinstance(resources, str):
        raise ClientUsageError("resources must be a sequence of URLs, not one string")
    for url in resources:
        if not is_absolute_http(url):
            raise ClientUsageError(f"{url!r} is not an absolute http(s) URL without fragment")
    form: Form = {"grant_type": "client_credentials", "scope": scope}
    if resources:
        form["resource"] = list(resources)
    body = await post_token_request(http, token_endpoint, form, credentials)
    return TokenSet.from_response(body)


def _credentials(
    client_id: str, key: ClientKey | None, auth: ClientCredentials | None
) -> ClientCredentials:
    if key is not None and auth is None:
        return PrivateKeyJwt(client_id, key)
    if key is not None or auth is None:
        raise ClientUsageError("give exactly one of key and auth")
    credentials = auth
    if credentials.client_id != client_id:
        raise ClientUsageError("auth.client_id differs from client_id")
    return credentials

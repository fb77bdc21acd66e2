"""How a client authenticates at the token endpoint (spec §4.5), one class per method.

* ``PublicClient``: ``client_id`` in the form body, no credentials.
* ``ClientSecretBasic``: HTTP Basic, ``client_id`` *omitted* from the body (spec §4.2;
  Inferno's client suite checks the header, §12.5).
* ``PrivateKeyJwt``: ``client_assertion_type`` + a fresh ``client_assertion`` whose ``aud``
  is the URL being posted to (spec §4.5); ``client_id`` omitted as SMART says.

``exchange_code``, ``refresh`` and ``client_credentials`` take any of them as ``auth``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from smartrealm.client.errors import ClientUsageError
from smartrealm.client.keys import ASSERTION_TYPE, ClientKey
from smartrealm.core.basic_auth import encode_client_credentials

Form = dict[str, str | list[str]]


class ClientCredentials(Protocol):
    @property
    def client_id(self) -> str: ...

    def apply(self, form: Form, headers: dict[str, str], token_endpoint: str) -> None:
        """Add this method's parameters/headers to one token request."""


@dataclass(frozen=True)
class PublicClient:
    client_id: str

    def apply(self, form: Form, headers: dict[str, str], token_endpoint: str) -> None:
        form["client_id"] = self.client_id


@dataclass(frozen=True)
class ClientSecretBasic:
    client_id: str
    client_secret: str

    def apply(self, form: Form, headers: dict[str, str], token_endpoint: str) -> None:
        headers["Authorization"] = basic_credentials(self.client_id, self.client_secret)

    def __repr__(self) -> str:  # never show the secret
        return f"ClientSecretBasic(client_id={self.client_id!r}, client_secret=***)"


@dataclass(frozen=True)
class PrivateKeyJwt:
    client_id: str
    key: ClientKey

    def apply(self, form: Form, headers: dict[str, str], token_endpoint: str) -> None:
        form["client_assertion_type"] = ASSERTION_TYPE
        form["client_assertion"] = self.key.client_assertion(self.client_id, token_endpoint)


def basic_credentials(client_id: str, client_secret: str) -> str:
    """``Authorization`` header value for client_secret_basic (RFC 6749 §2.3.1: each part
    form-urlencoded before base64; for the usual ASCII values that changes nothing)."""
    return encode_client_credentials(client_id, client_secret)


def credentials_for(
    client_id: str, client_secret: str | None, auth: ClientCredentials | None
) -> ClientCredentials:
    """The legacy ``client_id``/``client_secret`` arguments as a ``ClientCredentials``."""
    if auth is not None:
        if auth.client_id != client_id:
            raise ClientUsageError("auth.client_id differs from client_id")
        return auth
    if client_secret is None:
        return PublicClient(client_id)
    return ClientSecretBasic(client_id, client_secret)

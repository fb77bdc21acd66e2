"""Client authentication at the token endpoint (RFC 6749 §2.3, SMART §4.5): public clients
send ``client_id`` only; confidential symmetric clients use HTTP Basic or
``client_secret_post``; asymmetric ones a private_key_jwt assertion (``assertions``). Every
failure is ``invalid_client``."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote_plus

from smartrealm.oauth.assertions import AssertionVerifier, uses_assertion
from smartrealm.oauth.errors import InvalidClient, InvalidRequest
from smartrealm.oauth.passwords import verify_secret
from smartrealm.oauth.store import PUBLIC, SECRET_BASIC, SECRET_POST, Client


@dataclass(frozen=True)
class Credentials:
    client_id: str
    secret: str | None
    method: str


def _single(form: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = form.get(name, [])
    if len(values) > 1:
        raise InvalidRequest(f"{name} must not be repeated")
    return values[0] if values else None


def parse_basic(header: str) -> tuple[str, str]:
    """``Basic base64(id:secret)``. RFC 6749 §2.3.1 form-encodes each part first; SMART's
    example does not, and decoding plain ASCII is a no-op, so both forms work."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        raise InvalidClient("unsupported Authorization scheme")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidClient("malformed Basic credentials") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id:
        raise InvalidClient("malformed Basic credentials")
    return unquote_plus(client_id), unquote_plus(secret)


def extract_credentials(authorization: str | None,
                        form: Mapping[str, Sequence[str]]) -> Credentials:
    body_id = _single(form, "client_id")
    body_secret = _single(form, "client_secret")
    if authorization:
        if body_secret is not None:
            # RFC 6749 §2.3: a client MUST NOT use more than one authentication method.
            raise InvalidRequest("use either HTTP Basic or client_secret, not both")
        client_id, secret = parse_basic(authorization)
        if body_id is not None and body_id != client_id:
            raise InvalidClient("client_id does not match the Basic credentials")
        return Credentials(client_id, secret, SECRET_BASIC)
    if not body_id:
        raise InvalidClient("client authentication is required")
    if body_secret is not None:
        return Credentials(body_id, body_secret, SECRET_POST)
    return Credentials(body_id, None, PUBLIC)


def authenticate(credentials: Credentials,
                 find_client: Callable[[str], Client | None]) -> Client:
    client = find_client(credentials.client_id)
    if client is None:
        verify_secret(credentials.secret or "", None)  # same work as a real check
        raise InvalidClient("unknown client")
    if client.is_public:
        if credentials.method != PUBLIC:
            raise InvalidClient("this is a public client; it has no secret")
        return client
    if credentials.method == PUBLIC or credentials.secret is None:
        raise InvalidClient("this confidential client must authenticate")
    if not verify_secret(credentials.secret, client.secret_hash):
        raise InvalidClient("client authentication failed")
    return client


def authenticate_request(authorization: str | None, form: Mapping[str, Sequence[str]],
                         find_client: Callable[[str], Client | None],
                         assertions: AssertionVerifier | None) -> Client:
    """Whichever method the request uses; a client assertion excludes every other one."""
    if not uses_assertion(form):
        return authenticate(extract_credentials(authorization, form), find_client)
    if authorization or "client_secret" in form:
        # RFC 6749 §2.3: a client MUST NOT use more than one authentication method.
        raise InvalidRequest("use either a client assertion or a client secret, not both")
    if assertions is None:
        raise InvalidClient("private_key_jwt is not available at this endpoint")
    return assertions.authenticate(form, find_client)

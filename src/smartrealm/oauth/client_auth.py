"""Client authentication at the token endpoint (RFC 6749 §2.3, SMART §4.5): public clients
send ``client_id`` only; confidential symmetric clients use HTTP Basic or
``client_secret_post``; asymmetric ones a private_key_jwt assertion (``assertions``). Every
failure is ``invalid_client``.

Secrets are checked against their keyed hash (``client_secrets``); a hash of the earlier
scrypt scheme is replaced by the fast one on its first successful use. Failed secret checks
are counted by a ``FailureThrottle`` (the web layer binds it to the caller's address): once
it has seen too many, that client_id is refused from there — known client or not, right
secret or not — with 429 ``invalid_client`` and ``Retry-After`` (``TooManyFailures``) until
the lock ends. Assertions are not throttled: a signature cannot be guessed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from smartrealm.core.basic_auth import client_credentials
from smartrealm.oauth.assertions import AssertionVerifier, uses_assertion
from smartrealm.oauth.client_secrets import ClientSecrets, Match
from smartrealm.oauth.errors import InvalidClient, InvalidRequest, TooManyFailures
from smartrealm.oauth.store import PUBLIC, SECRET_BASIC, SECRET_POST, Client, ClientStore


@dataclass(frozen=True)
class Credentials:
    client_id: str
    secret: str | None
    method: str


class FailureThrottle(Protocol):
    """Failed secret checks per client_id (and whatever else the implementation keys on)."""

    def retry_after(self, client_id: str) -> int:
        """Seconds until ``client_id`` may be tried again; 0: now."""
        ...

    def failed(self, client_id: str) -> int:
        """Count one failure; the seconds of the lock it starts, else 0."""
        ...

    def succeeded(self, client_id: str) -> None:
        """A right secret: the failures counted so far are forgotten."""
        ...


class Unthrottled:
    """No limit (unit tests of the protocol core)."""

    def retry_after(self, client_id: str) -> int:
        return 0

    def failed(self, client_id: str) -> int:
        return 0

    def succeeded(self, client_id: str) -> None:
        return None


@dataclass(frozen=True)
class ClientAuth:
    """What client authentication needs: the registered clients, the realm's secret hash,
    and the failure throttle of this caller."""

    clients: ClientStore
    secrets: ClientSecrets
    throttle: FailureThrottle = field(default_factory=Unthrottled)


def single_param(form: Mapping[str, Sequence[str]], name: str) -> str | None:
    """A form parameter that may appear once (RFC 6749 §3.1: repeated is invalid_request)."""
    values = form.get(name, [])
    if len(values) > 1:
        raise InvalidRequest(f"{name} must not be repeated")
    return values[0] if values else None


def parse_basic(header: str) -> tuple[str, str]:
    """``Basic base64(id:secret)``, each part form-decoded (core.basic_auth); anything else
    is ``invalid_client``."""
    pair = client_credentials(header)
    if pair is None:
        raise InvalidClient("malformed Basic credentials")
    return pair


def extract_credentials(authorization: str | None,
                        form: Mapping[str, Sequence[str]]) -> Credentials:
    body_id = single_param(form, "client_id")
    body_secret = single_param(form, "client_secret")
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


def authenticate(credentials: Credentials, auth: ClientAuth) -> Client:
    if credentials.secret is not None:
        return _authenticate_secret(credentials.client_id, credentials.secret, auth)
    client = auth.clients.get(credentials.client_id)
    if client is None:
        raise InvalidClient("unknown client")
    if not client.is_public:
        raise InvalidClient("this confidential client must authenticate")
    return client


def _authenticate_secret(client_id: str, secret: str, auth: ClientAuth) -> Client:
    # The lock comes first, known client or not, right secret or not: while it lasts nothing
    # is checked, so guessing stops and the answer does not tell whether the client exists.
    wait = auth.throttle.retry_after(client_id)
    if wait:
        raise TooManyFailures(wait)
    client = auth.clients.get(client_id)
    if client is not None and client.is_public:
        raise InvalidClient("this is a public client; it has no secret")
    # Unknown clients cost the same HMAC: the timing does not tell either.
    match = auth.secrets.check(secret, client.secret_hash if client else None)
    if client is None or match is Match.NO:
        wait = auth.throttle.failed(client_id)
        if wait:
            raise TooManyFailures(wait)
        raise InvalidClient("unknown client" if client is None
                            else "client authentication failed")
    if match is Match.OUTDATED and client.secret_hash is not None:
        auth.clients.replace_secret_hash(client_id, client.secret_hash, auth.secrets.hash(secret))
    auth.throttle.succeeded(client_id)
    return client


def authenticate_request(authorization: str | None, form: Mapping[str, Sequence[str]],
                         auth: ClientAuth, assertions: AssertionVerifier | None) -> Client:
    """Whichever method the request uses; a client assertion excludes every other one."""
    if not uses_assertion(form):
        return authenticate(extract_credentials(authorization, form), auth)
    if authorization or "client_secret" in form:
        # RFC 6749 §2.3: a client MUST NOT use more than one authentication method.
        raise InvalidRequest("use either a client assertion or a client secret, not both")
    if assertions is None:
        raise InvalidClient("private_key_jwt is not available at this endpoint")
    return assertions.authenticate(form, auth.clients.get)

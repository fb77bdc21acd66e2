"""How the protocol core sees the realm: small read-only Protocols, implemented by the realm's
configuration (``realm.config``: ``RealmConfig``, ``AuthServerConfig`` and
``ResourceServerConfig``; mypy checks the fit wherever the AS passes one in), so that
``oauth`` depends on what it reads and not on how the realm is configured or loaded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from smartrealm.core.addresses import AddressPolicy


class Server(Protocol):
    """A FHIR server of the realm, as the AS reasons about it."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def base_url(self) -> str: ...

    @property
    def mode(self) -> str:
        """``server`` (built-in) or ``proxy``."""
        ...

    @property
    def fhir_version(self) -> str: ...

    @property
    def profile(self) -> str:
        """What it serves (``core.profiles``)."""
        ...

    @property
    def multi_aud_token(self) -> bool:
        """Whether it accepts a token shared with other servers (auth-multi-aud-token)."""
        ...


class AuthServer(Protocol):
    """The AS's own URLs and policies."""

    @property
    def issuer(self) -> str: ...

    @property
    def access_token_lifetime(self) -> int: ...

    @property
    def fetch_policy(self) -> AddressPolicy:
        """Which addresses the AS may fetch client documents from (SSRF guard)."""
        ...

    @property
    def authorization_endpoint(self) -> str: ...

    @property
    def token_endpoint(self) -> str: ...

    @property
    def jwks_uri(self) -> str: ...

    @property
    def registration_endpoint(self) -> str: ...

    @property
    def introspection_endpoint(self) -> str: ...

    @property
    def revocation_endpoint(self) -> str: ...

    @property
    def management_endpoint(self) -> str: ...

    @property
    def brands_url(self) -> str: ...


class Brand(Protocol):
    @property
    def identifier_system(self) -> str: ...

    @property
    def identifier_value(self) -> str: ...


class SharedAudience(Protocol):
    """The capability check behind one token for several servers: each must advertise
    auth-multi-aud-token (docs/behaviour.md); ``check`` raises ``InvalidTarget`` when one
    does not. Run inside the /authorize and /token pipelines."""

    async def check(self, servers: Sequence[Server]) -> None: ...


class Realm(Protocol):
    """The server directory: the AS, its servers and how to find one."""

    @property
    def auth_server(self) -> AuthServer: ...

    @property
    def brands(self) -> Brand: ...

    @property
    def resource_servers(self) -> Sequence[Server]: ...

    def registration_open(self) -> bool: ...

    def server(self, server_id: str) -> Server: ...

    def server_by_url(self, url: str) -> Server | None: ...

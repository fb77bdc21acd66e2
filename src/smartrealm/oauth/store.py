"""Records and storage ports the protocol core needs: clients and authorization codes.
The SQL implementations live in ``smartrealm.authz.stores.sql``; the same contract suite runs on
every backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from smartrealm.oauth.grants import Grant

PUBLIC = "none"
SECRET_BASIC = "client_secret_basic"
SECRET_POST = "client_secret_post"
PRIVATE_KEY_JWT = "private_key_jwt"  # SMART §4.5 client-confidential-asymmetric
AUTH_METHODS = (PUBLIC, SECRET_BASIC, SECRET_POST, PRIVATE_KEY_JWT)
DEFAULT_GRANT_TYPES = ("authorization_code", "refresh_token")


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str
    redirect_uris: tuple[str, ...]
    auth_method: str = PUBLIC
    secret_hash: str | None = None
    scope: str = ""
    allowed_servers: tuple[str, ...] = ()
    created_at: int = 0
    grant_types: tuple[str, ...] = DEFAULT_GRANT_TYPES
    # private_key_jwt: the registered JWK Set (public keys) or its URL, never both (§4.5).
    jwks: dict[str, Any] | None = field(default=None, hash=False)
    jwks_uri: str | None = None

    @property
    def is_public(self) -> bool:
        return self.auth_method == PUBLIC


@dataclass(frozen=True)
class AuthorizationCode:
    """Everything the code is bound to (RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 8707)."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    grant: Grant
    expires_at: int


@dataclass(frozen=True)
class RefreshToken:
    """A refresh token's grant. Rotation keeps one ``family`` per authorization: replaying
    an already-rotated token revokes the whole family (docs/behaviour.md, OAuth 2.1 §4.3.1)."""

    family: str
    client_id: str
    grant: Grant
    expires_at: int


@dataclass(frozen=True)
class RefreshTokenState:
    """A stored refresh token and where it is in its life (introspection, revocation)."""

    token: RefreshToken
    used: bool  # rotated: presenting it again is a replay
    revoked: bool

    def active(self, now: int) -> bool:
        return not self.used and not self.revoked and now < self.token.expires_at


class ClientStore(Protocol):
    def get(self, client_id: str) -> Client | None: ...

    def put(self, client: Client) -> None:
        """Insert or replace."""
        ...

    def all(self) -> list[Client]:
        """Every client, ordered by client_id."""
        ...

    def delete(self, client_id: str) -> bool:
        """True when the client existed."""
        ...

    def replace_secret_hash(self, client_id: str, old: str, new: str) -> bool:
        """Store ``new`` as the client's secret hash if it still is ``old`` (a rehash never
        revives a removed client nor overwrites a secret changed meanwhile)."""
        ...


class CodeStore(Protocol):
    def save(self, code_hash: str, code: AuthorizationCode) -> None: ...

    def consume(self, code_hash: str, now: int) -> AuthorizationCode | None:
        """Atomically mark the code used and return it; None when it is unknown, expired or
        was already used (RFC 6749 §4.1.2: single use)."""
        ...


class RefreshStore(Protocol):
    def save(self, token_hash: str, token: RefreshToken) -> None: ...

    def rotate(self, token_hash: str, now: int) -> RefreshToken | None:
        """Atomically mark the token used and return it. None when it is unknown, expired or
        revoked; replaying a used token also revokes its whole family."""
        ...

    def lookup(self, token_hash: str) -> RefreshTokenState | None:
        """The token in whatever state it is, without using it; None when unknown."""
        ...

    def revoke_family(self, family: str) -> int:
        """Revoke every refresh token of a grant family (RFC 7009 §2.1); returns how many."""
        ...

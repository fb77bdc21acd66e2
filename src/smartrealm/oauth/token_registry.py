"""The registry of issued access tokens: what the AS needs to answer "is this token still
good?" after it has handed the token out (RFC 7662 introspection, RFC 7009 revocation).

Access tokens are self-contained JWTs, so a resource server that only checks signatures
cannot see a revocation. The registry keeps, per token ``jti``: its grant family (one per
authorization; refresh tokens share it), client, lifetime, revocation mark and the launch
context of the token response (SMART §7.1: introspection echoes it). It also links each
authorization code to the family it started, so that a replayed code revokes everything the
code issued (RFC 6749 §4.1.2, SMART §4.2).

The SQL implementation is ``smartrealm.authz.stores.sql_token_registry``; one contract suite runs on
every backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class AccessTokenRecord:
    jti: str
    family: str
    client_id: str
    issued_at: int
    expires_at: int
    # Launch-context members of the token response that the JWT does not carry.
    context: dict[str, Any] = field(default_factory=dict, hash=False)
    revoked: bool = False

    def active(self, now: int) -> bool:
        return not self.revoked and now < self.expires_at


@dataclass(frozen=True)
class CodeLink:
    """The authorization code that started a family, kept until ``expires_at``."""

    code_hash: str
    expires_at: int


class TokenRegistry(Protocol):
    def record(self, token: AccessTokenRecord, started_by: CodeLink | None = None) -> None:
        """Remember an issued access token (before the response leaves the AS); with
        ``started_by``, also link that code to the token's family (``link_code``) in the
        same write."""
        ...

    def get(self, jti: str) -> AccessTokenRecord | None:
        """The record, revoked or not; None when unknown (or purged)."""
        ...

    def revoke(self, jti: str) -> bool:
        """Mark one token revoked; True when it was known."""
        ...

    def revoke_family(self, family: str) -> int:
        """Mark every access token of a grant family revoked; returns how many."""
        ...

    def link_code(self, code_hash: str, family: str, expires_at: int) -> None:
        """Code ``code_hash`` started ``family``; kept until ``expires_at`` (when every token
        the code led to has expired)."""
        ...

    def family_of_code(self, code_hash: str) -> str | None: ...

    def purge(self, now: int) -> int:
        """Delete rows nothing needs any more (expired, or revoked); returns how many."""
        ...

"""Initial access tokens (RFC 7591 §3): how an operator lets a registration at ``/register``
have privileges that open registration never grants (``oauth.registration.PRIVILEGES``).

``smartrealm client initial-token`` issues one with what it allows, an expiry and a number
of uses; the client presents it as ``Authorization: Bearer`` (RFC 6750 §2.1). Only the
SHA-256 of the value is stored (it is 256 random bits, so a plain hash suffices, like codes):
a leaked table reveals no usable token. Each successful registration claims one use with a
conditional UPDATE (``stores/sql_initial_tokens.py``), the one atomic step, so two
concurrent registrations cannot both spend the last use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class InitialAccessToken:
    id: str  # public handle for list and revoke: a prefix of the hash, never the value
    allows: frozenset[str]  # privileges (oauth.registration.PRIVILEGES)
    expires_at: int
    uses_left: int
    label: str
    created_at: int

    def active(self, now: int) -> bool:
        return self.uses_left > 0 and now < self.expires_at


class InitialTokenStore(Protocol):
    def issue(self, allows: frozenset[str], expires_at: int, uses: int, label: str,
              now: int) -> tuple[str, InitialAccessToken]:
        """Store a new token; returns (value, record). The value is never stored."""
        ...

    def find(self, value: str, now: int) -> InitialAccessToken | None:
        """The token when it is known and active (unexpired, uses left); else None."""
        ...

    def claim(self, value: str, now: int) -> InitialAccessToken | None:
        """Spend one use of an active token; None when there was none left to spend."""
        ...

    def all(self) -> list[InitialAccessToken]: ...

    def revoke(self, token_id: str) -> bool: ...

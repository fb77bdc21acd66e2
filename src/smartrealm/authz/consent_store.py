"""Remembered consents and the user's view of apps holding refresh tokens ("remembered consent per
user+client+scopes, revocable", docs/behaviour.md; spec §13 "remind users which apps
hold offline access").

A remembered consent records, per server, what the consent page offered and what the user
approved, plus the identity scopes; a later request whose offers it covers skips the page
(oauth.approval). Both lists are shown, and revoked, at the management endpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class RememberedConsent:
    username: str
    client_id: str
    offered: dict[str, tuple[str, ...]]  # server id → scopes the page offered
    approved: dict[str, tuple[str, ...]]  # server id → scopes the user approved
    identity_offered: tuple[str, ...] = ()
    identity_approved: tuple[str, ...] = ()
    updated_at: int = 0

    def to_json(self) -> str:
        return json.dumps({"offered": {k: list(v) for k, v in self.offered.items()},
                           "approved": {k: list(v) for k, v in self.approved.items()},
                           "identity_offered": list(self.identity_offered),
                           "identity_approved": list(self.identity_approved)})

    @classmethod
    def from_row(cls, username: str, client_id: str, data: str,
                 updated_at: int) -> RememberedConsent:
        d: dict[str, Any] = json.loads(data)
        return cls(username, client_id,
                   {k: tuple(v) for k, v in d["offered"].items()},
                   {k: tuple(v) for k, v in d["approved"].items()},
                   tuple(d["identity_offered"]), tuple(d["identity_approved"]), updated_at)


@dataclass(frozen=True)
class AppAccess:
    """One app holding live refresh tokens for a user (one per grant family)."""

    client_id: str
    grants: int
    scope: str
    expires_at: int


class ConsentStore(Protocol):
    def get(self, username: str, client_id: str) -> RememberedConsent | None: ...

    def put(self, consent: RememberedConsent) -> None:
        """Insert or replace the consent of (username, client_id)."""
        ...

    def list_for(self, username: str) -> list[RememberedConsent]: ...

    def delete(self, username: str, client_id: str) -> bool:
        """True when a consent was forgotten."""
        ...


class AppAccessStore(Protocol):
    def active(self, username: str, now: int) -> list[AppAccess]: ...

    def revoke(self, username: str, client_id: str, now: int) -> list[str]:
        """Revoke every live refresh-token family of ``username`` at ``client_id``;
        returns the families that ended."""
        ...

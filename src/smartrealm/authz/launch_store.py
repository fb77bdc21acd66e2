"""Storage of the EHR launch (SMART §6.1): launch contexts, the apps' launch URLs and the
EHR simulator's login sessions: the Protocols. The SQL implementations (SQLite and PostgreSQL
alike, tables prefixed ``as_`` in the AS's database) are in ``stores/sql_launch.py``, the
in-memory ones in ``stores/memory.py``; one contract suite runs on all three
(tests/authz/test_launch_store_contract.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from smartrealm.oauth.launch import LaunchContext


@dataclass(frozen=True)
class EhrSession:
    """A browser's session at the EHR simulator; ``username`` is None until sign-in."""

    csrf: str
    expires_at: int
    username: str | None = None


class LaunchStore(Protocol):
    def save(self, id_hash: str, launch: LaunchContext) -> None: ...

    def claim(self, id_hash: str, now: int) -> LaunchContext | None:
        """Atomically mark the launch used and return it; None when it is unknown, expired
        or was already used (single use)."""
        ...

    def purge(self, now: int) -> int:
        """Delete the launches expired as of ``now`` (authz/maintenance.py)."""
        ...


class AppLaunchStore(Protocol):
    """Each client's launch URL (its ``initiate_login_uri``, config ``launch_url``)."""

    def put(self, client_id: str, launch_url: str) -> None: ...

    def get(self, client_id: str) -> str | None: ...

    def all(self) -> list[tuple[str, str]]:
        """(client_id, launch_url) for every client that has one, ordered by client_id."""
        ...

    def delete(self, client_id: str) -> None: ...


class EhrSessionStore(Protocol):
    def create(self, key_hash: str, session: EhrSession) -> None: ...

    def get(self, key_hash: str, now: int) -> EhrSession | None:
        """None when unknown or expired."""
        ...

    def update(self, key_hash: str, session: EhrSession) -> None: ...

    def delete(self, key_hash: str) -> None: ...

    def purge(self, now: int) -> int:
        """Delete the sessions expired as of ``now``."""
        ...


@dataclass(frozen=True)
class EhrStores:
    launches: LaunchStore
    app_launch_urls: AppLaunchStore
    sessions: EhrSessionStore

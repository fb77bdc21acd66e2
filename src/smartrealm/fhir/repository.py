"""The storage interface of a FHIR server. The SQL implementation lives in ``fhir.sql``;
the handlers see only this protocol."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .query import Criterion


@dataclass(frozen=True)
class StoredResource:
    resource: dict[str, Any]   # with meta.versionId / meta.lastUpdated
    version_id: int
    last_updated: str          # FHIR instant
    deleted: bool


class ResourceRepository(Protocol):
    def put(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Create or update; the server assigns ``id`` (if missing), ``meta.versionId`` and
        ``meta.lastUpdated``. Returns the stored resource."""
        ...

    def get(self, resource_type: str, resource_id: str) -> StoredResource | None:
        """The current version, including a deleted one (so callers can answer 410)."""
        ...

    def delete(self, resource_type: str, resource_id: str) -> bool:
        """Mark deleted (a new version); False when there was nothing live to delete."""
        ...

    def search(self, resource_type: str, criteria: Sequence[Criterion], *, count: int,
               offset: int) -> tuple[list[dict[str, Any]], int]:
        """One page of live resources matching every criterion, ordered by id, and the
        total number of matches."""
        ...

    def count(self, resource_type: str | None = None) -> int:
        """Live resources, of one type or of all."""
        ...

    def is_empty(self) -> bool:
        """True only if nothing was ever stored (deleted resources count as stored), so
        start-up seeding never refills a store whose data was deliberately removed."""
        ...

    def bulk_load(self, resources: Iterable[dict[str, Any]]) -> int:
        """``put`` many resources in one transaction; returns how many were written."""
        ...

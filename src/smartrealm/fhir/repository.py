"""The storage interface of a FHIR server. The SQL implementation lives in ``fhir.sql``;
the handlers see only this protocol."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from smartrealm.fhir.search.query import Criterion, Page, PageQuery


class StoredResource:
    """One stored version of a resource (``resource`` carries meta.versionId and
    meta.lastUpdated). A store may hand over the exact compact JSON it kept (``text``)
    instead of the parsed resource: a read then serves those bytes as they are and the JSON
    is parsed only if someone asks for ``resource`` — the commonest response costs neither
    a parse nor an encode (bench/throughput.py)."""

    __slots__ = ("_resource", "deleted", "last_updated", "text", "version_id")

    def __init__(self, resource: dict[str, Any] | None, version_id: int, last_updated: str,
                 deleted: bool, *, text: str | None = None) -> None:
        if resource is None and text is None:
            raise ValueError("a stored resource needs its content or its JSON text")
        self._resource = resource
        self.version_id = version_id
        self.last_updated = last_updated  # FHIR instant
        self.deleted = deleted
        self.text = text

    @property
    def resource(self) -> dict[str, Any]:
        if self._resource is None:
            self._resource = json.loads(self.text or "")
        return self._resource

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StoredResource):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((self.version_id, self.last_updated, self.deleted))

    def __repr__(self) -> str:
        return (f"StoredResource({self.resource!r}, {self.version_id!r}, "
                f"{self.last_updated!r}, {self.deleted!r})")

    def _key(self) -> tuple[Any, ...]:
        return (self.resource, self.version_id, self.last_updated, self.deleted)


class VersionConflictError(Exception):
    """A concurrent write stored the same version first; nothing of this write was kept."""


@dataclass(frozen=True)
class HistoryQuery:
    """Versions of the given types, newest first. ``types`` pairs each type with the
    restriction on it (None: every resource of the type); a restricted type contributes
    only versions of resources whose *current* state matches it (the caller still checks
    each version: see ``versions_matching``)."""

    types: tuple[tuple[str, Criterion | None], ...]
    resource_id: str | None = None   # instance history: one resource (of the one type)
    since: str | None = None         # only versions stamped at or after this UTC instant
    count: int = 20
    offset: int = 0


class WriteSession(Protocol):
    """Reads and writes inside one database transaction (``ResourceRepository.transaction``):
    everything is kept together at the end, or nothing at all."""

    def get(self, resource_type: str, resource_id: str) -> StoredResource | None:
        ...

    def put(self, resource: dict[str, Any]) -> StoredResource:
        """A new version of ``resource`` (its ``id`` is set), as ``ResourceRepository.put``."""
        ...

    def delete(self, resource_type: str, resource_id: str) -> StoredResource | None:
        """The deletion version; None when nothing live was there."""
        ...

    def matches(self, resource_type: str, resource_id: str,
                criteria: Sequence[Criterion]) -> bool:
        """Does the resource, as this transaction sees it now, match every criterion?"""
        ...

    def page(self, query: PageQuery) -> Page:
        """A search as this transaction sees the store now (``ResourceRepository.page``)."""
        ...

    def exclusive(self, key: str) -> None:
        """Hold, until this transaction ends, a lock on ``key`` that every other session
        asking for the same key waits for, in any process where the database can arrange
        it (PostgreSQL); a no-op where it cannot (SQLite: one process serves a store, and
        the caller holds a process-wide lock as well)."""
        ...


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

    def page(self, query: PageQuery) -> Page:
        """One page of live resources matching every criterion, in the query's order
        (then by id), with the total number of matches when the query asks for it."""
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

    def refresh_statistics(self) -> bool:
        """After a bulk load: bring what the database's planner knows about the data up to
        date if it has grown since (so searches stay index-driven); True if it did."""
        ...

    def vread(self, resource_type: str, resource_id: str,
              version_id: int) -> StoredResource | None:
        """One version (a deletion version has ``deleted`` set and the last live content)."""
        ...

    def history(self, query: HistoryQuery) -> tuple[list[StoredResource], int]:
        """One page of versions and the number of versions the query selects."""
        ...

    def versions_matching(self, versions: Sequence[StoredResource],
                          criteria: Sequence[Criterion]) -> list[bool]:
        """For each version, would it match every criterion if it were current? Evaluated
        by the same SQL as a search (so history and search can never disagree), in a
        transaction that is always rolled back."""
        ...

    def transaction(self) -> AbstractContextManager[WriteSession]:
        """A write session; raises ``VersionConflictError`` when a concurrent write collided."""
        ...

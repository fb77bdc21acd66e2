"""A short-lived cache of patient-id resolutions (issue 3 "a FHIR search it makes there with
a short-lived token it mints for itself, cached").

Only ``find_by_mrn`` hits are cached, per (server, MRN), for ``ttl`` seconds: a patient's id
on a server does not change, while "not found" can stop being true at any moment (a record
is created, a server comes back), so misses are always asked again. Everything else goes
straight to the wrapped directory. The cache is per process and bounded.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from smartrealm.authz.patients import (
    EncounterSummary,
    PatientDirectory,
    PatientPage,
    PatientQuery,
    PatientSummary,
)
from smartrealm.realm.config import ResourceServerConfig

TTL = 60.0
MAX_ENTRIES = 10_000


class CachingPatientDirectory:
    def __init__(self, inner: PatientDirectory, ttl: float = TTL,
                 clock: Callable[[], float] = time.monotonic,
                 max_entries: int = MAX_ENTRIES) -> None:
        self._inner = inner
        self._ttl = ttl
        self._clock = clock
        self._max = max_entries
        self._hits: dict[tuple[str, str], tuple[str, float]] = {}

    async def find_by_mrn(self, server: ResourceServerConfig, mrn: str) -> str | None:
        key, now = (server.id, mrn), self._clock()
        cached = self._hits.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        found = await self._inner.find_by_mrn(server, mrn)
        self._hits.pop(key, None)
        if found is not None:
            if len(self._hits) >= self._max:  # drop the oldest entry (insertion order)
                self._hits.pop(next(iter(self._hits)))
            self._hits[key] = (found, now + self._ttl)
        return found

    async def search(self, server: ResourceServerConfig, name: str | None
                     ) -> list[PatientSummary]:
        return await self._inner.search(server, name)

    async def read(self, server: ResourceServerConfig, patient_id: str
                   ) -> PatientSummary | None:
        return await self._inner.read(server, patient_id)

    async def search_page(self, server: ResourceServerConfig, query: PatientQuery
                          ) -> PatientPage:
        return await self._inner.search_page(server, query)

    async def encounters(self, server: ResourceServerConfig, patient_id: str
                         ) -> list[EncounterSummary]:
        return await self._inner.encounters(server, patient_id)

"""Finding the in-context patient on every server of the audience (seed rule, spec §6.5).

The patient is read on its home server (it must exist there); its records on the other
servers come from the realm's patient index (patient_index.py) and nowhere else: what a
Patient resource says at authorization time is never trusted to link it to anyone, since a
patient-facing app may be able to write it. Each indexed record is then read on its server,
always with a self-token the AS mints for that one server (CONTRACT "AS self-token").
Lookups that fail (no index entry, several records on one server, record not found, server
down) mean "not on that server": that server then gets no patient and no patient scopes.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from smartrealm.authz.patient_index import PatientIndex
from smartrealm.core.defaults import PICKER_MAX_ENCOUNTERS as MAX_ENCOUNTERS
from smartrealm.core.defaults import PICKER_PAGE_SIZE as PAGE_SIZE
from smartrealm.core.fhir_ids import is_fhir_id
from smartrealm.core.media_types import FHIR_JSON
from smartrealm.oauth.tokens import SELF_SCOPE, TokenMinter
from smartrealm.realm.config import ResourceServerConfig

log = logging.getLogger(__name__)
ENCOUNTER_SCOPE = "system/Encounter.rs"


@dataclass(frozen=True)
class PatientSummary:
    id: str
    name: str
    birth_date: str = ""
    mrn: str | None = None


@dataclass(frozen=True)
class PatientQuery:
    """The picker's search: by name and/or by MRN (the realm's patient identifier)."""

    name: str = ""
    mrn: str = ""
    page: int = 1  # 1-based


@dataclass(frozen=True)
class PatientPage:
    patients: list[PatientSummary]
    total: int
    page: int
    size: int = PAGE_SIZE

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))


@dataclass(frozen=True)
class EncounterSummary:
    id: str
    label: str
    start: str = ""
    status: str = ""


class PatientDirectory(Protocol):
    async def search(self, server: ResourceServerConfig, name: str | None
                     ) -> list[PatientSummary]: ...

    async def read(self, server: ResourceServerConfig, patient_id: str
                   ) -> PatientSummary | None: ...

    async def search_page(self, server: ResourceServerConfig, query: PatientQuery
                          ) -> PatientPage: ...

    async def encounters(self, server: ResourceServerConfig, patient_id: str
                         ) -> list[EncounterSummary]: ...


def _display_name(resource: dict[str, Any]) -> str:
    for name in resource.get("name", []):
        if name.get("text"):
            return str(name["text"])
        parts = [*name.get("given", []), name.get("family", "")]
        if any(parts):
            return " ".join(p for p in parts if p)
    return str(resource.get("id", ""))


class HttpPatientDirectory:
    def __init__(self, http: httpx.AsyncClient, minter: TokenMinter,
                 identifier_system: str) -> None:
        self._http = http
        self._minter = minter
        self._system = identifier_system

    def _summary(self, resource: dict[str, Any]) -> PatientSummary | None:
        if resource.get("resourceType") != "Patient" or not is_fhir_id(
                str(resource.get("id", ""))):
            return None
        mrn = next((i.get("value") for i in resource.get("identifier", [])
                    if i.get("system") == self._system), None)
        return PatientSummary(str(resource["id"]), _display_name(resource),
                              str(resource.get("birthDate", "")), mrn)

    async def _get(self, server: ResourceServerConfig, path: str,
                   params: dict[str, str] | None = None,
                   scope: str = SELF_SCOPE) -> dict[str, Any] | None:
        token = self._minter.self_token(server.base_url, server.fhir_version, scope)
        headers = {"Authorization": f"Bearer {token}", "Accept": FHIR_JSON}
        try:
            response = await self._http.get(f"{server.base_url}/{path}", params=params,
                                            headers=headers, timeout=10.0)
            data = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, RecursionError) as exc:
            log.warning("patient lookup on %s failed: %s", server.base_url, type(exc).__name__)
            return None
        return data if isinstance(data, dict) else None

    async def _search(self, server: ResourceServerConfig,
                      params: dict[str, str]) -> list[PatientSummary]:
        bundle = await self._get(server, "Patient", params)
        entries = (bundle or {}).get("entry", [])
        found = [self._summary(e.get("resource", {})) for e in entries if isinstance(e, dict)]
        return [p for p in found if p is not None]

    async def search(self, server: ResourceServerConfig, name: str | None
                     ) -> list[PatientSummary]:
        params = {"name": name, "_count": "50"} if name else {"_count": "50"}
        return await self._search(server, params)

    async def search_page(self, server: ResourceServerConfig, query: PatientQuery
                          ) -> PatientPage:
        """One page of the picker's search (R4 search paging with ``_count``/``_offset``;
        ``total`` from the searchset Bundle)."""
        params = {"_count": str(PAGE_SIZE), "_offset": str((query.page - 1) * PAGE_SIZE)}
        if query.name:
            params["name"] = query.name
        if query.mrn:
            params["identifier"] = f"{self._system}|{query.mrn}"
        bundle = await self._get(server, "Patient", params) or {}
        entries = [e for e in bundle.get("entry", []) if isinstance(e, dict)]
        found = [p for p in (self._summary(e.get("resource", {})) for e in entries) if p]
        total = bundle.get("total")
        return PatientPage(found, total if isinstance(total, int) else len(found), query.page)

    async def encounters(self, server: ResourceServerConfig, patient_id: str
                         ) -> list[EncounterSummary]:
        """The patient's encounters on ``server``, newest first (with a self-token for
        ``system/Encounter.rs``)."""
        if not is_fhir_id(patient_id):
            return []
        bundle = await self._get(server, "Encounter", {
            "patient": patient_id, "_count": str(MAX_ENCOUNTERS)}, ENCOUNTER_SCOPE) or {}
        found = [_encounter(e.get("resource", {})) for e in bundle.get("entry", [])
                 if isinstance(e, dict)]
        return sorted((e for e in found if e is not None), key=lambda e: e.start,
                      reverse=True)

    async def read(self, server: ResourceServerConfig, patient_id: str
                   ) -> PatientSummary | None:
        if not is_fhir_id(patient_id):
            return None
        resource = await self._get(server, f"Patient/{patient_id}")
        return None if resource is None else self._summary(resource)


def _encounter(resource: Any) -> EncounterSummary | None:
    if not isinstance(resource, dict) or resource.get("resourceType") != "Encounter" \
            or not is_fhir_id(str(resource.get("id", ""))):
        return None
    kinds = [t.get("text") or next((c.get("display") for c in t.get("coding", [])), None)
             for t in resource.get("type", []) if isinstance(t, dict)]
    klass = resource.get("class")
    codes = [klass.get("display"), klass.get("code")] if isinstance(klass, dict) else []
    label = next((k for k in [*kinds, *codes] if k), "Encounter")
    start = str((resource.get("period") or {}).get("start", ""))[:10]
    return EncounterSummary(str(resource["id"]), str(label), start,
                            str(resource.get("status", "")))


async def resolve_patient(directory: PatientDirectory, index: PatientIndex,
                          home: ResourceServerConfig, patient_id: str,
                          servers: Sequence[ResourceServerConfig]
                          ) -> dict[str, str | None] | None:
    """The patient's id on each server (None where it is not found); None when the patient
    cannot be read on its home server at all."""
    summary = await directory.read(home, patient_id)
    if summary is None:
        return None
    person = index.person_of(home.id, summary.id)
    records = index.records_of(person) if person is not None else []

    async def on(server: ResourceServerConfig) -> str | None:
        if server.id == home.id:
            return summary.id
        ids = [r.patient_id for r in records if r.server_id == server.id]
        # Several records of one person on one server is a data problem: link none.
        if len(ids) != 1:
            return None
        found = await directory.read(server, ids[0])
        return found.id if found is not None else None

    ids = await asyncio.gather(*(on(rs) for rs in servers))
    return {rs.id: pid for rs, pid in zip(servers, ids, strict=True)}

"""Finding the in-context patient on every server of the audience (seed rule, spec §6.5).

The AS reads the patient on its home server to learn its MRN, then searches each other
server ``Patient?identifier=<system>|<MRN>``, always with a self-token it mints for that one
server (CONTRACT "AS self-token"). Lookups that fail (server down, no match, several matches)
mean "not on that server": that server then gets no patient and no patient scopes.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from smartrealm.oauth.tokens import TokenMinter
from smartrealm.realm.config import ResourceServerConfig

log = logging.getLogger(__name__)
# FHIR id grammar: checked before an id (from a form or a server) goes into a URL.
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True)
class PatientSummary:
    id: str
    name: str
    birth_date: str = ""
    mrn: str | None = None


class PatientDirectory(Protocol):
    async def search(self, server: ResourceServerConfig, name: str | None
                     ) -> list[PatientSummary]: ...

    async def read(self, server: ResourceServerConfig, patient_id: str
                   ) -> PatientSummary | None: ...

    async def find_by_mrn(self, server: ResourceServerConfig, mrn: str) -> str | None: ...


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
        if resource.get("resourceType") != "Patient" or not FHIR_ID.match(
                str(resource.get("id", ""))):
            return None
        mrn = next((i.get("value") for i in resource.get("identifier", [])
                    if i.get("system") == self._system), None)
        return PatientSummary(str(resource["id"]), _display_name(resource),
                              str(resource.get("birthDate", "")), mrn)

    async def _get(self, server: ResourceServerConfig, path: str,
                   params: dict[str, str] | None = None) -> dict[str, Any] | None:
        headers = {"Authorization": f"Bearer {self._minter.self_token(server.base_url)}",
                   "Accept": FHIR_JSON}
        try:
            response = await self._http.get(f"{server.base_url}/{path}", params=params,
                                            headers=headers, timeout=10.0)
            data = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
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

    async def read(self, server: ResourceServerConfig, patient_id: str
                   ) -> PatientSummary | None:
        if not FHIR_ID.match(patient_id):
            return None
        resource = await self._get(server, f"Patient/{patient_id}")
        return None if resource is None else self._summary(resource)

    async def find_by_mrn(self, server: ResourceServerConfig, mrn: str) -> str | None:
        found = await self._search(server, {"identifier": f"{self._system}|{mrn}"})
        # Several patients with one MRN is a data problem: link none rather than guess.
        return found[0].id if len(found) == 1 else None


async def resolve_patient(directory: PatientDirectory, home: ResourceServerConfig,
                          patient_id: str, servers: Sequence[ResourceServerConfig]
                          ) -> dict[str, str | None] | None:
    """The patient's id on each server (None where it is not found); None when the patient
    cannot be read on its home server at all."""
    summary = await directory.read(home, patient_id)
    if summary is None:
        return None

    async def on(server: ResourceServerConfig) -> str | None:
        if server.id == home.id:
            return summary.id
        return await directory.find_by_mrn(server, summary.mrn) if summary.mrn else None

    ids = await asyncio.gather(*(on(rs) for rs in servers))
    return {rs.id: pid for rs, pid in zip(servers, ids, strict=True)}

"""The record page's data: one patient from both servers, each read with the same token
through its own ``FhirSession`` and the patient id *that server* knows (the per-server
context of the token response: ``authorization_details`` / ``fhirContext``).

A server that refuses or fails does not break the page: its column shows why."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from smartrealm.client import (
    FhirError,
    FhirForbidden,
    FhirSession,
    FhirUnauthorized,
    SmartClientError,
    TokenSet,
)
from smartrealm.core.defaults import DEMO_MAX_ITEMS as MAX_ITEMS
from smartrealm.demoapp.chart import Chart, vital_charts
from smartrealm.demoapp.sessions import Connection
from smartrealm.demoapp.summary import (
    Row,
    condition_row,
    encounter_row,
    patient_summary,
    report_row,
    study_row,
)

T = TypeVar("T")


@dataclass(frozen=True)
class ServerPanel:
    """What the token means at one server (the mapping panel)."""

    name: str
    base_url: str
    patient_id: str | None
    scopes: tuple[str, ...]
    in_audience: bool


@dataclass
class Column:
    panel: ServerPanel
    errors: list[str] = field(default_factory=list)


@dataclass
class EhrColumn(Column):
    patient: dict[str, str] = field(default_factory=dict)
    encounters: list[Row] = field(default_factory=list)
    conditions: list[Row] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)


@dataclass
class ImagingColumn(Column):
    studies: list[Row] = field(default_factory=list)
    reports: list[Row] = field(default_factory=list)


def panel(tokens: TokenSet, connection: Connection) -> ServerPanel:
    audience = token_audience(tokens)
    return ServerPanel(connection.name, connection.base_url,
                       tokens.patient_id_for(connection.base_url),
                       tokens.scopes_for(connection.base_url),
                       connection.base_url.rstrip("/") in {a.rstrip("/") for a in audience})


def token_audience(tokens: TokenSet) -> tuple[str, ...]:
    """The ``aud`` claim, for display only: the app does not rely on reading its access
    token (an opaque string to clients, spec §4.4); it falls back to the
    ``authorization_details`` locations the token response lists."""
    try:
        payload = tokens.access_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        aud = claims.get("aud") if isinstance(claims, dict) else None
    except (IndexError, ValueError):
        aud = None
    if isinstance(aud, str):
        return (aud,)
    if isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        return tuple(aud)
    return tuple(loc for entry in tokens.authorization_details
                 for loc in entry.get("locations", []) if isinstance(loc, str))


def _open(column: EhrColumn | ImagingColumn, http: httpx.AsyncClient, tokens: TokenSet,
          connection: Connection) -> tuple[FhirSession, str] | None:
    """A session on the column's server and the patient's id there; None (and a message
    in the column) when the token names no patient on that server."""
    pid = column.panel.patient_id
    if pid is None:
        column.errors.append("The token names no patient on this server.")
        return None
    return FhirSession(http, connection.base_url, tokens), pid


async def ehr_column(http: httpx.AsyncClient, tokens: TokenSet,
                     connection: Connection) -> EhrColumn:
    column = EhrColumn(panel(tokens, connection))
    opened = _open(column, http, tokens, connection)
    if opened is None:
        return column
    fhir, pid = opened
    patient, encounters, conditions, vitals = await asyncio.gather(
        _guard(column, "Patient", fhir.read("Patient", pid)),
        _guard(column, "Encounters", _all(fhir, "Encounter", {"patient": pid})),
        _guard(column, "Conditions", _all(fhir, "Condition", {"patient": pid})),
        _guard(column, "Vital signs", _all(fhir, "Observation",
                                           {"patient": pid, "category": "vital-signs"})))
    column.patient = patient_summary(patient) if patient else {}
    column.encounters = sorted((encounter_row(e) for e in encounters or []), reverse=True)
    column.conditions = sorted((condition_row(c) for c in conditions or []), reverse=True)
    column.charts = vital_charts(vitals or [])
    return column


async def imaging_column(http: httpx.AsyncClient, tokens: TokenSet,
                         connection: Connection) -> ImagingColumn:
    column = ImagingColumn(panel(tokens, connection))
    opened = _open(column, http, tokens, connection)
    if opened is None:
        return column
    fhir, pid = opened
    studies, reports = await asyncio.gather(
        _guard(column, "Imaging studies", _all(fhir, "ImagingStudy", {"patient": pid})),
        _guard(column, "Reports", _all(fhir, "DiagnosticReport", {"patient": pid})))
    column.studies = sorted((study_row(s) for s in studies or []), reverse=True)
    column.reports = sorted((report_row(r) for r in reports or []), reverse=True)
    return column


async def _all(fhir: FhirSession, resource_type: str,
               params: dict[str, str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    async for resource in fhir.iterate(resource_type, params):
        if resource.get("resourceType") == resource_type:
            found.append(resource)
        if len(found) >= MAX_ITEMS:
            break
    return found


async def _guard(column: Column, what: str, call: Awaitable[T]) -> T | None:
    """The call's result, or None with a readable reason on the column."""
    try:
        return await call
    except FhirError as error:
        column.errors.append(f"{what}: the server refused (HTTP {error.status}): "
                             f"{_refusal(error)}")
    except SmartClientError as error:
        column.errors.append(f"{what}: {error}")
    return None


def _refusal(error: FhirError) -> str:
    """The Bearer challenge (RFC 6750 §3.1) for 401/403, else the OperationOutcome text."""
    if isinstance(error, FhirUnauthorized | FhirForbidden) and error.error:
        detail = error.error_description
        return error.error + (f" – {detail}" if detail else "")
    return str(error).split(": ", 1)[-1]

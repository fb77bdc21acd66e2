"""Helpers for the REST write/history/bundle tests: requests of any method against the
in-process servers of tests/fhir/conftest.py, and small resource builders."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.fhir.conftest import Realm

LAB_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
LAB = f"{LAB_SYSTEM}|laboratory"
VITALS = f"{LAB_SYSTEM}|vital-signs"


async def call(rs: Realm, method: str, path: str, token: str | None = None, *,
               server: str = "ehr", body: Any = None, content: bytes | None = None,
               **headers: str) -> httpx.Response:
    """``path`` is relative to the server's base ("" is the base itself, "/" the base
    with a trailing slash)."""
    base = rs.config.server(server).base_url
    url = base + path if path in ("", "/") else f"{base}/{path}"
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    headers = {k.replace("_", "-"): v for k, v in headers.items()}
    return await rs.clients[server].request(method, url, json=body, content=content,
                                            headers=headers)


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def observation(patient: str, category: str = "laboratory", *, resource_id: str | None = None,
                status: str = "final") -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation", "status": status,
        "category": [{"coding": [{"system": LAB_SYSTEM, "code": category}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}],
                 "text": "Glucose"},
        "subject": {"reference": f"Patient/{patient}"},
    }
    if resource_id is not None:
        resource["id"] = resource_id
    return resource


def patient(resource_id: str | None = None, family: str = "Tester") -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Patient", "name": [{"family": family}]}
    if resource_id is not None:
        resource["id"] = resource_id
    return resource


def issue_expressions(response: httpx.Response) -> list[str]:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    return [e for issue in body["issue"] for e in issue.get("expression", [])]

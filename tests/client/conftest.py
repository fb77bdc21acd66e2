"""Fixtures: the recording test server runs for real (uvicorn on a free loopback port in a
thread, a real socket) once per module; each test gets a clean recorder and its own
``httpx.AsyncClient``."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from tests.client.conformance_server import Recorder as ConformanceRecorder
from tests.client.conformance_server import serving
from tests.client.server import BRAND_ID, Recorder, create_app

FHIR_VERSION_EXT = "http://hl7.org/fhir/StructureDefinition/endpoint-fhir-version"
PORTAL_EXT = "http://hl7.org/fhir/StructureDefinition/organization-portal"


@dataclass
class Live:
    origin: str
    recorder: Recorder

    def base(self, name: str) -> str:
        return f"{self.origin}/{name}/fhir"


def endpoint(origin: str, eid: str, name: str) -> dict[str, Any]:
    return {
        "fullUrl": f"{origin}/Endpoint/{eid}",
        "resource": {
            "resourceType": "Endpoint",
            "id": eid,
            "status": "active",
            "name": name,
            "address": f"{origin}/{eid}/fhir",
            "extension": [{"url": FHIR_VERSION_EXT, "valueCode": "4.0.1"}],
        },
    }


def organization(oid: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"resource": {"resourceType": "Organization", "id": oid, "name": name, **extra}}


def realm_brands_bundle(origin: str) -> dict[str, Any]:
    """Shaped like the realm's bundle: a primary brand (matched by identifier) whose portal
    lists every server, one affiliate per server with partOf → primary, plus an unrelated
    brand whose endpoint must not appear. Endpoints are referenced both as ``Endpoint/x``
    and by fullUrl."""
    portal = {
        "url": PORTAL_EXT,
        "extension": [
            {"url": "portalName", "valueString": "Good Health Portal"},
            {"url": "portalEndpoint", "valueReference": {"reference": "Endpoint/ehr"}},
            {"url": "portalEndpoint", "valueReference": {"reference": "Endpoint/imaging"}},
        ],
    }
    primary = organization(
        "hospital",
        "Good Health Hospital",
        identifier=[{"system": "urn:other", "value": "x"}, BRAND_ID],
        extension=[portal],
        endpoint=[{"reference": "Endpoint/ehr"}, {"reference": f"{origin}/Endpoint/imaging"}],
    )
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": "2025-01-01T00:00:00Z",
        "entry": [
            primary,
            organization(
                "ehr-brand",
                "Good Health EHR",
                partOf={"reference": "Organization/hospital"},
                endpoint=[{"reference": "Endpoint/ehr"}],
            ),
            organization(
                "imaging-brand",
                "Good Health Imaging",
                partOf={"reference": "Organization/hospital"},
                endpoint=[{"reference": "Endpoint/imaging"}],
            ),
            organization(
                "elsewhere",
                "Elsewhere Clinic",
                identifier=[{"system": BRAND_ID["system"], "value": "https://elsewhere.example"}],
                endpoint=[{"reference": "Endpoint/elsewhere"}],
            ),
            endpoint(origin, "ehr", "EHR FHIR R4"),
            endpoint(origin, "imaging", "Imaging FHIR R4"),
            endpoint(origin, "elsewhere", "Elsewhere"),
        ],
    }


@pytest.fixture(scope="module")
def live_server() -> Iterator[Live]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    recorder = Recorder(origin=origin)
    app = create_app(recorder, realm_brands_bundle(origin))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield Live(origin, recorder)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def live(live_server: Live) -> Live:
    live_server.recorder.reset()
    return live_server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


# The recording server of the conformance checks (tests/client/conformance_server.py).
@pytest.fixture(scope="module")
def conformance() -> Iterator[ConformanceRecorder]:
    with serving(ConformanceRecorder()) as recorder:
        yield recorder


@pytest.fixture
def rec(conformance: ConformanceRecorder) -> ConformanceRecorder:
    conformance.reset()
    return conformance

"""A minimal in-test FHIR server for the AS's patient lookups: Patient read and search (with
``_count``/``_offset`` paging and ``total``), Encounter search by patient, and each server's
``.well-known/smart-configuration`` (``no_multi`` lists servers that omit
``auth-multi-aud-token``), on each realm server (chosen by port), with the CONTRACT's sample
ids and MRNs. It verifies the AS self-token like a real resource server would (signature,
typ, aud, scope), so the tests also check that the AS calls with a correct token."""

from __future__ import annotations

from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from smartrealm.core.urls import normalize_url
from smartrealm.oauth.keys import KeyRing
from smartrealm.realm.config import RealmConfig

MRN_SYSTEM = "https://smartrealm.example.org/sid/mrn"


def patient_id(server_id: str, n: int) -> str:
    if server_id == "ehr" or n <= 6:
        return f"p{n:04d}"
    return f"{'img' if server_id == 'imaging' else 'lab'}{n:04d}"


def patient(server_id: str, n: int, system: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": patient_id(server_id, n),
            "identifier": [{"system": system, "value": f"MRN{n:06d}"}],
            "name": [{"family": f"Family{n}", "given": [f"Given{n}"]}],
            "birthDate": "1970-01-01"}


class FhirStub:
    def __init__(self, realm: RealmConfig, keys: KeyRing, patients: int = 24,
                 missing: dict[str, set[int]] | None = None) -> None:
        self.realm = realm
        self.keys = keys
        self.count = patients
        self.missing = missing or {}
        self.calls: list[str] = []
        self.no_multi: set[str] = set()

    def _server(self, request: Request) -> str:
        base = f"{request.url.scheme}://{request.url.netloc}/fhir"
        rs = self.realm.server_by_url(base)
        assert rs is not None, base
        return rs.id

    def _authorized(self, request: Request, server_id: str,
                    scope: str = "system/Patient.rs") -> bool:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return False
        try:
            token = jwt.decode(auth[7:], self.keys.public_key_set())
        except JoseError:
            return False
        base = normalize_url(self.realm.server(server_id).base_url)
        claims = token.claims
        return (token.header.get("typ") == "at+jwt" and claims["scope"] == scope
                and [normalize_url(a) for a in claims["aud"]] == [base])

    def _patients(self, server_id: str) -> list[dict[str, Any]]:
        gone = self.missing.get(server_id, set())
        return [patient(server_id, n, self.realm.patient_identifier_system)
                for n in range(1, self.count + 1) if n not in gone]

    async def read(self, request: Request) -> JSONResponse:
        sid = self._server(request)
        self.calls.append(f"{sid} read {request.path_params['id']}")
        if not self._authorized(request, sid):
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=401)
        for p in self._patients(sid):
            if p["id"] == request.path_params["id"]:
                return JSONResponse(p)
        return JSONResponse({"resourceType": "OperationOutcome"}, status_code=404)

    async def search(self, request: Request) -> JSONResponse:
        sid = self._server(request)
        self.calls.append(f"{sid} search {request.url.query}")
        if not self._authorized(request, sid):
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=401)
        found = self._patients(sid)
        if "identifier" in request.query_params:
            system, _, value = request.query_params["identifier"].partition("|")
            found = [p for p in found if p["identifier"][0] == {"system": system,
                                                                 "value": value}]
        if "name" in request.query_params:
            name = request.query_params["name"].lower()
            found = [p for p in found if name in str(p["name"]).lower()]
        offset = int(request.query_params.get("_offset", "0"))
        count = int(request.query_params.get("_count", "20"))
        return JSONResponse({"resourceType": "Bundle", "type": "searchset", "total": len(found),
                             "entry": [{"resource": p} for p in found[offset:offset + count]]})

    async def encounters(self, request: Request) -> JSONResponse:
        """Two encounters per patient on the EHR: ``enc-<id>-1`` (2024) and ``-2`` (2025)."""
        sid = self._server(request)
        self.calls.append(f"{sid} encounters {request.url.query}")
        if not self._authorized(request, sid, "system/Encounter.rs"):
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=401)
        pid = request.query_params.get("patient", "")
        found = [] if sid != "ehr" else [
            {"resourceType": "Encounter", "id": f"enc-{pid}-{i}", "status": "finished",
             "class": {"code": "AMB", "display": "ambulatory"},
             "type": [{"text": f"Check-up {i}"}], "subject": {"reference": f"Patient/{pid}"},
             "period": {"start": f"202{3 + i}-03-0{i}T09:00:00Z"}} for i in (1, 2)]
        return JSONResponse({"resourceType": "Bundle", "type": "searchset", "total": len(found),
                             "entry": [{"resource": e} for e in found]})

    async def smart_configuration(self, request: Request) -> JSONResponse:
        sid = self._server(request)
        capabilities = ["launch-standalone"] + ([] if sid in self.no_multi
                                                 else ["auth-multi-aud-token"])
        return JSONResponse({"issuer": self.realm.auth_server.issuer,
                             "capabilities": capabilities})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/fhir/Patient", self.search),
                                 Route("/fhir/Patient/{id}", self.read),
                                 Route("/fhir/Encounter", self.encounters),
                                 Route("/fhir/.well-known/smart-configuration",
                                       self.smart_configuration)])

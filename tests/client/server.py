"""A small recording SMART/FHIR test server for the client tests.

One Starlette app plays the authorization server (``/as/...``), a brands publisher
(``/brands.json``) and several FHIR bases, each a path prefix with its own behaviour:

* ``/ehr/fhir``, ``/imaging/fhir``: the realm (same AS, ``auth-multi-aud-token``); imaging
  spells the AS URLs with upper-case host and trailing slash (must compare equal);
* ``/other/fhir``: names another AS;  ``/nomulti/fhir``: lacks ``auth-multi-aud-token``;
* ``/relative/fhir``: legacy relative endpoint URLs;  ``/legacy/fhir``: no well-known,
  only the ``/metadata`` oauth-uris extension;  ``/broken/fhir``: neither works;
* ``/nos256/fhir``: advertises only ``plain`` PKCE.

Every request is recorded (method, path, headers, raw body) in ``Recorder``; the token
endpoint answers whatever the test put into ``Recorder.token_response``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MULTI = "auth-multi-aud-token"
BRAND_ID = {"system": "urn:ietf:rfc:3986", "value": "https://hospital.example"}
BRANDS_ETAG = 'W/"brands-v1"'
PATIENT_ID = "p0012"
GOOD_TOKEN = "good-token"
EXPIRED_TOKEN = "expired-token"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    query: str

    @property
    def form(self) -> list[tuple[str, str]]:
        """The x-www-form-urlencoded body as ordered pairs (repeats kept)."""
        return parse_qsl(self.body.decode(), keep_blank_values=True, strict_parsing=True)


@dataclass
class Recorder:
    origin: str = ""
    requests: list[Recorded] = field(default_factory=list)
    token_response: tuple[int, dict[str, Any]] = (200, {})
    # Extra smart-configuration documents a test serves at ``/{name}/fhir``.
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def reset(self) -> None:
        self.requests.clear()
        self.token_response = (200, {})
        self.configs.clear()

    def last(self, path: str) -> Recorded:
        return [r for r in self.requests if r.path == path][-1]

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)


def smart_configuration(origin: str, name: str) -> dict[str, Any] | None:
    """The smart-configuration each test base serves (None → 404)."""
    doc: dict[str, Any] = {
        "issuer": f"{origin}/as",
        "jwks_uri": f"{origin}/as/jwks",
        "authorization_endpoint": f"{origin}/as/authorize",
        "token_endpoint": f"{origin}/as/token",
        "registration_endpoint": f"{origin}/as/register",
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "fhirUser", "launch/patient", "patient/*.rs"],
        "capabilities": [
            "launch-standalone",
            "client-public",
            "sso-openid-connect",
            MULTI,
            "context-style",
        ],
        "user_access_brand_bundle": f"{origin}/brands.json",
        "user_access_brand_identifier": BRAND_ID,
    }
    if name == "ehr":
        doc["associated_endpoints"] = [{"url": f"{origin}/imaging/fhir", "capabilities": [MULTI]}]
    elif name == "imaging":
        doc["authorization_endpoint"] = f"{origin.upper()}/as/authorize/"
        doc["token_endpoint"] = f"{origin.upper()}/as/token/"
        doc["associated_endpoints"] = [{"url": f"{origin}/ehr/fhir", "capabilities": [MULTI]}]
    elif name == "other":
        doc["authorization_endpoint"] = f"{origin}/other-as/authorize"
        doc["token_endpoint"] = f"{origin}/other-as/token"
    elif name == "nomulti":
        doc["capabilities"] = ["launch-standalone", "client-public"]
    elif name == "relative":
        doc.update(
            authorization_endpoint="authorize",
            token_endpoint="/as/token",
            registration_endpoint="../register",
            user_access_brand_bundle="brands",
        )
        doc["associated_endpoints"] = [{"url": "../imaging/fhir", "capabilities": [MULTI]}]
    elif name == "nos256":
        doc["code_challenge_methods_supported"] = ["plain"]
    elif name in ("legacy", "broken"):
        return None
    return doc


def capability_statement(origin: str) -> dict[str, Any]:
    oauth = [
        {"url": "authorize", "valueUri": f"{origin}/as/authorize"},
        {"url": "token", "valueUri": "/as/token"},
        {"url": "register", "valueUri": f"{origin}/as/register"},
    ]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "fhirVersion": "4.0.1",
        "rest": [
            {
                "mode": "server",
                "security": {
                    "service": [{"coding": [{"code": "SMART-on-FHIR"}]}],
                    "extension": [
                        {
                            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                            "extension": oauth,
                        }
                    ],
                },
            }
        ],
    }


def outcome(code: str, text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }


def fhir_json(body: dict[str, Any], status: int = 200, **headers: str) -> Response:
    return Response(json.dumps(body), status, headers=headers, media_type="application/fhir+json")


def create_app(recorder: Recorder, brands_bundle: dict[str, Any]) -> Starlette:
    async def record(request: Request) -> Recorded:
        entry = Recorded(
            request.method,
            request.url.path,
            dict(request.headers),
            await request.body(),
            request.url.query,
        )
        recorder.requests.append(entry)
        return entry

    async def well_known(request: Request) -> Response:
        await record(request)
        name = request.path_params["name"]
        if name == "broken":
            return Response("boom", 500)
        doc = recorder.configs.get(name) or smart_configuration(recorder.origin, name)
        return JSONResponse(doc) if doc else JSONResponse({"error": "not found"}, 404)

    async def metadata(request: Request) -> Response:
        await record(request)
        if request.path_params["name"] != "legacy":
            return fhir_json(outcome("not-found", "no metadata"), 404)
        return fhir_json(capability_statement(recorder.origin))

    async def brands(request: Request) -> Response:
        seen = await record(request)
        if seen.headers.get("if-none-match") == BRANDS_ETAG:
            return Response(status_code=304, headers={"ETag": BRANDS_ETAG})
        return JSONResponse(brands_bundle, headers={"ETag": BRANDS_ETAG})

    async def token(request: Request) -> Response:
        await record(request)
        status, body = recorder.token_response
        return JSONResponse(
            body, status, headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
        )

    async def register(request: Request) -> Response:
        seen = await record(request)
        metadata = json.loads(seen.body)
        if any("bad" in uri for uri in metadata["redirect_uris"]):
            return JSONResponse(
                {"error": "invalid_redirect_uri", "error_description": "not https"}, 400
            )
        return JSONResponse({"client_id": "client-123", **metadata}, 201)

    return Starlette(
        routes=[
            Route("/{name}/fhir/.well-known/smart-configuration", well_known),
            Route("/{name}/fhir/metadata", metadata),
            Route("/brands.json", brands),
            Route("/as/token", token, methods=["POST"]),
            Route("/as/register", register, methods=["POST"]),
            *fhir_routes(recorder, record),
        ]
    )


def fhir_routes(recorder: Recorder, record: Any) -> list[Route]:
    def base() -> str:
        return f"{recorder.origin}/ehr/fhir"

    def challenge(request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        if not auth:
            return fhir_json(
                outcome("login", "no token"),
                401,
                **{"WWW-Authenticate": f'Bearer realm="{base()}"'},
            )
        if auth != f"Bearer {GOOD_TOKEN}":
            header = (
                f'Bearer realm="{base()}", error="invalid_token", '
                'error_description="token \\"expired\\""'
            )
            return fhir_json(
                outcome("expired", "token expired"), 401, **{"WWW-Authenticate": header}
            )
        return None

    async def read(request: Request) -> Response:
        await record(request)
        refused = challenge(request)
        if refused is not None:
            return refused
        kind, rid = request.path_params["type"], request.path_params["id"]
        if kind == "Observation":
            header = (
                f'Bearer realm="{base()}", error="insufficient_scope", '
                'scope="patient/Observation.rs"'
            )
            return fhir_json(outcome("forbidden", "scope"), 403, **{"WWW-Authenticate": header})
        if kind == "Binary":
            return Response("not json", 200, media_type="text/plain")
        if kind == "Crash":
            return fhir_json(outcome("exception", "database down"), 500)
        if kind != "Patient" or rid != PATIENT_ID:
            return fhir_json(outcome("not-found", f"{kind}/{rid} not found"), 404)
        return fhir_json({"resourceType": "Patient", "id": rid})

    async def search(request: Request) -> Response:
        await record(request)
        refused = challenge(request)
        if refused is not None:
            return refused
        return fhir_json(
            search_page(
                base(), request.query_params.get("page", "1"), request.query_params.get("next", "")
            )
        )

    return [Route("/ehr/fhir/{type}", search), Route("/ehr/fhir/{type}/{id}", read)]


def search_page(base: str, page: str, next_kind: str) -> dict[str, Any]:
    """Page 1 and 2 of a Patient search. ``next`` picks where page 1's next link points."""
    targets = {
        "": f"{base}/Patient?page=2",
        "upper": base.replace("http://", "HTTP://", 1) + "/Patient?page=2",
        "foreign": "http://evil.example/fhir/Patient?page=2",
        "sibling": f"{base}-evil/Patient?page=2",
    }
    links = [{"relation": "self", "url": f"{base}/Patient?page={page}"}]
    if page == "1":
        links.append({"relation": "next", "url": targets[next_kind]})
    ids = ["p0001", "p0002"] if page == "1" else ["p0003"]
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [{"resource": {"resourceType": "Patient", "id": i}} for i in ids],
    }

"""A recording SMART authorization + FHIR server for the spec §12.5 client checks.

Real HTTP (uvicorn on loopback, see ``conformance`` fixture). It answers like a SMART server
and records every request the client sends, so the tests can assert exactly what a
conformant client sends (the checks of Inferno's ``smart_client_stu2_2`` suite).

* ``/{name}/fhir/.well-known/smart-configuration``: ``a`` and ``b`` share the AS ``/as``
  and advertise ``auth-multi-aud-token``; ``c`` names the AS ``/as2``; ``d`` uses ``/as``
  but lacks the capability.  ``/{name}/fhir/metadata``: a CapabilityStatement (``b`` serves
  no Observation).
* ``/as/authorize``, ``/as2/authorize`` (GET and POST): redirect to ``redirect_uri`` with a
  code and the state, or with ``Recorder.authorize_error``.
* ``/as/token``, ``/as2/token``: authorization_code, refresh_token (rotating), and
  client_credentials; answers ``Recorder.token_error`` when set.
* ``/{name}/fhir/Patient[/{id}]``: read, create, update, delete with Bearer tokens."""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

MULTI = "auth-multi-aud-token"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass
class Seen:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> list[tuple[str, str]]:
        return parse_qsl(self.body.decode(), keep_blank_values=True, strict_parsing=True)

    def values(self, name: str) -> list[str]:
        pairs = self.form if self.method == "POST" and self.body else self.query
        return [v for k, v in pairs if k == name]

    def one(self, name: str) -> str:
        found = self.values(name)
        assert len(found) == 1, (name, found)
        return found[0]


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    audiences: list[str]
    scope: str


@dataclass
class Recorder:
    origin: str = ""
    seen: list[Seen] = field(default_factory=list)
    codes: dict[str, Grant] = field(default_factory=dict)
    access: dict[str, list[str]] = field(default_factory=dict)  # token → audiences
    refresh: dict[str, Grant] = field(default_factory=dict)
    authorize_error: str | None = None
    token_error: tuple[int, str] | None = None

    def reset(self) -> None:
        self.seen.clear()
        self.codes.clear()
        self.access.clear()
        self.refresh.clear()
        self.authorize_error = None
        self.token_error = None

    def at(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    def base(self, name: str) -> str:
        return f"{self.origin}/{name}/fhir"


def smart_configuration(origin: str, name: str) -> dict[str, Any]:
    auth = f"{origin}/as2" if name == "c" else f"{origin}/as"
    capabilities = ["launch-standalone", "launch-ehr", "client-public", "authorize-post"]
    return {
        "issuer": auth,
        "authorization_endpoint": f"{auth}/authorize",
        "token_endpoint": f"{auth}/token",
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "fhirUser", "launch", "launch/patient",
                             "offline_access", "patient/*.rs", "patient/Patient.cruds"],
        "capabilities": capabilities if name == "d" else [*capabilities, MULTI],
    }


def capability_statement(name: str) -> dict[str, Any]:
    types = ["Patient"] if name == "b" else ["Patient", "Observation"]
    return {"resourceType": "CapabilityStatement", "status": "active", "kind": "instance",
            "fhirVersion": "4.0.1",
            "rest": [{"mode": "server", "resource": [{"type": t} for t in types]}]}


def create_app(rec: Recorder) -> Starlette:
    async def record(request: Request) -> Seen:
        seen = Seen(request.method, request.url.path,
                    parse_qsl(request.url.query, keep_blank_values=True),
                    dict(request.headers), await request.body())
        rec.seen.append(seen)
        return seen

    async def well_known(request: Request) -> Response:
        await record(request)
        return JSONResponse(smart_configuration(rec.origin, request.path_params["name"]))

    async def metadata(request: Request) -> Response:
        await record(request)
        return JSONResponse(capability_statement(request.path_params["name"]),
                            media_type="application/fhir+json")

    async def authorize(request: Request) -> Response:
        seen = await record(request)
        redirect, state = seen.one("redirect_uri"), seen.one("state")
        if rec.authorize_error:
            return RedirectResponse(
                f"{redirect}?{urlencode({'error': rec.authorize_error, 'state': state})}", 302)
        code = secrets.token_urlsafe(16)
        audiences = seen.values("resource") or seen.values("aud")
        rec.codes[code] = Grant(seen.one("client_id"), redirect, seen.one("code_challenge"),
                                audiences, seen.one("scope"))
        return RedirectResponse(f"{redirect}?{urlencode({'code': code, 'state': state})}", 302)

    async def token(request: Request) -> Response:
        seen = await record(request)
        if rec.token_error is not None:
            status, error = rec.token_error
            return JSONResponse({"error": error, "error_description": "refused"}, status,
                                headers=NO_STORE)
        grant_type = seen.one("grant_type")
        if grant_type == "authorization_code":
            grant = rec.codes.pop(seen.one("code"))
        elif grant_type == "refresh_token":
            grant = rec.refresh.pop(seen.one("refresh_token"))  # rotation: old one dies
        else:
            grant = Grant("", "", "", seen.values("resource"), seen.one("scope"))
        return JSONResponse(issue(rec, grant, refreshable=grant_type != "client_credentials"),
                            headers=NO_STORE)

    return Starlette(routes=[
        Route("/{name}/fhir/.well-known/smart-configuration", well_known),
        Route("/{name}/fhir/metadata", metadata),
        Route("/{auth:str}/authorize", authorize, methods=["GET", "POST"]),
        Route("/{auth:str}/token", token, methods=["POST"]),
        *fhir_routes(rec, record),
    ])


def issue(rec: Recorder, grant: Grant, *, refreshable: bool) -> dict[str, Any]:
    access = secrets.token_urlsafe(16)
    rec.access[access] = grant.audiences
    body: dict[str, Any] = {
        "access_token": access, "token_type": "Bearer", "expires_in": 300,
        "scope": grant.scope, "patient": "p1",
        "authorization_details": [
            {"type": "smart_on_fhir", "locations": [a], "scope": grant.scope,
             "patient": f"p1-{a.rsplit('/', 2)[-2]}"} for a in grant.audiences],
    }
    if refreshable:
        refresh = secrets.token_urlsafe(16)
        rec.refresh[refresh] = grant
        body["refresh_token"] = refresh
    return body


def fhir_routes(rec: Recorder, record: Any) -> list[Route]:
    def allowed(request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        base = rec.base(request.path_params["name"])
        return auth.startswith("Bearer ") and base in rec.access.get(auth[7:], [])

    def refuse() -> Response:
        return JSONResponse({"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "login", "diagnostics": "bad token"}]}, 401,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            media_type="application/fhir+json")

    async def instance(request: Request) -> Response:
        seen = await record(request)
        if not allowed(request):
            return refuse()
        rid = request.path_params["id"]
        if request.method == "DELETE":
            return Response(status_code=204)
        if request.method == "PUT":
            if seen.headers.get("if-match") not in (None, 'W/"1"'):
                return JSONResponse({"resourceType": "OperationOutcome", "issue": [
                    {"severity": "error", "code": "conflict"}]}, 412)
            body = {**json.loads(seen.body), "meta": {"versionId": "2"}}
            return JSONResponse(body, media_type="application/fhir+json")
        return JSONResponse({"resourceType": "Patient", "id": rid},
                            media_type="application/fhir+json")

    async def create(request: Request) -> Response:
        seen = await record(request)
        if not allowed(request):
            return refuse()
        body = {**json.loads(seen.body), "id": "new1", "meta": {"versionId": "1"}}
        return JSONResponse(body, 201, media_type="application/fhir+json")

    return [Route("/{name}/fhir/Patient/{id}", instance, methods=["GET", "PUT", "DELETE"]),
            Route("/{name}/fhir/Patient", create, methods=["POST"])]


@contextmanager
def serving(rec: Recorder) -> Iterator[Recorder]:
    """The recording app, served for real (``serve_app``)."""
    with serve_app(lambda origin: create_app(rec)) as origin:
        rec.origin = origin
        yield rec


@contextmanager
def serve_app(make_app: Callable[[str], ASGIApp]) -> Iterator[str]:
    """``make_app(origin)`` under uvicorn in a thread on a free loopback port (a real
    socket); yields the origin."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(make_app(origin), log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.01)
    try:
        yield origin
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

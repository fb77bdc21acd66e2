"""The FHIR server as an ASGI app (Starlette). Thin: authenticate, call a handler, render.

Discovery (``/metadata``, ``/.well-known/smart-configuration``) needs no token (spec §1.1,
§1.5); every other interaction does (§4.6)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from smartrealm.guard import (
    AccessContext,
    KeySetUnavailable,
    TokenChecker,
    TokenRejected,
    checker_for_server,
)
from smartrealm.realm.config import ConfigError, RealmConfig, ResourceServerConfig
from smartrealm.realm.sample_data import generate_realm_data
from smartrealm.realm.tls import client_verify
from smartrealm.storage import make_engine

from .capability import capability_statement, smart_configuration
from .errors import (
    FhirError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
)
from .fast_read import FastReads
from .handlers import FhirResponse, FhirService
from .link_reports import FromWorkerThread, HttpLinkReporter, LinkReporter
from .repository import ResourceRepository
from .rest import BaseSlash, read_body, rest_routes
from .search import form_params
from .settings import FhirSettings
from .sql import SqlResourceRepository

FHIR_JSON = "application/fhir+json"


class FhirIdConvertor(Convertor[str]):
    """A path segment that is a FHIR id (R4 datatypes.html#id)."""

    regex = r"[A-Za-z0-9\-.]{1,64}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


class FhirTypeConvertor(FhirIdConvertor):
    """A path segment that can be a resource type name (letters only)."""

    regex = r"[A-Za-z]{1,64}"


register_url_convertor("fhir_id", FhirIdConvertor())
register_url_convertor("fhir_type", FhirTypeConvertor())

# §1.1: discovery SHALL be readable from any origin.
_ANY_ORIGIN = {"Access-Control-Allow-Origin": "*"}


class FhirJSONResponse(JSONResponse):
    media_type = FHIR_JSON


def create_app(settings: FhirSettings, repository: ResourceRepository,
               validator: TokenChecker, links: LinkReporter | None = None) -> Starlette:
    """The FHIR API of one server, with routes relative to its base URL; ``links`` tells the
    realm's patient index of system-level changes to a Patient's link (link_reports.py)."""
    service = FhirService(settings, repository)
    capability = capability_statement(settings)
    smart = smart_configuration(settings)

    async def metadata(_request: Request) -> Response:
        return FhirJSONResponse(capability, headers=_ANY_ORIGIN)

    async def smart_config(_request: Request) -> Response:
        return JSONResponse(smart, headers=_ANY_ORIGIN)

    async def search(request: Request) -> Response:
        ctx = await authenticate(request, validator)
        params = list(request.query_params.multi_items())
        result = await run_in_threadpool(service.search, ctx,
                                         request.path_params["resource_type"], params,
                                         strict=prefers_strict(request))
        return render(result)

    async def search_post(request: Request) -> Response:
        # POST [type]/_search: the form body's parameters join the query string's.
        ctx = await authenticate(request, validator)
        params = [*request.query_params.multi_items(),
                  *form_params(request.headers.get("content-type"), await read_body(request))]
        result = await run_in_threadpool(service.search, ctx,
                                         request.path_params["resource_type"], params,
                                         strict=prefers_strict(request))
        return render(result)

    async def read_response(authorization: str | None, resource_type: str,
                            resource_id: str) -> Response:
        """One read, from the Authorization header to the response; shared by the routed
        read and the front for plain reads (fhir/fast_read.py)."""
        try:
            ctx = await authenticate_token(parse_bearer(authorization), validator)
            args = (ctx, resource_type, resource_id)
            if inline_reads:  # see below
                return render(service.read(*args))
            return render(await run_in_threadpool(service.read, *args))
        except FhirError as exc:
            return error_response(exc, settings.base_url)

    async def read(request: Request) -> Response:
        return await read_response(request.headers.get("authorization"),
                                   request.path_params["resource_type"],
                                   request.path_params["resource_id"])

    # A read by id on an embedded SQLite store is a primary-key lookup of tens of µs: less
    # than the hop to a worker thread costs (issue 4 throughput). A networked database
    # keeps the thread, so a slow round trip never stalls the event loop.
    inline_reads = bool(getattr(repository, "embedded", False))

    routes = [
        Route("/metadata", metadata, methods=["GET"]),
        Route("/.well-known/smart-configuration", smart_config, methods=["GET"]),
        # The commonest request early: a read of a letters-only type and a valid FHIR id
        # (no "_", so never _history/_search) cannot be meant for any route below; it then
        # skips matching a dozen patterns (issue 4 throughput). Any other path still reaches
        # the same read handler through the last route.
        Route("/{resource_type:fhir_type}/{resource_id:fhir_id}", read, methods=["GET"]),
        # vread, history, writes, batch/transaction (rest.py): before read and search.
        *rest_routes(settings, repository, service, lambda r: authenticate(r, validator),
                     links),
        Route("/{resource_type}", search, methods=["GET"]),
        Route("/{resource_type}/_search", search_post, methods=["POST"]),
        Route("/{resource_type}/{resource_id}", read, methods=["GET"]),
    ]
    app = Starlette(routes=routes, middleware=_middleware(),
                    exception_handlers=_exception_handlers(settings.base_url))
    app.state.read_response = read_response  # for FastReads (build_resource_server)
    return app


async def authenticate(request: Request, validator: TokenChecker) -> AccessContext:
    return await authenticate_token(bearer_token(request), validator)


async def authenticate_token(token: str | None, validator: TokenChecker) -> AccessContext:
    try:
        return await validator.validate(token)
    except TokenRejected as exc:
        raise Unauthorized(exc.reason, error=exc.error) from None
    except KeySetUnavailable:
        raise ServiceUnavailable("access tokens cannot be verified right now") from None


def bearer_token(request: Request) -> str | None:
    return parse_bearer(request.headers.get("authorization"))


def parse_bearer(header: str | None) -> str | None:
    """RFC 6750 §2.1: ``Authorization: Bearer <token>`` (scheme case-insensitive). Tokens
    in the query string (§2.3) are not accepted: they end up in logs."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header is not a Bearer token")
    return token.strip()


def prefers_strict(request: Request) -> bool:
    prefer = request.headers.get("prefer", "")
    return any(p.strip().replace(" ", "") == "handling=strict"
               for p in prefer.replace(";", ",").split(","))


class EncodedFhirResponse(Response):
    """A body the store already holds as the compact JSON JSONResponse would render; the
    raw headers are built directly (Response.init_headers' general case shows in the read
    benchmark, issue 4)."""

    def __init__(self, body: bytes, status_code: int, headers: dict[str, str]) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body
        self.raw_headers = [(name.lower().encode("latin-1"), value.encode("latin-1"))
                            for name, value in headers.items()]
        self.raw_headers += [(b"content-length", str(len(body)).encode("latin-1")),
                             (b"content-type", _FHIR_JSON_BYTES)]


_FHIR_JSON_BYTES = FHIR_JSON.encode("latin-1")


def render(result: FhirResponse) -> Response:
    if result.text is not None:
        return EncodedFhirResponse(result.text.encode(), result.status, result.headers)
    return FhirJSONResponse(result.body, status_code=result.status, headers=result.headers)


def _middleware() -> list[Middleware]:
    # Browser apps call the API with a bearer header, never cookies: any origin is fine.
    return [Middleware(CORSMiddleware, allow_origins=["*"],
                       allow_methods=["GET", "HEAD", "POST", "PUT", "DELETE"],
                       allow_headers=["Authorization", "Accept", "Content-Type", "Prefer",
                                      "If-Match", "If-None-Exist"],
                       expose_headers=["ETag", "Last-Modified", "Location",
                                       "WWW-Authenticate"])]


def error_response(exc: Exception, base_url: str) -> Response:
    """The OperationOutcome answer for ``exc``; anything but a FhirError is a 500."""
    error = exc if isinstance(exc, FhirError) else InternalError("internal server error")
    return FhirJSONResponse(error.outcome(), status_code=error.status,
                            headers=error.headers(base_url))


def _exception_handlers(base_url: str) -> dict[Any, Any]:
    def fhir_error(_request: Request, exc: Exception) -> Response:
        return error_response(exc, base_url)

    def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 405:
            return fhir_error(request, MethodNotAllowed(f"{request.method} is not supported "
                                                        f"on {request.url.path}"))
        if status == 404:
            return fhir_error(request, NotFound(f"no such endpoint: {request.url.path}"))
        return fhir_error(request, exc)

    return {FhirError: fhir_error, HTTPException: http_error, Exception: fhir_error}


# --------------------------------------------------------------------------- assembly


def build_resource_server(realm: RealmConfig, server_id: str,
                          http: httpx.AsyncClient | None = None) -> Starlette:
    """A complete resource server for realm server ``server_id``: its SQL store (created
    and, on first start with ``realm.sample_data``, seeded), token validation against the
    realm's AS, and the FHIR app mounted at the path of its base URL."""
    index, rs = _server(realm, server_id)
    if rs.mode == "proxy":  # a guard in front of an existing server (fhir/proxy/)
        from .proxy import build_proxy_server

        return build_proxy_server(realm, server_id, http)
    if rs.mode != "server":
        raise ConfigError(f"resource_servers[{index}].mode",
                          f"mode {rs.mode!r} is not supported; use \"server\" or \"proxy\"")
    engine = make_engine(realm.database_url_for(server_id))
    repository = SqlResourceRepository(engine)
    repository.create_tables()
    # Seed only a store that never held anything: state persists across restarts.
    if realm.sample_data and repository.is_empty():
        repository.bulk_load(generate_realm_data(realm).get(server_id, []))
    # Outgoing (the AS's JWKS, introspection, link reports) trusts the realm's CA too.
    client = http or httpx.AsyncClient(timeout=10.0, verify=client_verify(realm.tls))
    # token_check: "jwt" (signature) or "introspection" (asks the AS; sees revocations).
    validator = checker_for_server(realm, server_id, client)
    links = FromWorkerThread(HttpLinkReporter.for_server(realm, server_id, client))
    fhir = create_app(FhirSettings(realm, server_id), repository, validator, links)

    async def close() -> None:
        if http is None:
            await client.aclose()
        engine.dispose()

    path = urlsplit(rs.base_url).path.rstrip("/")
    return mount_at_base(rs.base_url, fhir, close, front=[
        Middleware(FastReads, base_path=path, respond=fhir.state.read_response)])


def mount_at_base(base_url: str, app: Starlette, close: Callable[[], Awaitable[None]], *,
                  front: Sequence[Middleware] = ()) -> Starlette:
    """``app`` mounted at the path of ``base_url``, with ``close`` run at shutdown; the
    built-in server and the proxy (fhir/proxy/) are served the same way."""

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await close()

    path = urlsplit(base_url).path.rstrip("/")
    middleware = [*front, Middleware(BaseSlash, base_path=path)]  # POST [base]
    return Starlette(routes=[Mount(path, app=app)], lifespan=lifespan, middleware=middleware,
                     exception_handlers=_exception_handlers(base_url))


def _server(realm: RealmConfig, server_id: str) -> tuple[int, ResourceServerConfig]:
    for index, rs in enumerate(realm.resource_servers):
        if rs.id == server_id:
            return index, rs
    raise ConfigError("resource_servers", f"no resource server has id {server_id!r}")

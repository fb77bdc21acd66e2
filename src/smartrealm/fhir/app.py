"""The FHIR server as an ASGI app (Starlette). Thin: authenticate, call a handler, render.

Discovery (``/metadata``, ``/.well-known/smart-configuration``) needs no token (spec §1.1,
§1.5); every other interaction does (§4.6)."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from smartrealm.fhir.errors import (
    FhirError,
)
from smartrealm.fhir.http.base import (
    FhirJSONResponse,
    authenticate,
    authenticate_token,
    error_response,
    exception_handlers,
    middleware,
    mount_at_base,
    parse_bearer,
    prefers_strict,
    read_body,
    render,
)
from smartrealm.fhir.http.capability import capability_statement, smart_configuration
from smartrealm.fhir.http.fast_read import FastReads
from smartrealm.fhir.http.metering import CountedChecker, FhirMeter
from smartrealm.fhir.link_reports import FromWorkerThread, HttpLinkReporter, LinkReporter
from smartrealm.fhir.repository import ResourceRepository
from smartrealm.fhir.rest.handlers import FhirService
from smartrealm.fhir.rest.routes import rest_routes
from smartrealm.fhir.search.parse import form_params
from smartrealm.fhir.settings import FhirSettings
from smartrealm.fhir.sql import SqlResourceRepository
from smartrealm.guard import (
    TokenChecker,
    checker_for_server,
)
from smartrealm.realm.config import ConfigError, RealmConfig, ResourceServerConfig
from smartrealm.realm.sample_data import generate_realm_data
from smartrealm.realm.tls import client_verify
from smartrealm.storage import OUTAGES, database_check, make_engine
from smartrealm.storage.rs_credentials import resource_server_secret
from smartrealm.storage.schema import FHIR_SCHEMA, require_current

# §1.1: discovery SHALL be readable from any origin.
_ANY_ORIGIN = {"Access-Control-Allow-Origin": "*"}


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
        read and the front for plain reads (fhir/http/fast_read.py)."""
        try:
            ctx = await authenticate_token(parse_bearer(authorization), validator)
            args = (ctx, resource_type, resource_id)
            if inline_reads:  # see below
                return render(service.read(*args))
            return render(await run_in_threadpool(service.read, *args))
        except FhirError as exc:
            return error_response(exc, settings.base_url)
        except OUTAGES as exc:  # the read front has no exception middleware
            return error_response(exc, settings.base_url)

    async def read(request: Request) -> Response:
        return await read_response(request.headers.get("authorization"),
                                   request.path_params["resource_type"],
                                   request.path_params["resource_id"])

    # A read by id on an embedded SQLite store is a primary-key lookup of tens of µs: less
    # than the hop to a worker thread costs (bench/throughput.py). A networked database
    # keeps the thread, so a slow round trip never stalls the event loop.
    inline_reads = bool(getattr(repository, "embedded", False))

    routes = [
        Route("/metadata", metadata, methods=["GET"]),
        Route("/.well-known/smart-configuration", smart_config, methods=["GET"]),
        # The commonest request early: a read of a letters-only type and a valid FHIR id
        # (no "_", so never _history/_search) cannot be meant for any route below; it then
        # skips matching a dozen patterns (bench/throughput.py). Any other path still reaches
        # the same read handler through the last route.
        Route("/{resource_type:fhir_type}/{resource_id:fhir_id}", read, methods=["GET"]),
        # vread, history, writes, batch/transaction (rest/routes.py): before read and search.
        *rest_routes(settings, repository, service, lambda r: authenticate(r, validator),
                     links),
        Route("/{resource_type}", search, methods=["GET"]),
        Route("/{resource_type}/_search", search_post, methods=["POST"]),
        Route("/{resource_type}/{resource_id}", read, methods=["GET"]),
    ]
    app = Starlette(routes=routes, middleware=middleware(),
                    exception_handlers=exception_handlers(settings.base_url))
    app.state.read_response = read_response  # for FastReads (build_resource_server)
    return app


# --------------------------------------------------------------------------- assembly


def build_resource_server(realm: RealmConfig, server_id: str,
                          http: httpx.AsyncClient | None = None) -> Starlette:
    """A complete resource server for realm server ``server_id``: its SQL store (created
    and, on first start with ``realm.sample_data``, seeded), token validation against the
    realm's AS, and the FHIR app mounted at the path of its base URL."""
    index, rs = _server(realm, server_id)
    if rs.mode == "proxy":  # a guard in front of an existing server (fhir/proxy/)
        from smartrealm.fhir.proxy import build_proxy_server

        return build_proxy_server(realm, server_id, http)
    if rs.mode != "server":
        raise ConfigError(f"resource_servers[{index}].mode",
                          f"mode {rs.mode!r} is not supported; use \"server\" or \"proxy\"")
    engine = make_engine(realm.database_url_for(server_id))
    require_current(engine, FHIR_SCHEMA, server_id)  # storage/schema.py
    repository = SqlResourceRepository(engine)
    repository.create_tables()
    # Seed only a store that never held anything: state persists across restarts.
    if realm.sample_data and repository.is_empty():
        repository.bulk_load(generate_realm_data(realm).get(server_id, []))
    # Outgoing (the AS's JWKS, introspection, link reports) trusts the realm's CA too.
    client = http or httpx.AsyncClient(timeout=10.0, verify=client_verify(realm.tls))
    # token_check: "jwt" (signature) or "introspection" (asks the AS; sees revocations).
    validator = CountedChecker(checker_for_server(
        realm, server_id, client, secret=lambda: resource_server_secret(realm, server_id)),
        server_id)
    links = FromWorkerThread(HttpLinkReporter.for_server(realm, server_id, client))
    fhir = create_app(FhirSettings(realm, server_id), repository, validator, links)

    async def close() -> None:
        if http is None:
            await client.aclose()
        engine.dispose()

    path = urlsplit(rs.base_url).path.rstrip("/")
    app = mount_at_base(rs.base_url, fhir, close, front=[
        Middleware(FhirMeter, server_id=server_id, base_path=path,
                   types=FhirSettings(realm, server_id).resource_types),
        Middleware(FastReads, base_path=path, respond=fhir.state.read_response)])
    app.state.ready_checks = {"database": database_check(engine)}
    return app


def _server(realm: RealmConfig, server_id: str) -> tuple[int, ResourceServerConfig]:
    for index, rs in enumerate(realm.resource_servers):
        if rs.id == server_id:
            return index, rs
    raise ConfigError("resource_servers", f"no resource server has id {server_id!r}")

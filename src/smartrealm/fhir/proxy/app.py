"""A realm server in proxy mode (docs/behaviour.md "Proxy mode"): the guard of the
built-in server in front of an existing FHIR server. Tokens are validated by the same
TokenChecker (guard/), the same SMART rules are enforced (fhir/access.py), allowed requests
go to the upstream with the proxy's own credentials (upstream.py), and what the proxy
cannot enforce is refused (screen.py). Discovery is answered locally, from the realm
configuration."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from smartrealm.fhir.errors import MethodNotAllowed, NotFound
from smartrealm.fhir.http.base import (
    FhirJSONResponse,
    authenticate,
    exception_handlers,
    middleware,
    mount_at_base,
    read_body,
    render,
)
from smartrealm.fhir.http.capability import capability_statement, smart_configuration
from smartrealm.fhir.http.metering import CountedChecker, FhirMeter
from smartrealm.fhir.http.reply import FhirResponse
from smartrealm.fhir.proxy.reads import ProxyReads
from smartrealm.fhir.proxy.rules import ScopeJudge
from smartrealm.fhir.proxy.screen import is_operation, refuse
from smartrealm.fhir.proxy.upstream import (
    NoCredentials,
    RealmSelfToken,
    Upstream,
    UpstreamCredentials,
)
from smartrealm.fhir.proxy.writes import ProxyWrites
from smartrealm.fhir.search.parse import form_params
from smartrealm.fhir.settings import FhirSettings
from smartrealm.fhir.validation import check_media_type
from smartrealm.guard import AccessContext, TokenChecker, checker_for_server
from smartrealm.oauth.keys import KeyStore
from smartrealm.realm.config import RealmConfig
from smartrealm.realm.tls import client_verify
from smartrealm.storage.key_store import key_store_for
from smartrealm.storage.rs_credentials import resource_server_secret

_ANY_ORIGIN = {"Access-Control-Allow-Origin": "*"}
Handler = Callable[[Request, AccessContext], Awaitable[FhirResponse]]


def create_proxy_app(settings: FhirSettings, upstream: Upstream,
                     validator: TokenChecker) -> Starlette:
    """The FHIR API of one proxy-mode server, with routes relative to its base URL."""
    reads = ProxyReads(settings, upstream, ScopeJudge())
    writes = ProxyWrites(reads)
    capability = proxy_capability(settings)
    smart = smart_configuration(settings)

    async def metadata(_request: Request) -> Response:
        return FhirJSONResponse(capability, headers=_ANY_ORIGIN)

    async def smart_config(_request: Request) -> Response:
        return JSONResponse(smart, headers=_ANY_ORIGIN)

    def guarded(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            ctx = await authenticate(request, validator)   # 401 before anything else
            if is_operation(request.url.path):
                raise refuse("an operation ($...)")
            if request.headers.get("if-none-exist") is not None:
                raise refuse("a conditional create (If-None-Exist)")
            return render(await handler(request, ctx))
        return endpoint

    routes = [
        Route("/metadata", metadata, methods=["GET"]),
        Route("/.well-known/smart-configuration", smart_config, methods=["GET"]),
        *[Route(path, guarded(handler), methods=[method])
          for path, method, handler in _table(reads, writes)],
    ]
    return Starlette(routes=routes, middleware=middleware(),
                     exception_handlers=exception_handlers(settings.base_url))


def _table(reads: ProxyReads, writes: ProxyWrites) -> list[tuple[str, str, Handler]]:
    def params(request: Request) -> list[tuple[str, str]]:
        return list(request.query_params.multi_items())

    def path(request: Request, name: str) -> str:
        return str(request.path_params[name])

    async def refused(request: Request, _ctx: AccessContext) -> FhirResponse:
        what = {"POST": "a batch or transaction Bundle"}.get(request.method)
        raise refuse(what or f"{request.method} {request.url.path}")

    async def search_post(request: Request, ctx: AccessContext) -> FhirResponse:
        # A form body (415 for any other type, fhir/search/parse.py form_params).
        body = form_params(request.headers.get("content-type"), await read_body(request))
        return await reads.search(ctx, path(request, "type"), [*params(request), *body],
                                  request.headers.get("prefer"))

    async def body(request: Request) -> bytes:
        check_media_type(request.headers.get("content-type"))
        return await read_body(request)

    async def unknown(request: Request, _ctx: AccessContext) -> FhirResponse:
        # Operations ($...) on any path were refused by ``guarded`` already.
        if request.method == "GET":
            raise NotFound(f"no such endpoint: {request.url.path}")
        raise MethodNotAllowed(f"{request.method} is not supported on {request.url.path}")

    return [
        ("/", "POST", refused), ("/", "GET", refused), ("/_history", "GET", refused),
        ("/{type}/_history", "GET", lambda r, c: reads.type_history(
            c, path(r, "type"), params(r))),
        ("/{type}/{id}/_history", "GET", lambda r, c: reads.instance_history(
            c, path(r, "type"), path(r, "id"), params(r))),
        ("/{type}/{id}/_history/{vid}", "GET", lambda r, c: reads.read(
            c, path(r, "type"), path(r, "id"), path(r, "vid"))),
        ("/{type}", "GET", lambda r, c: reads.search(
            c, path(r, "type"), params(r), r.headers.get("prefer"))),
        ("/{type}/_search", "POST", search_post),
        ("/{type}", "POST", lambda r, c: _create(writes, r, c, body)),
        ("/{type}/{id}", "GET", lambda r, c: reads.read(c, path(r, "type"), path(r, "id"))),
        ("/{type}/{id}", "PUT", lambda r, c: _update(writes, r, c, body)),
        ("/{type}/{id}", "DELETE", lambda r, c: writes.delete(
            c, path(r, "type"), path(r, "id"), r.headers.get("if-match"))),
        # A compartment search (Patient/x/Observation) is refused, anything else unknown.
        ("/{type}/{id}/{compartment}", "GET", refused),
        *[("/{rest:path}", method, unknown) for method in ("GET", "POST", "PUT", "DELETE")],
    ]


async def _create(writes: ProxyWrites, request: Request, ctx: AccessContext,
                  body: Callable[[Request], Awaitable[bytes]]) -> FhirResponse:
    # Conditional create/update (POST [type]?…) is not supported here either (400).
    if request.url.query:
        raise refuse("a conditional create ([type]?...)")
    return await writes.create(ctx, str(request.path_params["type"]), await body(request),
                               request.headers.get("prefer"))


async def _update(writes: ProxyWrites, request: Request, ctx: AccessContext,
                  body: Callable[[Request], Awaitable[bytes]]) -> FhirResponse:
    path = request.path_params
    return await writes.update(ctx, str(path["type"]), str(path["id"]), await body(request),
                               request.headers.get("if-match"), request.headers.get("prefer"))


def proxy_capability(settings: FhirSettings) -> dict[str, Any]:
    """The built-in server's CapabilityStatement for this profile, minus what the proxy
    refuses: system interactions (batch, transaction, system history), includes and
    conditional create."""
    statement = capability_statement(settings)
    statement["software"] = {"name": "smartrealm (proxy mode)"}
    rest = statement["rest"][0]
    rest["interaction"] = []
    for resource in rest["resource"]:
        resource.pop("searchInclude", None)
        resource.pop("searchRevInclude", None)
        if "conditionalCreate" in resource:  # If-None-Exist is refused (screen.py)
            resource["conditionalCreate"] = False
    return statement


# --------------------------------------------------------------------------- assembly


def upstream_credentials(realm: RealmConfig, server_id: str) -> UpstreamCredentials:
    server = realm.server(server_id)
    if server.upstream_auth == "none":
        return NoCredentials()
    return RealmSelfToken(_key_store(realm), realm.auth_server.issuer,
                          server.upstream.rstrip("/"), server.fhir_version)


def _key_store(realm: RealmConfig) -> KeyStore:
    """The AS's key store, read-only: only the AS creates tables and keys (authz/app.py
    ``key_store``), so a proxy starting at the same moment never races it."""
    return key_store_for(realm, create=False)


def build_proxy_server(realm: RealmConfig, server_id: str,
                       http: httpx.AsyncClient | None = None, *,
                       upstream_http: httpx.AsyncClient | None = None,
                       credentials: UpstreamCredentials | None = None) -> Starlette:
    """A complete proxy-mode server for realm server ``server_id``, mounted at the path of
    its base URL. ``http`` reaches the AS (JWKS, introspection), ``upstream_http`` the
    upstream (both default to one client of the proxy's own; tests pass in-process ones)."""
    server = realm.server(server_id)
    client = http or httpx.AsyncClient(timeout=30.0, verify=client_verify(realm.tls))
    validator = CountedChecker(checker_for_server(
        realm, server_id, client, secret=lambda: resource_server_secret(realm, server_id)),
        server_id)
    upstream = Upstream(server.upstream, upstream_http or client,
                        credentials or upstream_credentials(realm, server_id))
    settings = FhirSettings(realm, server_id)
    proxy = create_proxy_app(settings, upstream, validator)

    async def close() -> None:
        if http is None:
            await client.aclose()

    meter = Middleware(FhirMeter, server_id=server_id, base_path=urlsplit(server.base_url).path,
                       types=settings.resource_types)
    return mount_at_base(server.base_url, proxy, close, front=[meter])

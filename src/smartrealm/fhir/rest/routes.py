"""The REST routes beyond read and search (R4 http.html): vread, history (instance, type,
system), create, update, delete and batch/transaction at the base. Thin, like app.py:
authenticate, read the body, call a service in a worker thread, render.

Order of checks for a write: token (401), then the media type (415), then the type is
served (404) and the server writable (405), then scopes (403), then the body is parsed (400)
and validated (400/422) — a refused request is refused whatever it carries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from smartrealm.core.prefer import prefers_strict_handling
from smartrealm.fhir.errors import BadRequest
from smartrealm.fhir.http.base import read_body, render
from smartrealm.fhir.http.reply import FhirResponse
from smartrealm.fhir.link_reports import LinkReporter
from smartrealm.fhir.repository import ResourceRepository
from smartrealm.fhir.rest.bundles import BundleService
from smartrealm.fhir.rest.handlers import FhirService
from smartrealm.fhir.rest.history import HistoryService, parse_history_params
from smartrealm.fhir.rest.writes import WriteService
from smartrealm.fhir.settings import FhirSettings
from smartrealm.fhir.validation import check_media_type
from smartrealm.fhir.versioning import parse_if_match
from smartrealm.guard import AccessContext

Authenticate = Callable[[Request], Awaitable[AccessContext]]


def rest_routes(settings: FhirSettings, repository: ResourceRepository, reads: FhirService,
                authenticate: Authenticate, links: LinkReporter | None = None
                ) -> list[BaseRoute]:
    """The routes, to be listed BEFORE read and search (``_history`` is not a type);
    ``links`` receives the link changes of committed system-level writes (linking.py)."""
    writes = WriteService(settings, repository, links)
    history = HistoryService(settings, repository)
    bundles = BundleService(reads, writes, history)

    async def call(action: Callable[..., FhirResponse], *args: Any, **kwargs: Any) -> Response:
        return render(await run_in_threadpool(action, *args, **kwargs))

    async def body_of(request: Request) -> bytes:
        check_media_type(request.headers.get("content-type"))
        return await read_body(request)

    async def system_history(request: Request) -> Response:
        ctx = await authenticate(request)
        params = parse_history_params(list(request.query_params.multi_items()),
                                      strict=prefers_strict_handling(request.headers.get("prefer")))
        return await call(history.system, ctx, params)

    async def type_history(request: Request) -> Response:
        ctx = await authenticate(request)
        params = parse_history_params(list(request.query_params.multi_items()),
                                      strict=prefers_strict_handling(request.headers.get("prefer")))
        return await call(history.type_history, ctx,
                          request.path_params["resource_type"], params)

    async def instance_history(request: Request) -> Response:
        ctx = await authenticate(request)
        params = parse_history_params(list(request.query_params.multi_items()),
                                      strict=prefers_strict_handling(request.headers.get("prefer")))
        path = request.path_params
        return await call(history.instance, ctx, path["resource_type"],
                          path["resource_id"], params)

    async def vread(request: Request) -> Response:
        ctx = await authenticate(request)
        path = request.path_params
        return await call(history.vread, ctx, path["resource_type"],
                          path["resource_id"], path["version_id"])

    async def create(request: Request) -> Response:
        ctx = await authenticate(request)
        _no_criteria_in_url(request)
        body = await body_of(request)
        return await call(writes.create, ctx, request.path_params["resource_type"],
                          body, request.headers.get("prefer"),
                          request.headers.get("if-none-exist"))

    async def update(request: Request) -> Response:
        ctx = await authenticate(request)
        if_match = parse_if_match(request.headers.get("if-match"))
        body = await body_of(request)
        path = request.path_params
        return await call(writes.update, ctx, path["resource_type"],
                          path["resource_id"], body, if_match=if_match,
                          prefer=request.headers.get("prefer"))

    async def delete(request: Request) -> Response:
        ctx = await authenticate(request)
        path = request.path_params
        return await call(writes.delete, ctx, path["resource_type"],
                          path["resource_id"],
                          if_match=parse_if_match(request.headers.get("if-match")),
                          prefer=request.headers.get("prefer"))

    async def bundle(request: Request) -> Response:
        ctx = await authenticate(request)
        body = await body_of(request)
        return await call(bundles.process, ctx, body, request.headers.get("prefer"))

    return [
        Route("/", bundle, methods=["POST"]),
        Route("/_history", system_history, methods=["GET"]),
        Route("/{resource_type}/_history", type_history, methods=["GET"]),
        Route("/{resource_type}/{resource_id}/_history", instance_history, methods=["GET"]),
        Route("/{resource_type}/{resource_id}/_history/{version_id}", vread, methods=["GET"]),
        Route("/{resource_type}", create, methods=["POST"]),
        Route("/{resource_type}/{resource_id}", update, methods=["PUT"]),
        Route("/{resource_type}/{resource_id}", delete, methods=["DELETE"]),
    ]


def _no_criteria_in_url(request: Request) -> None:
    """R4 puts a conditional create's criteria in ``If-None-Exist`` (http.html#ccreate);
    criteria in the URL of a ``POST [type]`` would be ignored, so they are refused."""
    names = {name for name, _ in request.query_params.multi_items()}
    if names - {"_format", "_pretty"}:
        raise BadRequest("POST [type] takes no search parameters; a conditional create "
                         "sends its criteria in the If-None-Exist header")

"""What the built-in FHIR server and the proxy (fhir/proxy/) share over HTTP: the FHIR JSON
responses, bearer-token authentication, the OperationOutcome error handlers, CORS, the path
convertors of the REST routes and the mount at the base URL's path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from smartrealm.core.defaults import FHIR_MAX_BODY as MAX_BODY
from smartrealm.core.fhir_ids import ID_PATTERN
from smartrealm.core.media_types import FHIR_JSON
from smartrealm.core.prefer import prefers_strict_handling
from smartrealm.fhir.errors import (
    FhirError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
)
from smartrealm.fhir.http.reply import FhirResponse
from smartrealm.guard import AccessContext, KeySetUnavailable, TokenChecker, TokenRejected
from smartrealm.storage import OUTAGES


class FhirIdConvertor(Convertor[str]):
    """A path segment that is a FHIR id (R4 datatypes.html#id)."""

    regex = ID_PATTERN

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


class FhirTypeConvertor(FhirIdConvertor):
    """A path segment that may name a resource type: any letters, on purpose wider than
    ``core.fhir_ids.TYPE_PATTERN``, so that a lower-case or unknown name reaches the handler
    and is answered with its OperationOutcome instead of a bare routing 404."""

    regex = r"[A-Za-z]{1,64}"


register_url_convertor("fhir_id", FhirIdConvertor())
register_url_convertor("fhir_type", FhirTypeConvertor())

class FhirJSONResponse(JSONResponse):
    media_type = FHIR_JSON


async def authenticate(request: Request, validator: TokenChecker) -> AccessContext:
    ctx = await authenticate_token(bearer_token(request), validator)
    request.state.client_id = ctx.client_id  # for the request log (serving/observe.py)
    return ctx


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
    return prefers_strict_handling(request.headers.get("prefer"))


class EncodedFhirResponse(Response):
    """A body the store already holds as the compact JSON JSONResponse would render; the
    raw headers are built directly (Response.init_headers' general case shows in the read
    benchmark, bench/throughput.py)."""

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
    """The one renderer of a FhirResponse: no body (204, ``return=minimal``), the stored
    resource's own encoding, or FHIR JSON."""
    if result.payload is None:
        return Response(status_code=result.status, headers=result.headers)
    if result.text is not None:
        return EncodedFhirResponse(result.text.encode(), result.status, result.headers)
    return FhirJSONResponse(result.body, status_code=result.status, headers=result.headers)


def middleware() -> list[Middleware]:
    # Browser apps call the API with a bearer header, never cookies: any origin is fine.
    return [Middleware(CORSMiddleware, allow_origins=["*"],
                       allow_methods=["GET", "HEAD", "POST", "PUT", "DELETE"],
                       allow_headers=["Authorization", "Accept", "Content-Type", "Prefer",
                                      "If-Match", "If-None-Exist"],
                       expose_headers=["ETag", "Last-Modified", "Location",
                                       "WWW-Authenticate"])]


def error_response(exc: Exception, base_url: str) -> Response:
    """The OperationOutcome answer for ``exc``: a database outage is a 503 with Retry-After
    (storage.OUTAGES); anything else but a FhirError is a 500."""
    error = (exc if isinstance(exc, FhirError)
             else ServiceUnavailable("the server's database is unavailable; retry shortly")
             if isinstance(exc, OUTAGES) else InternalError("internal server error"))
    return FhirJSONResponse(error.outcome(), status_code=error.status,
                            headers=error.headers(base_url))


def exception_handlers(base_url: str) -> dict[Any, Any]:
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

    # Outages get their own entries so the exception middleware answers them (a 503)
    # rather than the server-error middleware (which would also log them as crashes).
    outages = dict.fromkeys(OUTAGES, fhir_error)
    return {FhirError: fhir_error, HTTPException: http_error, **outages, Exception: fhir_error}


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
                     exception_handlers=exception_handlers(base_url))


class BaseSlash:
    """ASGI middleware: ``POST [base]`` (no trailing slash) reaches the base route instead
    of being redirected (a client does not re-POST a body after a 307)."""

    def __init__(self, app: ASGIApp, base_path: str) -> None:
        self.app = app
        self.base_path = base_path.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.base_path and scope["path"] == self.base_path:
            scope = {**scope, "path": self.base_path + "/",
                     "raw_path": (self.base_path + "/").encode()}
        await self.app(scope, receive, send)


async def read_body(request: Request) -> bytes:
    """The request body, refused (413) as soon as it exceeds MAX_BODY."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise PayloadTooLarge(f"the body exceeds {MAX_BODY} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise PayloadTooLarge(f"the body exceeds {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)

"""Small HTTP helpers shared by the AS views: parameter parsing, OAuth JSON errors and HTML
pages with anti-framing headers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from smartrealm.core.defaults import AS_MAX_FORM_BODY as MAX_BODY
from smartrealm.oauth.errors import NO_STORE, InvalidRequest, OAuthError
from smartrealm.serving.metrics import OAUTH_ERRORS

Params = dict[str, list[str]]
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
# Login, picker and consent pages must never be framed (clickjacking) nor cached.
PAGE_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def multi(pairs: list[tuple[str, str]]) -> Params:
    params: Params = {}
    for name, value in pairs:
        params.setdefault(name, []).append(value)
    return params


async def form_params(request: Request) -> Params:
    """An ``application/x-www-form-urlencoded`` body as a multi-dict (RFC 6749 §4.1.3).
    Parsed by hand so that repeated names (``resource``) and size limits are explicit."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM:
        raise InvalidRequest(f"the body must be {FORM}")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise InvalidRequest("request body too large")
    try:
        return multi(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("malformed form body") from None


def is_json_media_type(content_type: str | None) -> bool:
    """``application/json`` (RFC 8259 §11), any case, with parameters; a ``charset`` must
    be UTF-8 (the only encoding JSON exchanged between systems may use, RFC 8259 §8.1)."""
    media_type, *params = (content_type or "").split(";")
    if media_type.strip().lower() != JSON:
        return False
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
                "utf-8", "utf8"):
            return False
    return True


async def json_body(request: Request, malformed: type[OAuthError] = InvalidRequest) -> object:
    """The parsed body of a request that must be ``application/json`` (invalid_request
    otherwise; a body too large or not JSON raises ``malformed``). Any other type is refused
    before the body is read: a ``text/plain`` POST is a CORS "simple request" that any web
    page can send blind (Fetch §3.2.3), which an ``application/json`` POST never is."""
    if not is_json_media_type(request.headers.get("content-type")):
        raise InvalidRequest(f"the body must be {JSON}")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise malformed("the request body is too large")
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):  # absurd nesting too
        raise malformed("the body must be a JSON object") from None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header (RFC 6750 §2.1); None without the
    header. Another scheme or an empty token is malformed: invalid_request (§3.1)."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidRequest("the Authorization header must be a Bearer token")
    return token.strip()


def query_params(request: Request) -> Params:
    return multi(list(request.query_params.multi_items()))


def oauth_error(error: OAuthError, *, endpoint: str, basic_auth_used: bool = False,
                extra_headers: dict[str, str] | None = None) -> Response:
    """The JSON error answer of an OAuth endpoint, counted by endpoint and RFC code."""
    count_oauth_error(endpoint, error)
    headers = {**error.headers(basic_auth_used=basic_auth_used), **(extra_headers or {})}
    return Response(error.json_bytes(), status_code=error.status, headers=headers)


def count_oauth_error(endpoint: str, error: OAuthError) -> None:
    OAUTH_ERRORS.labels(endpoint, error.error).inc()


def no_store_json(body: dict[str, Any], status: int = 200,
                  extra_headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers={**NO_STORE, **(extra_headers or {})})


def public_json(body: dict[str, Any], media_type: str = "application/json") -> Response:
    """Discovery documents: readable from any origin (SMART §1.1: CORS for discovery)."""
    return Response(json.dumps(body), media_type=media_type,
                    headers={"Access-Control-Allow-Origin": "*",
                             "Cache-Control": "public, max-age=300"})


def cors_for(request: Request) -> dict[str, str]:
    """SMART §4.1: the token endpoint allows the calling origin (no credentials)."""
    origin = request.headers.get("origin")
    if not origin:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


@dataclass(frozen=True)
class Pages:
    templates: jinja2.Environment
    base_path: str  # the issuer's path, "" for an issuer at the root

    def path(self, suffix: str) -> str:
        return self.base_path + suffix

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = self.templates.get_template(template).render(path=self.path, **values)
        return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)

    def error(self, title: str, message: str, status: int = 400) -> HTMLResponse:
        return self.render("error.html", status=status, title=title, message=message)


def make_pages(issuer: str) -> Pages:
    env = jinja2.Environment(loader=jinja2.PackageLoader("smartrealm.authz", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    return Pages(env, urlsplit(issuer).path.rstrip("/"))

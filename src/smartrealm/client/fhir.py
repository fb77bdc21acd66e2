"""A FHIR R4 REST session for one server, with the (possibly multi-audience) token.

Every request carries ``Authorization: Bearer`` and ``Accept: application/fhir+json``
(spec §4.6). The token is only ever sent to URLs under this session's base: ``iterate``
refuses ``next`` links that leave it (spec §4.6, "do not blindly follow references"), and
redirects are not followed. Error statuses become typed ``FhirError``s carrying the
OperationOutcome and, for 401/403, the parsed ``WWW-Authenticate`` challenge.

create/update/delete send ``application/fhir+json`` with ``Prefer: return=representation``;
``update`` takes an optional ``If-Match`` version. A 401 on a session holding a refresher
triggers one refresh and one retry; a second 401 is raised."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin

import httpx

from smartrealm.client._http import is_absolute_http, json_object, normalize_url, strip
from smartrealm.client.errors import (
    FHIR_STATUS_CLASSES,
    ClientUsageError,
    FhirError,
    FhirForbidden,
    FhirResponseError,
    FhirServerError,
    FhirTransportError,
    FhirUnauthorized,
    ForeignNextLink,
)
from smartrealm.client.tokens import TokenSet
from smartrealm.core.fhir_ids import FHIR_ID, RESOURCE_TYPE  # keep input out of the path
from smartrealm.core.media_types import FHIR_JSON

# Given the access token a server refused, return a fresh TokenSet (see TokenRefresher).
Refresher = Callable[[str], Awaitable[TokenSet]]
# RFC 7235 auth-param: token "=" ( token / quoted-string ).
AUTH_PARAM = re.compile(r'([!#$%&\'*+\-.^_`|~0-9A-Za-z]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*)')


class FhirSession:
    """FHIR calls to the server at ``base_url`` with one access token."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        token: TokenSet | str | None,
        *,
        refresher: Refresher | None = None,
    ) -> None:
        """``token`` is a TokenSet, a bare access token, or None/"" for anonymous calls
        (no Authorization header, e.g. to see the server's 401 challenge). ``refresher``
        (given the token that was refused) returns a fresh TokenSet: on a 401 the session
        calls it once and retries the request once (spec §4.3)."""
        if not is_absolute_http(base_url):
            raise ClientUsageError(f"{base_url!r} is not an absolute http(s) URL")
        self.http = http
        self.base_url = strip(base_url)
        self.token_set = token if isinstance(token, TokenSet) else None
        self._access_token = token.access_token if isinstance(token, TokenSet) else token
        self._refresher = refresher

    @property
    def patient_id(self) -> str | None:
        """The launch patient's id on this server (``TokenSet.patient_id_for``)."""
        return self.token_set.patient_id_for(self.base_url) if self.token_set else None

    async def read(self, resource_type: str, id: str) -> dict[str, Any]:
        return await self._send("GET", self._instance_url(resource_type, id), resource_type)

    async def search(
        self, resource_type: str, params: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """One page of ``GET [base]/[type]?params``: a Bundle."""
        _check(RESOURCE_TYPE, resource_type, "resource type")
        url = f"{self.base_url}/{quote(resource_type)}"
        return await self._send("GET", url, "Bundle", params=params)

    async def iterate(
        self, resource_type: str, params: Mapping[str, str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every ``entry.resource`` of a search, page after page along ``next`` links."""
        bundle = await self.search(resource_type, params)
        while True:
            for entry in _list(bundle.get("entry")):
                if isinstance(entry.get("resource"), dict):
                    yield entry["resource"]
            next_url = _next_link(bundle)
            if next_url is None:
                return
            bundle = await self._send("GET", self._same_base(next_url), "Bundle")

    async def create(self, resource: dict[str, Any]) -> dict[str, Any]:
        """``POST [base]/[type]`` (asks for ``Prefer: return=representation``): the stored
        resource with its server-assigned id and meta."""
        resource_type = _resource_type(resource)
        url = f"{self.base_url}/{resource_type}"
        return await self._send("POST", url, resource_type, body=resource)

    async def update(
        self, resource: dict[str, Any], *, if_match: str | None = None
    ) -> dict[str, Any]:
        """``PUT [base]/[type]/[id]``. ``if_match`` is a version id or an ETag
        (``W/"3"``): the server then refuses (412) when the resource changed since."""
        resource_type = _resource_type(resource)
        url = self._instance_url(resource_type, str(resource.get("id", "")))
        headers = {"If-Match": _etag(if_match)} if if_match is not None else {}
        return await self._send("PUT", url, resource_type, body=resource, headers=headers)

    async def delete(self, resource_type: str, id: str) -> None:
        """``DELETE [base]/[type]/[id]``; any 2xx is success."""
        await self._send("DELETE", self._instance_url(resource_type, id), None)

    def _instance_url(self, resource_type: str, id: str) -> str:
        _check(RESOURCE_TYPE, resource_type, "resource type")
        _check(FHIR_ID, id, "id")
        return f"{self.base_url}/{resource_type}/{id}"

    def _same_base(self, url: str) -> str:
        absolute = urljoin(self.base_url + "/", url)
        base = normalize_url(self.base_url)
        target = normalize_url(absolute)
        if target != base and not target.startswith((base + "/", base + "?")):
            raise ForeignNextLink(absolute, self.base_url)
        return absolute

    async def _send(
        self,
        method: str,
        url: str,
        expected_type: str | None,
        *,
        params: Mapping[str, str] | None = None,
        body: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """One request; on a 401 with a token and a refresher, refresh and retry once."""
        call = _Call(method, url, params, body, dict(headers or {}))
        response = await self._attempt(call)
        if response.status_code == 401 and self._access_token and self._refresher:
            fresh = await self._refresher(self._access_token)
            self.token_set, self._access_token = fresh, fresh.access_token
            response = await self._attempt(call)
        return _result(response, method, url, expected_type)

    async def _attempt(self, call: _Call) -> httpx.Response:
        headers = {"Accept": FHIR_JSON, **call.headers}
        if call.body is not None:
            headers["Content-Type"] = FHIR_JSON
            headers["Prefer"] = "return=representation"
        if self._access_token:
            headers["Authorization"] = f"Bearer {self._access_token}"
        content = json.dumps(call.body).encode() if call.body is not None else None
        try:
            return await self.http.request(
                call.method, call.url, params=call.params, content=content, headers=headers
            )
        except httpx.HTTPError as exc:
            raise FhirTransportError(
                f"{call.method} {call.url} failed: {exc.__class__.__name__}"
            ) from exc


@dataclass(frozen=True)
class _Call:
    method: str
    url: str
    params: Mapping[str, str] | None
    body: dict[str, Any] | None
    headers: dict[str, str]


def _result(
    response: httpx.Response, method: str, url: str, expected_type: str | None
) -> dict[str, Any]:
    body = json_object(response)
    if response.status_code >= 300:
        raise fhir_error(response, body)
    if expected_type is None:
        return body or {}
    if body is None or body.get("resourceType") != expected_type:
        raise FhirResponseError(f"{method} {url} did not return a {expected_type}")
    return body


def _resource_type(resource: dict[str, Any]) -> str:
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise ClientUsageError("the resource has no resourceType")
    _check(RESOURCE_TYPE, resource_type, "resource type")
    return resource_type


def _etag(version: str) -> str:
    """A version id as the weak ETag FHIR uses (R4 http.html#concurrency)."""
    return version if version.startswith(("W/", '"')) else f'W/"{version}"'


def fhir_error(response: httpx.Response, body: dict[str, Any] | None) -> FhirError:
    """The typed error for a non-2xx FHIR response."""
    status = response.status_code
    outcome = body if body is not None and body.get("resourceType") == "OperationOutcome" else None
    if status in (401, 403):
        challenge = parse_bearer_challenge(response.headers.get("WWW-Authenticate", ""))
        cls = FhirUnauthorized if status == 401 else FhirForbidden
        return cls(status, outcome, challenge)
    if status >= 500:
        return FhirServerError(status, outcome)
    return FHIR_STATUS_CLASSES.get(status, FhirError)(status, outcome)


def parse_bearer_challenge(header: str) -> dict[str, str]:
    """The auth-params of a ``Bearer`` challenge (RFC 6750 §3), keys lower-cased, quoted
    values unescaped: ``{"realm": ..., "error": "invalid_token", ...}``. Empty when the
    header has no Bearer challenge."""
    match = re.search(r"(?:^|,)\s*bearer(?:\s+|$)", header, flags=re.IGNORECASE)
    if match is None:
        return {}
    params: dict[str, str] = {}
    for name, raw in AUTH_PARAM.findall(header[match.end() :]):
        value = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith('"') else raw
        params.setdefault(name.lower(), value)
    return params


def _next_link(bundle: dict[str, Any]) -> str | None:
    for link in _list(bundle.get("link")):
        if link.get("relation") == "next" and isinstance(link.get("url"), str):
            return str(link["url"])
    return None


def _list(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _check(pattern: re.Pattern[str], value: str, what: str) -> None:
    if not pattern.fullmatch(value):
        raise ClientUsageError(f"{value!r} is not a valid FHIR {what}")

"""Talking to the upstream FHIR server: the proxy's own credentials, the request, and the
rewriting of the upstream's base URL into the proxy's in everything handed back.

The client's access token is never forwarded: it is meant for the proxy (its ``aud``), and
the upstream may not even know the realm's AS. The proxy authenticates as itself."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from sqlalchemy.exc import DBAPIError

from smartrealm.core.media_types import FHIR_JSON
from smartrealm.core.urls import normalize_url
from smartrealm.fhir.errors import FhirError, ServiceUnavailable
from smartrealm.oauth.keys import KeyRing, KeyStore
from smartrealm.oauth.tokens import TokenMinter

UPSTREAM_SCOPE = "system/*.cruds"
_TOKEN_REUSE = 30   # seconds a minted upstream token is reused (it lives 60 s)
# Response headers passed back to the client (URLs among them are rewritten).
PASSED_HEADERS = ("etag", "last-modified", "location", "content-location")


class BadGateway(FhirError):  # noqa: N818 (named like fhir/errors.py)
    """The upstream did not answer, or answered something the proxy cannot use."""

    status = 502
    code = "transient"


class UpstreamCredentials(Protocol):
    def headers(self) -> dict[str, str]: ...


class NoCredentials:
    """``upstream_auth = "none"``: an upstream on a private network that trusts the proxy."""

    def headers(self) -> dict[str, str]:
        return {}


class RealmSelfToken:
    """``upstream_auth = "realm"``: the AS's self-token (CONTRACT "AS self-token",
    oauth/tokens.py ``self_token``), for the upstream's base with ``system/*.cruds``,
    signed with the realm AS's current key, read from the AS's key store. The upstream must
    trust the realm's AS, as a built-in server of the realm does."""

    def __init__(self, keys: KeyStore, issuer: str, upstream: str, fhir_version: str,
                 clock: Callable[[], float] = time.time) -> None:
        self._keys, self._issuer, self._upstream = keys, issuer, upstream
        self._fhir_version, self._clock = fhir_version, clock
        self._cached: tuple[str, float] | None = None

    def headers(self) -> dict[str, str]:
        now = self._clock()
        if self._cached is None or now - self._cached[1] > _TOKEN_REUSE:
            self._cached = (self._mint(), now)
        return {"Authorization": f"Bearer {self._cached[0]}"}

    def _mint(self) -> str:
        try:
            keys = self._keys.load()
        except (DBAPIError, OSError):  # no key table or directory yet: the AS is starting
            keys = []
        if not keys:  # the AS has not started yet: it creates the first key
            raise ServiceUnavailable("the proxy has no credentials for its upstream yet")
        minter = TokenMinter(self._issuer, KeyRing(keys), 60, clock=self._clock)
        return minter.self_token(self._upstream, self._fhir_version, UPSTREAM_SCOPE)


@dataclass(frozen=True)
class UpstreamReply:
    status: int
    body: Any                  # parsed JSON, or None for an empty body
    headers: dict[str, str]


class Upstream:
    def __init__(self, base_url: str, http: httpx.AsyncClient,
                 credentials: UpstreamCredentials) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = http
        self._credentials = credentials

    async def call(self, method: str, path: str, *,
                   params: Sequence[tuple[str, str]] | None = None,
                   content: bytes | None = None, headers: dict[str, str] | None = None
                   ) -> UpstreamReply:
        sent = {"Accept": FHIR_JSON, **(headers or {}), **self._credentials.headers()}
        if content is not None:
            sent["Content-Type"] = FHIR_JSON
        url = f"{self.base_url}/{path}" if path else self.base_url
        try:
            response = await self._http.request(method, url, params=httpx.QueryParams(
                                                    list(params or ())), content=content,
                                                headers=sent)
            body = response.json() if response.content else None
        except httpx.HTTPError as exc:
            raise BadGateway(f"the upstream server did not answer ({type(exc).__name__})"
                             ) from None
        except (ValueError, RecursionError):
            raise BadGateway("the upstream server did not answer with JSON") from None
        if response.status_code == 401:
            # The proxy's own credentials failed: not the client's token, not its fault.
            raise BadGateway("the upstream server refused the proxy's credentials")
        passed = {k: response.headers[k] for k in PASSED_HEADERS if k in response.headers}
        return UpstreamReply(response.status_code, body, passed)


class Rewriter:
    """Upstream base URL → the proxy's base, in every string of a JSON document (Bundle
    links, ``fullUrl``, absolute references, diagnostics) and in ``Location`` headers; and
    the other way round for URLs a client puts in search parameters."""

    def __init__(self, upstream: str, own: str) -> None:
        self._upstream = upstream.rstrip("/")
        self._own = own.rstrip("/")
        self._upstream_norm = normalize_url(self._upstream)
        self._own_norm = normalize_url(self._own)

    def outward(self, value: Any) -> Any:
        if isinstance(value, str):
            return _swap(value, self._upstream_norm, self._own)
        if isinstance(value, list):
            return [self.outward(v) for v in value]
        if isinstance(value, dict):
            return {k: self.outward(v) for k, v in value.items()}
        return value

    def inward(self, value: str) -> str:
        return _swap(value, self._own_norm, self._upstream)


def _swap(text: str, prefix_norm: str, replacement: str) -> str:
    """``text`` with a leading ``prefix`` (compared as normalize_url does: scheme and host
    case-insensitive) replaced, when it is the whole string or followed by ``/`` or ``?``."""
    if "://" not in text[:12]:
        return text
    head = len(prefix_norm)
    if len(text) < head or (len(text) > head and text[head] not in "/?"):
        return text
    try:
        if normalize_url(text[:head]) != prefix_norm:
            return text
    except ValueError:
        return text
    return replacement + text[head:]

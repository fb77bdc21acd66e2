"""Fetching private_key_jwt clients' ``jwks_uri`` documents (SMART §4.5 key resolution).

The protocol core verifies assertions without I/O; before it runs, ``keys_for_request`` looks
at the (unverified) assertion, and when it names a client registered with a ``jwks_uri``,
makes sure that document is at hand. Only ever the *registered* URL is fetched — a ``jku``
header is compared with it, never followed.

Caching (§4.5: "SHALL NOT cache longer than the client's Cache-Control allows; SHOULD cache
within it"): a document is reused while its ``max-age`` lasts (``no-store``/``no-cache``:
never). A kid missing from a fresh document triggers a refetch (the client rotated its
keys), at most once per ``min_refetch_interval`` per URL, and a failed fetch is not retried
sooner either, so bogus assertions cannot make the AS hammer a client's server.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from smartrealm.core.defaults import JWKS_DEFAULT_MAX_AGE as DEFAULT_MAX_AGE
from smartrealm.core.defaults import JWKS_FETCH_TIMEOUT as FETCH_TIMEOUT
from smartrealm.core.defaults import JWKS_MAX_CACHE_AGE as MAX_CACHE_AGE
from smartrealm.core.defaults import JWKS_MAX_DOCUMENT as MAX_DOCUMENT
from smartrealm.oauth.assertions import Assertion, KeySource
from smartrealm.oauth.errors import OAuthError
from smartrealm.oauth.store import PRIVATE_KEY_JWT, Client, ClientStore


def cache_lifetime(cache_control: str | None) -> float:
    """Seconds a response may be reused under its ``Cache-Control`` (RFC 9111 §5.2.2)."""
    if cache_control is None:
        return DEFAULT_MAX_AGE
    lifetime = DEFAULT_MAX_AGE
    for directive in cache_control.split(","):
        name, _, value = directive.strip().partition("=")
        name = name.strip().lower()
        if name in ("no-store", "no-cache"):
            return 0.0
        if name in ("max-age", "s-maxage"):
            value = value.strip().strip('"')
            if not value.isdigit():
                return 0.0  # RFC 9111 §4.2.1: an invalid max-age means stale
            lifetime = min(float(value), MAX_CACHE_AGE)
    return lifetime


@dataclass
class _Entry:
    jwks: dict[str, Any] | None  # the last good document (None: none usable)
    fresh_until: float
    attempted_at: float
    failed: bool


def _has_kid(jwks: Mapping[str, Any] | None, kid: str) -> bool:
    keys = jwks.get("keys") if jwks is not None else None
    return isinstance(keys, list) and any(isinstance(k, dict) and k.get("kid") == kid
                                          for k in keys)


class ClientJwksCache:
    def __init__(self, http: httpx.AsyncClient, *, min_refetch_interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._http = http
        self._min_interval = min_refetch_interval
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.fetch_count = 0

    async def keys_for_request(self, assertion: Assertion | None,
                               clients: ClientStore) -> KeySource:
        """The KeySource for one token request: registered ``jwks`` as they are, plus the
        ``jwks_uri`` document of the client the request's assertion (``request_assertion``)
        names, if any."""
        fetched: dict[str, dict[str, Any]] = {}
        target = _assertion_target(assertion, clients)
        if target is not None and target[0].jwks_uri is not None:
            jwks = await self.document(target[0].jwks_uri, target[1])
            if jwks is not None:
                fetched[target[0].jwks_uri] = jwks

        def source(client: Client) -> Mapping[str, Any] | None:
            if client.jwks is not None:
                return client.jwks
            return fetched.get(client.jwks_uri) if client.jwks_uri is not None else None

        return source

    async def document(self, uri: str, kid: str) -> dict[str, Any] | None:
        """The JWK Set at ``uri`` for an assertion signed with ``kid``; None when no usable
        document can be had right now."""
        lock = self._locks.setdefault(uri, asyncio.Lock())
        async with lock:
            entry, now = self._entries.get(uri), self._clock()
            fresh = entry is not None and entry.jwks is not None and now < entry.fresh_until
            if entry is not None and fresh and _has_kid(entry.jwks, kid):
                return entry.jwks
            recent = entry is not None and now - entry.attempted_at < self._min_interval
            if recent and (fresh or (entry is not None and entry.failed)):
                # Rate limit: an unknown kid in a fresh document, or a failing server.
                return entry.jwks if entry is not None and fresh else None
            entry = await self._refresh(uri, entry if fresh else None, now)
            self._entries[uri] = entry
            return entry.jwks

    async def _refresh(self, uri: str, previous: _Entry | None, now: float) -> _Entry:
        self.fetch_count += 1
        try:
            jwks, lifetime = await self._fetch(uri)
        except (httpx.HTTPError, ValueError, RecursionError):
            # Keep a still-fresh document (its kids remain valid), never a stale one.
            kept = previous.jwks if previous is not None else None
            until = previous.fresh_until if previous is not None else now
            return _Entry(kept, until, now, failed=True)
        return _Entry(jwks, now + lifetime, now, failed=False)

    async def _fetch(self, uri: str) -> tuple[dict[str, Any], float]:
        # §4.5: fetch with Accept: application/json; no authentication, no redirects.
        async with self._http.stream("GET", uri, headers={"Accept": "application/json"},
                                     timeout=FETCH_TIMEOUT, follow_redirects=False) as response:
            if response.status_code != 200:
                raise ValueError(f"{uri} answered {response.status_code}")
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT:
                    raise ValueError(f"{uri} is larger than {MAX_DOCUMENT} bytes")
            lifetime = cache_lifetime(response.headers.get("cache-control"))
        document = json.loads(body)
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError(f"{uri} is not a JWK Set")
        return document, lifetime


def _assertion_target(assertion: Assertion | None,
                      clients: ClientStore) -> tuple[Client, str] | None:
    """(client, kid) named by the request's assertion, when the client is registered for
    private_key_jwt; None otherwise (the verifier reports what is wrong)."""
    if assertion is None:
        return None
    try:
        iss, kid = assertion.issuer, assertion.header.get("kid")
    except OAuthError:
        return None
    client = clients.get(iss) if isinstance(kid, str) else None
    if client is None or client.auth_method != PRIVATE_KEY_JWT:
        return None
    jku = assertion.header.get("jku")
    if jku is not None and jku != client.jwks_uri:
        return None  # refused by the verifier; nothing worth fetching
    return client, str(kid)

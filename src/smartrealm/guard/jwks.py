"""The authorization server's signing keys, fetched from its ``jwks_uri`` and cached.

An unknown ``kid`` triggers a refetch (the AS rotates its keys), but at most once per
``min_refetch_interval`` seconds so that a flood of tokens with made-up kids cannot turn the
resource server into a denial-of-service amplifier against the AS."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key

from smartrealm.guard.errors import KeySetUnavailable

Clock = Callable[[], float]


class JwksCache:
    """Public keys by ``kid``. Keys are refreshed when older than ``max_age`` (a failed
    refresh keeps the old keys) or when a token names a kid we do not know."""

    def __init__(self, http: httpx.AsyncClient, jwks_uri: str, *,
                 min_refetch_interval: float = 10.0, max_age: float = 3600.0,
                 clock: Clock = time.monotonic) -> None:
        self._http = http
        self._uri = jwks_uri
        self._min_interval = min_refetch_interval
        self._max_age = max_age
        self._clock = clock
        self._keys: dict[str, Key] = {}
        self._loaded_at: float | None = None      # last successful fetch
        self._attempted_at: float | None = None   # last fetch, successful or not
        self._lock = asyncio.Lock()
        self.fetch_count = 0

    async def key_for(self, kid: str) -> Key | None:
        """The key named ``kid``, refetching the set if it is unknown or stale.
        Raises KeySetUnavailable only when no keys could ever be loaded."""
        if self._since(self._loaded_at) > self._max_age or kid not in self._keys:
            await self._refresh()
        return self._keys.get(kid)

    def _since(self, moment: float | None) -> float:
        return float("inf") if moment is None else self._clock() - moment

    async def _refresh(self) -> None:
        async with self._lock:
            # Rate limit: also covers requests that queued on the lock behind a fetch.
            if self._since(self._attempted_at) < self._min_interval:
                if self._loaded_at is None:
                    raise KeySetUnavailable(f"{self._uri} is unavailable")
                return
            self._attempted_at = self._clock()
            self.fetch_count += 1
            try:
                self._keys = await self._fetch()
            except KeySetUnavailable:
                if self._loaded_at is None:
                    raise
                return  # keep serving with the keys we have
            self._loaded_at = self._attempted_at

    async def _fetch(self) -> dict[str, Key]:
        try:
            response = await self._http.get(self._uri, headers={"Accept": "application/json"})
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError, RecursionError) as exc:
            raise KeySetUnavailable(f"cannot fetch {self._uri}: {type(exc).__name__}") from None
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise KeySetUnavailable(f"{self._uri} is not a JWK Set")
        return _import_keys(document["keys"])


def _import_keys(entries: list[Any]) -> dict[str, Key]:
    """Signature keys with a kid; anything else (encryption keys, unknown types, private
    parts we would never need) is skipped rather than failing the whole set."""
    keys: dict[str, Key] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("use", "sig") != "sig":
            continue
        try:
            key = JWKRegistry.import_key(entry)
        except (JoseError, ValueError, TypeError):
            continue
        keys[entry["kid"]] = key
    return keys

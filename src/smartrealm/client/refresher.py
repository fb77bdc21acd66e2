"""One refreshable token shared by several ``FhirSession``s (spec §4.3, rotation).

A multi-audience token serves every server of the grant, so when two sessions see a 401 at
the same time only one refresh may happen: with rotation the first refresh invalidates the
refresh token the second would send. ``TokenRefresher`` therefore refreshes under a lock and
only when the refused access token is still the current one; otherwise the token another
session already obtained is returned. The new refresh token replaces the old one (rotation;
``refresh`` keeps the old one only when the AS issued none). ``on_update`` lets the app
persist each new TokenSet (e.g. to a token store)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from smartrealm.client.credentials import ClientCredentials
from smartrealm.client.token_endpoint import refresh
from smartrealm.client.tokens import TokenSet


class TokenRefresher:
    def __init__(
        self,
        http: httpx.AsyncClient,
        token_endpoint: str,
        tokens: TokenSet,
        auth: ClientCredentials,
        *,
        on_update: Callable[[TokenSet], None] | None = None,
    ) -> None:
        self.http = http
        self.token_endpoint = token_endpoint
        self.tokens = tokens
        self.auth = auth
        self._on_update = on_update
        self._lock = asyncio.Lock()

    async def __call__(self, refused_access_token: str) -> TokenSet:
        """The ``FhirSession`` refresher: a fresh TokenSet after ``refused_access_token``
        got a 401 (refreshing only if nobody did it meanwhile)."""
        async with self._lock:
            if self.tokens.access_token != refused_access_token:
                return self.tokens
            return await self._refresh()

    async def refresh_now(self) -> TokenSet:
        """Refresh unconditionally (e.g. before expiry)."""
        async with self._lock:
            return await self._refresh()

    async def _refresh(self) -> TokenSet:
        self.tokens = await refresh(
            self.http,
            self.token_endpoint,
            self.tokens,
            client_id=self.auth.client_id,
            auth=self.auth,
        )
        if self._on_update is not None:
            self._on_update(self.tokens)
        return self.tokens

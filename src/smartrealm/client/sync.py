"""A thin synchronous facade over the async library, for scripts and sync web frameworks.

Each facade object owns a private event loop and an ``httpx.AsyncClient`` bound to it, and
runs the async calls there with ``run_until_complete``: the behaviour (and every typed
error) is exactly the async one. Not for use inside a running event loop (use the async API
there). Close the object (or use ``with``) to release the loop and connections."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from smartrealm.client.credentials import ClientCredentials
from smartrealm.client.discovery import SmartConfiguration, discover
from smartrealm.client.fhir import FhirSession
from smartrealm.client.realm_app import RealmApp
from smartrealm.client.reuse import ReuseDecision, check_token_reuse
from smartrealm.client.tokens import TokenSet

T = TypeVar("T")


class _Loop:
    """A private loop plus an AsyncClient living on it."""

    def __init__(self, timeout: float) -> None:
        self.loop = asyncio.new_event_loop()
        self.http = httpx.AsyncClient(timeout=timeout)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        if not self.loop.is_closed():
            self.run(self.http.aclose())
            self.loop.close()


class SyncClient:
    """Discovery and the reuse check, synchronously."""

    def __init__(self, *, timeout: float = 15.0) -> None:
        self._loop = _Loop(timeout)

    def discover(self, base_url: str) -> SmartConfiguration:
        return self._loop.run(discover(self._loop.http, base_url))

    def check_token_reuse(self, bases: Sequence[str]) -> ReuseDecision:
        return check_token_reuse([self.discover(base) for base in bases])

    def close(self) -> None:
        self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class SyncFhirSession:
    def __init__(self, loop: _Loop, session: FhirSession) -> None:
        self._loop = loop
        self.session = session

    @property
    def base_url(self) -> str:
        return self.session.base_url

    @property
    def patient_id(self) -> str | None:
        return self.session.patient_id

    def read(self, resource_type: str, id: str) -> dict[str, Any]:
        return self._loop.run(self.session.read(resource_type, id))

    def search(self, resource_type: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        return self._loop.run(self.session.search(resource_type, params))

    def search_all(
        self, resource_type: str, params: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """Every resource of every page (``FhirSession.iterate``)."""

        async def collect() -> list[dict[str, Any]]:
            return [r async for r in self.session.iterate(resource_type, params)]

        return self._loop.run(collect())

    def create(self, resource: dict[str, Any]) -> dict[str, Any]:
        return self._loop.run(self.session.create(resource))

    def update(self, resource: dict[str, Any], *, if_match: str | None = None) -> dict[str, Any]:
        return self._loop.run(self.session.update(resource, if_match=if_match))

    def delete(self, resource_type: str, id: str) -> None:
        self._loop.run(self.session.delete(resource_type, id))


class SyncRealmApp(SyncClient):
    """``RealmApp`` synchronously: prepare, begin, complete, session."""

    def __init__(
        self,
        *,
        client: ClientCredentials,
        redirect_uri: str,
        scope: str | Mapping[str, str],
        clients: Mapping[str, ClientCredentials] | None = None,
        timeout: float = 15.0,
    ) -> None:
        super().__init__(timeout=timeout)
        self.app = RealmApp(
            self._loop.http, client=client, redirect_uri=redirect_uri, scope=scope, clients=clients
        )

    def prepare(self, bases: Sequence[str], *, plan: bool = True) -> ReuseDecision:
        return self._loop.run(self.app.prepare(bases, plan=plan))

    def prepare_associated(self, base: str, *, plan: bool = True) -> ReuseDecision:
        return self._loop.run(self.app.prepare_associated(base, plan=plan))

    def begin(self, *, launch: str | None = None) -> str:
        return self.app.begin(launch=launch)

    def complete(self, callback_url: str) -> str | None:
        return self._loop.run(self.app.complete(callback_url))

    def tokens_for(self, base: str) -> TokenSet:
        return self.app.tokens_for(base)

    def session(self, base: str) -> SyncFhirSession:
        return SyncFhirSession(self._loop, self.app.session(base))

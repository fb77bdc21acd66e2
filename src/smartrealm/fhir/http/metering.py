"""What a FHIR server counts (serving/metrics.py): refused tokens by reason, and each FHIR
interaction by resource type and outcome — the same for the built-in server and the proxy.

The interaction is read from the route that answered (its template, relative to the base),
never from the raw path; the type label is one of the types the server serves, else
``other``, so no client-chosen text becomes a label."""

from __future__ import annotations

from collections.abc import Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smartrealm.guard import AccessContext, TokenChecker, TokenRejected
from smartrealm.serving.metrics import FHIR_INTERACTIONS, TOKEN_REJECTIONS
from smartrealm.serving.observe import route_template

# (method, route template relative to the base) → R4 interaction name (http.html).
INTERACTIONS: dict[tuple[str, str], str] = {
    ("GET", "/metadata"): "capabilities",
    ("GET", "/{resource_type}/{resource_id}"): "read",
    ("GET", "/{resource_type}/{resource_id}/_history/{version_id}"): "vread",
    ("GET", "/{resource_type}"): "search-type",
    ("POST", "/{resource_type}/_search"): "search-type",
    ("GET", "/{resource_type}/{resource_id}/_history"): "history-instance",
    ("GET", "/{resource_type}/_history"): "history-type",
    ("GET", "/_history"): "history-system",
    ("POST", "/{resource_type}"): "create",
    ("PUT", "/{resource_type}/{resource_id}"): "update",
    ("DELETE", "/{resource_type}/{resource_id}"): "delete",
    ("POST", "/"): "batch-transaction",
}


def interaction(method: str, template: str, base_path: str) -> str | None:
    """The interaction a route template stands for; None for anything else (discovery,
    an unmatched path)."""
    if not template.startswith(base_path):
        return None
    relative = template[len(base_path):] or "/"
    return INTERACTIONS.get((method, relative))


class CountedChecker:
    """A TokenChecker that counts the tokens it refuses, by server and reason kind."""

    def __init__(self, inner: TokenChecker, server_id: str) -> None:
        self.inner, self.server_id = inner, server_id

    async def validate(self, token: str | None) -> AccessContext:
        try:
            return await self.inner.validate(token)
        except TokenRejected as exc:
            TOKEN_REJECTIONS.labels(self.server_id, exc.kind).inc()
            raise


class FhirMeter:
    """ASGI middleware around a FHIR server mounted at ``base_path``."""

    def __init__(self, app: ASGIApp, *, server_id: str, base_path: str,
                 types: Collection[str]) -> None:
        self.app, self.server_id = app, server_id
        self.base_path = base_path.rstrip("/")
        self.types = frozenset(types)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def metered_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, metered_send)
        finally:
            self._count(scope, status)

    def _count(self, scope: Scope, status: int) -> None:
        name = interaction(scope["method"], route_template(scope), self.base_path)
        if name is None:
            return
        named = (scope.get("path_params") or {}).get("resource_type")
        kind = "" if named is None else named if named in self.types else "other"
        FHIR_INTERACTIONS.labels(self.server_id, kind, name, f"{status // 100}xx").inc()

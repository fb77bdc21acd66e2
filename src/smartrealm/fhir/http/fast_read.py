"""The commonest request, ``GET [base]/[type]/[id]``, answered without the routing stack.

Issue 4 sets a throughput floor for an authenticated read relative to a bare ASGI app. Two
Starlette applications (the mount and the FHIR app), their error middleware, routing and the
CORS middleware cost more than the token check and the SQLite lookup together, so this
front answers a plain read itself with the very same functions the routed handler uses
(token parsing, validation, ``FhirService.read``, rendering, the OperationOutcome of an
error); the answer is byte-identical. Anything else — a query string, a CORS request (an
``Origin`` header), another method, a path that is not exactly ``type/id`` — goes through
the full application unchanged."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from smartrealm.core.fhir_ids import ID_PATTERN, TYPE_PATTERN
from smartrealm.serving.observe import ROUTE_KEY

# A letters-only type and a FHIR id (http://hl7.org/fhir/R4/datatypes.html#id): never
# ``_history``, ``_search``, ``metadata``-style single segments or ``.well-known``.
_TYPE_AND_ID = rf"/({TYPE_PATTERN})/({ID_PATTERN})"

ReadResponder = Callable[[str | None, str, str], Awaitable[Response]]


class FastReads:
    """ASGI middleware: plain reads under ``base_path`` go to ``respond`` directly."""

    def __init__(self, app: ASGIApp, *, base_path: str, respond: ReadResponder) -> None:
        self.app = app
        self.respond = respond
        self.pattern = re.compile(re.escape(base_path.rstrip("/")) + _TYPE_AND_ID)
        self.route = base_path.rstrip("/") + "/{resource_type}/{resource_id}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self._plain_read(scope)
        if found is None:
            await self.app(scope, receive, send)
            return
        authorization, resource_type, resource_id = found
        # Named for the request log and metrics as the routed read would be.
        scope[ROUTE_KEY] = self.route
        scope["path_params"] = {"resource_type": resource_type, "resource_id": resource_id}
        response = await self.respond(authorization, resource_type, resource_id)
        await response(scope, receive, send)

    def _plain_read(self, scope: Scope) -> tuple[str | None, str, str] | None:
        if (scope["type"] != "http" or scope["method"] != "GET"
                or scope.get("query_string")):
            return None
        matched = self.pattern.fullmatch(scope["path"])
        if matched is None:
            return None
        authorization: str | None = None
        for name, value in scope["headers"]:
            if name == b"origin":  # CORS: let CORSMiddleware add its headers
                return None
            if name == b"authorization":
                if authorization is not None:  # several: the routed path decides
                    return None
                authorization = value.decode("latin-1")
        return authorization, matched.group(1), matched.group(2)

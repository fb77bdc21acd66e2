"""``POST`` to the token endpoint, handed to its handler without the routing stack.

The token endpoint is the AS's busiest URL (every Backend Services call, every code
exchange and refresh). Matching it against the whole route table, then Starlette's exception
middleware and its per-route request wrapper, cost about as much as a database write per
request, and buy nothing here: the handler answers every OAuth error itself (``oauth_error``)
and sets its own CORS headers. This middleware sits inside Starlette's server-error
middleware, so an unexpected exception still ends as a 500 exactly as on the routed path,
and a database outage as the same 503 (views/outage.py).
Anything else — another method (the CORS preflight ``OPTIONS``), another path, an app
mounted under a ``root_path`` — goes through the full application unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from smartrealm.authz.views.outage import outage_response
from smartrealm.serving.observe import ROUTE_KEY
from smartrealm.storage import OUTAGES

Handler = Callable[[Request], Awaitable[Response]]


class TokenFront:
    """ASGI middleware: ``POST path`` goes to ``endpoint`` directly."""

    def __init__(self, app: ASGIApp, *, path: str, endpoint: Handler) -> None:
        self.app, self.path, self.endpoint = app, path, endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["method"] == "POST"
                and scope["path"] == self.path and not scope.get("root_path")):
            scope[ROUTE_KEY] = self.path  # for the request log and metrics
            request = Request(scope, receive)
            try:
                response = await self.endpoint(request)
            except OUTAGES as exc:  # no exception middleware on this path
                response = outage_response(request, exc)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

"""Every request of a component, observed once: its ``X-Request-ID`` (the caller's when it
is a sane token, else a new one; returned either way), the HTTP metrics, and — with
``--log-format json`` — one JSON line on stdout.

A log line holds the time, component, method, route template, status, duration, request id
and the client id when the app learnt one (``scope["state"]["client_id"]``). Never the path
(ids), the query string (codes, tokens, states), headers or bodies: what a log may hold is
listed here and nowhere else, so nothing secret can slip in by accident."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smartrealm.serving.metrics import HTTP_DURATION, HTTP_REQUESTS

ACCESS_LOG = logging.getLogger("smartrealm.access")
# A caller's request id is kept only when it cannot smuggle anything into a log line.
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Set by a handler that answers without the router (a fast path), to name its route.
ROUTE_KEY = "smartrealm.route"


def route_template(scope: Scope) -> str:
    """The matched route's path template, under the mount it is in; ``unmatched`` when no
    route matched (a 404), so a label never carries a raw path."""
    named = scope.get(ROUTE_KEY)
    if isinstance(named, str):
        return named
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return "unmatched"
    return str(scope.get("root_path", "")) + path


def request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text = str(value.decode("latin-1"))
            if _SANE_ID.match(text):
                return text
            break
    return uuid.uuid4().hex


class RequestObserver:
    """ASGI middleware in front of one component's app."""

    def __init__(self, app: ASGIApp, component: str, json_logs: bool) -> None:
        self.app, self.component, self.json_logs = app, component, json_logs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        status = 500  # an exception before any answer
        started = time.perf_counter()

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            self._record(scope, rid, status, time.perf_counter() - started)

    def _record(self, scope: Scope, rid: str, status: int, seconds: float) -> None:
        route = route_template(scope)
        method = scope["method"] if scope["method"] in _METHODS else "other"
        HTTP_REQUESTS.labels(self.component, route, method, str(status)).inc()
        HTTP_DURATION.labels(self.component, route, method).observe(seconds)
        if self.json_logs:
            ACCESS_LOG.info(json.dumps(log_record(self.component, method, route, status,
                                                  seconds, rid, scope)))


def log_record(component: str, method: str, route: str, status: int, seconds: float,
               rid: str, scope: Scope) -> dict[str, Any]:
    state = scope.get("state") or {}
    client_id = state.get("client_id") if isinstance(state, dict) else None
    return {"time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "component": component, "method": method, "route": route, "status": status,
            "duration_ms": round(seconds * 1000, 3), "request_id": rid,
            "client_id": client_id if isinstance(client_id, str) else None}


def use_json_logs() -> None:
    """Request lines as bare JSON objects on stdout, one a line."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    ACCESS_LOG.handlers[:] = [handler]
    ACCESS_LOG.setLevel(logging.INFO)
    ACCESS_LOG.propagate = False

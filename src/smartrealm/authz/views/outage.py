"""The AS's answer while its database is out (storage.OUTAGES): 503 with ``Retry-After``,
never a 500 or a hang. API callers get the OAuth error ``temporarily_unavailable`` (RFC 6749
§4.1.2.1) as JSON; a browser asking for a page gets a short page saying to try again. The
body never carries the database's message (it may name hosts or users)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from smartrealm.core.defaults import OUTAGE_RETRY_AFTER
from smartrealm.oauth.errors import TemporarilyUnavailable

_PAGE = ("<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">"
         "<title>Temporarily unavailable</title><h1>Temporarily unavailable</h1>"
         "<p>The sign-in service cannot answer right now. Please try again in a moment.</p>"
         "</html>")


def outage_response(request: Request, _exc: Exception) -> Response:
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(_PAGE, status_code=503,
                            headers={"Retry-After": str(OUTAGE_RETRY_AFTER),
                                     "Cache-Control": "no-store"})
    error = TemporarilyUnavailable("the authorization server's database is unavailable; "
                                   "retry shortly")
    return Response(error.json_bytes(), status_code=error.status, headers=error.headers())

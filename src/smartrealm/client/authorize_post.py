"""The POST form of the authorization request (spec §3.1; capability ``authorize-post``).

Apps SHOULD prefer POST when scope strings are large. The browser must make the request, so
the app answers with a page holding a form that submits itself: the same fields as the GET
URL (``AuthorizationRequest.form_fields``, ``resource`` repeated), every value HTML-escaped,
and a visible submit button inside ``<noscript>`` for browsers without JavaScript. The
page is ``no-store``; it holds no secret (the PKCE verifier is never in it)."""

from __future__ import annotations

from html import escape

from smartrealm.client.auth import AuthorizationRequest
from smartrealm.client.discovery import SmartConfiguration

AUTHORIZE_POST = "authorize-post"
# Headers to serve the page with: not cached, not framed, no referrer leaking the query.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Content-Type": "text/html; charset=utf-8",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def supports_authorize_post(config: SmartConfiguration) -> bool:
    return config.has_capability(AUTHORIZE_POST)


def authorize_post_page(request: AuthorizationRequest, *, title: str = "Signing in") -> str:
    """A complete HTML page that POSTs ``request`` to its authorization endpoint."""
    inputs = "\n".join(
        f'    <input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in request.form_fields()
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head>\n"
        '<body onload="document.forms[0].submit()">\n'
        f'  <form method="post" action="{escape(request.authorization_endpoint)}"'
        ' enctype="application/x-www-form-urlencoded">\n'
        f"{inputs}\n"
        '    <noscript><button type="submit">Continue to sign in</button></noscript>\n'
        "  </form>\n</body>\n</html>\n"
    )

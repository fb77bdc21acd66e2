"""HTML rendering of the demo app: Jinja2 templates, strict headers. The pages load nothing
from elsewhere and run no script; styles are inline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jinja2
from starlette.responses import HTMLResponse

from smartrealm.demoapp.settings import DemoSettings


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class Pages:
    settings: DemoSettings
    templates: jinja2.Environment
    # Chromium applies form-action to the redirect after a form post too: the Connect
    # button's POST ends at the authorization endpoint, so its origin is allowed.
    form_origins: tuple[str, ...]

    def headers(self) -> dict[str, str]:
        form_action = " ".join(["'self'", *self.form_origins])
        return {
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                       f"form-action {form_action}; "
                                       "frame-ancestors 'none'; base-uri 'none'",
            "X-Frame-Options": "DENY",
            "Cache-Control": "no-store",
            # The callback URL carries the authorization code: never pass it on.
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        }

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = self.templates.get_template(template).render(
            app=self.settings.base_url, realm_name=self.settings.realm_name, **values)
        return HTMLResponse(html, status_code=status, headers=self.headers())

    def error(self, title: str, message: str, status: int = 400) -> HTMLResponse:
        return self.render("error.html", status=status, title=title, message=message)


def make_pages(settings: DemoSettings) -> Pages:
    env = jinja2.Environment(loader=jinja2.PackageLoader("smartrealm.demoapp", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    origins = (_origin(settings.authorization_endpoint),) if settings.authorization_endpoint \
        else ()
    return Pages(settings, env, origins)

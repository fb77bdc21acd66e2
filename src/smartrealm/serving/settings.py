"""The uvicorn settings of one component's listener."""

from __future__ import annotations

from typing import Any

from smartrealm.realm import tls
from smartrealm.realm.config import RealmConfig
from smartrealm.realm.runner import Component


def listener_options(realm: RealmConfig, component: Component, host: str,
                     port: int) -> dict[str, Any]:
    """uvicorn.Config keyword arguments (the app and the workers aside)."""
    proxies = realm.deployment.trusted_proxies
    return dict(
        host=host, port=port, log_level="warning", lifespan="on",
        # No access log: request lines can carry authorization codes and other secrets.
        access_log=False,
        # X-Forwarded-For and -Proto are believed only from the configured proxies
        # ([deployment] trusted_proxies); otherwise a client could choose the address that
        # the client-authentication lockout counts (authz/client_guard.py).
        proxy_headers=bool(proxies),
        forwarded_allow_ips=",".join(str(n) for n in proxies) or None,
        **tls.uvicorn_options(realm.tls, component.url),
    )

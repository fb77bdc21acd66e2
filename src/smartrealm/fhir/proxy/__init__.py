"""Proxy mode: a realm server that guards an existing FHIR server (docs/behaviour.md
"Proxy mode")."""

from smartrealm.fhir.proxy.app import build_proxy_server, create_proxy_app

__all__ = ["build_proxy_server", "create_proxy_app"]

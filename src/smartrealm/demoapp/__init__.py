"""The demo web app: a registered SMART client served at ``{issuer}/demo-app`` by
`smartrealm serve`. It runs the multi-server flow with ``smartrealm.client`` (standalone
and EHR launch) and shows one patient's record from the EHR and the imaging server side by
side, with the per-server patient ids and scopes of the one token."""

from smartrealm.demoapp.app import DemoMount, create_app, demo_launch_urls, with_demo_app
from smartrealm.demoapp.settings import DemoSettings, demo_settings

__all__ = ["DemoMount", "DemoSettings", "create_app", "demo_launch_urls", "demo_settings",
           "with_demo_app"]

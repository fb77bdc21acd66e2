"""`smartrealm serve`, `smartrealm demo` and the per-component entry `serve` starts: the
composition root, where the AS, the demo app and the FHIR servers are assembled."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from starlette.types import ASGIApp

from smartrealm.cli.common import ConfigOption, console, err_console, fail, load_realm
from smartrealm.demoapp.settings import demo_settings
from smartrealm.realm import tls
from smartrealm.realm.config import ConfigError, RealmConfig
from smartrealm.realm.runner import (
    AUTH_SERVER,
    Launch,
    RealmStartError,
    components,
    free_ports,
    running_realm,
    stop_on_signals,
    watch,
)


def register(root: typer.Typer) -> None:
    root.command()(serve)
    root.command()(demo)
    root.command("run-component", hidden=True)(run_component)


def _load(config: Path | None) -> RealmConfig:
    """The realm, for commands that serve it: https components also need [tls]."""
    realm = load_realm(config)
    try:
        tls.require_for(realm.tls, realm.component_urls())
    except ConfigError as exc:
        raise fail(f"[red]config error[/red] {exc.key}: {exc.problem}", 2) from None
    return realm


def serve(config: ConfigOption = None,
          data_dir: Annotated[Path | None, typer.Option(help="State directory "
                              "(default: realm.data_dir, ./.smartrealm).")] = None) -> None:
    """Run the realm: the authorization server and every FHIR server, each on its own port."""
    realm = _load(config)
    if data_dir is not None:
        realm = realm.relocated({}, data_dir.resolve())
    launch = Launch(config.resolve() if config else None, {}, realm.data_dir)
    stop_on_signals()
    started = False
    try:
        with running_realm(realm, launch) as running:
            # Running from here on: a Ctrl-C that lands while the table is printed, before
            # watch() waits, is an ordinary stop, not one during start-up.
            started = True
            print_realm(realm)
            reason = watch(running)
    except RealmStartError as exc:
        err_console.print(f"[red]could not start the realm:[/red] {exc}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        reason = "interrupted" if started else "interrupted during start-up"
    console.print(f"stopped ({reason})")
    if reason.startswith("interrupted"):
        return
    raise typer.Exit(1)


def print_realm(realm: RealmConfig) -> None:
    table = Table(title=f"{realm.name} is running", title_justify="left")
    table.add_column("component")
    table.add_column("URL")
    for component in components(realm):
        label = "authorization server" if component.name == AUTH_SERVER else component.name
        table.add_row(label, component.url)
    table.add_row("brands bundle", realm.auth_server.brands_url)
    demo_app = demo_settings(realm)
    if demo_app is not None:
        table.add_row("demo app", demo_app.base_url + "/")
    console.print(table)
    for user in realm.users:
        console.print(f"  user [bold]{user.username}[/bold] / password {user.password} "
                      f"({user.fhir_user} on {user.fhir_user_server})")
    console.print(f"  state in {realm.data_dir}   ·   Ctrl-C stops the realm")


def demo(config: ConfigOption = None,
         keep: Annotated[bool, typer.Option(help="Keep the temporary data directory.")] = False
         ) -> None:
    """Start the realm on free loopback ports and play the whole multi-server flow."""
    from smartrealm.devtools.demo import run_demo

    realm = _load(config)
    data_dir = Path(tempfile.mkdtemp(prefix="smartrealm-demo-"))
    ports = free_ports([AUTH_SERVER, *(rs.id for rs in realm.resource_servers)])
    realm = realm.relocated(ports, data_dir)
    launch = Launch(config.resolve() if config else None, ports, data_dir)
    ok = run_demo(realm, launch, console)
    if keep:
        console.print(f"data kept in {data_dir}")
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
    raise typer.Exit(0 if ok else 1)


def run_component(name: str, config: ConfigOption = None,
                  ports: Annotated[str, typer.Option(help="JSON {component: port}")] = "{}",
                  data_dir: Annotated[Path | None, typer.Option()] = None) -> None:
    """Serve one component of the realm (started by `serve` and `demo`)."""
    import uvicorn

    realm = _load(config).relocated(json.loads(ports), data_dir)
    component = next((c for c in components(realm) if c.name == name), None)
    if component is None:
        err_console.print(f"unknown component {name!r}")
        raise typer.Exit(2)
    asgi = _build(realm, name)
    # No access log: request lines can carry authorization codes and other secrets.
    settings = uvicorn.Config(asgi, host=component.host, port=component.port,
                              log_level="warning", access_log=False, lifespan="on",
                              **tls.uvicorn_options(realm.tls, component.url))
    tls.enforce_minimum_version(settings)  # §12.1: TLS 1.2 or later only
    uvicorn.Server(settings).run()


def _build(realm: RealmConfig, name: str) -> ASGIApp:
    if name == AUTH_SERVER:
        from smartrealm.authz.app import build_auth_server
        from smartrealm.demoapp import demo_launch_urls, with_demo_app

        # The demo app (a registered client) is served by the AS process at /demo-app.
        return with_demo_app(realm, build_auth_server(realm,
                                                      launch_urls=demo_launch_urls(realm)))
    from smartrealm.fhir.app import build_resource_server

    return build_resource_server(realm, name)

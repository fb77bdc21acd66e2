"""`smartrealm serve`, `smartrealm demo` and the per-component entry `serve` starts: the
composition root, where the AS, the demo app and the FHIR servers are assembled."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from starlette.types import ASGIApp

from smartrealm.cli.common import ConfigOption, console, err_console, fail, load_realm
from smartrealm.demoapp.settings import demo_settings
from smartrealm.oauth.key_sealing import KeysLocked
from smartrealm.realm import tls
from smartrealm.realm.config import ConfigError, RealmConfig
from smartrealm.realm.runner import (
    AUTH_SERVER,
    Component,
    Launch,
    RealmStartError,
    components,
    free_ports,
    running_realm,
    stop_on_signals,
    watch,
)
from smartrealm.realm.toml_values import parse_listen
from smartrealm.serving.health import HealthFront, Readiness, ReadyCheck
from smartrealm.serving.metrics import MULTIPROCESS_ENV
from smartrealm.serving.observe import RequestObserver, use_json_logs
from smartrealm.serving.settings import listener_options
from smartrealm.storage.schema import SchemaMismatch

if TYPE_CHECKING:
    from uvicorn.supervisors import Multiprocess


def register(root: typer.Typer) -> None:
    root.command()(serve)
    root.command()(demo)
    root.command("run-component", hidden=True)(run_component)


def _load(config: Path | None, only: str | None = None, listen_given: bool = False
          ) -> RealmConfig:
    """The realm, for commands that serve it (``only``: one component). An https component
    needs [tls] unless it listens apart from its public URL (a ``listen`` key or --listen):
    TLS then ends at the ingress in front of it."""
    realm = load_realm(config)
    url_keys = {AUTH_SERVER: "auth_server.issuer"}
    url_keys.update({rs.id: f"resource_servers[{i}].base_url"
                     for i, rs in enumerate(realm.resource_servers)})
    served = [c for c in components(realm) if only is None or c.name == only]
    try:
        tls.require_for(realm.tls, {url_keys[c.name]: c.url for c in served
                                    if c.listen is None and not listen_given})
    except ConfigError as exc:
        raise fail(f"[red]config error[/red] {exc.key}: {exc.problem}", 2) from None
    return realm


class LogFormat(StrEnum):
    text = "text"  # no request lines (the default: nothing to leak)
    json = "json"


ComponentOption = Annotated[str | None, typer.Option(
    "--component", help="Serve only this component: auth_server or a resource server id.")]
ListenOption = Annotated[str | None, typer.Option(
    "--listen", help="HOST:PORT to listen on (with --component); the public URL stays the "
                     "one in the realm file.")]
WorkersOption = Annotated[int, typer.Option(
    "--workers", min=1, max=64, help="Worker processes (with --component; PostgreSQL only).")]
LogFormatOption = Annotated[LogFormat, typer.Option(
    "--log-format", help="json: one JSON object per request on stdout (no secrets).")]


def serve(config: ConfigOption = None,
          data_dir: Annotated[Path | None, typer.Option(help="State directory "
                              "(default: realm.data_dir, ./.smartrealm).")] = None,
          component: ComponentOption = None, listen: ListenOption = None,
          workers: WorkersOption = 1, log_format: LogFormatOption = LogFormat.text) -> None:
    """Run the realm: the authorization server and every FHIR server, each on its own port;
    or, with --component, one of them in this process (behind a load balancer, say)."""
    if component is None and (listen is not None or workers != 1):
        raise fail("--listen and --workers apply to one component: add --component NAME", 2)
    realm = _load(config, component, listen is not None)
    if data_dir is not None:
        realm = realm.relocated({}, data_dir.resolve())
    launch = Launch(config.resolve() if config else None, {}, realm.data_dir, log_format.value)
    if component is not None:
        serve_component(realm, launch, component, listen, workers)
        return
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
                  data_dir: Annotated[Path | None, typer.Option()] = None,
                  log_format: LogFormatOption = LogFormat.text) -> None:
    """Serve one component of the realm (started by `serve` and `demo`)."""
    ports_map = json.loads(ports)
    realm = _load(config).relocated(ports_map, data_dir)
    serve_component(realm, Launch(config, ports_map, realm.data_dir, log_format.value), name,
                    None, 1)


def serve_component(realm: RealmConfig, launch: Launch, name: str, listen: str | None,
                    workers: int) -> None:
    """One component in this process: uvicorn on its listen address, /healthz and /readyz
    in front (serving/health.py), N workers sharing the socket when asked."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    component = _component(realm, name)
    try:
        host, port = parse_listen(listen) if listen else (component.host, component.port)
    except ValueError as exc:
        raise fail(f"--listen: {exc}", 2) from None
    options = listener_options(realm, component, host, port)
    if workers > 1:
        _check_workers(realm, name, options)
    if workers == 1:
        with _start_errors():
            app = component_app(realm, name, launch.log_format == "json")
        settings = uvicorn.Config(app, **options)
        tls.enforce_minimum_version(settings)  # §12.1: TLS 1.2 or later only
        uvicorn.Server(settings).run()
        return
    # Schemas, tables, first keys and seeds are made once, here, before the workers start:
    # N workers doing it at once on an empty database would race (CREATE SCHEMA, the
    # first signing key). Each worker then builds the component itself from the same realm
    # (component_from_env).
    with _start_errors():
        _build(realm, name)
    os.environ[_SPEC_ENV] = json.dumps({"name": name, **launch.spec()})
    settings = uvicorn.Config(f"{__name__}:component_from_env", factory=True,
                              workers=workers, **options)
    with _metrics_shared_by_workers():
        _supervise(Multiprocess(settings, sockets=[settings.bind_socket()]))


def _supervise(supervisor: Multiprocess) -> None:
    """uvicorn's supervisor, with one change: a second SIGTERM or SIGINT reaches the workers.
    The supervisor only queues signals and reads the queue between its checks; once it has
    passed the first SIGTERM on, it waits for the workers and reads nothing more, so a second
    one (`docker stop` after its grace, an impatient operator) would never cut their drain
    short as it does for a single process (serving/health.py)."""
    queue = signal.getsignal(signal.SIGTERM)

    def on_stop(signum: int, frame: FrameType | None) -> None:
        if supervisor.should_exit.is_set():
            for worker in supervisor.processes:
                if worker.pid is not None and worker.exitcode is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(worker.pid, signal.SIGTERM)
        elif callable(queue):
            queue(signum, frame)

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    supervisor.run()


@contextmanager
def _start_errors() -> Iterator[None]:
    """What stops a component before it serves, said plainly (exit code 2)."""
    try:
        yield
    except KeysLocked as exc:
        raise fail(f"[red]keys locked[/red] {exc}", 2) from None
    except SchemaMismatch as exc:
        raise fail(f"[red]schema[/red] {exc}", 2) from None
    except ConfigError as exc:
        raise fail(f"[red]config error[/red] {exc.key}: {exc.problem}", 2) from None


@contextmanager
def _metrics_shared_by_workers() -> Iterator[None]:
    """prometheus_client's multiprocess mode: each worker writes its samples under one
    directory, and /metrics merges them. A fresh directory per start (unless the operator
    chose one), removed at exit, so counters never mix two runs."""
    if os.environ.get(MULTIPROCESS_ENV):
        yield
        return
    directory = tempfile.mkdtemp(prefix="smartrealm-metrics-")
    os.environ[MULTIPROCESS_ENV] = directory
    try:
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _component(realm: RealmConfig, name: str) -> Component:
    found = next((c for c in components(realm) if c.name == name), None)
    if found is None:
        names = ", ".join(c.name for c in components(realm))
        raise fail(f"unknown component {name!r} (expected one of: {names})", 2)
    return found


def _check_workers(realm: RealmConfig, name: str, options: dict[str, Any]) -> None:
    """Several workers are one service only where their state is shared safely."""
    url = realm.database_url_for(None if name == AUTH_SERVER else name)
    if url.startswith("sqlite"):
        raise fail("--workers above 1 needs PostgreSQL (database.url in the realm file): on "
                   "SQLite the workers would not share locks (conditional create), so run "
                   "one worker per component", 2)
    if "ssl_certfile" in options:
        raise fail("--workers above 1 serves plain HTTP only: terminate TLS at the ingress "
                   "(no tls table in the realm file) or run one worker", 2)


_SPEC_ENV = "SMARTREALM_COMPONENT_SPEC"


def component_from_env() -> ASGIApp:
    """The uvicorn factory of each worker: the realm rebuilt from the parent's launch."""
    spec = json.loads(os.environ[_SPEC_ENV])
    launch = Launch.from_spec(spec)
    realm = _load(launch.config_path, spec["name"], True).relocated(launch.ports,
                                                                   launch.data_dir)
    return component_app(realm, spec["name"], launch.log_format == "json")


def component_app(realm: RealmConfig, name: str, json_logs: bool = False) -> ASGIApp:
    """The component's app, observed (request id, metrics, JSON request logs), behind
    /healthz, /readyz and /metrics."""
    app, checks = _build(realm, name)
    deployment = realm.deployment
    if json_logs:
        use_json_logs()
    return HealthFront(RequestObserver(app, name, json_logs), Readiness(checks),
                       deployment.drain_seconds, deployment.metrics_networks)


def _build(realm: RealmConfig, name: str) -> tuple[ASGIApp, dict[str, ReadyCheck]]:
    if name == AUTH_SERVER:
        from smartrealm.authz.app import build_auth_server
        from smartrealm.demoapp import demo_launch_urls, with_demo_app

        auth = build_auth_server(realm, launch_urls=demo_launch_urls(realm))
        # The demo app (a registered client) is served by the AS process at /demo-app.
        return with_demo_app(realm, auth), dict(auth.state.ready_checks)
    from smartrealm.fhir.app import build_resource_server

    server = build_resource_server(realm, name)
    return server, dict(getattr(server.state, "ready_checks", {}))

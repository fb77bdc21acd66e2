"""`smartrealm app`: the realm as an app developer meets it.

* ``connect ISS`` — discover, decide on token reuse, plan the scopes, authorize through the
  browser with a loopback redirect, store the tokens under an alias;
* ``get ISS-OR-ALIAS PATH`` — read or search with the stored token (one refresh on 401);
* ``token [ALIAS]`` — audience, expiry, per-server scopes and patient, client id.

Tokens live in ``$SMARTREALM_HOME`` (default ``~/.config/smartrealm``), mode 0600, and are
never printed. Errors are one line on stderr and a non-zero exit (1: the operation failed,
2: wrong usage such as an unknown alias, 130: cancelled with Ctrl-C)."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import httpx
import typer
from rich.markup import escape

from smartrealm.appcli.connect import DEFAULT_SCOPE, ConnectError, ConnectOptions, connect
from smartrealm.appcli.fetch import AppUsageError, find_connection, get
from smartrealm.appcli.profile import Profile
from smartrealm.appcli.report import print_connection
from smartrealm.cli.common import console, fail

T = TypeVar("T")

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Use the realm as an app: connect (authorize), get FHIR data, "
                       "show the stored token.")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; every expected failure becomes a message and exit code."""
    from smartrealm.client.errors import SmartClientError
    from smartrealm.devtools.useragent import UserAgentError

    interruptible()
    try:
        return asyncio.run(coroutine)
    except KeyboardInterrupt:
        raise fail("[yellow]cancelled[/yellow]", 130) from None
    except AppUsageError as exc:
        raise fail(f"[red]error:[/red] {escape(str(exc))}", 2) from None
    except (SmartClientError, ConnectError, UserAgentError, httpx.HTTPError, OSError) as exc:
        raise fail(f"[red]error:[/red] {type(exc).__name__}: {escape(str(exc))}", 1) from None


def interruptible() -> None:
    """Make Ctrl-C and ``kill -INT`` cancel the command even when it was started in the
    background by a non-interactive shell (``cmd &``, nohup, some CI runners): such a child
    inherits SIGINT as *ignored*, Python then installs no handler, and asyncio.run only turns
    SIGINT into a cancellation when the default handler is in place (it checks for
    ``signal.default_int_handler``). Without this, `app connect` would sit out its whole
    timeout and exit 1."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


@app.command("connect")
def connect_command(
    iss: Annotated[str, typer.Argument(help="FHIR base URL of the first server (the ISS).")],
    scope: Annotated[str, typer.Option(help="Scopes the app wants (space-separated).")
                     ] = DEFAULT_SCOPE,
    server: Annotated[list[str] | None, typer.Option(
        "--server", help="Another FHIR base to include (repeatable; default: the ISS's "
                         "associated_endpoints).")] = None,
    brands: Annotated[bool, typer.Option(help="Also include the endpoints of the ISS's "
                                         "brands bundle.")] = False,
    client_id: Annotated[str | None, typer.Option(help="A registered public client (default: "
                         "register one via RFC 7591).")] = None,
    alias: Annotated[str | None, typer.Option(help="Name to store the tokens under "
                     "(default: derived from ISS).")] = None,
    browser: Annotated[bool, typer.Option(help="Open the browser (--no-browser: only print "
                                          "the URL).")] = True,
    port: Annotated[int, typer.Option(help="Loopback port for the redirect (0: any free).",
                                      min=0, max=65535)] = 0,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the sign-in.", min=1)
                       ] = 300.0,
) -> None:
    """Authorize this app at ISS (and its associated servers) and store the tokens."""
    options = ConnectOptions(iss=iss, servers=tuple(server or ()), scope=scope,
                             client_id=client_id, alias=alias, open_browser=browser,
                             port=port, timeout=timeout, brands=brands)
    _run(connect(options, Profile(), console))


@app.command("get")
def get_command(
    iss_or_alias: Annotated[str, typer.Argument(metavar="ISS-OR-ALIAS")],
    path: Annotated[str, typer.Argument(help="TYPE/ID, TYPE or TYPE?QUERY, e.g. "
                                        "Patient/p0012 or Observation?category=vital-signs")],
    server: Annotated[str | None, typer.Option(help="FHIR base to read from (default: the "
                                               "ISS of the connection).")] = None,
) -> None:
    """Read or search with the stored token; prints the JSON."""
    body = _run(get(Profile(), iss_or_alias, path, server))
    print(json.dumps(body, indent=2))


@app.command("token")
def token_command(
    alias: Annotated[str | None, typer.Argument(help="Alias or ISS (default: all).")] = None,
) -> None:
    """Show the stored grants: audience, expiry, per-server scopes and patient, client id."""
    _run(_show_tokens(alias))


async def _show_tokens(alias: str | None) -> None:
    profile = Profile()
    if alias is not None:
        connections = [find_connection(profile, alias)]
    else:
        connections = list(profile.connections().values())
        if not connections:
            raise AppUsageError("no stored connections; run `smartrealm app connect ISS`")
    for connection in connections:
        tokens = {g.key: profile.tokens.load(g.key) for g in connection.grants}
        print_connection(connection, tokens, console)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="app")  # an app developer's view of the realm

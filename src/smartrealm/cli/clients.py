"""`smartrealm client add|list|remove`: the realm's registered clients, managed directly in
the realm database (the AS does not need to run; a running AS sees changes at once).

``add`` validates exactly like dynamic registration (RFC 7591, ``oauth.registration``), so
the command and ``/register`` accept and refuse the same clients.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from smartrealm.authz.app import client_secrets, key_store
from smartrealm.authz.initial_tokens import InitialAccessToken
from smartrealm.authz.stores.sql import sql_stores
from smartrealm.authz.stores.sql_initial_tokens import SqlInitialTokenStore
from smartrealm.cli.common import ConfigOption, DataDirOption, console
from smartrealm.cli.common import fail as _fail
from smartrealm.cli.common import load_realm as _realm
from smartrealm.core.defaults import INITIAL_TOKEN_MAX_LIFETIME as MAX_TOKEN_LIFETIME
from smartrealm.core.defaults import INITIAL_TOKEN_MAX_USES as MAX_TOKEN_USES
from smartrealm.oauth.errors import OAuthError
from smartrealm.oauth.registration import OPERATOR, PRIVILEGES, Registration
from smartrealm.oauth.registration import register as register_client
from smartrealm.oauth.store import PRIVATE_KEY_JWT, PUBLIC, SECRET_BASIC, Client, ClientStore
from smartrealm.realm.config import RealmConfig
from smartrealm.storage import make_engine

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Register, list and remove the realm's OAuth clients.")
tokens_app = typer.Typer(add_completion=False, no_args_is_help=True,
                         help="Initial access tokens for /register (RFC 7591 §3).")
app.add_typer(tokens_app, name="initial-token")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _database_exists(realm: RealmConfig) -> bool:
    url = make_url(realm.database_url_for(None))
    if url.get_backend_name() != "sqlite" or not url.database:
        return True  # a server database: the connection tells
    return Path(url.database).exists()


@contextmanager
def _engine(realm: RealmConfig) -> Iterator[Engine]:
    """The realm database; database trouble ends the command cleanly."""
    engine = None
    try:
        engine = make_engine(realm.database_url_for(None))
        yield engine
    except SQLAlchemyError as exc:
        raise _fail(f"[red]database error[/red] {type(exc).__name__}: "
                    f"{str(exc).splitlines()[0]}") from None
    finally:
        if engine is not None:
            engine.dispose()


@contextmanager
def _clients(realm: RealmConfig) -> Iterator[ClientStore]:
    with _engine(realm) as engine:
        yield sql_stores(engine).clients


def _auth_method(public: bool, secret: bool, jwks_uri: str | None,
                 jwks_file: Path | None) -> str:
    chosen = [flag for flag, on in (("--public", public), ("--secret", secret),
                                    ("--jwks-uri", jwks_uri is not None),
                                    ("--jwks-file", jwks_file is not None)) if on]
    if len(chosen) > 1:
        raise _fail(f"[red]choose one of[/red] {', '.join(chosen)}", 2)
    if secret:
        return SECRET_BASIC
    return PRIVATE_KEY_JWT if jwks_uri is not None or jwks_file is not None else PUBLIC


def _read_jwks(path: Path) -> dict[str, Any]:
    """A JWK Set file, or a single JWK (wrapped into a set)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"[red]cannot read[/red] {path}: {exc}", 2) from None
    except ValueError as exc:
        raise _fail(f"[red]{path} is not JSON[/red]: {exc}", 2) from None
    if isinstance(data, dict) and "keys" not in data and "kty" in data:
        return {"keys": [data]}
    if not isinstance(data, dict):
        raise _fail(f"[red]{path}[/red] must hold a JWK Set or a JWK", 2)
    return data


@app.command("add")
def add(name: Annotated[str, typer.Option(help="The client's display name.")],
        redirect_uri: Annotated[list[str] | None, typer.Option(
            help="A redirect URI (repeat for several).")] = None,
        public: Annotated[bool, typer.Option(
            "--public", help="A public client (the default): no credentials.")] = False,
        secret: Annotated[bool, typer.Option(
            "--secret", help="A confidential client with a generated secret.")] = False,
        jwks_uri: Annotated[str | None, typer.Option(
            help="private_key_jwt: the URL of the client's JWK Set.")] = None,
        jwks_file: Annotated[Path | None, typer.Option(
            help="private_key_jwt: a file with the client's public JWK Set.",
            dir_okay=False)] = None,
        grant_type: Annotated[list[str] | None, typer.Option(
            help="authorization_code, refresh_token or client_credentials (repeatable; "
                 "default: authorization_code and refresh_token).")] = None,
        scope: Annotated[str, typer.Option(help="The most the client may be granted.")] = "",
        server: Annotated[list[str] | None, typer.Option(
            help="A server id or base URL the client may use (repeatable; default: all).")
        ] = None,
        client_id: Annotated[str | None, typer.Option(
            help="The client_id (default: generated).")] = None,
        config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Register a client."""
    realm = _realm(config, data_dir)
    meta: dict[str, Any] = {"client_name": name, "redirect_uris": redirect_uri or [],
                            "token_endpoint_auth_method": _auth_method(public, secret,
                                                                       jwks_uri, jwks_file),
                            "scope": scope, "allowed_servers": server or []}
    if grant_type:
        meta["grant_types"] = grant_type
    if jwks_uri is not None:
        meta["jwks_uri"] = jwks_uri
    if jwks_file is not None:
        meta["jwks"] = _read_jwks(jwks_file)
    with _engine(realm) as engine:  # the secret's hash key is in the realm's key store
        secrets = client_secrets(key_store(realm, engine))
    try:
        # The operator may give every privilege (registration.PRIVILEGES).
        registration = register_client(meta, int(time.time()), realm, client_id, OPERATOR,
                                secrets=secrets)
    except OAuthError as exc:
        raise _fail(f"[red]{exc.error}[/red] {exc.description}", 2) from None
    with _clients(realm) as clients:
        if clients.get(registration.client.client_id) is not None:
            raise _fail(f"[red]client {registration.client.client_id!r} already exists[/red]")
        clients.put(registration.client)
    _print_registered(registration)


def _print_registered(registration: Registration) -> None:
    client = registration.client
    console.print(f"registered [bold]{client.name}[/bold]")
    console.print(f"  client_id      {client.client_id}")
    console.print(f"  auth method    {client.auth_method}")
    console.print(f"  grant types    {' '.join(client.grant_types)}")
    if registration.secret is not None:
        console.print(f"  client_secret  {registration.secret}")
        console.print("  [yellow]The secret is shown only now; the realm keeps only its "
                      "hash.[/yellow]")


def _configured(realm: RealmConfig) -> set[str]:
    return {c.client_id for c in realm.clients}


@app.command("list")
def list_clients(config: ConfigOption = None, data_dir: DataDirOption = None,
                 as_json: Annotated[bool, typer.Option(
                     "--json", help="One JSON object per client (RFC 7591 names).")] = False
                 ) -> None:
    """Show the registered clients."""
    realm = _realm(config, data_dir)
    found: list[Client] = []
    if _database_exists(realm):
        with _clients(realm) as store:
            found = store.all()
    if as_json:
        print(json.dumps([_metadata(c) for c in found], indent=2))
        return
    if not found:
        console.print(f"no clients yet in {realm.data_dir}")
        return
    table = Table(title=f"clients of {realm.name}", title_justify="left")
    table.add_column("client_id", no_wrap=True)  # copied from here: never cut short
    for column in ("name", "auth method", "grant types", "scope", "servers", "redirect URIs",
                   "source"):
        table.add_column(column, overflow="fold")
    configured = _configured(realm)
    for c in found:
        table.add_row(*_row(c, "config" if c.client_id in configured else "registered"))
    console.print(table)


def _metadata(c: Client) -> dict[str, Any]:
    """The client's metadata as registration answers it, without any secret."""
    body = Registration(c, None).response()
    del body["client_id_issued_at"]
    return body


def _row(c: Client, source: str) -> tuple[str, ...]:
    keys = c.jwks_uri or ("jwks" if c.jwks is not None else "")
    method = f"{c.auth_method} ({keys})" if keys else c.auth_method
    return (c.client_id, c.name, method, " ".join(c.grant_types), c.scope or "(any)",
            " ".join(c.allowed_servers) or "(all)", "\n".join(c.redirect_uris), source)


@app.command("remove")
def remove(client_id: Annotated[str, typer.Argument(help="The client to remove.")],
           config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Remove a client: its credentials and refresh tokens stop working at once."""
    realm = _realm(config, data_dir)
    if client_id in _configured(realm):
        raise _fail(f"[red]{client_id!r} is defined in the realm configuration[/red] "
                    f"({realm.source}); remove it there — the AS restores it at start-up")
    if not _database_exists(realm):
        raise _fail(f"[red]no client {client_id!r}[/red] (no realm database in "
                    f"{realm.data_dir})")
    with _clients(realm) as store:
        removed = store.delete(client_id)
    if not removed:
        raise _fail(f"[red]no client {client_id!r}[/red]")
    console.print(f"removed client {client_id}")


# ---------------------------------------------------------------- initial access tokens


def _duration(text: str) -> int:
    """``90``, ``90s``, ``30m``, ``12h`` or ``7d`` as seconds, at most 30 days."""
    text = text.strip().lower()
    number, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS else (text, "s")
    if not number.isdigit() or int(number) == 0:
        raise _fail(f"[red]--expires-in[/red] {text!r}: give e.g. 3600, 30m, 12h or 7d", 2)
    seconds = int(number) * _UNITS[unit]
    if seconds > MAX_TOKEN_LIFETIME:
        raise _fail("[red]--expires-in[/red] must be at most 30d", 2)
    return seconds


def _when(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(epoch))


@tokens_app.command("issue")
def issue_token(
        allow: Annotated[list[str] | None, typer.Option(
            help="A privilege registrations with this token may give the client: "
                 + "; ".join(f"{k}: {v}" for k, v in PRIVILEGES.items())
                 + " (repeatable; default: none, ordinary apps only).")] = None,
        expires_in: Annotated[str, typer.Option(
            help="How long the token is valid: seconds, or 30m, 12h, 7d (max 30d).")] = "24h",
        uses: Annotated[int, typer.Option(
            help="How many registrations it allows.", min=1, max=MAX_TOKEN_USES)] = 1,
        label: Annotated[str, typer.Option(help="A note: who it is for.")] = "",
        config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Issue an initial access token: sent as `Authorization: Bearer` to /register, it
    allows registrations even when open registration is closed, with the privileges given
    here. Only its hash is stored; the token is shown once."""
    realm = _realm(config, data_dir)
    allows = frozenset(allow or [])
    unknown = sorted(allows - set(PRIVILEGES))
    if unknown:
        raise _fail(f"[red]--allow[/red] {', '.join(unknown)}: choose from "
                    f"{', '.join(PRIVILEGES)}", 2)
    now = int(time.time())
    with _engine(realm) as engine:
        value, token = SqlInitialTokenStore.create(engine).issue(
            allows, now + _duration(expires_in), uses, label, now)
    console.print(f"initial access token [bold]{token.id}[/bold]")
    console.print(f"  allows      {' '.join(sorted(token.allows)) or '(no privileges)'}")
    console.print(f"  expires     {_when(token.expires_at)}")
    console.print(f"  uses        {token.uses_left}")
    console.print(f"  register at {realm.auth_server.registration_endpoint} with")
    console.print(f"  Authorization: Bearer {value}", soft_wrap=True)
    console.print("  [yellow]The token is shown only now; the realm keeps only its "
                  "hash.[/yellow]")


def _token_row(t: InitialAccessToken, now: int) -> tuple[str, ...]:
    state = "active" if t.active(now) else ("used up" if t.uses_left == 0 else "expired")
    return (t.id, " ".join(sorted(t.allows)) or "(none)", _when(t.expires_at),
            str(t.uses_left), state, t.label)


@tokens_app.command("list")
def list_tokens(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Show the initial access tokens (never their values)."""
    realm = _realm(config, data_dir)
    found: list[InitialAccessToken] = []
    if _database_exists(realm):
        with _engine(realm) as engine:
            found = SqlInitialTokenStore.create(engine).all()
    if not found:
        console.print("no initial access tokens")
        return
    table = Table(title="initial access tokens", title_justify="left")
    for column in ("id", "allows", "expires", "uses left", "state", "label"):
        table.add_column(column, overflow="fold")
    now = int(time.time())
    for token in found:
        table.add_row(*_token_row(token, now))
    console.print(table)


@tokens_app.command("revoke")
def revoke_token(token_id: Annotated[str, typer.Argument(help="The token's id (list).")],
                 config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Revoke an initial access token: it stops working at once."""
    realm = _realm(config, data_dir)
    with _engine(realm) as engine:
        removed = SqlInitialTokenStore.create(engine).revoke(token_id)
    if not removed:
        raise _fail(f"[red]no initial access token {token_id!r}[/red]")
    console.print(f"revoked initial access token {token_id}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="client")

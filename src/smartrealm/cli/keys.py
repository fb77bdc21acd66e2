"""`smartrealm keys list|rotate|encrypt`: the AS's signing keys, managed directly in the realm's key
storage (the realm database, or the ``key_storage`` directory). The AS need not run; a
running AS picks a rotation up within a few seconds (``oauth.key_rotation``).

`smartrealm purge`: delete expired state from the realm database once, now. A running AS
does the same every few minutes (``authz.maintenance``); this is for a stopped realm or cron.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from smartrealm.authz.maintenance import purge as purge_stores
from smartrealm.authz.stores.sql import sql_stores
from smartrealm.cli.common import ConfigOption, DataDirOption, console
from smartrealm.cli.common import fail as fail
from smartrealm.cli.common import load_realm as load_realm
from smartrealm.core.defaults import KEY_RELOAD_INTERVAL as RELOAD_INTERVAL
from smartrealm.oauth.key_rotation import (
    key_statuses,
    max_token_lifetime,
    prune,
    rotate,
)
from smartrealm.oauth.key_sealing import KeysLocked
from smartrealm.oauth.keys import DirectoryKeyStore
from smartrealm.realm.config import ConfigError, RealmConfig
from smartrealm.storage import make_engine
from smartrealm.storage.key_store import KEK_ENV, KEK_FILE_ENV, SqlKeyStore, key_store_for

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="List and rotate the authorization server's signing keys.")


def check_state_exists(realm: RealmConfig) -> None:
    """Refuse to create a new, empty realm state by mistake (a wrong --data-dir)."""
    url = make_url(realm.database_url_for(None))
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        raise fail(f"no realm state at {url.database}: start the realm once, or pass "
                    "--config/--data-dir of an existing realm")


@contextmanager
def _keys(realm: RealmConfig, *, allow_clear: bool = False
          ) -> Iterator[SqlKeyStore | DirectoryKeyStore]:
    check_state_exists(realm)
    engine = None
    try:
        engine = make_engine(realm.database_url_for(None))
        yield key_store_for(realm, engine, allow_clear=allow_clear)
    except SQLAlchemyError as exc:
        raise fail(f"[red]database error[/red] {type(exc).__name__}: "
                    f"{str(exc).splitlines()[0]}") from None
    except KeysLocked as exc:
        raise fail(f"[red]keys locked[/red] {exc}", 2) from None
    except ConfigError as exc:
        raise fail(f"[red]config error[/red] {exc.key}: {exc.problem}", 2) from None
    finally:
        if engine is not None:
            engine.dispose()


def _when(moment: int | None) -> str:
    if moment is None:
        return "-"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S")


STATES = {"pending": "published, not yet signing", "signing": "signing",
          "retired": "retired, published", "expired": "expired, not published"}


@app.command("list")
def list_keys(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Every stored key: the one that signs, and retired keys still published in /jwks."""
    realm = load_realm(config, data_dir)
    lifetime = max_token_lifetime(realm.auth_server.access_token_lifetime)
    now = int(time.time())
    with _keys(realm) as store:
        statuses = key_statuses(store.load(), lifetime)
    if not statuses:
        console.print("no keys yet: the authorization server creates one when it starts")
        return
    table = Table(title="signing keys (times in UTC)", title_justify="left")
    table.add_column("kid", no_wrap=True)
    for column in ("signs from", "state", "published until"):
        table.add_column(column)
    for s in reversed(statuses):
        table.add_row(s.key.kid, _when(s.key.created_at), STATES[s.state(now)],
                      "-" if s.published_until is None else _when(s.published_until))
    console.print(table)


@app.command("rotate")
def rotate_keys(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Create a new signing key; older keys stay published until their tokens expire."""
    realm = load_realm(config, data_dir)
    lifetime = max_token_lifetime(realm.auth_server.access_token_lifetime)
    with _keys(realm) as store:
        key, dropped = rotate(store, int(time.time()), lifetime)
    console.print(f"new signing key [bold]{key.kid}[/bold]")
    console.print(f"  published within {RELOAD_INTERVAL:.0f} s, signs from "
                  f"{_when(key.created_at)} UTC; the previous key stays in the JWKS until "
                  f"every token it signed has expired (up to {lifetime} s + margin)")
    for kid in dropped:
        console.print(f"  dropped expired key {kid}")


@app.command("encrypt")
def encrypt_keys(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Seal every stored private key and secret with the key-encryption key of the
    environment (SMARTREALM_KEY_ENCRYPTION_KEY or SMARTREALM_KEY_ENCRYPTION_KEY_FILE);
    keys already sealed with it are sealed afresh. Stop the AS first."""
    realm = load_realm(config, data_dir)
    with _keys(realm, allow_clear=True) as store:
        if not store.sealer.seals:
            raise fail(f"no key-encryption key: set {KEK_ENV} (32 bytes in base64, e.g. "
                       f"`openssl rand -base64 32`) or {KEK_FILE_ENV}", 2)
        count = store.reseal()
    console.print(f"sealed {count} stored key(s) with the key-encryption key (AES-256-GCM); "
                  "start the realm with the same key-encryption key set")


def purge(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Delete expired codes, sessions, tokens and replay entries, and unneeded keys."""
    realm = load_realm(config, data_dir)
    lifetime = max_token_lifetime(realm.auth_server.access_token_lifetime)
    with _keys(realm) as store:
        engine = make_engine(realm.database_url_for(None))
        try:
            counts = purge_stores(sql_stores(engine), int(time.time()),
                                  lambda now: prune(store, now, lifetime))
        finally:
            engine.dispose()
    for name, count in sorted(counts.items()):
        console.print(f"{name:<28} {count} deleted")


def register(cli: typer.Typer) -> None:
    """Add `keys list|rotate|encrypt` and `purge` to the `smartrealm` command."""
    cli.add_typer(app, name="keys")
    cli.command("purge")(purge)

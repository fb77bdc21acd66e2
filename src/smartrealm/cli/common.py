"""What every `smartrealm` command shares: the consoles, the --config/--data-dir options and
loading the realm with a key-named error instead of a traceback."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from smartrealm.realm.config import ConfigError, RealmConfig, load_config

# Piped output (CI logs, `make demo | tee`) gets wide lines instead of 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True, highlight=False)

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="Realm TOML file "
                         "(default: the embedded default realm).", dir_okay=False)]
DataDirOption = Annotated[Path | None, typer.Option(help="State directory "
                          "(default: realm.data_dir, ./.smartrealm).")]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` on stderr; the caller raises the returned Exit."""
    err_console.print(message)
    return typer.Exit(code)


def load_realm(config: Path | None, data_dir: Path | None = None) -> RealmConfig:
    try:
        realm = load_config(config)
    except ConfigError as exc:
        raise fail(f"[red]config error[/red] {exc.key}: {exc.problem}", 2) from None
    return realm.relocated({}, data_dir.resolve()) if data_dir is not None else realm

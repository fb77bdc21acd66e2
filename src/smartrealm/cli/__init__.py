"""The `smartrealm` command. Each module of this package adds its commands to the root with
``register(root)``: serve (serve, demo, the per-component entry), clients (client …),
patients (patients …), launch, keys (keys …, purge), fhir_data (load, generate) and
app_commands (app connect|get|token) and migrate."""

from __future__ import annotations

import typer

from smartrealm.cli import (
    app_commands,
    clients,
    fhir_data,
    keys,
    launch,
    migrate,
    patients,
    serve,
)

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="One SMART on FHIR authorization server for a realm of FHIR servers.")
for commands in (serve, clients, patients, app_commands, launch, keys, fhir_data, migrate):
    commands.register(app)


def main() -> None:
    app()

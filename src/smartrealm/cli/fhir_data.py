"""`smartrealm load` and `smartrealm generate`: FHIR data for the realm's servers, offline
(directly in each server's store, like `serve` finds it with the same --config/--data-dir;
a running server sees the loaded data at once).

* `load --server ID FILE`: NDJSON or a Bundle (fhir/rest/loader.py), validated like API writes;
  reports what was stored per type and every rejected resource by line or entry. Exit code
  1 if anything was rejected (the rest is stored), 2 for a bad config, server or file.
* `generate --patients N --out DIR`: the realm's synthetic dataset (realm/sample_data.py:
  linked MRNs, the first six patients with the same id everywhere) as `DIR/<server id>.ndjson`,
  written patient by patient, so N can be large."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from smartrealm.authz.stores.sql_patient_index import SqlPatientIndex
from smartrealm.cli.common import ConfigOption, DataDirOption, console, err_console
from smartrealm.cli.patients import LinkingRepository
from smartrealm.core.profiles import supported_types
from smartrealm.fhir.rest.loader import LoadReport, load, read_items
from smartrealm.fhir.search.params import COMPARTMENT_PARAM
from smartrealm.realm.config import ConfigError, RealmConfig, ResourceServerConfig, load_config
from smartrealm.realm.sample_data import generate_server_data
from smartrealm.storage import make_engine

SHOWN_ERRORS = 50
GENERATE_CHUNK = 200  # patients per generator call


def register(app: typer.Typer) -> None:
    app.command("load")(load_command)
    app.command("generate")(generate_command)


def _realm(config: Path | None, data_dir: Path | None) -> RealmConfig:
    try:
        realm = load_config(config)
    except ConfigError as exc:
        err_console.print(f"[red]config error[/red] {exc.key}: {exc.problem}")
        raise typer.Exit(2) from None
    return realm.relocated({}, data_dir.resolve()) if data_dir is not None else realm


def _server(realm: RealmConfig, server_id: str) -> ResourceServerConfig:
    for rs in realm.resource_servers:
        if rs.id == server_id and rs.mode == "server":
            return rs
        if rs.id == server_id:
            err_console.print(f"server {server_id!r} is a proxy: it has no store to load")
            raise typer.Exit(2)
    known = ", ".join(rs.id for rs in realm.resource_servers)
    err_console.print(f"no resource server {server_id!r} in this realm (known: {known})")
    raise typer.Exit(2)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err_console, transient=True)


def load_command(
        file: Annotated[Path, typer.Argument(help="NDJSON (one resource a line) or a JSON "
                                             "Bundle/resource.", exists=True, dir_okay=False)],
        server: Annotated[str, typer.Option("--server", "-s", help="The resource server "
                                            "id (e.g. ehr).")],
        config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Validate and store FHIR resources in one server's store."""
    realm = _realm(config, data_dir)
    rs = _server(realm, server)
    engine = make_engine(realm.database_url_for(rs.id))
    index_engine = make_engine(realm.database_url_for(None))  # the AS's: patient index
    try:
        # Stored Patients with the realm's identifier are linked (cli/patients.py).
        repository = LinkingRepository(engine, SqlPatientIndex(index_engine), rs.id,
                                       realm.patient_identifier_system)
        repository.create_tables()
        with _progress() as progress:
            task = progress.add_task(f"loading {file.name} into {rs.id}", total=None)
            report = load(repository, read_items(file), supported_types(rs.profile),
                          lambda n: progress.update(task, completed=n))
    except SQLAlchemyError as exc:
        err_console.print(f"[red]database error[/red] {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0]}")
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
        index_engine.dispose()
    _print_report(report, rs)
    console.print(f"{repository.linked} patients linked in the realm's patient index")
    if report.errors:
        raise typer.Exit(1)


def _print_report(report: LoadReport, rs: ResourceServerConfig) -> None:
    table = Table(title=f"stored in {rs.id} ({rs.base_url})", title_justify="left")
    table.add_column("resource type")
    table.add_column("stored", justify="right")
    for resource_type, count in sorted(report.loaded.items()):
        table.add_row(resource_type, str(count))
    table.add_row("[bold]total[/bold]", f"[bold]{report.total}[/bold]")
    console.print(table)
    if not report.errors:
        return
    console.print(f"[red]{len(report.errors)} rejected[/red] (not stored):")
    for where, message in report.errors[:SHOWN_ERRORS]:
        console.print(f"  {where}: {message}", markup=False)
    if len(report.errors) > SHOWN_ERRORS:
        console.print(f"  ... and {len(report.errors) - SHOWN_ERRORS} more")


def generate_command(
        out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the NDJSON "
                                          "files (created).", file_okay=False)],
        patients: Annotated[int, typer.Option("--patients", "-n", min=1, max=10_000_000,
                                              help="How many people.")] = 100,
        config: ConfigOption = None) -> None:
    """Write a synthetic dataset for every server of the realm: DIR/<server id>.ndjson."""
    realm = replace(_realm(config, None), sample_patients=patients)
    out.mkdir(parents=True, exist_ok=True)
    table = Table(title=f"{patients} people", title_justify="left")
    for column in ("server", "file", "resources"):
        table.add_column(column)
    with _progress() as progress:
        for rs in realm.resource_servers:
            if rs.mode != "server" or rs.profile == "empty":
                continue
            path = out / f"{rs.id}.ndjson"
            task = progress.add_task(f"generating {path.name}", total=patients)
            written = write_ndjson(path, stream_dataset(realm, rs.profile, patients,
                                                  lambda n, t=task: progress.update(t,
                                                                                    completed=n)))
            table.add_row(rs.id, str(path), str(written))
    console.print(table)
    console.print(f"load one with: smartrealm load --server <id> {out}/<id>.ndjson")


def stream_dataset(realm: RealmConfig, profile: str, patients: int,
            progress: Any) -> Iterator[dict[str, Any]]:
    """The profile's resources, chunk by chunk; resources shared by all patients (outside
    the Patient compartment: practitioners) only once."""
    shared: set[tuple[str, str]] = set()
    for start in range(1, patients + 1, GENERATE_CHUNK):
        numbers = range(start, min(start + GENERATE_CHUNK, patients + 1))
        for resource in generate_server_data(realm, profile, numbers):
            key = (resource["resourceType"], resource["id"])
            if key[0] not in COMPARTMENT_PARAM:
                if key in shared:
                    continue
                shared.add(key)
            yield resource
        progress(numbers[-1])


def write_ndjson(path: Path, resources: Iterator[dict[str, Any]]) -> int:
    written = 0
    with path.open("w", encoding="utf-8") as stream:
        for resource in resources:
            stream.write(json.dumps(resource, separators=(",", ":"), ensure_ascii=False))
            stream.write("\n")
            written += 1
    return written

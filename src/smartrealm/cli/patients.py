"""`smartrealm patients link|unlink|list|show|rebuild`: the realm's patient index
(authz/patient_index.py), managed directly in the realm database by an operator (the AS need
not run; a running AS uses a change at its next authorization).

The index is what links one person's records on the realm's servers; the AS consults
nothing else. Besides this command, `smartrealm load` records the Patients it stores
(``LinkingRepository`` below) and a realm with sample data links its sample patients.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from smartrealm.authz.patient_index import PatientIndex, PatientLink, links_from
from smartrealm.authz.stores.sql_patient_index import SqlPatientIndex
from smartrealm.cli.common import ConfigOption, DataDirOption, console
from smartrealm.cli.common import fail as _fail
from smartrealm.cli.common import load_realm as _realm
from smartrealm.core.fhir_ids import is_fhir_id
from smartrealm.fhir.sql import SqlResourceRepository
from smartrealm.realm.config import RealmConfig, ResourceServerConfig
from smartrealm.storage import make_engine

REBUILD_PAGE = 500  # Patients read from a store per query

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Link, unlink and list the records of one person across the realm's "
                       "servers (the patient index the authorization server consults).")

ServerOption = Annotated[str, typer.Option("--server", "-s", help="A resource server id "
                                           "(e.g. lab).")]
PatientOption = Annotated[str, typer.Option("--patient", "-p", help="The Patient's id on "
                                            "that server.")]


def _database_error(exc: SQLAlchemyError) -> typer.Exit:
    return _fail(f"[red]database error[/red] {type(exc).__name__}: "
                 f"{str(exc).splitlines()[0]}")


@contextmanager
def _index(realm: RealmConfig) -> Iterator[PatientIndex]:
    """The realm database's patient index; database trouble ends the command cleanly."""
    engine = None
    try:
        engine = make_engine(realm.database_url_for(None))
        yield SqlPatientIndex(engine)
    except SQLAlchemyError as exc:
        raise _database_error(exc) from None
    finally:
        if engine is not None:
            engine.dispose()


def _server(realm: RealmConfig, server_id: str) -> ResourceServerConfig:
    for rs in realm.resource_servers:
        if rs.id == server_id:
            return rs
    known = ", ".join(rs.id for rs in realm.resource_servers)
    raise _fail(f"no resource server {server_id!r} in this realm (known: {known})", 2)


def _patient_id(value: str) -> str:
    if not is_fhir_id(value):
        raise _fail(f"{value[:80]!r} is not a FHIR id", 2)
    return value


def _person(value: str) -> str:
    person = value.strip()
    if not person or len(person) > 255:
        raise _fail("--person must be the identifier's value (1 to 255 characters)", 2)
    return person


def _table(links: list[PatientLink], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("person", "server", "patient", "source", "updated"):
        table.add_column(column)
    for link in links:
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(link.updated_at))
        table.add_row(link.person, link.server_id, link.patient_id, link.source, when)
    return table


def _as_json(links: list[PatientLink]) -> str:
    return json.dumps([{"person": k.person, "server": k.server_id, "patient": k.patient_id,
                        "source": k.source, "updated_at": k.updated_at} for k in links],
                      indent=2)


@app.command("link")
def link(server: ServerOption, patient: PatientOption,
         person: Annotated[str, typer.Option(
             help="The person: the value of the realm's patient identifier (the MRN).")],
         config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Link a record to a person (replaces the record's previous link)."""
    realm = _realm(config, data_dir)
    rs, pid, who = _server(realm, server), _patient_id(patient), _person(person)
    with _index(realm) as index:
        before = index.person_of(rs.id, pid)
        index.link([PatientLink(rs.id, pid, who, "operator", int(time.time()))])
        records = index.records_of(who)
    moved = f" (was {before})" if before not in (None, who) else ""
    console.print(f"linked {rs.id} Patient/{pid} to {who}{moved}", markup=False)
    console.print(_table(records, f"{who} across the realm"))


@app.command("unlink")
def unlink(server: ServerOption, patient: PatientOption,
           config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Remove a record's link: the AS then finds it on no other server."""
    realm = _realm(config, data_dir)
    rs, pid = _server(realm, server), _patient_id(patient)
    with _index(realm) as index:
        removed = index.unlink(rs.id, pid)
    if not removed:
        raise _fail(f"{rs.id} Patient/{pid} is not linked")
    console.print(f"unlinked {rs.id} Patient/{pid}", markup=False)


@app.command("list")
def list_links(server: Annotated[str | None, typer.Option(
                   "--server", "-s", help="Only this server's records.")] = None,
               limit: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
               offset: Annotated[int, typer.Option(min=0)] = 0,
               as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
               config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """The links, by person."""
    realm = _realm(config, data_dir)
    sid = None if server is None else _server(realm, server).id
    with _index(realm) as index:
        links = index.on_server(sid, limit=limit, offset=offset)
        total = index.count(sid)
    if as_json:
        console.print(_as_json(links), markup=False, soft_wrap=True)
        return
    console.print(_table(links, f"{len(links)} of {total} links"
                                f"{'' if sid is None else ' on ' + sid}"))


@app.command("show")
def show(server: Annotated[str | None, typer.Option(
             "--server", "-s", help="With --patient: the record's server.")] = None,
         patient: Annotated[str | None, typer.Option(
             "--patient", "-p", help="A record's id: show its person.")] = None,
         person: Annotated[str | None, typer.Option(help="A person (MRN).")] = None,
         as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
         config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """One person's records on every server (by --person, or by --server and --patient)."""
    realm = _realm(config, data_dir)
    if (person is None) == (server is None or patient is None):
        raise _fail("give either --person, or --server and --patient", 2)
    with _index(realm) as index:
        who = _person(person) if person is not None else index.person_of(
            _server(realm, server or "").id, _patient_id(patient or ""))
        records = [] if who is None else index.records_of(who)
    if not records:
        raise _fail("no such link")
    if as_json:
        console.print(_as_json(records), markup=False, soft_wrap=True)
        return
    console.print(_table(records, f"{who} across the realm"))


@app.command("rebuild")
def rebuild(server: ServerOption, config: ConfigOption = None,
            data_dir: DataDirOption = None) -> None:
    """Replace a built-in server's links with what its store's Patients say now (their
    identifier with the realm's patient_identifier_system). For a proxy, use `link`."""
    realm = _realm(config, data_dir)
    rs = _server(realm, server)
    if rs.mode != "server":
        raise _fail(f"server {rs.id!r} is a proxy: its records are not in a store here; "
                    f"link them with `smartrealm patients link`", 2)
    engine = make_engine(realm.database_url_for(rs.id))
    try:
        repository = SqlResourceRepository(engine)
        repository.create_tables()
        links = links_from(_all_patients(repository), rs.id,
                           realm.patient_identifier_system, "rebuild", int(time.time()))
    except SQLAlchemyError as exc:
        raise _database_error(exc) from None
    finally:
        engine.dispose()
    with _index(realm) as index:
        index.replace_server(rs.id, links)
    console.print(f"{rs.id}: {len(links)} records linked", markup=False)


def _all_patients(repository: SqlResourceRepository) -> Iterator[dict[str, Any]]:
    offset = 0
    while True:
        page, _total = repository.search("Patient", [], count=REBUILD_PAGE, offset=offset)
        yield from page
        if len(page) < REBUILD_PAGE:
            return
        offset += REBUILD_PAGE


# ------------------------------------------------------------------------ smartrealm load


class LinkingRepository(SqlResourceRepository):
    """A server's store that, after each bulk write commits, links the Patients it wrote in
    the realm's patient index (`smartrealm load` is a trusted path: the file's Patients are
    the records the operator vouches for)."""

    def __init__(self, engine: Engine, index: PatientIndex, server_id: str,
                 system: str) -> None:
        super().__init__(engine)
        self._index = index
        self._server_id = server_id
        self._system = system
        self.linked = 0

    def bulk_load(self, resources_: Iterable[dict[str, Any]]) -> int:
        batch = resources_ if isinstance(resources_, list) else list(resources_)
        written = super().bulk_load(batch)
        links = links_from(batch, self._server_id, self._system, "load", int(time.time()))
        if links:
            self.linked += self._index.link(links)
        return written


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="patients")  # the patient index

"""`smartrealm launch`: create an EHR launch (SMART §6.1) directly in the realm database and
print the app URL carrying ``iss`` (the user's EHR base URL) and ``launch``.

Open the printed URL within 5 minutes; the user must then sign in at the AS as ``--user``.
The patient id is checked for syntax only (the realm need not be running); the AS looks the
patient up when the launch is used.
"""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer
from sqlalchemy.exc import SQLAlchemyError

from smartrealm.authz.launch import create_launch
from smartrealm.authz.records import Stores, User
from smartrealm.authz.stores.sql import sql_stores
from smartrealm.cli.common import ConfigOption, DataDirOption, err_console
from smartrealm.cli.common import fail as _fail
from smartrealm.cli.common import load_realm as _realm
from smartrealm.oauth.errors import OAuthError
from smartrealm.oauth.launch_input import parse_launch_input
from smartrealm.realm.config import RealmConfig
from smartrealm.storage import make_engine


def _user(realm: RealmConfig, stores: Stores, username: str) -> User:
    """The stored user, else the configured one (the AS stores them when it starts)."""
    user = stores.users.get(username)
    if user is not None:
        return user
    for u in realm.users:
        if u.username == username:
            return User(u.username, "", u.display_name, u.fhir_user_server, u.fhir_user)
    raise _fail(f"[red]unknown user[/red] {username!r}", 2)


def launch(user: Annotated[str, typer.Option(help="The clinician (or patient) the launch is "
                                             "for; they sign in at the AS.")],
           patient: Annotated[str, typer.Option(help="Patient id on the user's EHR.")],
           app_url: Annotated[str | None, typer.Option("--app", help="The app's launch URL "
                              "(default: the registered launch URL of --client-id).")] = None,
           encounter: Annotated[str | None, typer.Option(help="Encounter id on the EHR.")
                                ] = None,
           client_id: Annotated[str | None, typer.Option(help="Bind the launch to this "
                                "client.")] = None,
           intent: Annotated[str | None, typer.Option(help="SMART intent.")] = None,
           banner: Annotated[bool, typer.Option(help="need_patient_banner.")] = True,
           config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Create an EHR launch and print the app URL with iss and launch (valid 5 minutes)."""
    realm = _realm(config, data_dir)
    options: dict[str, Any] = {"patient": patient, "encounter": encounter,
                               "client_id": client_id, "intent": intent,
                               "launch_url": app_url, "need_patient_banner": banner}
    engine = make_engine(realm.database_url_for(None))
    try:
        spec = parse_launch_input({k: v for k, v in options.items() if v is not None})
        stores = sql_stores(engine)
        created = create_launch(realm, stores, spec, _user(realm, stores, user),
                                int(time.time()))
    except OAuthError as exc:
        raise _fail(f"[red]refused[/red] {exc.description}", 2) from None
    except SQLAlchemyError as exc:
        raise _fail(f"[red]database error[/red] {type(exc).__name__}: "
                    f"{str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()
    # The URL alone on stdout, so that scripts can capture it.
    sys.stdout.write(created.url + "\n")
    err_console.print(f"launch for {user} · patient {patient} · iss {created.iss} · "
                      "valid 5 minutes, single use")


def register(root: typer.Typer) -> None:
    root.command("launch")(launch)

"""Where `smartrealm app` keeps what `connect` obtained: ``$SMARTREALM_HOME`` (default
``$XDG_CONFIG_HOME/smartrealm`` or ``~/.config/smartrealm``) holds ``tokens.json`` (a
``FileTokenStore``) and ``apps.json`` (one ``Connection`` per alias: the ISS, the client id
and, per grant, the token endpoint and the servers its token serves). Both files are 0600."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from smartrealm.client._http import normalize_url
from smartrealm.client.storage import (
    FileTokenStore,
    TokenStoreError,
    read_private_json,
    write_private_file,
)

VERSION = 1


@dataclass(frozen=True)
class Grant:
    """One authorization: its token (stored under ``key``) serves ``servers``."""

    key: str
    client_id: str
    token_endpoint: str
    servers: tuple[str, ...]


@dataclass(frozen=True)
class Connection:
    alias: str
    iss: str
    scope: str
    grants: tuple[Grant, ...]

    def grant_for(self, base_url: str) -> Grant | None:
        wanted = normalize_url(base_url)
        return next((g for g in self.grants
                     if wanted in {normalize_url(s) for s in g.servers}), None)

    @property
    def servers(self) -> list[str]:
        return [s for g in self.grants for s in g.servers]


def home() -> Path:
    explicit = os.environ.get("SMARTREALM_HOME")
    if explicit:
        return Path(explicit)
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "smartrealm"


def default_alias(iss: str) -> str:
    """``http://127.0.0.1:8701/fhir`` → ``127.0.0.1-8701-fhir``."""
    parts = urlsplit(iss)
    return re.sub(r"[^A-Za-z0-9.]+", "-", f"{parts.netloc}{parts.path}").strip("-") or "realm"


class Profile:
    """The connections and tokens under one home directory."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or home()
        self.tokens = FileTokenStore(self.directory / "tokens.json")
        self._apps = self.directory / "apps.json"

    def connections(self) -> dict[str, Connection]:
        data = read_private_json(self._apps)
        if data is None:
            return {}
        try:
            return {alias: _connection(entry) for alias, entry in data["apps"].items()}
        except (KeyError, TypeError, AttributeError) as exc:
            raise TokenStoreError(f"{self._apps}: not a version {VERSION} apps file") from exc

    def save(self, connection: Connection) -> None:
        entries = {a: asdict(c) for a, c in self.connections().items()}
        entries[connection.alias] = asdict(connection)
        text = json.dumps({"version": VERSION, "apps": entries}, indent=2, sort_keys=True)
        write_private_file(self._apps, text + "\n")

    def find(self, iss_or_alias: str) -> Connection | None:
        """By alias, else by the ISS or any server base it serves."""
        connections = self.connections()
        if iss_or_alias in connections:
            return connections[iss_or_alias]
        wanted = normalize_url(iss_or_alias)
        for connection in connections.values():
            if normalize_url(connection.iss) == wanted:
                return connection
        for connection in connections.values():
            if connection.grant_for(iss_or_alias) is not None:
                return connection
        return None


def _connection(entry: dict[str, object]) -> Connection:
    grants = entry["grants"]
    if not isinstance(grants, list):
        raise TypeError("grants")
    return Connection(
        alias=str(entry["alias"]), iss=str(entry["iss"]), scope=str(entry["scope"]),
        grants=tuple(Grant(str(g["key"]), str(g["client_id"]), str(g["token_endpoint"]),
                           tuple(str(s) for s in g["servers"])) for g in grants),
    )

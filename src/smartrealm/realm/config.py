"""Realm configuration: one TOML file describes the AS, every resource server, brands,
storage, demo users and clients. Loading validates everything up front and reports a bad
value by its key (``resource_servers[1].base_url: ...``), never with a traceback."""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

DEFAULT_CONFIG_NAME = "default_realm.toml"
MODES = ("server", "proxy")
PROFILES = ("ehr", "imaging", "lab", "empty")
REGISTRATION_MODES = ("auto", "open", "closed")
# Query parameter of a PostgreSQL URL naming the schema of one component.
SCHEMA_PARAM = "smartrealm_schema"


class ConfigError(Exception):
    """A configuration value is missing or wrong; ``key`` is its dotted path."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def normalize_url(url: str) -> str:
    """Scheme and host lower-cased, no trailing slash: the form compared for audiences
    (design.md: "normalised: scheme and host case, trailing slash")."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class AuthServerConfig:
    issuer: str
    key_storage: str = "database"
    access_token_lifetime: int = 3600

    def url(self, path: str) -> str:
        return self.issuer.rstrip("/") + path

    @property
    def authorization_endpoint(self) -> str:
        return self.url("/authorize")

    @property
    def token_endpoint(self) -> str:
        return self.url("/token")

    @property
    def jwks_uri(self) -> str:
        return self.url("/jwks")

    @property
    def registration_endpoint(self) -> str:
        return self.url("/register")

    @property
    def introspection_endpoint(self) -> str:
        return self.url("/introspect")

    @property
    def revocation_endpoint(self) -> str:
        return self.url("/revoke")

    @property
    def management_endpoint(self) -> str:
        return self.url("/manage")

    @property
    def brands_url(self) -> str:
        return self.url("/brands.json")


@dataclass(frozen=True)
class BrandsConfig:
    organization_name: str
    identifier_system: str
    identifier_value: str
    website: str
    portal_name: str
    portal_url: str


@dataclass(frozen=True)
class ResourceServerConfig:
    id: str
    name: str
    base_url: str
    fhir_version: str = "4.0.1"
    mode: str = "server"
    profile: str = "empty"
    upstream: str = ""
    database_url: str = ""


@dataclass(frozen=True)
class UserConfig:
    username: str
    password: str
    display_name: str
    fhir_user_server: str
    fhir_user: str


@dataclass(frozen=True)
class ClientConfig:
    client_id: str
    name: str
    redirect_uris: tuple[str, ...]
    secret: str = ""
    scope: str = ""
    allowed_servers: tuple[str, ...] = ()


@dataclass(frozen=True)
class RealmConfig:
    name: str
    data_dir: Path
    patient_identifier_system: str
    sample_data: bool
    sample_patients: int
    dynamic_registration: str
    allow_insecure_http: bool
    database_url: str
    auth_server: AuthServerConfig
    brands: BrandsConfig
    resource_servers: tuple[ResourceServerConfig, ...]
    users: tuple[UserConfig, ...] = ()
    clients: tuple[ClientConfig, ...] = ()
    source: str = field(default="<default realm>", compare=False)

    def server(self, server_id: str) -> ResourceServerConfig:
        for rs in self.resource_servers:
            if rs.id == server_id:
                return rs
        raise KeyError(server_id)

    def server_by_url(self, url: str) -> ResourceServerConfig | None:
        wanted = normalize_url(url)
        matches = (rs for rs in self.resource_servers if normalize_url(rs.base_url) == wanted)
        return next(matches, None)

    def database_url_for(self, server_id: str | None = None) -> str:
        """The SQL URL of one component (the AS when ``server_id`` is None). Components never
        share tables: on SQLite each gets its own file, on PostgreSQL its own schema (see
        storage.make_engine), so several servers can use one realm database URL."""
        component = server_id or "auth"
        if server_id is not None and self.server(server_id).database_url:
            return self.server(server_id).database_url
        if not self.database_url:
            return f"sqlite:///{self.data_dir / f'{component}.db'}"
        if self.database_url.startswith("sqlite:///"):
            path = Path(self.database_url.removeprefix("sqlite:///"))
            return f"sqlite:///{path.with_name(f'{path.stem}-{component}{path.suffix}')}"
        joiner = "&" if "?" in self.database_url else "?"
        return f"{self.database_url}{joiner}{SCHEMA_PARAM}={component}"

    def loopback_only(self) -> bool:
        urls = [self.auth_server.issuer, *(rs.base_url for rs in self.resource_servers)]
        return all(is_loopback_url(u) for u in urls)

    def registration_open(self) -> bool:
        if self.dynamic_registration == "auto":
            return self.loopback_only()
        return self.dynamic_registration == "open"

    def relocated(self, ports: dict[str, int], data_dir: Path | None = None) -> RealmConfig:
        """The same realm on other ports (key "auth_server" or a server id): used by
        `smartrealm demo` and the end-to-end tests, which bind free loopback ports."""
        issuer = _with_port(self.auth_server.issuer, ports.get("auth_server"))
        servers = tuple(
            replace(rs, base_url=_with_port(rs.base_url, ports.get(rs.id)))
            for rs in self.resource_servers
        )
        clients = tuple(
            replace(c, redirect_uris=tuple(_rebase(u, self.auth_server.issuer, issuer)
                                           for u in c.redirect_uris))
            for c in self.clients
        )
        return replace(
            self,
            auth_server=replace(self.auth_server, issuer=issuer),
            resource_servers=servers,
            clients=clients,
            data_dir=data_dir or self.data_dir,
        )


def _with_port(url: str, port: int | None) -> str:
    if port is None:
        return url
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, f"{parts.hostname}:{port}", parts.path, parts.query, ""))


def _rebase(url: str, old_prefix: str, new_prefix: str) -> str:
    return new_prefix + url[len(old_prefix):] if url.startswith(old_prefix) else url


# --------------------------------------------------------------------------- loading


def default_config_text() -> str:
    return resources.files("smartrealm.realm").joinpath(DEFAULT_CONFIG_NAME).read_text("utf-8")


def load_config(path: Path | None = None) -> RealmConfig:
    """Load and validate a realm file, or the embedded default realm when ``path`` is None."""
    if path is None:
        text, source = default_config_text(), "<default realm>"
    else:
        try:
            text, source = path.read_text("utf-8"), str(path)
        except OSError as exc:
            raise ConfigError("--config", f"cannot read {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("<file>", f"not valid TOML: {exc}") from None
    config = parse_config(data, base_dir=Path.cwd() if path is None else path.parent)
    return replace(config, source=source)


def parse_config(data: dict[str, Any], base_dir: Path) -> RealmConfig:
    _only_keys("", data, {"realm", "database", "auth_server", "brands", "resource_servers",
                          "users", "clients"})
    realm = _table(data, "realm")
    database = _table(data, "database", required=False)
    auth = _auth_server(_table(data, "auth_server"))
    servers = _resource_servers(data)
    data_dir = Path(_str(realm, "realm.data_dir", ".smartrealm"))
    config = RealmConfig(
        name=_str(realm, "realm.name", "SmartRealm"),
        data_dir=data_dir if data_dir.is_absolute() else base_dir / data_dir,
        patient_identifier_system=_str(realm, "realm.patient_identifier_system",
                                       "https://smartrealm.example.org/sid/mrn"),
        sample_data=_bool(realm, "realm.sample_data", False),
        sample_patients=_int(realm, "realm.sample_patients", 24, minimum=1),
        dynamic_registration=_choice(realm, "realm.dynamic_registration", REGISTRATION_MODES,
                                     "auto"),
        allow_insecure_http=_bool(realm, "realm.allow_insecure_http", False),
        database_url=_database_url(database, "database.url"),
        auth_server=auth,
        brands=_brands(_table(data, "brands")),
        resource_servers=servers,
        users=_users(data, {rs.id for rs in servers}),
        clients=_clients(data, {rs.id for rs in servers}),
    )
    check_transport_security(config)
    return config


def check_transport_security(config: RealmConfig) -> None:
    """Plain http is fine on loopback; anywhere else it exposes tokens (SMART §13: TLS for
    every exchange), so it is refused unless the operator says so explicitly."""
    if config.allow_insecure_http:
        return
    urls = [("auth_server.issuer", config.auth_server.issuer)]
    urls += [(f"resource_servers[{i}].base_url", rs.base_url)
             for i, rs in enumerate(config.resource_servers)]
    for key, url in urls:
        if urlsplit(url).scheme == "http" and not is_loopback_url(url):
            raise ConfigError(key, f"{url} is plain http on a non-loopback host; use https or "
                                   "set realm.allow_insecure_http = true")


def _auth_server(table: dict[str, Any]) -> AuthServerConfig:
    _only_keys("auth_server", table, {"issuer", "key_storage", "access_token_lifetime"})
    return AuthServerConfig(
        issuer=_url(table, "auth_server.issuer").rstrip("/"),
        key_storage=_str(table, "auth_server.key_storage", "database"),
        access_token_lifetime=_int(table, "auth_server.access_token_lifetime", 3600,
                                   minimum=30, maximum=86400),
    )


def _brands(table: dict[str, Any]) -> BrandsConfig:
    keys = ("organization_name", "identifier_system", "identifier_value", "website",
            "portal_name", "portal_url")
    _only_keys("brands", table, set(keys))
    return BrandsConfig(**{k: _str(table, f"brands.{k}") for k in keys})


def _resource_servers(data: dict[str, Any]) -> tuple[ResourceServerConfig, ...]:
    items = _array_of_tables(data, "resource_servers")
    if not items:
        raise ConfigError("resource_servers", "at least one resource server is required")
    servers: list[ResourceServerConfig] = []
    for i, item in enumerate(items):
        key = f"resource_servers[{i}]"
        _only_keys(key, item, {"id", "name", "base_url", "fhir_version", "mode", "profile",
                               "upstream", "database_url"})
        mode = _choice(item, f"{key}.mode", MODES, "server")
        rs = ResourceServerConfig(
            id=_identifier(item, f"{key}.id"),
            name=_str(item, f"{key}.name"),
            base_url=_url(item, f"{key}.base_url").rstrip("/"),
            fhir_version=_choice(item, f"{key}.fhir_version", ("4.0.1",), "4.0.1"),
            mode=mode,
            profile=_choice(item, f"{key}.profile", PROFILES, "empty"),
            upstream=_url(item, f"{key}.upstream") if mode == "proxy" else "",
            database_url=_database_url(item, f"{key}.database_url"),
        )
        if any(s.id == rs.id for s in servers):
            raise ConfigError(f"{key}.id", f"duplicate server id {rs.id!r}")
        if any(normalize_url(s.base_url) == normalize_url(rs.base_url) for s in servers):
            raise ConfigError(f"{key}.base_url", f"{rs.base_url} is already used by another server")
        servers.append(rs)
    return tuple(servers)


def _users(data: dict[str, Any], server_ids: set[str]) -> tuple[UserConfig, ...]:
    users: list[UserConfig] = []
    for i, item in enumerate(_array_of_tables(data, "users")):
        key = f"users[{i}]"
        _only_keys(key, item, {"username", "password", "display_name", "fhir_user_server",
                               "fhir_user"})
        user = UserConfig(
            username=_identifier(item, f"{key}.username"),
            password=_str(item, f"{key}.password"),
            display_name=_str(item, f"{key}.display_name", ""),
            fhir_user_server=_member(item, f"{key}.fhir_user_server", server_ids),
            fhir_user=_reference(item, f"{key}.fhir_user"),
        )
        if any(u.username == user.username for u in users):
            raise ConfigError(f"{key}.username", f"duplicate user {user.username!r}")
        users.append(user)
    return tuple(users)


def _clients(data: dict[str, Any], server_ids: set[str]) -> tuple[ClientConfig, ...]:
    clients: list[ClientConfig] = []
    for i, item in enumerate(_array_of_tables(data, "clients")):
        key = f"clients[{i}]"
        _only_keys(key, item, {"client_id", "name", "redirect_uris", "secret", "scope",
                               "allowed_servers"})
        redirects = _str_list(item, f"{key}.redirect_uris")
        for j, uri in enumerate(redirects):
            _check_redirect_uri(f"{key}.redirect_uris[{j}]", uri)
        allowed = _str_list(item, f"{key}.allowed_servers", required=False)
        for j, sid in enumerate(allowed):
            if sid not in server_ids:
                raise ConfigError(f"{key}.allowed_servers[{j}]", f"unknown server id {sid!r}")
        clients.append(ClientConfig(
            client_id=_str(item, f"{key}.client_id"),
            name=_str(item, f"{key}.name"),
            redirect_uris=tuple(redirects),
            secret=_str(item, f"{key}.secret", ""),
            scope=_str(item, f"{key}.scope", ""),
            allowed_servers=tuple(allowed),
        ))
    return tuple(clients)


# --------------------------------------------------------------------------- typed getters


def _only_keys(prefix: str, table: dict[str, Any], allowed: set[str]) -> None:
    for name in table:
        if name not in allowed:
            key = f"{prefix}.{name}" if prefix else name
            raise ConfigError(key, f"unknown key (expected one of: {', '.join(sorted(allowed))})")


def _table(data: dict[str, Any], key: str, required: bool = True) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        if required:
            raise ConfigError(key, "missing table")
        return {}
    if not isinstance(value, dict):
        raise ConfigError(key, "must be a table")
    return value


def _array_of_tables(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(key, "must be an array of tables ([[" + key + "]])")
    return value


def _str(table: dict[str, Any], key: str, default: str | None = None) -> str:
    name = key.rsplit(".", 1)[-1]
    value = table.get(name, default)
    if value is None:
        raise ConfigError(key, "missing value")
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a string, not {type(value).__name__}")
    if default is None and not value.strip():
        raise ConfigError(key, "must not be empty")
    return value


def _str_list(table: dict[str, Any], key: str, required: bool = True) -> list[str]:
    value = table.get(key.rsplit(".", 1)[-1])
    if value is None:
        if required:
            raise ConfigError(key, "missing value")
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(key, "must be a list of strings")
    if required and not value:
        raise ConfigError(key, "must not be empty")
    return value


def _bool(table: dict[str, Any], key: str, default: bool) -> bool:
    value = table.get(key.rsplit(".", 1)[-1], default)
    if not isinstance(value, bool):
        raise ConfigError(key, "must be true or false")
    return value


def _int(table: dict[str, Any], key: str, default: int, minimum: int | None = None,
         maximum: int | None = None) -> int:
    value = table.get(key.rsplit(".", 1)[-1], default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(key, "must be an integer")
    if minimum is not None and value < minimum:
        raise ConfigError(key, f"must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(key, f"must be at most {maximum}")
    return value


def _choice(table: dict[str, Any], key: str, choices: tuple[str, ...], default: str) -> str:
    value = _str(table, key, default)
    if value not in choices:
        raise ConfigError(key, f"must be one of {', '.join(choices)} (got {value!r})")
    return value


def _member(table: dict[str, Any], key: str, members: set[str]) -> str:
    value = _str(table, key)
    if value not in members:
        raise ConfigError(key, f"unknown server id {value!r}")
    return value


def _identifier(table: dict[str, Any], key: str) -> str:
    value = _str(table, key)
    if not value.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(key, "may contain only letters, digits, '-' and '_'")
    return value


def _reference(table: dict[str, Any], key: str) -> str:
    value = _str(table, key)
    parts = value.split("/")
    if len(parts) != 2 or parts[0] not in ("Patient", "Practitioner", "RelatedPerson", "Person"):
        raise ConfigError(key, "must be Patient/<id>, Practitioner/<id>, RelatedPerson/<id> "
                               "or Person/<id>")
    return value


def _url(table: dict[str, Any], key: str) -> str:
    value = _str(table, key)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(key, f"must be an absolute http(s) URL (got {value!r})")
    if parts.fragment or parts.query:
        raise ConfigError(key, "must not have a query or fragment")
    try:
        _ = parts.port
    except ValueError:
        raise ConfigError(key, f"has an invalid port (got {value!r})") from None
    return value


def _check_redirect_uri(key: str, uri: str) -> None:
    parts = urlsplit(uri)
    if not parts.scheme or not (parts.netloc or parts.scheme not in ("http", "https")):
        raise ConfigError(key, f"must be an absolute URI (got {uri!r})")
    if parts.fragment:
        raise ConfigError(key, "must not have a fragment (RFC 6749 §3.1.2)")


def _database_url(table: dict[str, Any], key: str) -> str:
    value = _str(table, key, "")
    if value and not value.startswith(("sqlite:///", "postgresql")):
        raise ConfigError(key, "must be a sqlite:/// or postgresql+psycopg:// URL")
    return value

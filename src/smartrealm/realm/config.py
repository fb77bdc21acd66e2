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

from smartrealm.core.addresses import AddressPolicy, IPNetwork, parse_networks
from smartrealm.core.profiles import PROFILES
from smartrealm.core.urls import is_loopback_url, normalize_url
from smartrealm.realm import toml_values as v
from smartrealm.realm.tls import TlsConfig, parse_tls
from smartrealm.realm.toml_values import ConfigError as ConfigError

DEFAULT_CONFIG_NAME = "default_realm.toml"
MODES = ("server", "proxy")
# How a resource server checks access tokens: their signature (default) or by asking the AS
# (RFC 7662), which also sees revocations (guard/introspection.py).
TOKEN_CHECKS = ("jwt", "introspection")
# How a proxy-mode server authenticates to its upstream (docs/behaviour.md "Proxy mode"):
# "realm" = a short-lived system/*.cruds token signed with the realm AS's keys; "none".
UPSTREAM_AUTHS = ("realm", "none")
REGISTRATION_MODES = ("auto", "open", "closed")
# Query parameter of a PostgreSQL URL naming the schema of one component.
SCHEMA_PARAM = "smartrealm_schema"


@dataclass(frozen=True)
class AuthServerConfig:
    issuer: str
    key_storage: str = "database"
    access_token_lifetime: int = 3600
    # Non-public networks the AS may still fetch client documents (jwks_uri) from; empty =
    # public addresses only (core/addresses.py: the SSRF guard).
    private_fetch_networks: tuple[IPNetwork, ...] = ()
    # Where to listen when it is not the issuer's host and port (an ingress in front).
    listen: tuple[str, int] | None = None

    @property
    def fetch_policy(self) -> AddressPolicy:
        return AddressPolicy(self.private_fetch_networks)

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
    def patient_index_endpoint(self) -> str:
        """Where built-in FHIR servers report system-level changes of a Patient's link."""
        return self.url("/patient-index")

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
    upstream_auth: str = "realm"
    database_url: str = ""
    token_check: str = "jwt"
    # Does this server accept a token shared with other servers (lists auth-multi-aud-token,
    # docs/behaviour.md)? false = it only takes ordinary single-server SMART launches.
    multi_aud_token: bool = True
    # Where to listen when it is not the base URL's host and port (an ingress in front).
    listen: tuple[str, int] | None = None


LOOPBACK_NETWORKS: tuple[IPNetwork, ...] = (ipaddress.ip_network("127.0.0.0/8"),
                                             ipaddress.ip_network("::1/128"))


@dataclass(frozen=True)
class DeploymentConfig:
    """``[deployment]``: how the components sit behind an ingress."""

    # Addresses (CIDR) whose X-Forwarded-For / X-Forwarded-Proto are believed; empty =
    # nobody's, so a client cannot choose the address that lockouts and logs record.
    trusted_proxies: tuple[IPNetwork, ...] = ()
    # Seconds an instance keeps serving after SIGTERM while /readyz answers 503, so a load
    # balancer's health check takes it out of rotation before it stops accepting.
    drain_seconds: int = 0
    # Peers (CIDR) allowed to read /metrics; by default this machine only.
    metrics_networks: tuple[IPNetwork, ...] = LOOPBACK_NETWORKS


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
    launch_url: str = ""  # the app's EHR-launch URL (SMART §6.1), "" = none


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
    tls: TlsConfig = field(default_factory=TlsConfig)  # [tls]: https serving (realm/tls.py)
    deployment: DeploymentConfig = field(default_factory=DeploymentConfig)
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

    def component_urls(self) -> dict[str, str]:
        """Config key → URL of every component (the AS and each resource server)."""
        urls = {"auth_server.issuer": self.auth_server.issuer}
        urls.update({f"resource_servers[{i}].base_url": rs.base_url
                     for i, rs in enumerate(self.resource_servers)})
        return urls

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
                                           for u in c.redirect_uris),
                    launch_url=_rebase(c.launch_url, self.auth_server.issuer, issuer))
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
    v.only_keys("", data, {"realm", "database", "auth_server", "brands", "resource_servers",
                          "users", "clients", "tls", "deployment"})
    realm = v.table(data, "realm")
    database = v.table(data, "database", required=False)
    auth = _auth_server(v.table(data, "auth_server"))
    servers = _resource_servers(data)
    data_dir = Path(v.string(realm, "realm.data_dir", ".smartrealm"))
    config = RealmConfig(
        name=v.string(realm, "realm.name", "SmartRealm"),
        data_dir=data_dir if data_dir.is_absolute() else base_dir / data_dir,
        patient_identifier_system=v.string(realm, "realm.patient_identifier_system",
                                       "https://smartrealm.example.org/sid/mrn"),
        sample_data=v.boolean(realm, "realm.sample_data", False),
        sample_patients=v.integer(realm, "realm.sample_patients", 24, minimum=1),
        dynamic_registration=v.choice(realm, "realm.dynamic_registration", REGISTRATION_MODES,
                                     "auto"),
        allow_insecure_http=v.boolean(realm, "realm.allow_insecure_http", False),
        database_url=v.database_url(database, "database.url"),
        auth_server=auth,
        brands=_brands(v.table(data, "brands")),
        resource_servers=servers,
        users=_users(data, {rs.id for rs in servers}),
        clients=_clients(data, {rs.id for rs in servers}),
        tls=parse_tls(v.table(data, "tls", required=False), base_dir),
        deployment=_deployment(v.table(data, "deployment", required=False)),
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
    v.only_keys("auth_server", table, {"issuer", "key_storage", "access_token_lifetime",
                                       "private_fetch_networks", "listen"})
    key = "auth_server.private_fetch_networks"
    try:
        networks = parse_networks(v.string_list(table, key, required=False))
    except ValueError as exc:
        raise ConfigError(key, str(exc)) from None
    return AuthServerConfig(
        issuer=v.url(table, "auth_server.issuer").rstrip("/"),
        key_storage=v.string(table, "auth_server.key_storage", "database"),
        access_token_lifetime=v.integer(table, "auth_server.access_token_lifetime", 3600,
                                   minimum=30, maximum=86400),
        private_fetch_networks=networks,
        listen=v.listen(table, "auth_server.listen"),
    )


def _deployment(table: dict[str, Any]) -> DeploymentConfig:
    v.only_keys("deployment", table, {"trusted_proxies", "drain_seconds", "metrics_networks"})
    metrics = _networks(table, "deployment.metrics_networks")
    return DeploymentConfig(
        trusted_proxies=_networks(table, "deployment.trusted_proxies") or (),
        drain_seconds=v.integer(table, "deployment.drain_seconds", 0, minimum=0, maximum=300),
        # An explicit empty list means nobody may read /metrics.
        metrics_networks=LOOPBACK_NETWORKS if metrics is None else metrics,
    )


def _networks(table: dict[str, Any], key: str) -> tuple[IPNetwork, ...] | None:
    """A list of CIDR networks, or None when the key is absent."""
    if key.rsplit(".", 1)[-1] not in table:
        return None
    try:
        return parse_networks(v.string_list(table, key, required=False))
    except ValueError as exc:
        raise ConfigError(key, str(exc)) from None


def _brands(table: dict[str, Any]) -> BrandsConfig:
    keys = ("organization_name", "identifier_system", "identifier_value", "website",
            "portal_name", "portal_url")
    v.only_keys("brands", table, set(keys))
    return BrandsConfig(**{k: v.string(table, f"brands.{k}") for k in keys})


def _resource_servers(data: dict[str, Any]) -> tuple[ResourceServerConfig, ...]:
    items = v.array_of_tables(data, "resource_servers")
    if not items:
        raise ConfigError("resource_servers", "at least one resource server is required")
    servers: list[ResourceServerConfig] = []
    for i, item in enumerate(items):
        key = f"resource_servers[{i}]"
        v.only_keys(key, item, {"id", "name", "base_url", "fhir_version", "mode", "profile",
                               "upstream", "upstream_auth", "database_url", "token_check",
                               "multi_aud_token", "listen"})
        mode = v.choice(item, f"{key}.mode", MODES, "server")
        rs = ResourceServerConfig(
            id=v.identifier(item, f"{key}.id"),
            name=v.string(item, f"{key}.name"),
            base_url=v.url(item, f"{key}.base_url").rstrip("/"),
            fhir_version=v.choice(item, f"{key}.fhir_version", ("4.0.1",), "4.0.1"),
            mode=mode,
            profile=v.choice(item, f"{key}.profile", PROFILES, "empty"),
            upstream=v.url(item, f"{key}.upstream") if mode == "proxy" else "",
            upstream_auth=v.choice(item, f"{key}.upstream_auth", UPSTREAM_AUTHS, "realm"),
            database_url=v.database_url(item, f"{key}.database_url"),
            token_check=v.choice(item, f"{key}.token_check", TOKEN_CHECKS, "jwt"),
            multi_aud_token=v.boolean(item, f"{key}.multi_aud_token", True),
            listen=v.listen(item, f"{key}.listen"),
        )
        if any(s.id == rs.id for s in servers):
            raise ConfigError(f"{key}.id", f"duplicate server id {rs.id!r}")
        if any(normalize_url(s.base_url) == normalize_url(rs.base_url) for s in servers):
            raise ConfigError(f"{key}.base_url", f"{rs.base_url} is already used by another server")
        servers.append(rs)
    return tuple(servers)


def _users(data: dict[str, Any], server_ids: set[str]) -> tuple[UserConfig, ...]:
    users: list[UserConfig] = []
    for i, item in enumerate(v.array_of_tables(data, "users")):
        key = f"users[{i}]"
        v.only_keys(key, item, {"username", "password", "display_name", "fhir_user_server",
                               "fhir_user"})
        user = UserConfig(
            username=v.identifier(item, f"{key}.username"),
            password=v.string(item, f"{key}.password"),
            display_name=v.string(item, f"{key}.display_name", ""),
            fhir_user_server=v.member(item, f"{key}.fhir_user_server", server_ids),
            fhir_user=v.reference(item, f"{key}.fhir_user"),
        )
        if any(u.username == user.username for u in users):
            raise ConfigError(f"{key}.username", f"duplicate user {user.username!r}")
        users.append(user)
    return tuple(users)


def _clients(data: dict[str, Any], server_ids: set[str]) -> tuple[ClientConfig, ...]:
    clients: list[ClientConfig] = []
    for i, item in enumerate(v.array_of_tables(data, "clients")):
        key = f"clients[{i}]"
        v.only_keys(key, item, {"client_id", "name", "redirect_uris", "secret", "scope",
                               "allowed_servers", "launch_url"})
        redirects = v.string_list(item, f"{key}.redirect_uris")
        for j, uri in enumerate(redirects):
            v.check_redirect_uri(f"{key}.redirect_uris[{j}]", uri)
        allowed = v.string_list(item, f"{key}.allowed_servers", required=False)
        for j, sid in enumerate(allowed):
            if sid not in server_ids:
                raise ConfigError(f"{key}.allowed_servers[{j}]", f"unknown server id {sid!r}")
        if v.string(item, f"{key}.client_id").startswith("rs:"):
            # rs:<server id> are the resource servers' own clients (introspection).
            raise ConfigError(f"{key}.client_id", "the prefix rs: is reserved")
        clients.append(ClientConfig(
            client_id=v.string(item, f"{key}.client_id"),
            name=v.string(item, f"{key}.name"),
            redirect_uris=tuple(redirects),
            secret=v.string(item, f"{key}.secret", ""),
            scope=v.string(item, f"{key}.scope", ""),
            allowed_servers=tuple(allowed),
            launch_url=v.url(item, f"{key}.launch_url") if "launch_url" in item else "",
        ))
    return tuple(clients)

"""TLS for the realm's own processes (spec §4.1 and §13: every exchange over TLS; §12.1
``standalone_auth_tls``: TLS 1.2 or later, older versions refused).

The realm file's optional ``[tls]`` table:

* ``cert_file`` — PEM certificate (chain) that every component whose URL is ``https://``
  serves; ``key_file`` — its PEM private key (unencrypted). Both or neither.
* ``ca_file`` — optional PEM bundle of extra CA certificates the components trust, on top of
  the usual ones, when they call each other (the AS asking a FHIR server for a patient or
  its capabilities, a FHIR server fetching the AS's JWKS or introspecting) and when
  `smartrealm serve` checks that they answer. For a private CA.

Relative paths are taken from the realm file's directory. A component whose URL is
``https://`` cannot start without ``cert_file``/``key_file``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from smartrealm.realm import toml_values as v
from smartrealm.realm.toml_values import ConfigError

if TYPE_CHECKING:  # run-component imports uvicorn itself, only when it serves
    import uvicorn

# §12.1 standalone_auth_tls: anything older than TLS 1.2 is refused in the handshake.
MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2
KEYS = ("cert_file", "key_file", "ca_file")


@dataclass(frozen=True)
class TlsConfig:
    cert_file: Path | None = None
    key_file: Path | None = None
    ca_file: Path | None = None

    @property
    def serves(self) -> bool:
        return self.cert_file is not None


def parse_tls(table: dict[str, Any], base_dir: Path) -> TlsConfig:
    """Validate the ``[tls]`` table: readable files that hold what they should."""
    v.only_keys("tls", table, set(KEYS))
    paths = {name: _path(table, name, base_dir) for name in KEYS}
    cert, key, ca = paths["cert_file"], paths["key_file"], paths["ca_file"]
    if (cert is None) != (key is None):
        missing = "tls.key_file" if key is None else "tls.cert_file"
        other = "tls.cert_file" if key is None else "tls.key_file"
        raise ConfigError(missing, f"required together with {other}")
    if cert is not None and key is not None:
        _check_pair(cert, key)
    if ca is not None:
        _check_ca(ca)
    return TlsConfig(cert, key, ca)


def _path(table: dict[str, Any], name: str, base_dir: Path) -> Path | None:
    if name not in table:
        return None
    key = f"tls.{name}"
    raw = Path(v.string(table, key))
    path = raw if raw.is_absolute() else base_dir / raw
    try:
        path.read_bytes()
    except OSError as exc:
        raise ConfigError(key, f"cannot read {path}: {exc.strerror}") from None
    return path


def _check_pair(cert: Path, key: Path) -> None:
    try:
        ssl.create_default_context().load_verify_locations(cafile=str(cert))
    except ssl.SSLError:
        raise ConfigError("tls.cert_file", f"{cert} holds no PEM certificate") from None
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(cert), str(key))
    except ssl.SSLError as exc:
        raise ConfigError("tls.key_file", f"{key} is not the unencrypted PEM private key "
                                          f"of tls.cert_file ({exc.reason})") from None


def _check_ca(ca: Path) -> None:
    try:
        ssl.create_default_context().load_verify_locations(cafile=str(ca))
    except ssl.SSLError:
        raise ConfigError("tls.ca_file", f"{ca} holds no PEM CA certificate") from None


def is_https(url: str) -> bool:
    return urlsplit(url).scheme == "https"


def require_for(tls: TlsConfig, urls: dict[str, str]) -> None:
    """Every component served over https needs the certificate (``urls``: config key of
    each component's URL → the URL)."""
    for key, url in urls.items():
        if is_https(url) and not tls.serves:
            raise ConfigError("tls.cert_file", f"required: {key} is https ({url}); set "
                                               "tls.cert_file and tls.key_file")


def uvicorn_options(tls: TlsConfig, url: str) -> dict[str, Any]:
    """uvicorn.Config keyword arguments for a component listening at ``url``."""
    if not is_https(url) or tls.cert_file is None or tls.key_file is None:
        return {}
    return {"ssl_certfile": str(tls.cert_file), "ssl_keyfile": str(tls.key_file)}


def enforce_minimum_version(config: uvicorn.Config) -> None:
    """Load a ``uvicorn.Config`` now and raise its server context's minimum protocol
    version to TLS 1.2 (uvicorn has no option for it; ``Server.run`` keeps a loaded
    config as it is)."""
    if not config.is_ssl:
        return
    config.load()
    assert config.ssl is not None  # load() builds it for an ssl config
    config.ssl.minimum_version = MINIMUM_VERSION


def client_verify(tls: TlsConfig) -> ssl.SSLContext:
    """``verify`` for the components' own httpx clients: the usual trust store (httpx's
    default), plus ``ca_file`` when set; TLS 1.2 at least either way."""
    context = httpx.create_ssl_context()
    if tls.ca_file is not None:
        context.load_verify_locations(cafile=str(tls.ca_file))
    context.minimum_version = MINIMUM_VERSION
    return context

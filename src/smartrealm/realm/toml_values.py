"""Typed getters for the realm TOML: each names the dotted key of a bad value, so a user sees
``resource_servers[1].base_url: must be an absolute http(s) URL`` rather than a traceback."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit


class ConfigError(Exception):
    """A configuration value is missing or wrong; ``key`` is its dotted path."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem



def only_keys(prefix: str, table: dict[str, Any], allowed: set[str]) -> None:
    for name in table:
        if name not in allowed:
            key = f"{prefix}.{name}" if prefix else name
            raise ConfigError(key, f"unknown key (expected one of: {', '.join(sorted(allowed))})")


def table(data: dict[str, Any], key: str, required: bool = True) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        if required:
            raise ConfigError(key, "missing table")
        return {}
    if not isinstance(value, dict):
        raise ConfigError(key, "must be a table")
    return value


def array_of_tables(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(key, "must be an array of tables ([[" + key + "]])")
    return value


def string(table: dict[str, Any], key: str, default: str | None = None) -> str:
    name = key.rsplit(".", 1)[-1]
    value = table.get(name, default)
    if value is None:
        raise ConfigError(key, "missing value")
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a string, not {type(value).__name__}")
    if default is None and not value.strip():
        raise ConfigError(key, "must not be empty")
    return value


def string_list(table: dict[str, Any], key: str, required: bool = True) -> list[str]:
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


def boolean(table: dict[str, Any], key: str, default: bool) -> bool:
    value = table.get(key.rsplit(".", 1)[-1], default)
    if not isinstance(value, bool):
        raise ConfigError(key, "must be true or false")
    return value


def integer(table: dict[str, Any], key: str, default: int, minimum: int | None = None,
         maximum: int | None = None) -> int:
    value = table.get(key.rsplit(".", 1)[-1], default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(key, "must be an integer")
    if minimum is not None and value < minimum:
        raise ConfigError(key, f"must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(key, f"must be at most {maximum}")
    return value


def choice(table: dict[str, Any], key: str, choices: tuple[str, ...], default: str) -> str:
    value = string(table, key, default)
    if value not in choices:
        raise ConfigError(key, f"must be one of {', '.join(choices)} (got {value!r})")
    return value


def member(table: dict[str, Any], key: str, members: set[str]) -> str:
    value = string(table, key)
    if value not in members:
        raise ConfigError(key, f"unknown server id {value!r}")
    return value


def identifier(table: dict[str, Any], key: str) -> str:
    value = string(table, key)
    if not value.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(key, "may contain only letters, digits, '-' and '_'")
    return value


def reference(table: dict[str, Any], key: str) -> str:
    value = string(table, key)
    parts = value.split("/")
    if len(parts) != 2 or parts[0] not in ("Patient", "Practitioner", "RelatedPerson", "Person"):
        raise ConfigError(key, "must be Patient/<id>, Practitioner/<id>, RelatedPerson/<id> "
                               "or Person/<id>")
    return value


def url(table: dict[str, Any], key: str) -> str:
    value = string(table, key)
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


def check_redirect_uri(key: str, uri: str) -> None:
    parts = urlsplit(uri)
    if not parts.scheme or not (parts.netloc or parts.scheme not in ("http", "https")):
        raise ConfigError(key, f"must be an absolute URI (got {uri!r})")
    if parts.fragment:
        raise ConfigError(key, "must not have a fragment (RFC 6749 §3.1.2)")


def database_url(table: dict[str, Any], key: str) -> str:
    value = string(table, key, "")
    if value and not value.startswith(("sqlite:///", "postgresql")):
        raise ConfigError(key, "must be a sqlite:/// or postgresql+psycopg:// URL")
    return value


def listen(table: dict[str, Any], key: str) -> tuple[str, int] | None:
    """An optional ``HOST:PORT`` to listen on (``[::]:8080`` for IPv6), apart from the public
    URL, which an ingress in front may serve under another host, port and scheme."""
    if key.rsplit(".", 1)[-1] not in table:
        return None
    try:
        return parse_listen(string(table, key))
    except ValueError as exc:
        raise ConfigError(key, str(exc)) from None


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` → (host, port); ValueError says what is wrong."""
    host, sep, port = value.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"must be HOST:PORT with a port from 1 to 65535 (got {value!r})")
    return host, int(port)

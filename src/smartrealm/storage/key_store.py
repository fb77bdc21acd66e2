"""The AS's signing keys (``oauth.keys``): in the realm database (tables ``as_signing_keys``
and ``as_secret_keys``) or in a directory, sealed at rest when the operator gives a
key-encryption key (oauth/key_sealing.py) — the one place that decides which store and
which key-encryption key a process uses (the AS, the CLI, a proxy signing for its
upstream)."""

from __future__ import annotations

import base64
import binascii
import os
import time
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from smartrealm.oauth.key_sealing import CLEAR, KEK_BYTES, KeySealer
from smartrealm.oauth.keys import (
    DirectoryKeyStore,
    SigningKey,
    key_from_json,
    key_to_json,
    new_secret_key,
)
from smartrealm.realm.config import ConfigError, RealmConfig
from smartrealm.storage import make_engine

KEK_ENV = "SMARTREALM_KEY_ENCRYPTION_KEY"
KEK_FILE_ENV = "SMARTREALM_KEY_ENCRYPTION_KEY_FILE"


def key_encryption_key(environ: Mapping[str, str] = os.environ) -> bytes | None:
    """The key-encryption key from the environment: ``SMARTREALM_KEY_ENCRYPTION_KEY`` (32
    bytes in base64, e.g. ``openssl rand -base64 32``) or a file named by
    ``SMARTREALM_KEY_ENCRYPTION_KEY_FILE`` holding the same; None when neither is set. A
    bad value is a ConfigError naming the variable."""
    if environ.get(KEK_ENV):
        return _decode_kek(environ[KEK_ENV], KEK_ENV)
    path = environ.get(KEK_FILE_ENV)
    if not path:
        return None
    try:
        text = Path(path).read_text("ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(KEK_FILE_ENV, f"cannot read {path}: {exc}") from None
    return _decode_kek(text, KEK_FILE_ENV)


def _decode_kek(text: str, name: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip().replace("-", "+").replace("_", "/") + "==",
                               validate=False)
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) != KEK_BYTES:
        raise ConfigError(name, f"must be {KEK_BYTES} bytes in base64 "
                                "(e.g. `openssl rand -base64 32`)")
    return raw


def key_store_for(realm: RealmConfig, engine: Engine | None = None, *,
                  allow_clear: bool = False,
                  create: bool = True) -> SqlKeyStore | DirectoryKeyStore:
    """``auth_server.key_storage = "database"`` → the realm database (the AS's ``engine``,
    else a new one); anything else is a directory (relative paths under ``data_dir``).
    Sealed with the environment's key-encryption key when there is one. ``create=False``
    for a reader that must not race the AS creating its tables (a proxy)."""
    sealer = KeySealer(key_encryption_key(), allow_clear=allow_clear)
    storage = realm.auth_server.key_storage
    if storage == "database":
        store = SqlKeyStore(engine or make_engine(realm.database_url_for(None)), sealer)
        if create:
            store.create_tables()
        return store
    path = Path(storage)
    return DirectoryKeyStore(path if path.is_absolute() else realm.data_dir / path, sealer)


class SqlKeyStore:
    """Keys in table ``as_signing_keys`` of the realm database."""

    def __init__(self, engine: Engine, sealer: KeySealer = CLEAR) -> None:
        self._engine = engine
        self.sealer = sealer
        self._metadata = MetaData()
        self._table = Table(
            "as_signing_keys", self._metadata,
            Column("kid", String(128), primary_key=True),
            Column("created_at", Integer, nullable=False),
            Column("key_json", Text, nullable=False),
        )
        self._secret_keys = Table(
            "as_secret_keys", self._metadata,
            Column("name", String(128), primary_key=True),
            Column("key_b64", Text, nullable=False),
            Column("created_at", Integer, nullable=False),
        )

    def create_tables(self) -> None:
        self._metadata.create_all(self._engine)

    def load(self) -> list[SigningKey]:
        t = self._table
        query = select(t.c.kid, t.c.key_json).order_by(t.c.created_at)
        with self._engine.connect() as conn:
            return [key_from_json(self.sealer.open(row.key_json, row.kid))
                    for row in conn.execute(query)]

    def add(self, key: SigningKey) -> None:
        with self._engine.begin() as conn:
            conn.execute(self._table.insert().values(
                kid=key.kid, created_at=key.created_at,
                key_json=self.sealer.seal(key_to_json(key), key.kid)))

    def reseal(self) -> int:
        """Rewrite every key and secret with this store's sealer (``keys encrypt``), in one
        transaction."""
        keys, secrets_ = self._table, self._secret_keys
        with self._engine.begin() as conn:
            rows = conn.execute(select(keys.c.kid, keys.c.key_json)).all()
            for row in rows:
                opened = self.sealer.open(row.key_json, row.kid)
                conn.execute(update(keys).where(keys.c.kid == row.kid).values(
                    key_json=self.sealer.seal(opened, row.kid)))
            named = conn.execute(select(secrets_.c.name, secrets_.c.key_b64)).all()
            for row in named:
                label = f"secret:{row.name}"
                opened = self.sealer.open(row.key_b64, label)
                conn.execute(update(secrets_).where(secrets_.c.name == row.name).values(
                    key_b64=self.sealer.seal(opened, label)))
        return len(rows) + len(named)

    def remove(self, kid: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(self._table).where(self._table.c.kid == kid))

    def version(self) -> str:
        t = self._table
        with self._engine.connect() as conn:
            count, newest = conn.execute(select(func.count(), func.max(t.c.created_at))).one()
        return f"{count}:{newest}"

    def secret_key(self, name: str) -> bytes:
        t = self._secret_keys
        query = select(t.c.key_b64).where(t.c.name == name)
        with self._engine.connect() as conn:
            found = conn.execute(query).scalar_one_or_none()
        if found is None:
            try:
                with self._engine.begin() as conn:
                    conn.execute(t.insert().values(
                        name=name, key_b64=self.sealer.seal(new_secret_key(), f"secret:{name}"),
                        created_at=int(time.time())))
            except IntegrityError:
                pass  # another process created it first: use that one
            with self._engine.connect() as conn:
                found = conn.execute(query).scalar_one()
        return base64.b64decode(self.sealer.open(found, f"secret:{name}"))

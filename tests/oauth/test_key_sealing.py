"""Private keys sealed at rest (oauth/key_sealing.py, storage/key_store.py): AES-256-GCM under
the operator's key-encryption key; the wrong key, a missing key, a tampered or moved value
and a value in clear under a key all stop with a message that says what to do; nothing of
a private key is left readable in the database or the key directory."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from smartrealm.oauth.key_sealing import PREFIX, KeySealer, KeysLocked
from smartrealm.oauth.keys import DirectoryKeyStore, generate_key
from smartrealm.realm.config import ConfigError
from smartrealm.storage import make_engine
from smartrealm.storage.key_store import SqlKeyStore, key_encryption_key

KEK = bytes(range(32))
OTHER = bytes(range(1, 33))


@given(plain=st.text(max_size=300), name=st.text(min_size=1, max_size=40))
def test_sealing_round_trips_and_hides_the_text(plain: str, name: str) -> None:
    sealer = KeySealer(KEK)
    sealed = sealer.seal(plain, name)
    assert sealed.startswith(PREFIX) and sealer.open(sealed, name) == plain
    if len(plain) >= 8:
        assert plain not in sealed


def test_the_wrong_key_a_moved_value_and_tampering_do_not_open() -> None:
    sealed = KeySealer(KEK).seal('{"d": "private"}', "kid-1")
    with pytest.raises(KeysLocked, match="wrong key-encryption key"):
        KeySealer(OTHER).open(sealed, "kid-1")
    with pytest.raises(KeysLocked, match="wrong key-encryption key"):
        KeySealer(KEK).open(sealed, "kid-2")  # copied onto another key's row
    raw = bytearray(base64.urlsafe_b64decode(sealed[len(PREFIX):]))
    raw[-1] ^= 1
    tampered = PREFIX + base64.urlsafe_b64encode(bytes(raw)).decode()
    with pytest.raises(KeysLocked):
        KeySealer(KEK).open(tampered, "kid-1")


def test_a_missing_key_and_clear_values_under_a_key_fail_closed() -> None:
    sealed = KeySealer(KEK).seal("x", "k")
    with pytest.raises(KeysLocked, match="SMARTREALM_KEY_ENCRYPTION_KEY"):
        KeySealer(None).open(sealed, "k")
    with pytest.raises(KeysLocked, match="smartrealm keys encrypt"):
        KeySealer(KEK).open("clear text", "k")
    assert KeySealer(KEK, allow_clear=True).open("clear text", "k") == "clear text"
    assert KeySealer(None).open("clear text", "k") == "clear text"


def test_the_database_holds_no_private_key_material(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'auth.db'}")
    store = SqlKeyStore(engine, KeySealer(KEK))
    store.create_tables()
    key = generate_key()
    store.add(key)
    secret = store.secret_key("client-secrets")
    private = key.key.as_dict(private=True)
    with engine.connect() as conn:
        rows = [str(tuple(r)) for table in ("as_signing_keys", "as_secret_keys")
                for r in conn.execute(text(f"SELECT * FROM {table}"))]
    dump = "\n".join(rows)
    assert private["d"] not in dump and private["p"] not in dump
    assert base64.b64encode(secret).decode() not in dump
    assert [k.kid for k in store.load()] == [key.kid]
    assert store.secret_key("client-secrets") == secret
    with pytest.raises(KeysLocked):
        SqlKeyStore(engine, KeySealer(OTHER)).load()
    with pytest.raises(KeysLocked):
        SqlKeyStore(engine).load()


def test_reseal_converts_a_clear_store_and_keeps_every_key(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'auth.db'}")
    clear = SqlKeyStore(engine)
    clear.create_tables()
    keys = [generate_key(), generate_key()]
    for key in keys:
        clear.add(key)
    secret = clear.secret_key("client-secrets")
    with pytest.raises(KeysLocked, match="keys encrypt"):
        SqlKeyStore(engine, KeySealer(KEK)).load()
    assert SqlKeyStore(engine, KeySealer(KEK, allow_clear=True)).reseal() == 3
    sealed = SqlKeyStore(engine, KeySealer(KEK))
    assert {k.kid for k in sealed.load()} == {k.kid for k in keys}
    assert sealed.secret_key("client-secrets") == secret


def test_a_key_directory_is_sealed_too(tmp_path: Path) -> None:
    store = DirectoryKeyStore(tmp_path / "keys", KeySealer(KEK))
    key = generate_key()
    store.add(key)
    secret = store.secret_key("client-secrets")
    for path in (tmp_path / "keys").iterdir():
        content = path.read_text()
        assert content.startswith(PREFIX)
        assert key.key.as_dict(private=True)["d"] not in content
    assert [k.kid for k in store.load()] == [key.kid]
    assert store.secret_key("client-secrets") == secret
    with pytest.raises(KeysLocked):
        DirectoryKeyStore(tmp_path / "keys").load()
    clear = DirectoryKeyStore(tmp_path / "clear")
    clear.add(key)
    clear.secret_key("client-secrets")
    assert DirectoryKeyStore(tmp_path / "clear", KeySealer(KEK, allow_clear=True)).reseal() == 2
    assert [k.kid for k in DirectoryKeyStore(tmp_path / "clear", KeySealer(KEK)).load()] == [
        key.kid]
    with pytest.raises(KeysLocked):
        clear.load()  # now sealed: no longer readable without the key


@pytest.mark.parametrize("value", ["", "short", base64.b64encode(b"x" * 31).decode(),
                                   base64.b64encode(b"x" * 33).decode(), "not base64 !!!"])
def test_a_bad_key_encryption_key_names_the_variable(value: str) -> None:
    env = {"SMARTREALM_KEY_ENCRYPTION_KEY": value} if value else {
        "SMARTREALM_KEY_ENCRYPTION_KEY_FILE": "/nonexistent/kek"}
    with pytest.raises(ConfigError) as caught:
        key_encryption_key(env)
    assert caught.value.key.startswith("SMARTREALM_KEY_ENCRYPTION_KEY")


def test_the_key_encryption_key_is_read_from_the_environment_or_a_file(
        tmp_path: Path) -> None:
    value = base64.b64encode(KEK).decode()
    assert key_encryption_key({"SMARTREALM_KEY_ENCRYPTION_KEY": value}) == KEK
    assert key_encryption_key({"SMARTREALM_KEY_ENCRYPTION_KEY":
                               base64.urlsafe_b64encode(KEK).decode().rstrip("=")}) == KEK
    path = tmp_path / "kek"
    path.write_text(value + "\n")
    assert key_encryption_key({"SMARTREALM_KEY_ENCRYPTION_KEY_FILE": str(path)}) == KEK
    assert key_encryption_key({}) is None

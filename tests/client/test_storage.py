"""Token storage: one contract suite for every TokenStore, plus the file store's own rules
(0600, atomic replace, refusing a readable file) and TokenSet serialization."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartrealm.client import FileTokenStore, MemoryTokenStore, TokenSet, TokenStore
from smartrealm.client.storage import TokenStoreError

EHR = "http://127.0.0.1:8701/fhir"
IMAGING = "http://127.0.0.1:8702/fhir"


def sample(access: str = "at-1", **extra: Any) -> TokenSet:
    body = {
        "access_token": access, "token_type": "Bearer", "expires_in": 3600,
        "scope": "openid launch/patient patient/*.rs", "refresh_token": "rt-1",
        "fhirContext": [{"reference": f"{IMAGING}/Patient/img0012", "role": "launch-full-url"}],
        "authorization_details": [
            {"type": "smart_on_fhir", "locations": [EHR], "scope": "patient/*.rs",
             "patient": "p0012"}],
        "need_patient_banner": True, **extra,
    }
    return TokenSet.from_response(body, now=1_000_000.0)


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> TokenStore:
    if request.param == "memory":
        return MemoryTokenStore()
    return FileTokenStore(tmp_path / "config" / "tokens.json")


# ------------------------------------------------------------------ contract (both stores)


def test_store_implements_protocol(store: TokenStore) -> None:
    assert isinstance(store, TokenStore)


def test_missing_key_loads_none(store: TokenStore) -> None:
    assert store.load("nope") is None
    assert store.keys() == []


def test_save_then_load_round_trips(store: TokenStore) -> None:
    tokens = sample()
    store.save("realm", tokens)
    loaded = store.load("realm")
    assert loaded == tokens
    assert loaded is not None and loaded.expires_at == 1_003_600.0
    assert loaded.patient_id_for(EHR) == "p0012"
    assert loaded.patient_id_for(IMAGING) == "img0012"
    assert loaded.raw["need_patient_banner"] is True


def test_save_replaces_and_keys_are_sorted(store: TokenStore) -> None:
    store.save("b", sample("one"))
    store.save("a", sample("two"))
    store.save("b", sample("three"))
    assert store.keys() == ["a", "b"]
    loaded = store.load("b")
    assert loaded is not None and loaded.access_token == "three"


def test_delete_removes_only_that_key(store: TokenStore) -> None:
    store.save("a", sample("one"))
    store.save("b", sample("two"))
    store.delete("a")
    store.delete("never-there")
    assert store.keys() == ["b"]
    assert store.load("a") is None


# ------------------------------------------------------------------ file store specifics


def test_file_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    FileTokenStore(path).save("k", sample())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["version"] == 1 and list(data["tokens"]) == ["k"]
    # Only the final file remains: the temporary file was renamed over it.
    assert [p.name for p in tmp_path.iterdir()] == ["tokens.json"]


def test_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    store = FileTokenStore(path)
    store.save("k", sample())
    os.chmod(path, 0o644)
    with pytest.raises(TokenStoreError, match="chmod 600"):
        store.load("k")


def test_replace_keeps_other_processes_view_consistent(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    first, second = FileTokenStore(path), FileTokenStore(path)
    first.save("a", sample("one"))
    second.save("b", sample("two"))
    assert first.keys() == ["a", "b"]


@pytest.mark.parametrize("content", ["[]", '{"version": 2, "tokens": {}}',
                                     '{"version": 1, "tokens": []}'])
def test_corrupt_file_is_a_store_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(content)
    os.chmod(path, 0o600)
    with pytest.raises(TokenStoreError, match="token file"):
        FileTokenStore(path).keys()


def test_bad_entry_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"version": 1, "tokens": {"k": {"response": {"token_type": 1}}}}))
    os.chmod(path, 0o600)
    with pytest.raises(TokenStoreError, match="entry 'k' is not a token set"):
        FileTokenStore(path).load("k")


# ------------------------------------------------------------------ TokenSet serialization


def test_to_dict_keeps_fields_a_refresh_response_left_out() -> None:
    refreshed = replace(TokenSet.from_response(
        {"access_token": "new", "token_type": "Bearer", "expires_in": 60}, now=10.0),
        refresh_token="kept", patient="p0001")
    again = TokenSet.from_dict(refreshed.to_dict())
    assert (again.access_token, again.refresh_token, again.patient) == ("new", "kept", "p0001")
    assert again.expires_at == 70.0


def test_expiry_is_absolute() -> None:
    tokens = sample()
    assert tokens.expired(now=1_003_600.0 - 31) is False
    assert tokens.expired(now=1_003_600.0 - 29) is True
    no_expiry = TokenSet.from_response({"access_token": "a", "token_type": "Bearer"})
    assert no_expiry.expires_at is None and no_expiry.expired() is False


@pytest.mark.parametrize("bad", [{"response": "x"}, {"response": {}},
                                 {"response": {"access_token": "a", "token_type": "Bearer"},
                                  "expires_at": "soon"}])
def test_from_dict_rejects_malformed(bad: dict[str, Any]) -> None:
    from smartrealm.client import TokenError

    with pytest.raises(TokenError):
        TokenSet.from_dict(bad)


@given(access=st.text(min_size=1), expires=st.none() | st.integers(0, 10**9),
       patient=st.none() | st.text(min_size=1))
def test_serialization_round_trips(access: str, expires: int | None, patient: str | None
                                   ) -> None:
    body: dict[str, Any] = {"access_token": access, "token_type": "bearer"}
    if expires is not None:
        body["expires_in"] = expires
    if patient is not None:
        body["patient"] = patient
    tokens = TokenSet.from_response(body, now=5.0)
    assert TokenSet.from_dict(json.loads(json.dumps(tokens.to_dict()))) == tokens



def test_unreadable_json_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text("not json")
    os.chmod(path, 0o600)
    with pytest.raises(TokenStoreError, match="not a readable JSON file"):
        FileTokenStore(path).load("k")

from __future__ import annotations

import base64

import pytest

from smartrealm.oauth.client_auth import authenticate, extract_credentials, parse_basic
from smartrealm.oauth.errors import InvalidClient, InvalidRequest
from smartrealm.oauth.passwords import hash_secret, verify_secret
from smartrealm.oauth.store import Client

SECRET_HASH = hash_secret("s3cret")
CLIENTS = {
    "pub": Client("pub", "Public", ("https://a/cb",)),
    "conf": Client("conf", "Conf", ("https://a/cb",), "client_secret_basic", SECRET_HASH),
}


def _basic(raw: str) -> str:
    return "Basic " + base64.b64encode(raw.encode()).decode()


def test_basic_accepts_plain_and_form_encoded_parts() -> None:
    assert parse_basic(_basic("conf:s3cret")) == ("conf", "s3cret")
    assert parse_basic(_basic("a%3Ab:x%2By")) == ("a:b", "x+y")
    for bad in ("Bearer x", "Basic !!!", _basic("nocolon"), "Basic "):
        with pytest.raises(InvalidClient):
            parse_basic(bad)


def test_methods() -> None:
    assert extract_credentials(None, {"client_id": ["pub"]}).method == "none"
    assert extract_credentials(None, {"client_id": ["c"], "client_secret": ["s"]}).method == \
        "client_secret_post"
    assert extract_credentials(_basic("c:s"), {}).method == "client_secret_basic"
    with pytest.raises(InvalidRequest):
        extract_credentials(_basic("c:s"), {"client_secret": ["s"]})
    with pytest.raises(InvalidClient):
        extract_credentials(_basic("c:s"), {"client_id": ["other"]})
    with pytest.raises(InvalidClient):
        extract_credentials(None, {})


@pytest.mark.parametrize(("header", "form", "ok"), [
    (None, {"client_id": ["pub"]}, True),
    (None, {"client_id": ["pub"], "client_secret": ["x"]}, False),
    (None, {"client_id": ["conf"]}, False),
    (None, {"client_id": ["conf"], "client_secret": ["s3cret"]}, True),
    (None, {"client_id": ["conf"], "client_secret": ["nope"]}, False),
    ("conf:s3cret", {}, True),
    ("conf:nope", {}, False),
    ("ghost:s3cret", {}, False),
])
def test_authenticate(header: str | None, form: dict[str, list[str]], ok: bool) -> None:
    credentials = extract_credentials(_basic(header) if header else None, form)
    if ok:
        assert authenticate(credentials, CLIENTS.get).client_id == credentials.client_id
    else:
        with pytest.raises(InvalidClient):
            authenticate(credentials, CLIENTS.get)


def test_secret_hashes_are_salted_and_verify() -> None:
    assert hash_secret("x") != hash_secret("x")
    assert verify_secret("x", hash_secret("x"))
    assert not verify_secret("y", hash_secret("x"))
    assert not verify_secret("x", None)
    assert not verify_secret("x", "garbage")

"""Property tests of the token-lifecycle parsers: no input makes them raise, and no request
body or header makes /introspect or /revoke answer 500."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from smartrealm.oauth.keys import DirectoryKeyStore, KeyRing, generate_key
from smartrealm.oauth.own_tokens import OwnTokenVerifier

TEXT = st.text(max_size=300)
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def verifier(tmp_path_factory: pytest.TempPathFactory) -> OwnTokenVerifier:
    store = DirectoryKeyStore(Path(tmp_path_factory.mktemp("keys")))
    store.add(generate_key())
    return OwnTokenVerifier("http://127.0.0.1:8700", KeyRing(store.load()))


@SETTINGS
@given(st.one_of(TEXT, st.lists(st.text(alphabet="ABCabc012-_=", max_size=60), min_size=3,
                                max_size=3).map(".".join)))
def test_token_verifier_never_raises(verifier: OwnTokenVerifier, token: str) -> None:
    assert verifier.claims(token, 0) is None


@SETTINGS
@given(body=st.binary(max_size=300), authorization=st.one_of(st.none(), TEXT),
       path=st.sampled_from(["/introspect", "/revoke"]))
def test_no_input_reaches_a_500(app: Starlette, body: bytes, authorization: str | None,
                                path: str) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if authorization is not None and authorization.isprintable() and authorization.isascii():
        headers["Authorization"] = authorization

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://127.0.0.1:8700") as client:
            return await client.post(path, content=body, headers=headers)

    response = asyncio.run(call())
    assert response.status_code in (200, 400, 401), response.text

"""The one HTTP Basic parser (RFC 7617) and its OAuth client form (RFC 6749 §2.3.1)."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from smartrealm.core.basic_auth import (
    client_credentials,
    encode_client_credentials,
    parse_basic,
)


def basic(raw: str) -> str:
    return "Basic " + base64.b64encode(raw.encode()).decode()


@given(st.text(max_size=300))
def test_no_header_makes_the_parsers_raise(header: str) -> None:
    for parse in (parse_basic, client_credentials):
        result = parse(header)
        assert result is None or (len(result) == 2 and result[0] != "")


@given(st.text(min_size=1, max_size=60), st.text(max_size=80))
def test_encoded_client_credentials_come_back_unchanged(client_id: str, secret: str) -> None:
    """Any id and secret, colons, ``+``, ``%`` and non-ASCII included: what a client encodes
    the AS reads back exactly — an ``rs:<id>`` client_id keeps its colon."""
    assert client_credentials(encode_client_credentials(client_id, secret)) == \
        (client_id, secret)


@given(st.text(min_size=1, max_size=40).filter(lambda s: ":" not in s),
       st.text(max_size=60))
def test_user_and_password_split_at_the_first_colon(user: str, password: str) -> None:
    """RFC 7617: the user-id has no colon, the password may; a launch-API password is taken
    as sent (``%41`` stays three characters)."""
    assert parse_basic(basic(f"{user}:{password}")) == (user, password)


def test_the_split_is_at_the_first_colon() -> None:
    # An rs: client that did not form-encode its id is read as client "rs": it then fails
    # authentication as an unknown client, never as a server.
    assert client_credentials(basic("rs:ehr:secret")) == ("rs", "ehr:secret")
    assert client_credentials(basic("rs%3Aehr:secret")) == ("rs:ehr", "secret")
    assert parse_basic(basic("nurse:p%41ss+word")) == ("nurse", "p%41ss+word")
    assert client_credentials(basic("app:p%41ss+word")) == ("app", "pAss word")


def test_malformed_values_are_none() -> None:
    for value in (None, "", "Bearer abc", "Basic", "Basic ", "Basic !!!", basic("nocolon"),
                  basic(":secret"), "Basic " + base64.b64encode(b"\xff:\xfe").decode(),
                  "Digest " + base64.b64encode(b"a:b").decode()):
        assert parse_basic(value) is None and client_credentials(value) is None
    assert client_credentials(basic("%20:x")) == (" ", "x")
    assert client_credentials(basic("+:x")) == (" ", "x")

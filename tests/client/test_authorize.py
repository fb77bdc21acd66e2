"""The authorization request (spec §3, seed) and callback parsing (spec §3.5)."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartrealm.client import (
    AccessDenied,
    AuthorizationError,
    AuthorizationRequest,
    CallbackError,
    ClientUsageError,
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    ServerError,
    StateMismatch,
    TemporarilyUnavailable,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    authorization_error,
    parse_callback,
)

AS = "https://as.example/authorize"
EHR = "https://as.example/ehr/fhir"
IMAGING = "https://as.example/imaging/fhir"
SCOPE = "openid fhirUser launch/patient patient/*.rs"


def make(**kwargs: object) -> AuthorizationRequest:
    args: dict[str, object] = {
        "authorization_endpoint": AS,
        "client_id": "app",
        "redirect_uri": "https://app.example/cb",
        "scope": SCOPE,
    }
    args.update(kwargs)
    return AuthorizationRequest.create(**args)  # type: ignore[arg-type]


def test_multi_server_url_has_resources_no_aud_and_s256() -> None:
    request = make(resources=[EHR, IMAGING])
    parts = urlsplit(request.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == AS
    params = parse_qs(parts.query)
    assert params["resource"] == [EHR, IMAGING]
    assert "aud" not in params
    assert params["response_type"] == ["code"]
    assert params["client_id"] == ["app"]
    assert params["redirect_uri"] == ["https://app.example/cb"]
    assert params["scope"] == [SCOPE]
    assert params["code_challenge_method"] == ["S256"]
    (challenge,) = params["code_challenge"]
    assert len(challenge) == 43 and re.fullmatch(r"[A-Za-z0-9_-]{43}", challenge)
    digest = hashlib.sha256(request.code_verifier.encode()).digest()
    assert challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert 43 <= len(request.code_verifier) <= 128
    assert params["state"] == [request.state]
    assert len(base64.urlsafe_b64decode(request.state + "==")) * 8 >= 128
    assert params["nonce"] == [request.nonce]  # openid requested


def test_post_form_equals_get_query() -> None:
    request = make(resources=[EHR, IMAGING])
    assert parse_qsl(urlsplit(request.url).query) == request.form_fields()
    assert [k for k, _ in request.form_fields()].count("resource") == 2


def test_single_server_uses_aud() -> None:
    for request in (make(resources=[EHR]), make(aud=EHR)):
        params = parse_qs(urlsplit(request.url).query)
        assert params["aud"] == [EHR]
        assert "resource" not in params


def test_aud_with_resources_must_be_one_of_them() -> None:
    request = make(aud=IMAGING, resources=[EHR, IMAGING])
    params = parse_qs(urlsplit(request.url).query)
    assert params["aud"] == [IMAGING] and params["resource"] == [EHR, IMAGING]
    with pytest.raises(ClientUsageError, match="aud must be one of the resources"):
        make(aud="https://x.example/fhir", resources=[EHR, IMAGING])


def test_duplicate_resources_are_sent_once() -> None:
    request = make(
        resources=[EHR, IMAGING, EHR + "/", EHR.upper().replace("/EHR/FHIR", "/ehr/fhir")]
    )
    assert request.resources == (EHR, IMAGING)


def test_launch_and_existing_query_are_kept_and_nonce_needs_openid() -> None:
    request = make(
        authorization_endpoint=AS + "?tenant=t1",
        resources=[EHR, IMAGING],
        launch="xyz",
        scope="launch patient/*.rs",
    )
    params = parse_qs(urlsplit(request.url).query)
    assert params["tenant"] == ["t1"] and params["launch"] == ["xyz"]
    assert "nonce" not in params


def test_fresh_secrets_every_time() -> None:
    a, b = make(aud=EHR), make(aud=EHR)
    assert a.state != b.state and a.code_verifier != b.code_verifier and a.nonce != b.nonce


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({}, "give aud or at least one resource"),
        ({"resources": ["/relative/fhir"]}, "absolute"),
        ({"resources": [EHR + "#frag"]}, "without fragment"),
        ({"resources": EHR}, "not one string"),
        ({"aud": "urn:x"}, "absolute"),
        ({"aud": EHR, "scope": " "}, "scope is required"),
        ({"aud": EHR, "authorization_endpoint": "/authorize"}, "authorization_endpoint"),
    ],
)
def test_invalid_requests_are_refused_before_sending(
    kwargs: dict[str, object], problem: str
) -> None:
    with pytest.raises(ClientUsageError, match=problem):
        make(**kwargs)


# --- callback ---------------------------------------------------------------------------

REQUEST = make(resources=[EHR, IMAGING])
CALLBACK = "https://app.example/cb?"

OAUTH_CODES: dict[str, type[AuthorizationError]] = {
    "access_denied": AccessDenied,
    "invalid_request": InvalidRequest,
    "invalid_scope": InvalidScope,
    "invalid_target": InvalidTarget,
    "unauthorized_client": UnauthorizedClient,
    "invalid_client": InvalidClient,
    "invalid_grant": InvalidGrant,
    "unsupported_grant_type": UnsupportedGrantType,
    "unsupported_response_type": UnsupportedResponseType,
    "server_error": ServerError,
    "temporarily_unavailable": TemporarilyUnavailable,
}

printable = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1)


@given(code=printable)
def test_success_returns_the_code(code: str) -> None:
    url = CALLBACK + urlencode({"code": code, "state": REQUEST.state, "iss": "x"})
    assert parse_callback(url, REQUEST) == code
    assert parse_callback("?" + urlencode({"state": REQUEST.state, "code": code}), REQUEST) == code


@given(state=printable.filter(lambda s: s != REQUEST.state), error=st.booleans())
def test_wrong_state_is_state_mismatch_even_for_errors(state: str, error: bool) -> None:
    params = {"error": "access_denied"} if error else {"code": "abc"}
    with pytest.raises(StateMismatch):
        parse_callback(CALLBACK + urlencode({**params, "state": state}), REQUEST)


def test_missing_or_repeated_state_is_state_mismatch() -> None:
    with pytest.raises(StateMismatch):
        parse_callback(CALLBACK + "code=abc", REQUEST)
    twice = urlencode([("code", "abc"), ("state", REQUEST.state), ("state", REQUEST.state)])
    with pytest.raises(StateMismatch):
        parse_callback(CALLBACK + twice, REQUEST)


@pytest.mark.parametrize(("code", "cls"), list(OAUTH_CODES.items()))
def test_every_oauth_error_maps_to_its_class(code: str, cls: type[AuthorizationError]) -> None:
    url = CALLBACK + urlencode({"error": code, "error_description": "why", "state": REQUEST.state})
    with pytest.raises(cls) as caught:
        parse_callback(url, REQUEST)
    assert type(caught.value) is cls
    assert caught.value.error == code and caught.value.description == "why"
    assert type(authorization_error(code, None)) is cls


@given(error=st.from_regex(r"[a-z_]{1,30}", fullmatch=True), description=st.none() | printable)
def test_any_error_code_round_trips(error: str, description: str | None) -> None:
    params = {"error": error, "state": REQUEST.state}
    if description is not None:
        params["error_description"] = description
    with pytest.raises(AuthorizationError) as caught:
        parse_callback(CALLBACK + urlencode(params), REQUEST)
    assert caught.value.error == error and caught.value.description == description
    expected = OAUTH_CODES.get(error, AuthorizationError)
    assert type(caught.value) is expected


def test_no_code_is_a_callback_error() -> None:
    with pytest.raises(CallbackError) as caught:
        parse_callback(CALLBACK + urlencode({"state": REQUEST.state}), REQUEST)
    assert not isinstance(caught.value, StateMismatch)
    two = urlencode([("state", REQUEST.state), ("code", "a"), ("code", "b")])
    with pytest.raises(CallbackError):
        parse_callback(CALLBACK + two, REQUEST)

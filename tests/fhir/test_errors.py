from fhir.resources.R4B.operationoutcome import OperationOutcome

from smartrealm.fhir.errors import (
    BadRequest,
    FhirError,
    Forbidden,
    Gone,
    MethodNotAllowed,
    NotFound,
    Unauthorized,
    Unprocessable,
    bearer_challenge,
)

BASE = "http://127.0.0.1:8701/fhir"


def test_each_error_has_its_status_and_issue_code() -> None:
    cases: list[tuple[FhirError, int, str]] = [
        (BadRequest("x"), 400, "invalid"), (Unauthorized("x"), 401, "login"),
        (Forbidden("x"), 403, "forbidden"), (NotFound("x"), 404, "not-found"),
        (MethodNotAllowed("x"), 405, "not-supported"), (Gone("x"), 410, "deleted"),
        (Unprocessable("x"), 422, "processing"),
    ]
    for error, status, code in cases:
        outcome = error.outcome()
        OperationOutcome.model_validate(outcome)
        assert error.status == status
        assert outcome["issue"] == [{"severity": "error", "code": code, "diagnostics": "x"}]


def test_challenges() -> None:
    assert Unauthorized("no token", error=None).headers(BASE) == {
        "WWW-Authenticate": f'Bearer realm="{BASE}"'}
    assert Unauthorized("expired").headers(BASE)["WWW-Authenticate"] == (
        f'Bearer realm="{BASE}", error="invalid_token", error_description="expired"')
    assert 'error="insufficient_scope"' in Forbidden("no").headers(BASE)["WWW-Authenticate"]
    assert NotFound("x").headers(BASE) == {}


def test_challenge_strips_characters_rfc6750_forbids() -> None:
    header = bearer_challenge(BASE, "invalid_token", 'bad "quote" \\ and\nnewline é')
    assert header.endswith('error_description="bad quote  andnewline "')

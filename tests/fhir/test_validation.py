"""Validation of every write with the R4 models: 400 for what is not a resource, 422 naming
the element for what breaks R4, and never a 500 whatever is posted (property tests)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartrealm.fhir.errors import BadRequest, FhirError
from smartrealm.fhir.validation import (
    InvalidResource,
    expression,
    parse_json,
    validate_resource,
)
from tests.fhir.conftest import Realm
from tests.fhir.restkit import call, issue_expressions, observation

TOKEN_SCOPE = "user/*.cruds"


@pytest.mark.parametrize("body", [
    b"", b"{", b"[1, 2]", b'"Observation"', b"null", b"\xff\xfe", b'{"a": NaN}',
    b'{"a": 1e999}', b'{"resourceType": "Observation", "resourceType": "Patient"}',
    b"[" * 5000 + b"]" * 5000, b'{"a":' * 100 + b"1" + b"}" * 100, b"1" * 5000,
])
def test_unparseable_bodies_are_400(body: bytes) -> None:
    with pytest.raises(BadRequest):
        validate_resource(parse_json(body))


@pytest.mark.parametrize(("resource", "where", "code"), [
    ({"resourceType": "Observation", "status": "final"}, "Observation.code", "required"),
    ({**observation("p1"), "foo": 1}, "Observation.foo", "structure"),
    ({**observation("p1"), "code": {"coding": [{"system": 5}]}},
     "Observation.code.coding[0].system", "value"),
    ({**observation("p1"), "effectiveDateTime": "2020-13-45"},
     "Observation.effectiveDateTime", "value"),
    ({**observation("p1"), "note": []}, "Observation.note", "value"),
    ({**observation("p1"), "subject": {}}, "Observation.subject", "value"),
    ({**observation("p1"), "status": ""}, "Observation.status", "value"),
    ({**observation("p1"), "valueString": "a", "valueBoolean": True}, "Observation", "value"),
    ({"resourceType": "Encounter", "status": "finished", "class": 5}, "Encounter.class",
     "structure"),
])
def test_invalid_resources_name_the_element(resource: dict[str, Any], where: str,
                                            code: str) -> None:
    with pytest.raises(InvalidResource) as caught:
        validate_resource(resource)
    assert caught.value.status == 422
    issue = caught.value.outcome()["issue"][0]
    assert issue["expression"] == [where]
    assert issue["code"] == code


@pytest.mark.parametrize(("value", "expected"), [
    ({"status": "final"}, "no resourceType"),
    ({"resourceType": "Foo"}, "not an R4 resource type"),
    ({"resourceType": "Coding"}, "not an R4 resource type"),
    ({"resourceType": 5}, "no resourceType"),
    ([], "JSON object"),
])
def test_not_a_resource_is_400(value: Any, expected: str) -> None:
    with pytest.raises(BadRequest, match=expected):
        validate_resource(value)


def test_url_type_mismatch_is_400() -> None:
    with pytest.raises(BadRequest, match="URL is for Patient"):
        validate_resource(observation("p1"), "Patient")


def test_expression_from_pydantic_locations() -> None:
    assert expression("Observation", ("code", "coding", 0, "system")) == \
        "Observation.code.coding[0].system"
    assert expression("Encounter", ("class", "root")) == "Encounter.class"
    assert expression("Observation", ()) == "Observation"


async def test_http_statuses_and_outcome(rs: Realm) -> None:
    token = rs.token(TOKEN_SCOPE)
    broken = await call(rs, "POST", "Observation", token, content=b"{not json",
                        Content_Type="application/fhir+json")
    assert broken.status_code == 400
    assert broken.json()["issue"][0]["code"] == "invalid"
    invalid = await call(rs, "POST", "Observation", token,
                         body={**observation("p0001"), "code": {"coding": [{"system": 5}]}})
    assert invalid.status_code == 422
    assert issue_expressions(invalid) == ["Observation.code.coding[0].system"]
    update = await call(rs, "PUT", "Observation/v1", token,
                        body={**observation("p0001", resource_id="v1"), "bogus": True})
    assert update.status_code == 422
    assert issue_expressions(update) == ["Observation.bogus"]


# --------------------------------------------------------------------------- properties

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=20)
FIELDS = st.sampled_from(["status", "code", "subject", "category", "valueQuantity", "id",
                          "meta", "effectiveDateTime", "note", "contained", "extension",
                          "_status", "component", "resourceType", "text"])
SHAPES = st.dictionaries(FIELDS, JSON, max_size=6).map(
    lambda d: {"resourceType": "Observation", **d})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=JSON | SHAPES)
def test_validation_never_raises_anything_but_fhir_errors(value: Any) -> None:
    try:
        validate_resource(value, "Observation")
    except FhirError as error:
        assert error.status in (400, 422)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(value=JSON | SHAPES, method=st.sampled_from(["POST", "PUT"]))
async def test_posting_random_json_is_never_a_500(rs: Realm, value: Any, method: str) -> None:
    token = rs.token(TOKEN_SCOPE)
    path = "Observation" if method == "POST" else "Observation/prop-1"
    if method == "PUT" and isinstance(value, dict):
        value = {**value, "id": "prop-1"}
    response = await call(rs, method, path, token, content=json.dumps(value).encode(),
                          Content_Type="application/fhir+json")
    assert response.status_code in (200, 201, 400, 422), response.text
    assert response.json()["resourceType"] in ("OperationOutcome", "Observation")


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=64))
async def test_posting_random_bytes_is_never_a_500(rs: Realm, body: bytes) -> None:
    token = rs.token(TOKEN_SCOPE)
    for path in ("Observation", ""):
        response = await call(rs, "POST", path, token, content=body,
                              Content_Type="application/fhir+json")
        assert response.status_code in (201, 400, 422), response.text

"""The proxy's building blocks without HTTP: the scope judge (the built-in server's SQL on
one resource), pushing a restriction into an upstream query, URL rewriting, and the
upstream credentials minted from the realm AS's keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jwt

from smartrealm.fhir.access import authorize
from smartrealm.fhir.errors import ServiceUnavailable
from smartrealm.fhir.proxy.rules import ScopeJudge, as_param, pushdown
from smartrealm.fhir.proxy.upstream import RealmSelfToken, Rewriter
from smartrealm.fhir.search.query import Clause, IdValue, ReferenceValue, StringValue, TokenValue
from smartrealm.fhir.search.values import parse_token, split_values
from smartrealm.guard import AccessContext
from smartrealm.oauth.keys import DirectoryKeyStore, KeyRing, generate_key
from smartrealm.oauth.scopes import parse_scopes
from tests.fhir.restkit import LAB, VITALS, observation

BASE = "http://127.0.0.1:8711/fhir"
UPSTREAM = "http://127.0.0.1:8701/fhir"


def ctx(scope: str, patient: str | None = None) -> AccessContext:
    return AccessContext("u", "app", parse_scopes(scope), patient, None, {}, 0)


@pytest.fixture(scope="module")
def judge() -> ScopeJudge:
    return ScopeJudge()


def test_the_judge_applies_compartment_and_category(judge: ScopeJudge) -> None:
    permit = authorize(ctx(f"patient/Observation.rs?category={LAB}", "p1"), "Observation",
                       "r", base_url=BASE)
    assert judge.allowed(permit, [observation("p1"), observation("p2"),
                                  observation("p1", "vital-signs"),
                                  {"resourceType": "Patient", "id": "p1"}, "junk", None]) == [
        True, False, False, False, False, False]
    absolute = observation("p1") | {"subject": {"reference": f"{BASE}/Patient/p1"}}
    assert judge.allows(permit, absolute) is False  # only Type/id proves the compartment


def test_an_unrestricted_permit_still_checks_the_type(judge: ScopeJudge) -> None:
    permit = authorize(ctx("user/Observation.rs"), "Observation", "r", base_url=BASE)
    assert judge.allowed(permit, [observation("p2"), {"resourceType": "Patient"}]) == [
        True, False]


def test_pushdown_of_one_scope_is_exact() -> None:
    permit = authorize(ctx(f"patient/Observation.rs?category={LAB}", "p1"), "Observation",
                       "s", base_url=BASE)
    assert pushdown(permit) == ([("patient", "Patient/p1"), ("category", LAB)], True)
    patient = authorize(ctx("patient/Patient.rs", "p1"), "Patient", "s", base_url=BASE)
    assert pushdown(patient) == ([("_id", "p1")], True)


def test_pushdown_of_a_union_keeps_only_the_shared_compartment() -> None:
    permit = authorize(ctx(f"patient/Observation.rs?category={LAB} "
                           f"patient/Observation.rs?category={VITALS}", "p1"), "Observation",
                       "s", base_url=BASE)
    assert pushdown(permit) == ([("patient", "Patient/p1")], False)
    unrestricted = authorize(ctx("system/*.rs"), "Observation", "s", base_url=BASE)
    assert pushdown(unrestricted) == ([], True)


def test_as_param_forms() -> None:
    assert as_param(Clause("_id", "id", (IdValue("a"), IdValue("b")))) == ("_id", "a,b")
    assert as_param(Clause("code", "token", (TokenValue("", "x"),))) == ("code", "|x")
    assert as_param(Clause("code", "token", (TokenValue("s", None),))) == ("code", "s|")
    assert as_param(Clause("name", "string", (StringValue("a,b", "exact"),))) == (
        "name:exact", "a\\,b")
    assert as_param(Clause("subject", "reference",
                           (ReferenceValue(None, None, url="http://x/P/1"),))) is None


@given(st.text(st.characters(exclude_characters="|\\", exclude_categories=["Cs"]),
               min_size=1), st.text(st.characters(exclude_categories=["Cs"]), min_size=1))
def test_pushed_tokens_parse_back_to_the_same_value(system: str, code: str) -> None:
    """What the proxy sends is read by the upstream (fhir/search/parse.py) as the same token."""
    pushed = as_param(Clause("code", "token", (TokenValue(system, code),)))
    assert pushed is not None
    values = split_values(pushed[1])
    if "\\" in code and "," in code:
        return  # an escaped backslash before a comma is not representable in R4 either
    assert [parse_token(v) for v in values] == [TokenValue(system, code)]


@given(st.text(st.characters(exclude_categories=["Cs"])))
def test_rewriting_swaps_only_the_upstream_base(suffix: str) -> None:
    rewriter = Rewriter(UPSTREAM, BASE)
    tail = "/" + suffix
    assert rewriter.outward(UPSTREAM + tail) == BASE + tail
    assert rewriter.outward({"a": [UPSTREAM.upper().replace("/FHIR", "/fhir") + tail]}) == {
        "a": [BASE + tail]}
    assert rewriter.outward(UPSTREAM + "x" + tail) == UPSTREAM + "x" + tail  # /fhirx
    assert rewriter.outward("Patient" + tail) == "Patient" + tail
    assert rewriter.inward(BASE + tail) == UPSTREAM + tail


def test_realm_self_token_for_the_upstream(tmp_path: Path) -> None:
    store = DirectoryKeyStore(tmp_path / "keys")
    credentials = RealmSelfToken(store, "http://as", UPSTREAM, "4.0.1", clock=lambda: 1000.0)
    with pytest.raises(ServiceUnavailable):
        credentials.headers()  # no key yet: the AS has not started
    key = generate_key(now=1)
    store.add(key)
    header = credentials.headers()["Authorization"]
    assert header.startswith("Bearer ")
    token = jwt.decode(header.removeprefix("Bearer "), KeyRing([key]).public_key_set())
    assert token.header["typ"] == "at+jwt"
    claims = token.claims
    assert (claims["aud"], claims["scope"], claims["iss"]) == ([UPSTREAM], "system/*.cruds",
                                                               "http://as")
    assert claims["authorization_details"][0]["locations"] == [UPSTREAM]
    assert credentials.headers()["Authorization"] == header  # reused while fresh

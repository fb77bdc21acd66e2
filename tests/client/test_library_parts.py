"""The library's newer parts against the recording server and as pure functions: OAuth error
mapping through RealmApp, EHR launch parsing (hypothesis), scope planning, keys, the sync
facade."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartrealm.client import (
    AuthorizationError,
    ClientKey,
    ClientUsageError,
    LaunchRequestError,
    PublicClient,
    RealmApp,
    Refusal,
    ServerFacts,
    StateMismatch,
    TokenError,
    UntrustedIssuer,
    check_issuer,
    parse_launch,
    plan_scopes,
)
from smartrealm.client.errors import OAUTH_ERROR_CLASSES
from smartrealm.client.sync import SyncRealmApp
from tests.client.conformance_server import Recorder

REDIRECT = "http://127.0.0.1:9/callback"


async def _callback(http: httpx.AsyncClient, app: RealmApp) -> str:
    return (await http.get(app.begin(), follow_redirects=False)).headers["location"]


@pytest.mark.parametrize("code", sorted(OAUTH_ERROR_CLASSES))
async def test_every_oauth_error_maps_to_its_class(
    rec: Recorder, http: httpx.AsyncClient, code: str
) -> None:
    cls = OAUTH_ERROR_CLASSES[code]
    app = RealmApp(http, client=PublicClient("e"), redirect_uri=REDIRECT, scope="patient/*.rs")
    await app.prepare([rec.base("a")], plan=False)
    rec.authorize_error = code
    with pytest.raises(cls) as at_authorize:
        await app.complete(await _callback(http, app))
    assert type(at_authorize.value) is cls and at_authorize.value.error == code
    rec.authorize_error, rec.token_error = None, (400, code)
    with pytest.raises(TokenError) as at_token:
        await app.complete(await _callback(http, app))
    assert type(at_token.value.oauth) is cls and at_token.value.status == 400


async def test_unknown_code_and_forged_state(rec: Recorder, http: httpx.AsyncClient) -> None:
    app = RealmApp(http, client=PublicClient("e"), redirect_uri=REDIRECT, scope="patient/*.rs")
    await app.prepare([rec.base("a")], plan=False)
    rec.authorize_error = "login_required"
    with pytest.raises(AuthorizationError) as caught:
        await app.complete(await _callback(http, app))
    assert type(caught.value) is AuthorizationError and caught.value.error == "login_required"
    with pytest.raises(StateMismatch):
        await app.complete(f"{REDIRECT}?code=x&state=forged")
    assert rec.at("/as/token") == []


def test_sync_facade_runs_the_flow(rec: Recorder) -> None:
    a, b = rec.base("a"), rec.base("b")
    with SyncRealmApp(client=PublicClient("s"), redirect_uri=REDIRECT, scope="patient/*.rs") as app:
        assert app.check_token_reuse([a, b]).possible
        assert app.prepare([a, b]).possible
        url: str | None = app.begin()
        with httpx.Client() as browser:
            while url is not None:
                url = app.complete(browser.get(url).headers["location"])
        session = app.session(b)
        assert session.patient_id == "p1-b"
        assert session.read("Patient", "q") == {"resourceType": "Patient", "id": "q"}
        assert app.tokens_for(a) == app.tokens_for(b)


# --- EHR launch parsing ---------------------------------------------------------------

ISS = "http://127.0.0.1:8701/fhir"


def test_launch_parsing_refusals() -> None:
    assert parse_launch(f"?{urlencode({'iss': ISS, 'launch': 'L'})}").launch == "L"
    for query in ({"iss": ISS}, {"launch": "L"}, {"iss": "ehr/fhir", "launch": "L"},
                  {"iss": ISS, "launch": ""}, {"iss": "http://[", "launch": "L"}):
        with pytest.raises(LaunchRequestError):
            parse_launch("https://app/launch?" + urlencode(query))
    with pytest.raises(LaunchRequestError):
        parse_launch(f"https://app/launch?iss={ISS}&iss={ISS}&launch=L")
    with pytest.raises(UntrustedIssuer) as caught:
        check_issuer("http://127.0.0.1:8701/fhir-evil", [ISS])
    assert caught.value.iss == "http://127.0.0.1:8701/fhir-evil"
    with pytest.raises(UntrustedIssuer):  # the path is case-sensitive
        check_issuer("http://127.0.0.1:8701/FHIR", [ISS])


@given(st.text(), st.text())
def test_parse_launch_total(iss: str, launch: str) -> None:
    """Any iss/launch pair: either exactly those values back, or LaunchRequestError."""
    url = "https://app/launch?" + urlencode({"iss": iss, "launch": launch})
    try:
        parsed = parse_launch(url)
    except LaunchRequestError:
        return
    assert (parsed.iss, parsed.launch) == (iss, launch)


@given(st.text(max_size=80))
def test_parse_launch_never_raises_otherwise(query: str) -> None:
    """Arbitrary text: a LaunchRequest with non-empty values, or LaunchRequestError."""
    try:
        parsed = parse_launch(query)
    except LaunchRequestError:
        return
    assert parsed.iss.lower().startswith(("http://", "https://")) and parsed.launch.strip()


@given(st.sampled_from(["http", "HTTP", "https"]), st.from_regex(r"[a-z]{1,8}", fullmatch=True),
       st.booleans())
def test_check_issuer_normalises_only_case_and_slash(scheme: str, path: str, slash: bool) -> None:
    allowed = f"{scheme.lower()}://host.example/{path}"
    iss = f"{scheme}://HOST.example/{path}" + ("/" if slash else "")
    assert check_issuer(iss, [allowed]) == allowed
    with pytest.raises(UntrustedIssuer):
        check_issuer(iss + "x", [allowed])


# --- scope planning -------------------------------------------------------------------


def test_plan_reports_what_each_server_cannot_grant() -> None:
    servers = [
        ServerFacts("http://h/ehr", ("openid", "launch/patient", "patient/*.cruds"),
                    frozenset({"Patient", "Observation"})),
        ServerFacts("http://h/img", ("openid", "patient/ImagingStudy.rs", "patient/Patient.rs"),
                    frozenset({"Patient", "ImagingStudy"})),
        ServerFacts("http://h/legacy", (), None),
    ]
    plan = plan_scopes("openid launch/patient patient/Observation.rs patient/Patient.r "
                       "patient/ImagingStudy.rs", servers)
    assert plan.server("http://h/ehr/").refused == (
        Refusal("patient/ImagingStudy.rs", "type-not-served"),)
    assert plan.server("http://h/img").refused == (
        Refusal("launch/patient", "scope-not-supported"),
        Refusal("patient/Observation.rs", "type-not-served"))
    assert plan.server("http://h/legacy").refused == ()
    assert plan.scope == ("openid launch/patient patient/Observation.rs patient/Patient.r "
                          "patient/ImagingStudy.rs")
    assert plan.server("http://h/img").scope == "openid patient/Patient.r patient/ImagingStudy.rs"
    per_server = plan_scopes({"http://h/ehr": "patient/Patient.cud",
                              "http://h/img": "patient/Patient.cud"}, servers[:2])
    assert per_server.report() == ["http://h/img: patient/Patient.cud: scope-not-supported"]
    assert per_server.scope == "patient/Patient.cud"
    with pytest.raises(ClientUsageError):
        plan_scopes({"http://h/ehr": "openid"}, servers[:2])
    with pytest.raises(ClientUsageError):
        plan_scopes("patient/Patient.xyz", servers[:1])


# --- keys ----------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_keys_round_trip_and_public_jwks(alg: str) -> None:
    key = ClientKey.generate(alg)
    loaded = ClientKey.from_jwk(key.private_jwk())
    assert loaded.public_jwks() == key.public_jwks()
    (jwk,) = key.public_jwks()["keys"]
    assert jwk["kid"] == key.kid and jwk["alg"] == alg and "d" not in jwk
    assert jwk["kty"] == ("RSA" if alg == "RS384" else "EC")


def test_bad_keys_are_usage_errors() -> None:
    with pytest.raises(ClientUsageError):
        ClientKey.generate("HS256")
    es = ClientKey.generate("ES384")
    for broken in ({**es.private_jwk(), "alg": "RS384"}, es.public_jwk(),
                   {"alg": "ES384", "kid": "k", "kty": "EC"}, {**es.private_jwk(), "kid": ""}):
        with pytest.raises(ClientUsageError):
            ClientKey.from_jwk(broken)


SCOPE_TOKENS = st.sampled_from([
    "openid", "fhirUser", "launch/patient", "offline_access", "patient/*.rs",
    "patient/Patient.rs", "patient/Observation.r", "user/Observation.cruds",
    "patient/ImagingStudy.s", "system/*.rs", "patient/Condition.rs?category=x|y"])
TYPES = st.frozensets(st.sampled_from(["Patient", "Observation", "ImagingStudy", "Condition"]))


@given(st.lists(SCOPE_TOKENS, max_size=8), st.lists(SCOPE_TOKENS, max_size=6),
       st.one_of(st.none(), TYPES))
def test_plan_partitions_what_is_wanted(wanted: list[str], supported: list[str],
                                        types: frozenset[str] | None) -> None:
    """Every wanted scope is either grantable or refused with a reason; a scope the server
    lists exactly and whose type it serves is never refused."""
    facts = ServerFacts("http://h/fhir", tuple(supported), types)
    plan = plan_scopes(" ".join(wanted), [facts]).server("http://h/fhir")
    refused = {r.scope for r in plan.refused}
    assert set(plan.grantable) | refused == set(wanted)
    assert not set(plan.grantable) & refused
    for scope in wanted:
        resource_type = scope.split("/")[1].split(".")[0] if "." in scope else None
        served = types is None or resource_type in (None, "*") or resource_type in types
        if scope in supported and served:
            assert scope in plan.grantable

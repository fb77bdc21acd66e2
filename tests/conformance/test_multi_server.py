"""The multi-server cases of issue 3's acceptance bar, which no Inferno kit covers: two and
three resources, narrowing at the token endpoint, a resource outside the realm, a client
limited to one server, a patient missing on one server, per-server scope removal on the
consent page, and introspection from each server's point of view (spec §10, the seed's
"reuse access token" proposal, docs/behaviour.md).

The patient user's record is ``p0012`` on the EHR, ``img0012`` on imaging and ``lab0012``
on the lab, linked by the MRN; the archive has no record of it. Because the ids differ, the
token response carries no top-level ``patient`` but one ``launch-full-url`` fhirContext item
per server whose ``reference`` is **absolute** — deliberately, against SMART 2.2's relative
rule (spec §6.5, §14.2): the app needs the server's base to know which id is whose. Inferno's
2.2 fhirContext check therefore applies to single-server launches only."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conformance.browser import Choices
from tests.conformance.checks import check_json, check_oauth_error, check_token_response_body
from tests.conformance.conftest import Realm
from tests.conformance.inferno import (
    AuthRequest,
    Client,
    Launched,
    authorize,
    code_form,
    create_launch,
    fhir_get,
    introspect,
    jwt_part,
    launch,
    register,
    token_request,
)

pytestmark = pytest.mark.e2e
SCOPE = ("launch/patient openid fhirUser offline_access patient/Patient.rs "
         "patient/Observation.rs patient/ImagingStudy.rs patient/DiagnosticReport.rs")
PATIENT = {"ehr": "p0012", "imaging": "img0012", "lab": "lab0012"}
OUTSIDE = "https://fhir.elsewhere.example.org/r4"


def multi(http: httpx.Client, realm: Realm, servers: tuple[str, ...],
          choices: Choices | None = None, client: Client | None = None,
          **extra: str | list[str]) -> Launched:
    client = client or register(http, realm)
    request = AuthRequest(client, SCOPE, resources=tuple(realm.base(s) for s in servers))
    return launch(http, realm, request, choices, **extra)


def details(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(d["locations"][0]): d for d in body["authorization_details"]}


def audience(token: str) -> list[str]:
    aud = jwt_part(token, 1)["aud"]
    return [aud] if isinstance(aud, str) else list(aud)


def read_status(http: httpx.Client, realm: Realm, server: str, token: str, path: str) -> int:
    return fhir_get(http, realm.base(server), path, token).status_code


@pytest.mark.parametrize("servers", [("ehr", "imaging"), ("ehr", "imaging", "lab")],
                         ids=["two resources", "three resources"])
def test_multi_server_resources(http: httpx.Client, realm: Realm,
                                servers: tuple[str, ...]) -> None:
    """Two and three ``resource``s, no ``aud``: one token whose ``aud`` lists every server
    (the first is primary), one ``authorization_details`` entry each with that server's
    scope and patient id, ``launch-full-url`` items (absolute, see the module docstring),
    and reads of the patient's own record at each server; a server outside the audience
    answers 401."""
    launched = multi(http, realm, servers)
    body = check_json(launched.response)
    check_token_response_body(body, "launch/patient openid fhirUser offline_access",
                              relative_context=False)
    bases = [realm.base(s) for s in servers]
    assert audience(body["access_token"]) == bases
    assert [d["locations"] for d in body["authorization_details"]] == [[b] for b in bases]
    assert "patient" not in body
    assert body["fhirContext"] == [
        {"reference": f"{realm.base(s)}/Patient/{PATIENT[s]}", "role": "launch-full-url"}
        for s in servers]
    for server in servers:
        entry = details(body)[realm.base(server)]
        assert entry["patient"] == PATIENT[server] and entry["fhirVersions"] == ["4.0.1"]
        assert read_status(http, realm, server, body["access_token"],
                           f"Patient/{PATIENT[server]}") == 200
    assert "patient/ImagingStudy.rs" in details(body)[realm.base("imaging")]["scope"].split()
    assert "patient/ImagingStudy.rs" not in details(body)[realm.base("ehr")]["scope"].split()
    if "lab" not in servers:
        assert read_status(http, realm, "lab", body["access_token"], "Patient/lab0012") == 401


def authorized(http: httpx.Client, realm: Realm, servers: tuple[str, ...]
               ) -> tuple[AuthRequest, str]:
    request = AuthRequest(register(http, realm), SCOPE,
                          resources=tuple(realm.base(s) for s in servers))
    return request, authorize(realm, request).params["code"]


def test_multi_server_narrowing_the_audience_at_the_token_endpoint(
        http: httpx.Client, realm: Realm) -> None:
    """Issue 3: "the token request may ... repeat ``resource`` to narrow the audience"
    (RFC 8707 §2.2): authorized for three servers, the token asked for two is for those two
    only, with their two entries; the third answers 401."""
    request, code = authorized(http, realm, ("ehr", "imaging", "lab"))
    response = token_request(http, realm, request.client, code_form(
        request, code, resource=[realm.base("ehr"), realm.base("imaging")]))
    body = check_json(response)
    assert audience(body["access_token"]) == [realm.base("ehr"), realm.base("imaging")]
    assert list(details(body)) == [realm.base("ehr"), realm.base("imaging")]
    assert read_status(http, realm, "lab", body["access_token"], "Patient/lab0012") == 401
    assert read_status(http, realm, "imaging", body["access_token"], "Patient/img0012") == 200


def test_multi_server_narrowing_the_scope_at_the_token_endpoint(
        http: httpx.Client, realm: Realm) -> None:
    """Issue 3: "the token request may narrow ``scope``": a ``scope`` at the code exchange
    that is a subset of the grant is the token's scope exactly, on every server."""
    request, code = authorized(http, realm, ("ehr", "imaging"))
    narrow = "launch/patient patient/Patient.rs"
    response = token_request(http, realm, request.client,
                             code_form(request, code, scope=narrow))
    body = check_json(response)
    assert body["scope"] == narrow
    assert all(d["scope"] == narrow for d in body["authorization_details"])
    assert "id_token" not in body  # openid was narrowed away
    assert read_status(http, realm, "imaging", body["access_token"], "ImagingStudy") == 403


@pytest.mark.parametrize("widen", ["resource", "scope"])
def test_multi_server_the_token_endpoint_never_widens(http: httpx.Client, realm: Realm,
                                                      widen: str) -> None:
    """Issue 3: "never widen either": a ``resource`` that was not authorized is
    ``invalid_target``, a ``scope`` beyond the grant ``invalid_scope`` (400, no token)."""
    request, code = authorized(http, realm, ("ehr", "imaging"))
    extra: dict[str, str | list[str]] = (
        {"resource": [realm.base("ehr"), realm.base("lab")]} if widen == "resource"
        else {"scope": "launch/patient patient/Patient.rs patient/Condition.rs"})
    response = token_request(http, realm, request.client, code_form(request, code, **extra))
    check_oauth_error(response, 400, "invalid_target" if widen == "resource"
                      else "invalid_scope")


def test_multi_server_resource_outside_the_realm(http: httpx.Client, realm: Realm) -> None:
    """A ``resource`` this AS does not govern: ``invalid_target`` redirected to the app (its
    redirect URI is verified), no code; at the token endpoint likewise ``invalid_target``."""
    client = register(http, realm)
    request = AuthRequest(client, SCOPE, resources=(realm.base("ehr"), OUTSIDE))
    visit = authorize(realm, request)
    assert "code" not in visit.params and visit.params["error"] == "invalid_target"
    assert visit.params["state"] == request.state
    request, code = authorized(http, realm, ("ehr", "imaging"))
    response = token_request(http, realm, request.client,
                             code_form(request, code, resource=OUTSIDE))
    check_oauth_error(response, 400, "invalid_target")


def test_multi_server_client_limited_to_one_server(http: httpx.Client, realm: Realm) -> None:
    """A client registered with ``allowed_servers: ["ehr"]``: asking for the EHR and imaging,
    or for imaging alone, is ``invalid_target``; the EHR alone is granted."""
    client = register(http, realm, allowed_servers=["ehr"])
    for servers in (("ehr", "imaging"), ("imaging",)):
        bases = tuple(realm.base(s) for s in servers)
        request = AuthRequest(client, SCOPE, resources=bases) if len(bases) > 1 else \
            AuthRequest(client, SCOPE, aud=bases[0])
        visit = authorize(realm, request)
        assert visit.params.get("error") == "invalid_target", (servers, visit.params)
    granted = launch(http, realm, AuthRequest(client, SCOPE, aud=realm.base("ehr")))
    assert audience(check_json(granted.response)["access_token"]) == [realm.base("ehr")]


def test_multi_server_patient_missing_on_one_server(http: httpx.Client, realm: Realm) -> None:
    """The EHR and the archive, which has no record of the patient: the consent page says
    so for the archive; the archive's entry has no patient and no patient scope; the
    fhirContext names the EHR's record only; the archive refuses patient data (403)."""
    launched = multi(http, realm, ("ehr", "archive"))
    consent = launched.visit.page("consent")
    archive_section = consent.split('data-server="archive"')[1].split("</section>")[0]
    assert "The patient was not found on this server" in archive_section
    body = check_json(launched.response)
    entry = details(body)[realm.base("archive")]
    assert "patient" not in entry
    assert not [s for s in entry["scope"].split() if s.startswith("patient/")]
    assert details(body)[realm.base("ehr")]["patient"] == "p0012"
    assert body["fhirContext"] == [{"reference": f"{realm.base('ehr')}/Patient/p0012",
                                    "role": "launch-full-url"}]
    assert read_status(http, realm, "archive", body["access_token"], "Patient") == 403
    assert read_status(http, realm, "ehr", body["access_token"], "Patient/p0012") == 200


def test_multi_server_per_server_scope_removal_on_the_consent_page(
        http: httpx.Client, realm: Realm) -> None:
    """Unticking ``patient/DiagnosticReport.rs`` under imaging only: imaging's entry loses
    it and imaging refuses DiagnosticReport (403); the EHR keeps it and answers 200."""
    untick = Choices(untick=[("scope:imaging", "patient/DiagnosticReport.rs")])
    launched = multi(http, realm, ("ehr", "imaging"), untick)
    body = check_json(launched.response)
    got = details(body)
    assert "patient/DiagnosticReport.rs" not in got[realm.base("imaging")]["scope"].split()
    assert "patient/DiagnosticReport.rs" in got[realm.base("ehr")]["scope"].split()
    token = body["access_token"]
    on_imaging = fhir_get(http, realm.base("imaging"), "DiagnosticReport", token,
                          patient="img0012")
    on_ehr = fhir_get(http, realm.base("ehr"), "DiagnosticReport", token, patient="p0012")
    assert (on_imaging.status_code, on_ehr.status_code) == (403, 200)


def test_multi_server_introspection_from_each_servers_point_of_view(
        http: httpx.Client, realm: Realm) -> None:
    """Each server introspecting (as ``rs:<id>``) sees its own share: its patient id and
    data scopes (identity scopes stay, §7.1), the same ``aud`` and details; a server outside
    the audience sees an inactive token; any other caller sees the token response's view."""
    launched = multi(http, realm, ("ehr", "imaging"))
    body = check_json(launched.response)
    token = body["access_token"]
    identity = ["openid", "fhirUser", "offline_access"]
    for server in ("ehr", "imaging"):
        answer = check_json(introspect(http, realm, token, server))
        assert answer["active"] is True and answer["patient"] == PATIENT[server]
        assert answer["scope"].split() == [
            *details(body)[realm.base(server)]["scope"].split(), *identity]
        assert answer["aud"] == [realm.base("ehr"), realm.base("imaging")]
        assert answer["authorization_details"] == body["authorization_details"]
    assert check_json(introspect(http, realm, token, "lab")) == {"active": False}
    as_app = check_json(http.post(realm.config.auth_server.introspection_endpoint,
                                  data={"token": token},
                                  headers={"Authorization": f"Bearer {token}"}))
    assert as_app["scope"] == body["scope"] and "patient" not in as_app
    assert as_app["fhirContext"] == body["fhirContext"]
    # imaging checks tokens by introspection: its own view lets it read its own record.
    assert read_status(http, realm, "imaging", token, "Patient/img0012") == 200


def test_multi_server_ehr_launch(http: httpx.Client, realm: Realm) -> None:
    """An EHR launch for the EHR and imaging (``launch`` plus two ``resource``s): the EHR is
    primary; the encounter lives only in its entry; ``need_patient_banner`` and
    ``smart_style_url`` are there as in a single-server EHR launch."""
    client = register(http, realm)
    query = httpx.URL(create_launch(http, realm, client, patient="p0012",
                                    encounter="enc-p0012-1")).params
    request = AuthRequest(client, "launch openid fhirUser patient/*.rs",
                          resources=(realm.base("imaging"), realm.base("ehr")),
                          launch=query["launch"])
    body = check_json(launch(http, realm, request, Choices(username="clinician")).response)
    assert [d["locations"] for d in body["authorization_details"]] == [
        [realm.base("ehr")], [realm.base("imaging")]]
    assert details(body)[realm.base("ehr")]["encounter"] == "enc-p0012-1"
    assert "encounter" not in body and "encounter" not in details(body)[realm.base("imaging")]
    assert body["need_patient_banner"] is True and body["smart_style_url"]

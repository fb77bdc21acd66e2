"""The consent page's choices: per-server checkboxes (``scope:<server id>``), plain-language
labels, granular category alternatives (g10), refresh scopes, and what a forged form can
(not) do."""

from __future__ import annotations

import httpx

from smartrealm.oauth.approval import OBSERVATION_CATEGORY
from smartrealm.realm.config import RealmConfig
from tests.authz.conftest import Flow, approve, exchange, login, redirect_params, start
from tests.authz.consent_helpers import checkboxes, decide, per_server, ticked

LAB = f"patient/Observation.rs?category={OBSERVATION_CATEGORY}|laboratory"
VITALS = f"patient/Observation.rs?category={OBSERVATION_CATEGORY}|vital-signs"
PROBLEMS = ("patient/Condition.rs?category="
            "http://terminology.hl7.org/CodeSystem/condition-category|problem-list-item")


async def consent_page(ua: httpx.AsyncClient, flow: Flow) -> httpx.Response:
    page = await login(ua, await start(ua, flow), "patient", "patient-demo")
    assert str(page.url).endswith("/interaction/consent"), page.text
    return page


async def token(ua: httpx.AsyncClient, flow: Flow, response: httpx.Response
                ) -> dict[str, object]:
    answer = await exchange(ua, flow, redirect_params(response)["code"])
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


async def test_checkboxes_per_server_with_plain_language_labels(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    flow = Flow(realm, resources=("ehr", "imaging"),
                scope="launch/patient patient/*.rs patient/DiagnosticReport.rs offline_access")
    page = await consent_page(ua, flow)
    boxes = checkboxes(page.text)
    assert ("scope:ehr", "patient/DiagnosticReport.rs", True) in boxes
    assert ("scope:imaging", "patient/DiagnosticReport.rs", True) in boxes
    assert ("scope:ehr", "patient/*.rs", True) in boxes
    assert ("identity", "offline_access", True) in boxes
    assert ("remember", "1", False) in boxes
    assert "Read and search diagnostic reports of the patient" in page.text
    assert "including kinds added later" in page.text  # the wildcard, explained
    assert "Keep access when you are away" in page.text
    assert 'name="scope_choices" value="1"' in page.text


async def test_unticking_on_one_server_removes_it_only_there(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    flow = Flow(realm, resources=("ehr", "imaging"),
                scope="launch/patient patient/Patient.rs patient/DiagnosticReport.rs")
    page = await consent_page(ua, flow)
    fields = ticked(page.text, untick={("scope:imaging", "patient/DiagnosticReport.rs")})
    body = await token(ua, flow, await decide(ua, page, fields))
    scopes = per_server(body)
    assert scopes[realm.server("ehr").base_url] == [
        "launch/patient", "patient/Patient.rs", "patient/DiagnosticReport.rs"]
    assert scopes[realm.server("imaging").base_url] == ["launch/patient", "patient/Patient.rs"]
    # The union still has it: the EHR grants it.
    assert "patient/DiagnosticReport.rs" in str(body["scope"]).split()


async def test_limited_scope_grant_leaves_a_resource_forbidden(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    """g10_limited_scope_grant: after unchecking, the granted scope is exactly the rest."""
    flow = Flow(realm, scope="launch/patient patient/Patient.rs patient/Condition.rs "
                             "patient/Encounter.rs")
    page = await consent_page(ua, flow)
    fields = ticked(page.text, untick={("scope:ehr", "patient/Encounter.rs")})
    body = await token(ua, flow, await decide(ua, page, fields))
    assert body["scope"] == "launch/patient patient/Patient.rs patient/Condition.rs"


async def test_granular_categories_instead_of_whole_types(ua: httpx.AsyncClient,
                                                          realm: RealmConfig) -> None:
    """g10_smart_granular_scope_selection: resource-level Condition and Observation asked,
    category sub-scopes granted, Patient stays resource-level (v2)."""
    flow = Flow(realm, scope="launch/patient patient/Patient.rs patient/Condition.rs "
                             "patient/Observation.rs")
    page = await consent_page(ua, flow)
    assert ("scope:ehr", LAB, False) in checkboxes(page.text)
    assert "Only laboratory results" in page.text  # the query scope, explained
    fields = ticked(page.text, untick={("scope:ehr", "patient/Condition.rs"),
                                       ("scope:ehr", "patient/Observation.rs")},
                    tick={("scope:ehr", LAB), ("scope:ehr", VITALS),
                          ("scope:ehr", PROBLEMS)})
    body = await token(ua, flow, await decide(ua, page, fields))
    granted = str(body["scope"]).split()
    assert granted == ["launch/patient", "patient/Patient.rs", PROBLEMS, LAB, VITALS]
    assert not {"patient/Condition.rs", "patient/Observation.rs"} & set(granted)


async def test_an_alternative_under_a_ticked_whole_type_is_redundant(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    flow = Flow(realm, scope="launch/patient patient/Observation.rs")
    page = await consent_page(ua, flow)
    body = await token(ua, flow, await decide(ua, page, ticked(
        page.text, tick={("scope:ehr", LAB)})))
    assert body["scope"] == "launch/patient patient/Observation.rs"


async def test_a_forged_form_cannot_widen_the_offer(ua: httpx.AsyncClient,
                                                    realm: RealmConfig) -> None:
    flow = Flow(realm, resources=("ehr", "imaging"),
                scope="launch/patient patient/Patient.rs patient/ImagingStudy.rs")
    page = await consent_page(ua, flow)
    forged = [("scope:ehr", "patient/ImagingStudy.rs"),  # refused on the EHR
              ("scope:ehr", "patient/*.cruds"), ("scope:ehr", "user/Patient.rs"),
              ("scope:imaging", "system/*.rs"), ("scope:nowhere", "patient/Patient.rs"),
              ("scope:ehr", "patient/Observation.rs?category=x|y"), ("identity", "openid")]
    body = await token(ua, flow, await decide(ua, page, ticked(page.text) + forged))
    scopes = per_server(body)
    assert scopes[realm.server("ehr").base_url] == ["launch/patient", "patient/Patient.rs"]
    assert scopes[realm.server("imaging").base_url] == [
        "launch/patient", "patient/Patient.rs", "patient/ImagingStudy.rs"]
    assert "openid" not in str(body["scope"]).split()


async def test_unticking_everything_grants_no_data(ua: httpx.AsyncClient,
                                                   realm: RealmConfig) -> None:
    flow = Flow(realm, scope="launch/patient patient/Patient.rs openid fhirUser")
    page = await consent_page(ua, flow)
    body = await token(ua, flow, await decide(ua, page, []))
    assert body["scope"] == "launch/patient openid fhirUser"
    assert per_server(body)[realm.server("ehr").base_url] == ["launch/patient"]


async def test_offline_access_can_be_refused(ua: httpx.AsyncClient,
                                             realm: RealmConfig) -> None:
    flow = Flow(realm, scope="launch/patient patient/Patient.rs offline_access")
    page = await consent_page(ua, flow)
    kept = await token(ua, flow, await decide(ua, page, ticked(page.text)))
    assert "refresh_token" in kept
    page = await consent_page(ua, flow)
    refused = await token(ua, flow, await decide(ua, page, ticked(
        page.text, untick={("identity", "offline_access")})))
    assert "refresh_token" not in refused and "offline_access" not in str(refused["scope"])


async def test_a_post_without_the_checkboxes_approves_the_offer(
        ua: httpx.AsyncClient, realm: RealmConfig) -> None:
    """Documented: ``scope_choices`` marks a form that showed checkboxes; scripted
    clients that send only ``decision=approve`` get everything offered."""
    flow = Flow(realm, scope="launch/patient patient/Patient.rs offline_access")
    page = await consent_page(ua, flow)
    body = await token(ua, flow, await approve(ua, page))
    assert body["scope"] == "launch/patient patient/Patient.rs offline_access"


async def test_deny_with_choices_still_denies(ua: httpx.AsyncClient,
                                              realm: RealmConfig) -> None:
    flow = Flow(realm)
    page = await consent_page(ua, flow)
    params = redirect_params(await decide(ua, page, ticked(page.text), decision="deny"))
    assert params["error"] == "access_denied" and "code" not in params

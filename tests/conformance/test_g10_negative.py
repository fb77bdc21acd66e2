"""Spec §12.6, the ONC (g)(10) kit's negative checks: an invalid ``aud``, the invalid token
requests (``Test03`` bad code, ``Test04`` bad client), the four PKCE failures, an invalid
refresh token, a FHIR request without a token, and token revocation. Inferno's g10 launches
use a symmetric client (HTTP Basic); the exact OAuth codes are asserted, not only the
statuses g10 accepts."""

from __future__ import annotations

import uuid

import httpx
import pytest

from smartrealm.devtools.useragent import parse_page
from tests.conformance.checks import check_oauth_error
from tests.conformance.conftest import Realm
from tests.conformance.inferno import (
    REDIRECT_URI,
    STANDALONE_SCOPES,
    AuthRequest,
    Client,
    Launched,
    authorize,
    code_form,
    fhir_get,
    introspect,
    refresh_form,
    register,
    standalone,
    token_request,
)

pytestmark = pytest.mark.e2e
INVALID_AUD = "https://inferno.healthit.gov/invalid_aud"


def code_for(http: httpx.Client, realm: Realm, client: Client) -> tuple[AuthRequest, str]:
    request = AuthRequest(client, STANDALONE_SCOPES, aud=realm.base("ehr"))
    visit = authorize(realm, request)
    return request, visit.params["code"]


def test_g10_smart_invalid_aud(http: httpx.Client, realm: Realm) -> None:
    """``g10_smart_invalid_aud``: "authorize with aud=https://inferno.healthit.gov/
    invalid_aud → the server must not issue a code". The error redirects to the verified
    redirect URI with ``invalid_request`` and the state (design: aud not governed)."""
    request = AuthRequest(register(http, realm, "symmetric"), STANDALONE_SCOPES,
                          aud=INVALID_AUD)
    visit = authorize(realm, request)
    assert visit.callback.startswith(REDIRECT_URI) and not visit.pages
    assert "code" not in visit.params
    assert visit.params["error"] == "invalid_request"
    assert visit.params["state"] == request.state


def test_g10_smart_invalid_token_request_test03_bad_code(http: httpx.Client,
                                                         realm: Realm) -> None:
    """``g10_smart_invalid_token_request_stu2`` ``Test03``: "exchange with a bad code →
    400" (``invalid_grant``)."""
    client = register(http, realm, "symmetric")
    request, _code = code_for(http, realm, client)
    response = token_request(http, realm, client, code_form(request, "BAD_CODE"))
    check_oauth_error(response, 400, "invalid_grant")


@pytest.mark.parametrize("kind", ["symmetric", "public"])
def test_g10_smart_invalid_token_request_test04_bad_client(http: httpx.Client, realm: Realm,
                                                           kind: str) -> None:
    """``g10_smart_invalid_token_request_stu2`` ``Test04``: "exchange with
    client_id=BAD_CLIENT_ID → 400 or 401" — in Basic with the real secret (symmetric), or
    in the body (public): ``401 invalid_client``."""
    client = register(http, realm, kind)
    request, code = code_for(http, realm, client)
    impostor = Client("BAD_CLIENT_ID", kind, client.secret)
    response = token_request(http, realm, impostor, code_form(request, code))
    check_oauth_error(response, 401, "invalid_client")


def pkce_exchange(http: httpx.Client, realm: Realm, verifier: str | None,
                  plain: bool = False) -> httpx.Response:
    """``g10_smart_invalid_pkce_code_verifier_group``'s ``invalid_pkce_request``: a new
    launch (symmetric client), then the exchange with ``verifier`` (None: no
    code_verifier; ``plain``: the code_challenge itself). Spec §14.20: ``400
    invalid_grant``, and g10 accepts 400 or 401."""
    client = register(http, realm, "symmetric")
    request, code = code_for(http, realm, client)
    form = code_form(request, code)
    del form["code_verifier"]
    if plain:
        form["code_verifier"] = request.code_challenge
    elif verifier is not None:
        form["code_verifier"] = verifier
    return token_request(http, realm, client, form)


def test_g10_smart_no_verifier_token_request(http: httpx.Client, realm: Realm) -> None:
    """``smart_no_verifier_token_request``: "OAuth token exchange fails when no
    code_verifier is given"."""
    check_oauth_error(pkce_exchange(http, realm, None), 400, "invalid_grant")


def test_g10_smart_blank_verifier_token_request(http: httpx.Client, realm: Realm) -> None:
    """``smart_blank_verifier_token_request``: "... fails when code_verifier is blank"."""
    check_oauth_error(pkce_exchange(http, realm, ""), 400, "invalid_grant")


def test_g10_smart_bad_code_verifier_token_request(http: httpx.Client, realm: Realm) -> None:
    """``smart_bad_code_verifier_token_request``: "... fails when code_verifier is
    incorrect" (a random ``uuid-uuid``)."""
    response = pkce_exchange(http, realm, f"{uuid.uuid4()}-{uuid.uuid4()}")
    check_oauth_error(response, 400, "invalid_grant")


def test_g10_smart_plain_code_verifier_token_request(http: httpx.Client,
                                                     realm: Realm) -> None:
    """``smart_plain_code_verifier_token_request``: "... fails when code_verifier matches
    code_challenge" (a "plain" PKCE attempt)."""
    check_oauth_error(pkce_exchange(http, realm, None, plain=True), 400, "invalid_grant")


def test_g10_invalid_token_refresh(http: httpx.Client, realm: Realm) -> None:
    """``g10_invalid_token_refresh``: "refresh with an invalid refresh token → 400 or 401"
    (§4.3: ``invalid_grant``, 400)."""
    client = register(http, realm, "symmetric")
    response = token_request(http, realm, client, refresh_form("INVALID_REFRESH_TOKEN"))
    check_oauth_error(response, 400, "invalid_grant")


@pytest.mark.parametrize("server", ["ehr", "imaging", "lab", "archive"])
def test_g10_unauthorized_access(http: httpx.Client, realm: Realm, server: str) -> None:
    """``g10_unauthorized_access``: "a FHIR request with no token → 401" (with a Bearer
    challenge and an OperationOutcome)."""
    response = fhir_get(http, realm.base(server), "Patient", None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["resourceType"] == "OperationOutcome"


# ---------------------------------------------------------------- token revocation


def revoke_at_manage(realm: Realm, client_id: str) -> None:
    """The patient's request: sign in at the management endpoint and revoke the app."""
    manage = realm.config.auth_server.management_endpoint
    with httpx.Client(timeout=15.0, follow_redirects=True) as browser:
        forms, _ = parse_page(browser.get(manage).text)
        page = browser.post(manage, data={**dict(forms[0].fields), "username": "patient",
                                          "password": "patient-demo"})
        forms, _ = parse_page(page.text)
        form = next(f for f in forms if ("client_id", client_id) in f.fields)
        done = browser.post(manage, data=dict(form.fields))
        assert done.status_code == 200 and "revoked" in done.text


def revoke_rfc7009(http: httpx.Client, realm: Realm, launched: Launched) -> None:
    """The app's request (RFC 7009), Basic-authenticated: the refresh token, which ends the
    whole grant (access tokens included)."""
    client = launched.client
    assert client.secret is not None
    response = http.post(realm.config.auth_server.revocation_endpoint, data={
        "token": launched.body["refresh_token"], "token_type_hint": "refresh_token"},
        auth=(client.client_id, client.secret))
    assert response.status_code == 200 and response.content == b""


@pytest.fixture(params=["patient at manage", "RFC 7009"])
def revoked(request: pytest.FixtureRequest, http: httpx.Client, realm: Realm) -> Launched:
    """A standalone launch for the imaging server (``token_check = "introspection"``),
    whose token is then revoked. It is checked active beforehand at the AS, not by a read
    at imaging, whose answer cache would otherwise hold "active" for up to 30 s
    (docs/behaviour.md; g10 only asks that a revocation bite within an hour)."""
    launched = standalone(http, realm, "symmetric", server="imaging")
    assert introspect(http, realm, launched.access_token, "imaging").json()["active"] is True
    if request.param == "patient at manage":
        revoke_at_manage(realm, launched.client.client_id)
    else:
        revoke_rfc7009(http, realm, launched)
    return launched


def test_g10_token_revocation_fhir_read(http: httpx.Client, realm: Realm,
                                        revoked: Launched) -> None:
    """``g10_token_revocation``: "after revocation, a FHIR read with the old token → 401,
    403 or 404". The imaging server asks the AS (introspection): ``401 invalid_token``."""
    response = fhir_get(http, realm.base("imaging"), "Patient/img0012", revoked.access_token)
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert introspect(http, realm, revoked.access_token, "imaging").json() == {"active": False}


def test_g10_token_revocation_refresh(http: httpx.Client, realm: Realm,
                                      revoked: Launched) -> None:
    """``g10_token_revocation``: "a refresh with the old refresh token → 400 or 401" —
    ``400 invalid_grant``, Basic-authenticated as g10 does."""
    response = token_request(http, realm, revoked.client,
                             refresh_form(revoked.body["refresh_token"]))
    check_oauth_error(response, 400, "invalid_grant")


def test_g10_token_revocation_at_a_jwt_mode_server(http: httpx.Client, realm: Realm) -> None:
    """What a signature-checking server does (the EHR, ``token_check = "jwt"``, the
    default): it cannot see a revocation, so a revoked access token keeps reading there
    until it expires (``access_token_lifetime``, at most an hour — g10's attested limit);
    the refresh token stops at once. docs/behaviour.md "When a revocation takes effect"."""
    launched = standalone(http, realm, "symmetric", server="ehr")
    revoke_rfc7009(http, realm, launched)
    assert fhir_get(http, realm.base("ehr"), "Patient/p0012",
                    launched.access_token).status_code == 200
    assert launched.body["expires_in"] <= 3600
    response = token_request(http, realm, launched.client,
                             refresh_form(launched.body["refresh_token"]))
    check_oauth_error(response, 400, "invalid_grant")

"""What the client sends, recorded by a real SMART server on loopback and checked against
what Inferno's client suite expects of a conformant client (spec §12.5): PKCE S256, state
entropy, aud/resource, form-encoded token requests with the right client authentication,
assertion claims, Bearer on FHIR calls, no token in any URL."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from urllib.parse import urlencode

import httpx
import pytest
from joserfc import jwt

from smartrealm.client import (
    ClientKey,
    ClientSecretBasic,
    FhirPreconditionFailed,
    PrivateKeyJwt,
    PublicClient,
    RealmApp,
    authorize_post_page,
    check_issuer,
    client_credentials,
    discover,
    ehr_authorization_request,
    parse_callback,
    parse_launch,
)
from smartrealm.client.keys import ASSERTION_TYPE
from smartrealm.devtools.useragent import parse_page
from tests.client.conformance_server import Recorder, Seen

REDIRECT = "http://127.0.0.1:9/callback"
WANTED = "launch/patient openid fhirUser offline_access patient/Patient.rs patient/Observation.rs"
FORM = "application/x-www-form-urlencoded"


async def follow(http: httpx.AsyncClient, authorize_url: str) -> str:
    """The user agent's part: the AS redirects straight back with the code."""
    response = await http.get(authorize_url, follow_redirects=False)
    assert response.status_code == 302
    return response.headers["location"]


async def run_flow(app: RealmApp, http: httpx.AsyncClient) -> None:
    url: str | None = app.begin()
    while url is not None:
        url = await app.complete(await follow(http, url))


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def assert_token_request(seen: Seen, grant_type: str) -> None:
    assert seen.method == "POST"
    assert seen.headers["content-type"] == FORM
    assert seen.headers["accept"] == "application/json"
    assert seen.one("grant_type") == grant_type


def assert_no_token_in_urls(rec: Recorder, tokens: list[str]) -> None:
    for seen in rec.seen:
        url = seen.path + "?" + "&".join(f"{k}={v}" for k, v in seen.query)
        assert not any(token in url for token in tokens), seen.path


async def test_shared_flow_public_client(rec: Recorder, http: httpx.AsyncClient) -> None:
    a, b = rec.base("a"), rec.base("b")
    app = RealmApp(http, client=PublicClient("app-1"), redirect_uri=REDIRECT, scope=WANTED)
    decision = await app.prepare([a, b])
    assert (decision.possible, decision.reasons, app.mode) == (True, (), "shared")
    assert app.plan is not None
    assert app.plan.report() == [f"{b}: patient/Observation.rs: type-not-served"]
    await run_flow(app, http)

    (authorize,) = rec.at("/as/authorize")
    assert authorize.method == "GET"
    assert authorize.one("response_type") == "code"
    assert authorize.one("client_id") == "app-1"
    assert authorize.one("redirect_uri") == REDIRECT
    assert authorize.one("scope") == WANTED  # a grants all; the union is the request
    assert authorize.values("resource") == [a, b] and authorize.values("aud") == []
    assert authorize.one("code_challenge_method") == "S256"
    # ≥ 122 bits (spec §3.2): 32 random bytes are 43 base64url characters.
    assert len(authorize.one("state")) >= 43
    assert len(authorize.one("nonce")) >= 43  # openid requested

    (token,) = rec.at("/as/token")
    assert_token_request(token, "authorization_code")
    assert s256(token.one("code_verifier")) == authorize.one("code_challenge")
    assert token.one("redirect_uri") == REDIRECT
    assert token.one("client_id") == "app-1" and "authorization" not in token.headers

    ehr = app.session(a)
    assert ehr.patient_id == "p1-a" and app.session(b).patient_id == "p1-b"
    assert await ehr.read("Patient", "p1-a") == {"resourceType": "Patient", "id": "p1-a"}
    read = rec.at("/a/fhir/Patient/p1-a")[0]
    access = app.tokens_for(a).access_token
    assert read.headers["authorization"] == f"Bearer {access}"
    assert read.headers["accept"] == "application/fhir+json"
    assert_no_token_in_urls(rec, [access, str(app.tokens_for(a).refresh_token)])


async def test_other_as_falls_back_to_sequential_launches(
    rec: Recorder, http: httpx.AsyncClient
) -> None:
    a, c = rec.base("a"), rec.base("c")
    app = RealmApp(http, client=PublicClient("app-1"), redirect_uri=REDIRECT, scope=WANTED,
                   clients={c + "/": PublicClient("app-at-as2")})
    decision = await app.prepare([a, c], plan=False)
    origin = rec.origin
    assert decision.reasons == (
        f"{c}: authorization_endpoint {origin}/as2/authorize differs from "
        f"{origin}/as/authorize of {a}",
        f"{c}: token_endpoint {origin}/as2/token differs from {origin}/as/token of {a}",
    )
    assert app.mode == "sequential" and len(app.steps) == 2
    await run_flow(app, http)
    first, second = rec.at("/as/authorize")[0], rec.at("/as2/authorize")[0]
    assert (first.values("aud"), first.values("resource")) == ([a], [])
    assert (second.values("aud"), second.values("resource")) == ([c], [])
    assert second.one("client_id") == "app-at-as2"
    assert rec.at("/as2/token")[0].one("client_id") == "app-at-as2"
    assert app.tokens_for(a).access_token != app.tokens_for(c).access_token
    assert (await app.session(c).read("Patient", "x"))["id"] == "x"


async def test_missing_capability_is_reported(rec: Recorder, http: httpx.AsyncClient) -> None:
    a, d = rec.base("a"), rec.base("d")
    app = RealmApp(http, client=PublicClient("app-1"), redirect_uri=REDIRECT, scope=WANTED)
    decision = await app.prepare([a, d])
    assert decision.reasons == (f"{d}: does not advertise the auth-multi-aud-token capability",)
    await run_flow(app, http)
    assert [s.values("aud") for s in rec.at("/as/authorize")] == [[a], [d]]
    assert (await app.session(d).read("Patient", "y"))["id"] == "y"


async def test_refresh_rotates_and_401_retries_once(rec: Recorder, http: httpx.AsyncClient) -> None:
    a = rec.base("a")
    updates: list[str] = []
    app = RealmApp(http, client=PublicClient("app-1"), redirect_uri=REDIRECT, scope=WANTED,
                   on_tokens=lambda bases, t: updates.append(t.access_token))
    await app.prepare([a, rec.base("b")], plan=False)
    await run_flow(app, http)
    first = app.tokens_for(a)
    rec.access.clear()  # the AS revoked every access token: the next call gets a 401
    session = app.session(a)
    assert (await session.read("Patient", "z"))["id"] == "z"
    refreshes = rec.at("/as/token")[1:]
    assert len(refreshes) == 1
    assert_token_request(refreshes[0], "refresh_token")
    assert refreshes[0].one("refresh_token") == first.refresh_token
    second = app.tokens_for(a)
    assert second.refresh_token not in (None, first.refresh_token)
    assert [r.headers["authorization"] for r in rec.at("/a/fhir/Patient/z")] == [
        f"Bearer {first.access_token}", f"Bearer {second.access_token}"]
    # Rotation: the next refresh sends the new refresh token (the old one is dead).
    third = await app.refresher_for(a).refresh_now()
    assert rec.at("/as/token")[-1].one("refresh_token") == second.refresh_token
    assert updates == [first.access_token, second.access_token, third.access_token]
    # b shares the token: its session already has the fresh one, no second refresh.
    assert app.session(rec.base("b")).token_set == third


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
async def test_backend_services_assertion(rec: Recorder, http: httpx.AsyncClient,
                                          alg: str) -> None:
    key = ClientKey.generate(alg)
    config = await discover(http, rec.base("a"))
    bases = [rec.base("a"), rec.base("b")]
    for _ in range(2):
        tokens = await client_credentials(http, config.token_endpoint, client_id="bulk",
                                          key=key, scope="system/*.rs", resources=bases)
        assert tokens.refresh_token is None and tokens.scopes_for(bases[1]) == ("system/*.rs",)
    jtis = []
    for seen in rec.at("/as/token"):
        assert_token_request(seen, "client_credentials")
        assert seen.one("scope") == "system/*.rs" and seen.values("resource") == bases
        assert seen.one("client_assertion_type") == ASSERTION_TYPE
        assert seen.values("client_id") == [] and "authorization" not in seen.headers
        token = jwt.decode(seen.one("client_assertion"), key.key, algorithms=[alg])
        assert token.header == {"alg": alg, "typ": "JWT", "kid": key.kid}
        claims = token.claims
        assert claims["iss"] == claims["sub"] == "bulk"
        assert claims["aud"] == config.token_endpoint
        assert 0 < claims["exp"] - time.time() <= 300
        jtis.append(claims["jti"])
    assert len(set(jtis)) == 2


async def test_confidential_clients_authenticate_as_spec_says(
    rec: Recorder, http: httpx.AsyncClient
) -> None:
    key = ClientKey.generate()
    for auth in (ClientSecretBasic("conf", "s3cr3t"), PrivateKeyJwt("conf", key)):
        rec.reset()
        app = RealmApp(http, client=auth, redirect_uri=REDIRECT, scope="patient/*.rs")
        await app.prepare([rec.base("a")], plan=False)
        await run_flow(app, http)
        (token,) = rec.at("/as/token")
        assert token.values("client_id") == []  # spec §4.2: confidential clients omit it
        if isinstance(auth, ClientSecretBasic):
            encoded = token.headers["authorization"].removeprefix("Basic ")
            assert base64.b64decode(encoded) == b"conf:s3cr3t"
        else:
            assert token.one("client_assertion_type") == ASSERTION_TYPE
    assert "s3cr3t" not in repr(ClientSecretBasic("conf", "s3cr3t"))


async def test_authorize_post_form(rec: Recorder, http: httpx.AsyncClient) -> None:
    app = RealmApp(http, client=PublicClient('app"<&>'), redirect_uri=REDIRECT,
                   scope=WANTED)
    await app.prepare([rec.base("a"), rec.base("b")], plan=False)
    app.begin()
    assert app.pending is not None and app.pending.request is not None
    request = app.pending.request
    page = authorize_post_page(request)
    assert 'value="app&quot;&lt;&amp;&gt;"' in page and "<noscript>" in page
    (form,), _ = parse_page(page)
    assert (form.method, form.action) == ("post", request.authorization_endpoint)
    assert form.fields == request.form_fields()
    response = await http.post(form.action, content=urlencode(form.fields),
                               headers={"Content-Type": FORM}, follow_redirects=False)
    (seen,) = rec.at("/as/authorize")
    assert seen.method == "POST" and seen.headers["content-type"] == FORM
    assert seen.form == request.form_fields()
    assert parse_callback(response.headers["location"], request)


async def test_ehr_launch_sends_launch_and_aud_iss(rec: Recorder, http: httpx.AsyncClient) -> None:
    a = rec.base("a")
    launch = parse_launch(str(httpx.URL("http://app.example/launch",
                                        params={"iss": a, "launch": "xyz"})))
    spelled_otherwise = "HTTP://" + a.removeprefix("http://") + "/"
    assert check_issuer(launch.iss, ["http://other/fhir", spelled_otherwise]) == spelled_otherwise
    config = await discover(http, launch.iss)
    request = ehr_authorization_request(launch, config, client_id="app-1", redirect_uri=REDIRECT,
                                        scope="openid patient/*.rs",
                                        extra_resources=[rec.base("b")])
    await follow(http, request.url)
    (seen,) = rec.at("/as/authorize")
    assert seen.one("launch") == "xyz" and seen.one("aud") == a
    assert seen.values("resource") == [a, rec.base("b")]
    assert seen.one("scope") == "launch openid patient/*.rs"


async def test_writes_and_if_match(rec: Recorder, http: httpx.AsyncClient) -> None:
    a = rec.base("a")
    app = RealmApp(http, client=PublicClient("w"), redirect_uri=REDIRECT, scope="patient/*.rs")
    await app.prepare([a], plan=False)
    await run_flow(app, http)
    ehr = app.session(a)
    created = await ehr.create({"resourceType": "Patient", "active": True})
    assert created["id"] == "new1"
    post = rec.at("/a/fhir/Patient")[0]
    assert post.headers["content-type"] == "application/fhir+json"
    assert post.headers["prefer"] == "return=representation"
    assert json.loads(post.body) == {"resourceType": "Patient", "active": True}
    updated = await ehr.update({**created, "active": False}, if_match="1")
    assert updated["meta"] == {"versionId": "2"}
    assert rec.at("/a/fhir/Patient/new1")[0].headers["if-match"] == 'W/"1"'
    with pytest.raises(FhirPreconditionFailed) as stale:
        await ehr.update(created, if_match='W/"0"')
    assert stale.value.status == 412
    await ehr.delete("Patient", "new1")
    assert [s.method for s in rec.at("/a/fhir/Patient/new1")] == ["PUT", "PUT", "DELETE"]

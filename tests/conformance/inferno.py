"""The app side of the acceptance suite, written the way Inferno's SMART App Launch kit
talks to a server (spec §12.1): raw HTTP, no client library in between, so that what is
checked is exactly what went over the wire.

* ``register``: a public, symmetric (``client_secret_basic``) or asymmetric
  (``private_key_jwt``, RS384) client through RFC 7591;
* ``AuthRequest``: ``response_type=code``, ``client_id``, ``redirect_uri``, ``scope``,
  ``state`` (a UUID, as Inferno draws it), ``aud`` or ``resource``s, PKCE S256, ``launch``;
* ``authorize``: GET, or POST as an auto-submitted form (``authorize-post``), then the user's
  pages until the redirect back to the app;
* ``token_request``: Inferno's token POST per client type — public: ``client_id`` in the body
  and an ``Origin`` header (2.2); symmetric: HTTP Basic; asymmetric: ``client_assertion``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from smartrealm.core.rs_clients import rs_client_id
from smartrealm.oauth.registration import EHR_LAUNCH
from smartrealm.storage.rs_credentials import resource_server_secret
from tests.conformance.browser import Choices, Visit, drive
from tests.conformance.conftest import Realm
from tests.initial_tokens import bearer as registration_bearer
from tests.oauth.assertion_keys import ClientKey, assertion_form

REDIRECT_URI = "http://127.0.0.1:9/inferno/redirect"
LAUNCH_URI = "http://127.0.0.1:9/inferno/launch"
ORIGIN = "http://127.0.0.1:9"
KINDS = ("public", "symmetric", "asymmetric")
# Inferno's default scopes (spec §12.1 groups 1 and 2).
STANDALONE_SCOPES = "launch/patient openid fhirUser offline_access patient/*.rs"
EHR_SCOPES = "launch openid fhirUser offline_access patient/*.rs"

Form = dict[str, str | list[str]]


@dataclass(frozen=True)
class Client:
    client_id: str
    kind: str
    secret: str | None = None
    key: ClientKey | None = None


def register(http: httpx.Client, realm: Realm, kind: str = "public", **meta: Any) -> Client:
    body: dict[str, Any] = {"client_name": f"inferno {kind}", "redirect_uris": [REDIRECT_URI],
                            "initiate_login_uri": LAUNCH_URI, **meta}
    key = None
    if kind == "public":
        body["token_endpoint_auth_method"] = "none"
    elif kind == "symmetric":
        body["token_endpoint_auth_method"] = "client_secret_basic"
    else:
        key = ClientKey.generate("RS384")
        body |= {"token_endpoint_auth_method": "private_key_jwt", "jwks": key.jwks()}
    # The launch URL lists the app in the EHR launcher: an operator's token allows it.
    response = http.post(realm.config.auth_server.registration_endpoint, json=body,
                         headers=registration_bearer(realm.config, EHR_LAUNCH))
    assert response.status_code == 201, response.text
    info = response.json()
    return Client(info["client_id"], kind, info.get("client_secret"), key)


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class AuthRequest:
    client: Client
    scope: str
    aud: str | None = None
    resources: tuple[str, ...] = ()
    launch: str | None = None
    extra: tuple[tuple[str, str], ...] = ()  # further parameters (nonce, a wrong aud, ...)
    state: str = field(default_factory=lambda: str(uuid.uuid4()))
    code_verifier: str = field(default_factory=lambda: secrets.token_urlsafe(64))

    @property
    def code_challenge(self) -> str:
        return s256(self.code_verifier)

    def fields(self) -> list[tuple[str, str]]:
        fields = [("response_type", "code"), ("client_id", self.client.client_id),
                  ("redirect_uri", REDIRECT_URI), ("scope", self.scope), ("state", self.state)]
        fields += [("aud", self.aud)] if self.aud is not None else []
        fields += [("resource", r) for r in self.resources]
        fields += [("code_challenge", self.code_challenge), ("code_challenge_method", "S256")]
        fields += [("launch", self.launch)] if self.launch is not None else []
        return fields + list(self.extra)


def authorize(realm: Realm, request: AuthRequest, choices: Choices | None = None,
              method: str = "GET") -> Visit:
    """The redirect to the authorization endpoint (``smart_app_redirect_stu2``), the user's
    pages, and the redirect back carrying ``code`` or ``error``."""
    with httpx.Client(timeout=15.0) as browser:
        if method == "GET":
            params: list[tuple[str, str | int | float | bool | None]] = [*request.fields()]
            first = browser.get(realm.authorization_endpoint, params=params)
        else:
            first = browser.post(realm.authorization_endpoint, data=_multi(request.fields()))
        return drive(browser, first, REDIRECT_URI, choices or Choices())


def _multi(pairs: Sequence[tuple[str, str]]) -> Form:
    data: dict[str, list[str]] = {}
    for name, value in pairs:
        data.setdefault(name, []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in data.items()}


def token_request(http: httpx.Client, realm: Realm, client: Client, form: Form, *,
                  origin: bool = True) -> httpx.Response:
    """POST to the token endpoint, authenticated the way Inferno does for ``client``."""
    headers = {"Accept": "application/json"}
    form = dict(form)
    if client.kind == "public":
        form["client_id"] = client.client_id
        if origin:
            headers["Origin"] = ORIGIN
    elif client.kind == "symmetric":
        assert client.secret is not None
        raw = f"{client.client_id}:{client.secret}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
    else:
        assert client.key is not None
        form |= assertion_form(client.key.assertion(client.client_id, realm.token_endpoint))
    return http.post(realm.token_endpoint, data=form, headers=headers)


def code_form(request: AuthRequest, code: str, **extra: str | list[str]) -> Form:
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "code_verifier": request.code_verifier, **extra}


def refresh_form(refresh_token: str, **extra: str) -> Form:
    return {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}


@dataclass
class Launched:
    """One launch, its token exchange and what Inferno keeps of it."""

    request: AuthRequest
    visit: Visit
    response: httpx.Response

    @property
    def client(self) -> Client:
        return self.request.client

    @property
    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = self.response.json()
        return data

    @property
    def access_token(self) -> str:
        return str(self.body["access_token"])


def launch(http: httpx.Client, realm: Realm, request: AuthRequest,
           choices: Choices | None = None, **extra: str | list[str]) -> Launched:
    visit = authorize(realm, request, choices)
    assert "code" in visit.params, visit.callback
    response = token_request(http, realm, request.client,
                             code_form(request, visit.params["code"], **extra))
    return Launched(request, visit, response)


def standalone(http: httpx.Client, realm: Realm, kind: str = "public",
               scope: str = STANDALONE_SCOPES, server: str = "ehr",
               choices: Choices | None = None) -> Launched:
    client = register(http, realm, kind)
    return launch(http, realm, AuthRequest(client, scope, aud=realm.base(server)), choices)


# ---------------------------------------------------------------- EHR launch (§6.1)


def create_launch(http: httpx.Client, realm: Realm, client: Client | None = None,
                  **body: Any) -> str:
    """The EHR's side: a launch for the clinician; returns the URL the EHR opens."""
    body.setdefault("patient", "p0003")
    body.setdefault("launch_url", LAUNCH_URI)
    if client is not None:
        body["client_id"] = client.client_id
    response = http.post(f"{realm.issuer}/api/launch", json=body,
                         auth=("clinician", "clinician-demo"))
    assert response.status_code == 201, response.text
    return str(response.json()["url"])


def ehr_launch(http: httpx.Client, realm: Realm, kind: str = "public",
               scope: str = EHR_SCOPES, **body: Any) -> Launched:
    client = register(http, realm, kind)
    query = httpx.URL(create_launch(http, realm, client, **body)).params
    request = AuthRequest(client, scope, aud=query["iss"], launch=query["launch"])
    return launch(http, realm, request, Choices(username="clinician"))


# ---------------------------------------------------------------- FHIR and introspection


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def fhir_get(http: httpx.Client, base: str, path: str, token: str | None,
             origin: str | None = None, **params: str) -> httpx.Response:
    headers = {"Accept": "application/fhir+json", **(bearer(token) if token else {})}
    if origin is not None:
        headers["Origin"] = origin
    return http.get(f"{base}/{path}", params=params, headers=headers)


def rs_basic(realm: Realm, server_id: str) -> httpx.BasicAuth:
    # RFC 6749 §2.3.1: the client_id is form-encoded inside Basic ("rs:" → "rs%3A").
    return httpx.BasicAuth(rs_client_id(server_id).replace(":", "%3A"),
                           resource_server_secret(realm.config, server_id))


def introspect(http: httpx.Client, realm: Realm, token: str, server_id: str = "ehr"
               ) -> httpx.Response:
    return http.post(realm.config.auth_server.introspection_endpoint, data={"token": token},
                     headers={"Accept": "application/json"}, auth=rs_basic(realm, server_id))


def jwt_part(token: str, index: int) -> dict[str, Any]:
    segment = token.split(".")[index]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment)
                                                                                % 4)))
    return data

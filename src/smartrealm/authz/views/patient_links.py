"""``POST {issuer}/patient-index``: a realm FHIR server reports that a committed system-level
write changed the link of one of its Patients (fhir/link_reports.py; docs/behaviour.md
"Linking a patient's records across servers").

Who may call it: only a realm resource server, as its confidential client ``rs:<server id>``
(oauth/server_clients.py). Any other caller (a registered client, however privileged, a Bearer
token, nobody) gets 401 ``invalid_client``. The server whose record it is comes from the
authenticated client and never from the body, so a server can change only its own records'
rows: what it reports is what its store holds, and the store is its own.

The body (``application/x-www-form-urlencoded``, realm/patient_links.py):
``action=link&patient=<FHIR id>&person=<identifier value>`` or
``action=unlink&patient=<FHIR id>``; anything else is 400 ``invalid_request``. The answer is
the record's row as it now stands (200, ``Cache-Control: no-store``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smartrealm.authz.client_guard import client_auth
from smartrealm.authz.flow import AuthzContext
from smartrealm.authz.patient_index import PatientLink
from smartrealm.authz.views.web import form_params, no_store_json, oauth_error
from smartrealm.core.defaults import PATIENT_INDEX_MAX_PERSON as MAX_PERSON
from smartrealm.core.fhir_ids import is_fhir_id
from smartrealm.oauth.errors import InvalidClient, InvalidRequest, OAuthError
from smartrealm.oauth.realm_view import Server
from smartrealm.oauth.server_clients import authenticate_server, presented_server
from smartrealm.realm.patient_links import (
    ACTION,
    LINK,
    PATIENT,
    PERSON,
    UNLINK,
)

SOURCE = "system-write"  # patient_index.SOURCES


def _one(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = params.get(name, [])
    if len(values) > 1:
        raise InvalidRequest(f"{name} must not be repeated")
    return values[0] if values else None


def _patient(params: Mapping[str, Sequence[str]]) -> str:
    patient = _one(params, PATIENT)
    if patient is None or not is_fhir_id(patient):
        raise InvalidRequest(f"{PATIENT} must be the FHIR id of a Patient on this server")
    return patient


def _person(params: Mapping[str, Sequence[str]], action: str) -> str | None:
    person = _one(params, PERSON)
    if action == UNLINK:
        if person is not None:
            raise InvalidRequest(f"{PERSON} is not allowed with {ACTION}={UNLINK}")
        return None
    if person is None or not 0 < len(person) <= MAX_PERSON or not person.isprintable():
        raise InvalidRequest(f"{PERSON} must be the value of the realm's patient identifier "
                             f"(1 to {MAX_PERSON} printable characters)")
    return person


def _action(params: Mapping[str, Sequence[str]]) -> str:
    action = _one(params, ACTION)
    if action not in (LINK, UNLINK):
        raise InvalidRequest(f"{ACTION} must be {LINK} or {UNLINK}")
    return action


class PatientLinkView:
    def __init__(self, ctx: AuthzContext) -> None:
        self.ctx = ctx

    def _server(self, request: Request, params: Mapping[str, Sequence[str]]
                ) -> Server:
        pair = presented_server(request.headers.get("authorization"), params)
        if pair is None:
            raise InvalidClient("only a realm resource server (client rs:<server id>) may "
                                "report patient links")
        return authenticate_server(self.ctx.realm, self.ctx.stores.rs_credentials.secret, *pair,
                                   client_auth(self.ctx, request).throttle)

    async def report(self, request: Request) -> Response:
        try:
            params = await form_params(request)
            server = self._server(request, params)  # 401 before anything about the body
            action = _action(params)
            patient, person = _patient(params), _person(params, action)
        except OAuthError as error:
            return oauth_error(error, endpoint="/patient-index",
                               basic_auth_used=isinstance(error, InvalidClient))
        index = self.ctx.stores.patient_index
        if person is None:
            index.unlink(server.id, patient)
        else:
            index.link([PatientLink(server.id, patient, person, SOURCE, self.ctx.now())])
        return no_store_json({"server": server.id, "patient": patient, "person": person})


def patient_link_routes(ctx: AuthzContext, path: Callable[[str], str]) -> list[Route]:
    return [Route(path("/patient-index"), PatientLinkView(ctx).report, methods=["POST"])]

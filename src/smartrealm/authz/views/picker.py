"""The patient picker and the encounter picker (spec §6.2 standalone launch).

Patient picker (a practitioner asking for ``launch/patient``): search the user's home server
(the EHR) by name and/or MRN, paged (``GET /interaction/patient?name=&mrn=&page=``), pick one
(radio ``patient``). Encounter picker (``launch/encounter`` requested): the chosen patient's
encounters on that server, newest first (radio ``encounter``; empty value = none). The AS
reads both with its own short-lived tokens (authz/patients.py).
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from smartrealm.authz import flow
from smartrealm.authz.patients import PatientPage, PatientQuery
from smartrealm.authz.records import Interaction, User
from smartrealm.authz.views.session import InteractionSession
from smartrealm.core.defaults import PICKER_MAX_PAGE as MAX_PAGE
from smartrealm.core.defaults import PICKER_MAX_TERM as MAX_TERM


def picker_query(name: str, mrn: str, page: str) -> PatientQuery:
    """The search as typed, bounded (a long term or a silly page is not worth a request)."""
    number = int(page) if page.isdigit() and len(page) < 5 else 1
    return PatientQuery(name.strip()[:MAX_TERM], mrn.strip()[:MAX_TERM],
                        min(max(number, 1), MAX_PAGE))


def page_url(path: str, query: PatientQuery, page: int) -> str:
    params = {k: v for k, v in (("name", query.name), ("mrn", query.mrn)) if v}
    return f"{path}?{urlencode({**params, 'page': page})}"


class PickerViews:
    """The patient and encounter pickers (spec §6.2)."""

    def __init__(self, session: InteractionSession) -> None:
        self.session, self.ctx, self.pages = session, session.ctx, session.pages

    # ------------------------------------------------------------------ patient

    async def patient_page(self, request: Request) -> Response:
        loaded = self.session.load_stage(request, "patient")
        if isinstance(loaded, Response):
            return loaded
        q = request.query_params
        query = picker_query(q.get("name", ""), q.get("mrn", ""), q.get("page", "1"))
        return await self._picker(loaded[1], query)

    async def _picker(self, interaction: Interaction, query: PatientQuery, error: str = "",
                      status: int = 200) -> Response:
        user = self.session.user(interaction)
        assert user is not None
        home = self.ctx.realm.server(user.fhir_user_server)
        found: PatientPage = await self.ctx.patients.search_page(home, query)
        path = self.pages.path("/interaction/patient")
        return self.pages.render(
            "patient.html", status=status, user_name=user.display_name or user.username,
            client_name=self.session.client_name(interaction), query=query, found=found,
            previous_url=page_url(path, query, found.page - 1) if found.page > 1 else "",
            next_url=page_url(path, query, found.page + 1) if found.page < found.pages else "",
            error=error, csrf_token=interaction.csrf)

    async def pick_patient(self, request: Request) -> Response:
        posted = await self.session.post(request, "patient")
        if isinstance(posted, Response):
            return posted
        key_hash, interaction, form = posted
        user = self.session.user(interaction)
        assert user is not None
        patients = await flow.find_patient(self.ctx, interaction, user,
                                           form.get("patient", [""])[0])
        if patients is None:
            return await self._picker(interaction, PatientQuery(),
                                      "Choose a patient from the list.", 400)
        return await self.session.proceed(key_hash, replace(interaction, patients=patients), user,
                                   "patient")

    # ------------------------------------------------------------------ encounter

    async def _encounters(self, interaction: Interaction, user: User
                          ) -> list[tuple[str, str]]:
        server = flow.encounter_server(self.ctx, interaction, user)
        patient = interaction.patients.get(server.id) if server is not None else None
        if server is None or patient is None:
            return []
        found = await self.ctx.patients.encounters(server, patient)
        return [(e.id, " · ".join(p for p in (e.start, e.label, e.status) if p))
                for e in found]

    async def _encounter_page(self, interaction: Interaction, user: User, error: str = "",
                              status: int = 200) -> Response:
        return self.pages.render(
            "encounter.html", status=status, user_name=user.display_name or user.username,
            client_name=self.session.client_name(interaction),
            encounters=await self._encounters(interaction, user), error=error,
            csrf_token=interaction.csrf)

    async def encounter_page(self, request: Request) -> Response:
        loaded = self.session.load_stage(request, "encounter")
        if isinstance(loaded, Response):
            return loaded
        user = self.session.user(loaded[1])
        assert user is not None
        return await self._encounter_page(loaded[1], user)

    async def pick_encounter(self, request: Request) -> Response:
        posted = await self.session.post(request, "encounter")
        if isinstance(posted, Response):
            return posted
        key_hash, interaction, form = posted
        user = self.session.user(interaction)
        assert user is not None
        chosen = form.get("encounter", [""])[0]
        if chosen and chosen not in {eid for eid, _ in await self._encounters(interaction,
                                                                                user)}:
            return await self._encounter_page(interaction, user,
                                              "Choose an encounter from the list.", 400)
        return await self.session.proceed(key_hash, replace(interaction, encounter=chosen or None),
                                   user, "encounter")

"""The consent page (docs/behaviour.md "Interaction pages"; spec §5.3 consent UI) and the
user's decision; the rules behind them are in consent.py."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from smartrealm.authz import flow
from smartrealm.authz.consent import approved, remember, scope_field
from smartrealm.authz.records import Offer
from smartrealm.authz.views.scope_labels import describe, describe_alternative
from smartrealm.authz.views.session import InteractionSession
from smartrealm.oauth.errors import AccessDenied
from smartrealm.oauth.negotiate import CONTEXT_SCOPES, REFRESH_SCOPES


class ConsentViews:
    """The consent page and the user's decision."""

    def __init__(self, session: InteractionSession) -> None:
        self.session, self.ctx, self.pages = session, session.ctx, session.pages

    async def consent_page(self, request: Request) -> Response:
        loaded = self.session.load_stage(request, "consent")
        if isinstance(loaded, Response):
            return loaded
        interaction = loaded[1]
        user = self.session.user(interaction)
        return self.pages.render(
            "consent.html", client_name=self.session.client_name(interaction),
            user_name=(user.display_name or user.username) if user else "",
            offers=[offer_view(o) for o in interaction.offers],
            identity=[describe(s) for s in interaction.identity if s not in REFRESH_SCOPES],
            refresh=[describe(s) for s in interaction.identity if s in REFRESH_SCOPES],
            csrf_token=interaction.csrf)

    async def decide(self, request: Request) -> Response:
        posted = await self.session.post(request, "consent")
        if isinstance(posted, Response):
            return posted
        key_hash, interaction, form = posted
        decision = form.get("decision", [""])[0]
        if decision == "deny":
            return self.session.deny(key_hash, interaction, AccessDenied("the user denied access"))
        user = self.session.user(interaction)
        if decision != "approve" or user is None:
            return self.pages.error("Bad request", "Choose Allow or Deny.")
        decided = approved(interaction, form)
        if form.get("remember", [""])[0] == "1":
            remember(self.ctx, interaction, decided, user)
        grant = flow.build_grant(self.ctx, decided, user)
        return self.session.to_client(key_hash, flow.issue_code(self.ctx, decided, grant))


def offer_view(offer: Offer) -> dict[str, Any]:
    """One server's section of the page (the template's view of an Offer): labelled
    scopes, context, refused."""
    scopes = [{"label": describe(s), "alternatives": [describe_alternative(a) for a in
                                                       offer.alternatives.get(s, ())]}
              for s in offer.granted if s not in CONTEXT_SCOPES]
    return {**offer.to_dict(), "scopes": scopes,
            "context": [describe(s) for s in offer.granted if s in CONTEXT_SCOPES],
            "refused_labels": [describe(s) for s in offer.refused],
            "field": scope_field(offer.server_id)}

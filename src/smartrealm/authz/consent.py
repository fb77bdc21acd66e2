"""The consent page (docs/behaviour.md "Interaction pages"; spec §5.3 consent UI, §12.6
limited scope grant and granular scope selection) and the step that leads to it.

The page lists, per server, the scopes that would be granted there, each a checkbox named
``scope:<server id>`` whose value is the scope (ticked by default); whole Observation and
Condition scopes come with unticked category alternatives under the same name. Refresh
scopes are checkboxes named ``identity``. The hidden field ``scope_choices=1`` says the
checkboxes were shown: a POST without it approves everything offered (scripted clients).
``remember=1`` stores the decision (authz/consent_store.py); a later request it covers skips
the page. ``decision`` is ``approve`` or ``deny``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from smartrealm.authz import flow
from smartrealm.authz.consent_store import RememberedConsent
from smartrealm.authz.records import Interaction, User
from smartrealm.oauth.approval import apply_choices, narrow_to_offer, remembered_covers
from smartrealm.oauth.negotiate import REFRESH_SCOPES

CHOICES_MARKER = "scope_choices"


def scope_field(server_id: str) -> str:
    return f"scope:{server_id}"


def approved(interaction: Interaction, form: Mapping[str, Sequence[str]]) -> Interaction:
    """The interaction with ``offers[].granted`` and ``identity`` cut to what the user
    ticked (oauth.approval.apply_choices: a form can narrow, never widen)."""
    if CHOICES_MARKER not in form:
        return interaction
    offers = []
    for offer in interaction.offers:
        alternatives = [a for alts in offer.alternatives.values() for a in alts]
        ticked = set(form.get(scope_field(offer.server_id), []))
        offers.append(replace(offer, granted=tuple(apply_choices(offer.granted, alternatives,
                                                                 ticked))))
    kept = set(form.get("identity", []))
    identity = tuple(s for s in interaction.identity if s not in REFRESH_SCOPES or s in kept)
    return replace(interaction, offers=tuple(offers), identity=identity)


def remember(ctx: flow.AuthzContext, shown: Interaction, decided: Interaction,
             user: User) -> None:
    ctx.stores.consents.put(RememberedConsent(
        username=user.username, client_id=shown.pending.client_id,
        offered={o.server_id: o.granted for o in shown.offers},
        approved={o.server_id: o.granted for o in decided.offers},
        identity_offered=tuple(shown.identity), identity_approved=tuple(decided.identity),
        updated_at=ctx.now()))


def remembered_approval(ctx: flow.AuthzContext, interaction: Interaction,
                        user: User) -> Interaction | None:
    """The interaction as a remembered consent approves it, or None when there is none or
    it does not cover this request (a new server, a wider scope, a new identity scope)."""
    consent = ctx.stores.consents.get(user.username, interaction.pending.client_id)
    if consent is None:
        return None
    offers = {o.server_id: list(o.granted) for o in interaction.offers}
    if not remembered_covers(consent.offered, offers) or not set(
            interaction.identity) <= set(consent.identity_offered):
        return None
    narrowed = tuple(replace(o, granted=tuple(narrow_to_offer(
        consent.approved.get(o.server_id, ()), o.granted))) for o in interaction.offers)
    identity = tuple(s for s in interaction.identity if s in consent.identity_approved)
    return replace(interaction, offers=narrowed, identity=identity)

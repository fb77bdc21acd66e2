"""The typed interaction state survives its stored form (JSON in the interaction store)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from smartrealm.authz.records import Interaction, Offer, PendingRequest

TEXT = st.text(max_size=20)
SCOPES = st.lists(TEXT, max_size=4).map(tuple)

OFFERS = st.builds(Offer, server_id=TEXT, name=TEXT, base_url=TEXT, granted=SCOPES,
                   refused=SCOPES, patient=st.none() | TEXT, patient_wanted=st.booleans(),
                   encounter=st.none() | TEXT,
                   alternatives=st.dictionaries(TEXT, SCOPES, max_size=3))
REQUESTS = st.builds(PendingRequest, client_id=TEXT, redirect_uri=TEXT, state=TEXT,
                     scope=TEXT, code_challenge=TEXT, servers=SCOPES, multi=st.booleans(),
                     nonce=st.none() | TEXT, launch=st.none())
INTERACTIONS = st.builds(
    Interaction, csrf=TEXT, expires_at=st.integers(0, 2**40), request=st.none() | REQUESTS,
    stage=st.sampled_from(["login", "patient", "encounter", "consent", "manage"]),
    username=st.none() | TEXT, auth_time=st.integers(0, 2**40),
    patients=st.dictionaries(TEXT, st.none() | TEXT, max_size=3),
    offers=st.lists(OFFERS, max_size=3).map(tuple), identity=SCOPES,
    encounter=st.none() | TEXT)


@given(INTERACTIONS)
def test_an_interaction_comes_back_from_its_stored_form(interaction: Interaction) -> None:
    stored = json.loads(json.dumps(interaction.to_dict()))
    assert Interaction.from_dict(stored) == interaction

"""The profile tables of core.profiles against the FHIR servers' own tables."""

from __future__ import annotations

from smartrealm.core.profiles import ALL_TYPES, PROFILE_LETTERS, PROFILE_TYPES, PROFILES
from smartrealm.fhir.search.params import SEARCH_PARAMS


def test_every_type_the_realm_serves_has_its_search_parameters() -> None:
    assert set(ALL_TYPES) == set(SEARCH_PARAMS)
    assert all(set(types) <= set(ALL_TYPES) for types in PROFILE_TYPES.values())


def test_every_profile_has_letters_and_types() -> None:
    assert set(PROFILES) == set(PROFILE_LETTERS) == set(PROFILE_TYPES)

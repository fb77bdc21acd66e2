from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartrealm.oauth.errors import InvalidRequest, InvalidTarget
from smartrealm.oauth.resources import is_absolute_uri, narrow, parse_audience
from smartrealm.realm.config import RealmConfig, load_config

REALM = load_config(None)
BASES = [rs.base_url for rs in REALM.resource_servers]


def _variants(url: str) -> st.SearchStrategy[str]:
    # The same server, written as a client might: trailing slash, upper-case scheme/host.
    return st.sampled_from([url, url + "/", url.replace("http://", "HTTP://")])


@given(st.lists(st.sampled_from(BASES).flatmap(_variants), min_size=1, max_size=6))
def test_resources_map_to_governed_servers_in_order(resources: list[str]) -> None:
    audience = parse_audience(REALM, [], resources)
    expected: list[str] = []
    for r in resources:
        server = REALM.server_by_url(r)
        assert server is not None
        if server.base_url not in expected:
            expected.append(server.base_url)
    assert audience.base_urls == expected and audience.multi
    assert audience.primary.base_url == expected[0]


@given(st.text(min_size=1, max_size=60))
def test_anything_else_is_invalid_target(value: str) -> None:
    if REALM.server_by_url(value) is not None and is_absolute_uri(value) and "#" not in value:
        return
    with pytest.raises(InvalidTarget):
        parse_audience(REALM, [], [BASES[0], value])


def test_single_aud_is_single_audience() -> None:
    audience = parse_audience(REALM, [BASES[1]], [])
    assert audience.base_urls == [BASES[1]] and not audience.multi


def test_aud_with_resources_is_primary() -> None:
    audience = parse_audience(REALM, [BASES[1]], [BASES[0], BASES[1]])
    assert audience.base_urls == [BASES[1], BASES[0]]


@pytest.mark.parametrize(("aud", "resources"), [
    ([BASES[0], BASES[1]], []),
    ([BASES[2]], [BASES[0], BASES[1]]),
    ([], []),
    (["https://elsewhere.example/fhir"], []),
    (["relative"], []),
])
def test_invalid_request_cases(aud: list[str], resources: list[str]) -> None:
    with pytest.raises(InvalidRequest):
        parse_audience(REALM, aud, resources)


def test_client_allowed_servers() -> None:
    assert parse_audience(REALM, [], [BASES[0]], ("ehr",)).base_urls == [BASES[0]]
    with pytest.raises(InvalidTarget):
        parse_audience(REALM, [], [BASES[0], BASES[1]], ("ehr",))


def test_narrow() -> None:
    realm: RealmConfig = REALM
    assert narrow(realm, BASES[:2], []) == BASES[:2]
    assert narrow(realm, BASES[:2], [BASES[1] + "/"]) == [BASES[1]]
    with pytest.raises(InvalidTarget):
        narrow(realm, BASES[:2], [BASES[2]])
    with pytest.raises(InvalidTarget):
        narrow(realm, BASES[:2], ["not absolute"])

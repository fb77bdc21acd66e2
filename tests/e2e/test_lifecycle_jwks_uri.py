"""On the running realm: a private_key_jwt client whose keys live at its own ``jwks_uri``
(a real loopback web server) introspects and revokes its token with signed assertions."""

from __future__ import annotations

import httpx
import pytest

from smartrealm.realm.config import RealmConfig
from tests.e2e.test_backend_services import (  # noqa: F401 (jwks_host is a fixture)
    JwksHost,
    _register,
    _token,
    jwks_host,
)
from tests.oauth.assertion_keys import assertion_form

pytestmark = pytest.mark.e2e


async def test_introspect_and_revoke_with_jwks_uri_keys(live_realm: RealmConfig,
                                                        http: httpx.AsyncClient,
                                                        jwks_host: JwksHost) -> None:  # noqa: F811
    auth = live_realm.auth_server
    # The keys are served on loopback: only a realm that lists loopback among its
    # private_fetch_networks (the default development realm does) fetches them.
    assert any(n.version == 4 and n.network_address.is_loopback
               for n in auth.private_fetch_networks)
    key = jwks_host.keys[1]  # ES384
    client_id = await _register(http, live_realm, jwks_uri=jwks_host.url)
    issued = await _token(http, live_realm, client_id, key)
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]

    async def introspect() -> dict[str, object]:
        response = await http.post(auth.introspection_endpoint, data=assertion_form(
            key.assertion(client_id, auth.token_endpoint), token=token))
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body

    assert (await introspect())["active"] is True
    revoked = await http.post(auth.revocation_endpoint, data=assertion_form(
        key.assertion(client_id, auth.token_endpoint), token=token))
    assert revoked.status_code == 200, revoked.text
    assert await introspect() == {"active": False}
    assert jwks_host.hits >= 1

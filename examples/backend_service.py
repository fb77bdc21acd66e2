"""A SMART Backend Service (spec §9): no user, a signed JWT instead of a password, one
token for two servers.

Start the realm first (`smartrealm serve`), then:

    smartrealm client initial-token issue --allow backend-services
    python examples/backend_service.py --initial-access-token <the token>

It generates an ES384 key pair, registers a `private_key_jwt` client with its public JWKS
(RFC 7591; a Backend Services client needs the operator's initial access token), gets one
`client_credentials` token for the EHR and the lab server (one RFC 8707 `resource` each),
and finds the same person on both servers by the realm-wide MRN.
"""

from __future__ import annotations

import argparse
import asyncio

import httpx

from smartrealm.client import (
    ClientKey,
    FhirSession,
    SmartClientError,
    client_credentials,
    discover,
    register_client,
)

SCOPE = "system/Patient.rs system/Observation.rs"
MRN_SYSTEM = "https://smartrealm.example.org/sid/mrn"


async def main(args: argparse.Namespace) -> None:
    key = ClientKey.generate("ES384")
    async with httpx.AsyncClient(timeout=30.0) as http:
        config = await discover(http, args.servers[0])
        if config.registration_endpoint is None:
            raise SystemExit("the realm does not offer dynamic client registration")
        registered = await register_client(
            http, config.registration_endpoint, redirect_uris=[], client_name="backend example",
            scope=SCOPE, token_endpoint_auth_method="private_key_jwt",
            grant_types=["client_credentials"], jwks=key.public_jwks(),
            # Backend Services are a privileged registration (RFC 7591 §3): the operator
            # issues the token with `smartrealm client initial-token issue
            # --allow backend-services`.
            initial_access_token=args.initial_access_token)
        client_id = registered["client_id"]
        print(f"registered {client_id} with key {key.kid}")
        tokens = await client_credentials(http, config.token_endpoint, client_id=client_id,
                                          key=key, scope=SCOPE, resources=args.servers)
        print(f"one token for {len(args.servers)} servers, expires in {tokens.expires_in} s")
        for base in args.servers:
            session = FhirSession(http, base, tokens)
            bundle = await session.search("Patient", {"identifier": f"{MRN_SYSTEM}|{args.mrn}"})
            ids = [entry["resource"]["id"] for entry in bundle.get("entry", [])]
            print(f"{base}: {args.mrn} is Patient/{', '.join(ids) or '(none)'}; "
                  f"scopes {' '.join(tokens.scopes_for(base))}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", dest="servers", action="append",
                        help="FHIR base (repeat; default: the EHR and the lab server)")
    parser.add_argument("--mrn", default="MRN000012")
    parser.add_argument("--initial-access-token", required=True,
                        help="from `smartrealm client initial-token issue "
                             "--allow backend-services`")
    arguments = parser.parse_args()
    arguments.servers = arguments.servers or ["http://127.0.0.1:8701/fhir",
                                              "http://127.0.0.1:8703/fhir"]
    try:
        asyncio.run(main(arguments))
    except (SmartClientError, httpx.HTTPError) as exc:
        raise SystemExit(f"{type(exc).__name__}: {exc}") from None

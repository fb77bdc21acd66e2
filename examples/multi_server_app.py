"""A multi-server SMART app: one sign-in, one token, the patient's data from two servers.

Start the realm first (`smartrealm serve`), then:

    python examples/multi_server_app.py                  # prints the sign-in URL
    python examples/multi_server_app.py --scripted-user  # signs in as the demo patient

The flow (seed, "Reuse access token"): discover the EHR and its associated imaging server,
check that one token can serve both, register a public client (RFC 7591), authorize once
with one `resource` per server, receive the redirect on a loopback port, exchange the code,
then read the patient on each server with that server's own patient id. When one token
cannot serve both servers, `RealmApp` says why and asks for one sign-in per server instead.
"""

from __future__ import annotations

import argparse
import asyncio

import httpx

from smartrealm.appcli.loopback import LoopbackReceiver
from smartrealm.client import (
    PublicClient,
    RealmApp,
    SmartClientError,
    discover,
    register_client,
)
from smartrealm.devtools.useragent import authorize_as_user

SCOPE = "openid fhirUser launch/patient patient/Patient.rs patient/Observation.rs " \
        "patient/ImagingStudy.rs"


async def main(args: argparse.Namespace) -> None:
    async with httpx.AsyncClient(timeout=30.0) as http, LoopbackReceiver() as receiver:
        iss = await discover(http, args.iss)
        if iss.registration_endpoint is None:
            raise SystemExit("the realm does not offer dynamic client registration")
        client = await register_client(http, iss.registration_endpoint, client_name="example",
                                       redirect_uris=[receiver.redirect_uri], scope=SCOPE)
        app = RealmApp(http, client=PublicClient(client["client_id"]),
                       redirect_uri=receiver.redirect_uri, scope=SCOPE)
        decision = await app.prepare([args.iss, args.server])
        print("token reuse:", "possible" if decision.possible else decision.reasons)
        for line in app.plan.report() if app.plan else []:
            print("cannot grant:", line)
        url: str | None = app.begin()
        while url is not None:  # one round in shared mode, one per server otherwise
            callback = await sign_in(http, url, receiver, args.scripted_user)
            url = await app.complete(callback)
        for base in app.bases:
            session = app.session(base)
            patient = await session.read("Patient", session.patient_id or "")
            name = patient["name"][0]
            print(f"{base}: Patient/{patient['id']} {' '.join(name['given'])} {name['family']} "
                  f"scopes: {' '.join(app.tokens_for(base).scopes_for(base))}")


async def sign_in(http: httpx.AsyncClient, url: str, receiver: LoopbackReceiver,
                  scripted: bool) -> str:
    """The user's part: a real browser, or the scripted demo patient."""
    if not scripted:
        print("Open this URL in a browser and sign in:\n" + url, flush=True)
        return await receiver.wait(timeout=300)
    async with httpx.AsyncClient(timeout=30.0) as browser:
        redirect = await authorize_as_user(browser, url, receiver.redirect_uri,
                                           username="patient", password="patient-demo")
        await browser.get(redirect)  # the browser follows the redirect to the loopback
    return await receiver.wait(timeout=30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iss", default="http://127.0.0.1:8701/fhir")
    parser.add_argument("--server", default="http://127.0.0.1:8702/fhir")
    parser.add_argument("--scripted-user", action="store_true",
                        help="sign in as the demo patient (patient / patient-demo)")
    try:
        asyncio.run(main(parser.parse_args()))
    except SmartClientError as exc:
        raise SystemExit(f"{type(exc).__name__}: {exc}") from None

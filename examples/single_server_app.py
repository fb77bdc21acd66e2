"""A single-server SMART app with the synchronous facade and a token file.

Start the realm first (`smartrealm serve`), then:

    python examples/single_server_app.py                  # prints the sign-in URL
    python examples/single_server_app.py --scripted-user  # signs in as the demo patient

An ordinary SMART standalone launch (spec §3: `aud` = the one server, PKCE S256, `state`)
against the EHR; the redirect arrives at a one-shot loopback HTTP server (RFC 8252 §7.3).
With `--token-file FILE` the token is saved in a FileTokenStore (JSON, mode 0600), where
`FileTokenStore(FILE).load("ehr")` finds it again, expiry included.
"""

from __future__ import annotations

import argparse
import asyncio
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx

from smartrealm.client import FileTokenStore, PublicClient, SmartClientError, register_client
from smartrealm.client.sync import SyncClient, SyncRealmApp
from smartrealm.devtools.useragent import authorize_as_user

SCOPE = "openid fhirUser launch/patient offline_access patient/Patient.rs " \
        "patient/Observation.rs"


class Loopback(HTTPServer):
    """Answers one request; remembers its path (``/callback?code=…&state=…``)."""

    callback_path = ""


class CallbackHandler(BaseHTTPRequestHandler):
    server: Loopback

    def do_GET(self) -> None:
        self.server.callback_path = self.path
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"Signed in; return to the terminal.")

    def log_message(self, *_args: Any) -> None:  # the query holds the code: do not log it
        pass


def main(args: argparse.Namespace) -> None:
    loopback = Loopback(("127.0.0.1", 0), CallbackHandler)
    redirect_uri = f"http://127.0.0.1:{loopback.server_port}/callback"
    with SyncClient() as sync:
        registration = sync.discover(args.iss).registration_endpoint
    if registration is None:
        raise SystemExit("the realm does not offer dynamic client registration")
    client = asyncio.run(_register(registration, redirect_uri))
    app = SyncRealmApp(client=PublicClient(client), redirect_uri=redirect_uri, scope=SCOPE)
    try:
        app.prepare([args.iss])
        url = app.begin()
        if args.scripted_user:
            callback = asyncio.run(_scripted_user(url, redirect_uri))
        else:
            print("Open this URL in a browser and sign in:\n" + url, flush=True)
            loopback.handle_request()  # blocks until the browser comes back
            callback = f"http://127.0.0.1:{loopback.server_port}{loopback.callback_path}"
        app.complete(callback)
        tokens = app.tokens_for(args.iss)
        if args.token_file:
            FileTokenStore(args.token_file).save("ehr", tokens)
        ehr = app.session(args.iss)
        patient = ehr.read("Patient", ehr.patient_id or "")
        vitals = ehr.search("Observation", {"patient": patient["id"],
                                            "category": "vital-signs", "_count": "5"})
        print(f"Patient/{patient['id']}: {len(vitals.get('entry', []))} vital signs on the "
              f"first page; granted {tokens.scope}")
    finally:
        app.close()
        loopback.server_close()


async def _register(endpoint: str, redirect_uri: str) -> str:
    async with httpx.AsyncClient(timeout=30.0) as http:
        body = await register_client(http, endpoint, client_name="single-server example",
                                     redirect_uris=[redirect_uri], scope=SCOPE)
    return str(body["client_id"])


async def _scripted_user(url: str, redirect_uri: str) -> str:
    async with httpx.AsyncClient(timeout=30.0) as browser:
        return await authorize_as_user(browser, url, redirect_uri, username="patient",
                                       password="patient-demo")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iss", default="http://127.0.0.1:8701/fhir")
    parser.add_argument("--token-file", help="save the token here (JSON, mode 0600)")
    parser.add_argument("--scripted-user", action="store_true",
                        help="sign in as the demo patient (patient / patient-demo)")
    try:
        main(parser.parse_args())
    except SmartClientError as exc:
        raise SystemExit(f"{type(exc).__name__}: {exc}") from None

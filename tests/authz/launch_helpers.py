"""Helpers of the in-process EHR-launch tests: the launch API with HTTP Basic, and the
authorization of an EHR launch through the real login and consent pages."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from tests.authz.conftest import Flow, approve, login, redirect_params, start

PASSWORDS = {"clinician": "clinician-demo", "patient": "patient-demo"}
LAUNCH_SCOPE = "launch openid fhirUser offline_access patient/*.rs"


def basic(username: str, password: str | None = None) -> dict[str, str]:
    secret = password if password is not None else PASSWORDS[username]
    token = base64.b64encode(f"{username}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def create_launch(ua: httpx.AsyncClient, username: str = "clinician",
                        **body: Any) -> dict[str, Any]:
    body.setdefault("patient", "p0003")
    body.setdefault("launch_url", "http://127.0.0.1:9/app/launch")
    response = await ua.post("/api/launch", json=body, headers=basic(username))
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def launch_code(ua: httpx.AsyncClient, flow: Flow, launch: str,
                      username: str = "clinician", **overrides: str | list[str] | None
                      ) -> dict[str, str]:
    """/authorize with ``launch``, sign in, approve: the app's callback parameters. An EHR
    launch never shows the patient picker: sign-in leads straight to consent."""
    page = await start(ua, flow, launch=launch, **overrides)
    assert page.url.path.endswith("/interaction/login"), page.text
    page = await login(ua, page, username, PASSWORDS[username])
    assert page.url.path.endswith("/interaction/consent"), page.url
    return redirect_params(await approve(ua, page))

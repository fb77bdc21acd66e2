"""The token endpoint's front (authz/views/token_front.py): only a POST to exactly the token path
skips the route table; everything else is routed as before, and an unexpected error still
ends as Starlette's 500."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from smartrealm.authz.views.token_front import TokenFront


async def front_endpoint(request: Request) -> Response:
    body = await request.body()
    return PlainTextResponse(f"front {request.method} {body.decode()}")


async def routed(request: Request) -> Response:
    return PlainTextResponse(f"routed {request.method}")


async def failing(request: Request) -> Response:
    raise RuntimeError("boom")


def _app(endpoint: object = front_endpoint) -> Starlette:
    routes = [Route("/as/token", routed, methods=["POST", "OPTIONS", "GET"]),
              Route("/as/token2", routed, methods=["POST"])]
    return Starlette(routes=routes, middleware=[
        Middleware(TokenFront, path="/as/token", endpoint=endpoint)])


def _client(app: Starlette, root_path: str = "") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, root_path=root_path)
    return httpx.AsyncClient(transport=transport, base_url="http://as")


async def test_post_to_the_token_path_goes_to_the_endpoint_with_its_body() -> None:
    async with _client(_app()) as ua:
        response = await ua.post("/as/token", content=b"grant_type=x")
    assert response.text == "front POST grant_type=x"


@pytest.mark.parametrize(("method", "path"), [
    ("OPTIONS", "/as/token"),  # the CORS preflight has its own route
    ("GET", "/as/token"),
    ("POST", "/as/token2"),
])
async def test_anything_else_is_routed(method: str, path: str) -> None:
    async with _client(_app()) as ua:
        response = await ua.request(method, path)
    assert response.text == f"routed {method}"


async def test_an_app_under_a_root_path_is_routed() -> None:
    # Under a root_path the scope's path is not the route path: the router decides.
    async with _client(_app(), root_path="/as") as ua:
        response = await ua.post("/as/token")
    assert not response.text.startswith("front")


async def test_an_unexpected_error_is_a_500() -> None:
    async with _client(_app(failing)) as ua:
        response = await ua.post("/as/token")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"

import httpx, pytest
from smartrealm.client.auth import AuthorizationRequest, register_client
from tests.e2e.flow import SCOPE
pytestmark = pytest.mark.asyncio(loop_scope="module")
async def test_probe(realm, browser):
    async with httpx.AsyncClient() as http:
        c = await register_client(http, realm.auth_server.registration_endpoint, redirect_uris=["http://127.0.0.1:9/cb"], client_name="probe", scope=SCOPE)
    ehr, img = realm.server("ehr").base_url, realm.server("imaging").base_url
    for user, pw in [("patient","patient-demo"),("clinician","clinician-demo")]:
        req = AuthorizationRequest.create(authorization_endpoint=realm.auth_server.authorization_endpoint, client_id=c["client_id"], redirect_uri="http://127.0.0.1:9/cb", scope=SCOPE, resources=[ehr, img])
        ctx = await browser.new_context(); page = await ctx.new_page()
        seen = []
        async def h(route):
            seen.append(route.request.url); await route.fulfill(body="cb", content_type="text/html")
        await ctx.route("http://127.0.0.1:9/**", h)
        await page.goto(req.url); print(page.url); print(await page.inner_text("main"))
        await page.fill("input[name=username]", user); await page.fill("input[name=password]", pw)
        await page.click("#login button"); await page.wait_for_load_state()
        print(page.url); print(await page.inner_text("main"))
        if "patient" in page.url:
            await page.check("input[name=patient][value=p0003]"); await page.click("#pick button"); await page.wait_for_load_state()
            print(page.url); print(await page.inner_text("main"))
        await page.click("button[value=approve]"); await page.wait_for_url("http://127.0.0.1:9/**")
        print(page.url, seen)
        await ctx.close()
    # frame
    ctx = await browser.new_context(); page = await ctx.new_page()
    req = AuthorizationRequest.create(authorization_endpoint=realm.auth_server.authorization_endpoint, client_id=c["client_id"], redirect_uri="http://127.0.0.1:9/cb", scope=SCOPE, resources=[ehr, img])
    import html
    await ctx.route("http://127.0.0.1:9/frame", lambda r: r.fulfill(body=f'<iframe src="{html.escape(req.url)}"></iframe>', content_type="text/html"))
    async with page.expect_response("**/interaction/login") as info:
        await page.goto("http://127.0.0.1:9/frame")
    r = await info.value
    print(r.status, await r.all_headers())
    for f in page.frames: print(f.url, await f.locator("input").count())
    await ctx.close()

"""Browser fixtures: the default realm really started (one uvicorn process per component on
free loopback ports) and one headless Debian Chromium, both per module.

The browser is Debian's ``chromium`` (``scripts/ensure-system-deps.sh`` installs it); no
browser is ever downloaded. The flags keep it from reaching out to the network."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright

from smartrealm.realm.config import RealmConfig
from tests.e2e.conftest import default_realm_running

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealmConfig]:
    with default_realm_running(tmp_path_factory.mktemp("browser-realm")) as config:
        yield config


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-system-deps.sh "
                    "(installs Debian's chromium)")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                    args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()

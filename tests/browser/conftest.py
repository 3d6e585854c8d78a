"""Debian's Chromium driven by Playwright, against the live app on loopback.

Never a downloaded browser: the executable is /usr/bin/chromium (`.ci/run` installs it).
"""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import Engine

from safevine.web.public_app import create_public_app
from safevine.web.server import background_server, free_port
from tests.canaries import plant
from tests.web.conftest import settings_for

CHROMIUM = Path("/usr/bin/chromium")
# Flags that keep Chromium off the network: it would otherwise try Google's services.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]
# The README's pictures; tests write theirs elsewhere unless asked (`make screenshots`),
# so `make test` leaves a clean checkout clean.
README_SCREENSHOTS = Path(__file__).parents[2] / "docs" / "screenshots"


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("SAFEVINE_UPDATE_SCREENSHOTS") == "1":
        return README_SCREENSHOTS
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: install Debian's chromium package"
        if os.environ.get("SAFEVINE_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


def neutral_site() -> FastAPI:
    """Stands in for the search engine the quick exit leaves for."""
    app = FastAPI()

    @app.get("/")
    def home() -> HTMLResponse:
        return HTMLResponse("<!doctype html><title>Neutral</title><h1>Neutral site</h1>")

    return app


@dataclass
class Site:
    base: str
    neutral: str
    engine: Engine


@pytest.fixture
def site(sqlite_engine: Engine) -> Iterator[Site]:
    plant(sqlite_engine)
    neutral_port = free_port()
    neutral = f"http://127.0.0.1:{neutral_port}/"
    app = create_public_app(settings_for(sqlite_engine, exit_url=neutral))
    with background_server(neutral_site(), port=neutral_port), background_server(app) as base:
        yield Site(base, neutral, sqlite_engine)
    app.state.safevine.public_engine.dispose()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    """A page at a cheap phone's width, 375 pixels."""
    context = browser.new_context(viewport={"width": 375, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()

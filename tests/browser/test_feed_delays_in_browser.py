"""A facility whose feed went silent, as the public sees it in Chromium: the notice on a
result and the list of delayed facilities, readable at 320 px, with no serious or critical
axe-core finding, and screenshots at 375 and 1280 px."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import text

from safevine.actions import feed_health
from tests.browser.conftest import Site
from tests.browser.test_search_in_browser import search
from tests.canaries import PUBLIC
from tests.web.conftest import settings_for


def _no_serious_findings(page: Page) -> None:
    results = Axe().run(page)
    serious = [
        v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")
    ]
    assert not serious, [(v["id"], v["help"], v["nodes"][0]["html"]) for v in serious]


def test_a_result_at_a_silent_facility_and_the_list_of_delays(
    browser: Browser, site: Site, screenshots: Path
) -> None:
    engine = site.engine
    with engine.begin() as c:
        c.execute(
            text("UPDATE custody_events SET received_at = :t"),
            {"t": datetime.now(UTC) - timedelta(hours=100)},
        )
    feed_health.evaluate(engine, settings_for(engine), datetime.now(UTC))
    screenshots.mkdir(parents=True, exist_ok=True)
    for width in (320, 375, 1280):
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        search(page, site, PUBLIC.a_number, "MX")
        notice = page.locator(".result .delay-notice")
        expect(notice).to_contain_text("Information from this facility may be out of date.")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        if width != 320:
            page.screenshot(path=str(screenshots / f"delayed-result-{width}.png"), full_page=True)
        _no_serious_findings(page)
        notice.get_by_role("link", name="Facilities with delayed information").click()
        page.wait_for_load_state()
        expect(page.locator("h1")).to_have_text("Facilities with delayed information")
        expect(page.locator(".delay-list")).to_contain_text("Facility F1")
        expect(page.locator(".delay-list")).to_contain_text("Information is not being received")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        if width != 320:
            page.screenshot(path=str(screenshots / f"delays-{width}.png"), full_page=True)
        _no_serious_findings(page)
        context.close()

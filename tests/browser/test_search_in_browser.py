"""What a victim or advocate does in a real browser: search, leave quickly, come back safely."""

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect
from sqlalchemy import Engine

from safevine.web.public_app import create_public_app
from safevine.web.server import background_server, free_port
from tests.browser.conftest import Site, neutral_site
from tests.canaries import PROTECTED, PUBLIC, plant
from tests.web.conftest import settings_for


def search(page: Page, site: Site, a_number: str, country: str) -> None:
    page.goto(f"{site.base}/")
    page.get_by_label("A-number").fill(a_number)
    page.get_by_label("Country of birth", exact=True).fill(country)
    page.get_by_role("button", name="Search").click()
    # The answer replaces the page in place (one history entry): wait for it.
    page.locator("#results-title, #error-summary").first.wait_for()


def test_search_and_see_a_result(page: Page, site: Site) -> None:
    search(page, site, PUBLIC.a_number, "Mexico")
    result = page.locator(".result")
    expect(result).to_have_count(1)
    expect(result).to_contain_text("Marisol Quintanilla")
    expect(result).to_contain_text("In custody")
    expect(result).to_contain_text("Facility F1")
    assert page.url == f"{site.base}/"  # no identifiers in the address


def test_a_protected_person_is_not_found(page: Page, site: Site) -> None:
    search(page, site, PROTECTED.a_number, PROTECTED.country)
    expect(page.locator(".result")).to_have_count(0)
    expect(page.locator(".no-match")).to_be_visible()
    assert PROTECTED.given not in page.content()


def test_every_request_goes_to_safevine_only(page: Page, site: Site) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    search(page, site, PUBLIC.a_number, "MX")
    page.get_by_role("link", name="How to browse safely").click()
    page.locator(".language-switch summary").click()
    page.get_by_role("link", name="Español").click()
    page.wait_for_load_state()
    assert requests
    outside = [url for url in requests if not url.startswith(site.base)]
    assert outside == []


def test_the_quick_exit_button_leaves_at_once(page: Page, site: Site) -> None:
    search(page, site, PUBLIC.a_number, "MX")
    page.get_by_role("link", name="Leave this site now").click()
    page.wait_for_url(site.neutral)
    expect(page.get_by_role("heading", name="Neutral site")).to_be_visible()


def test_shift_three_times_leaves(page: Page, site: Site) -> None:
    search(page, site, PUBLIC.a_number, "MX")
    for _ in range(3):
        page.keyboard.press("Shift")
    page.wait_for_url(site.neutral)


def test_other_keys_reset_the_shift_count(page: Page, site: Site) -> None:
    page.goto(f"{site.base}/")
    page.keyboard.press("Shift")
    page.keyboard.press("Shift")
    page.keyboard.press("a")
    page.keyboard.press("Shift")
    page.wait_for_timeout(500)
    assert page.url.startswith(site.base)


def test_back_after_leaving_shows_no_results(page: Page, site: Site) -> None:
    search(page, site, PUBLIC.a_number, "MX")
    expect(page.locator(".result")).to_have_count(1)
    page.get_by_role("link", name="Leave this site now").click()
    page.wait_for_url(site.neutral)
    page.go_back()
    page.wait_for_load_state()
    # The visit was one history entry, which the exit replaced: Back leaves the site.
    assert not page.url.startswith(site.base), page.url
    assert "Marisol" not in page.content()


def test_the_quick_exit_works_without_javascript(browser: Browser, site: Site) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{site.base}/")
    page.get_by_role("link", name="Leave this site now").click()
    page.wait_for_url(site.neutral)
    context.close()


def test_search_works_without_javascript(browser: Browser, site: Site) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    search(page, site, PUBLIC.a_number, "MX")
    expect(page.locator(".result")).to_contain_text("Marisol Quintanilla")
    context.close()


def test_keyboard_alone_reaches_the_exit_first(page: Page, site: Site) -> None:
    page.goto(f"{site.base}/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "quick-exit"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"


def test_errors_are_announced_and_linked(page: Page, site: Site) -> None:
    page.goto(f"{site.base}/?lang=es")
    page.get_by_role("button", name="Buscar").click()
    summary = page.locator("#error-summary")
    expect(summary).to_be_visible()
    summary.get_by_role("link").first.click()
    assert page.evaluate("document.activeElement.tagName") == "INPUT"


def test_usable_at_320_pixels(browser: Browser, site: Site) -> None:
    context = browser.new_context(viewport={"width": 320, "height": 640})
    page = context.new_page()
    search(page, site, PUBLIC.a_number, "MX")
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    context.close()


def test_screenshots_for_the_readme(browser: Browser, site: Site, screenshots: Path) -> None:
    screenshots.mkdir(parents=True, exist_ok=True)
    for width in (375, 1280):
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        page.goto(f"{site.base}/")
        path = screenshots / f"search-{width}.png"
        page.screenshot(path=str(path), full_page=True)
        search(page, site, PUBLIC.a_number, "MX")
        result = screenshots / f"result-{width}.png"
        page.screenshot(path=str(result), full_page=True)
        context.close()
        assert path.stat().st_size > 5_000 and result.stat().st_size > 5_000


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
@pytest.mark.parametrize("who", ["found", "nobody"])
def test_after_a_search_the_answer_is_in_view_and_has_focus(
    browser: Browser, site: Site, javascript: bool, who: str
) -> None:
    """On a 375x740 phone the answer (a result, or "no one matched") is the first thing in
    view and holds the focus, so a search never looks as if it did nothing."""
    context = browser.new_context(
        viewport={"width": 375, "height": 740}, java_script_enabled=javascript
    )
    page = context.new_page()
    canary = PUBLIC if who == "found" else PROTECTED
    search(page, site, canary.a_number, canary.country)
    answer = page.locator(".result" if who == "found" else ".no-match").first
    box = answer.bounding_box()
    assert box is not None and 0 <= box["y"] < 740 - 40, box
    # Focus comes by autofocus, which Chromium gives at its next rendering.
    page.wait_for_function(
        "document.activeElement && document.activeElement.id === 'results-title'"
    )
    context.close()


def test_a_whole_visit_is_one_history_entry_and_back_after_the_exit_leaves_the_site(
    page: Page, site: Site
) -> None:
    """With JavaScript every page of a visit replaces the one before in the history: after
    the exit, Back leads to the page before the visit, never to this site."""
    page.goto(site.neutral)  # where the person was before
    page.goto(f"{site.base}/")
    before = page.evaluate("history.length")
    page.get_by_label("A-number").fill(PUBLIC.a_number)
    page.get_by_label("Country of birth", exact=True).fill("MX")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".result")).to_contain_text("Marisol Quintanilla")
    page.get_by_role("button", name="Get updates about this person").click()
    expect(page.locator("#channel-email")).to_be_checked()
    page.locator("#address").fill("visit@example.org")
    page.get_by_role("button", name="Send me a code").click()
    expect(page.locator("#code")).to_be_visible()
    page.get_by_role("link", name="How to browse safely").click()
    page.wait_for_url(f"{site.base}/browse-safely*")
    assert page.evaluate("history.length") == before  # search, register, code, browse: one
    page.get_by_role("link", name="Leave this site now").click()
    page.wait_for_url(site.neutral)
    page.go_back()
    assert not page.url.startswith(site.base), page.url
    assert "Find a person" not in page.content()


def test_an_answer_on_its_way_cannot_undo_the_exit(browser: Browser, sqlite_engine: Engine) -> None:
    """A search answered slowly (its identifiers are searched by a crowd, so the answer
    waits) is still on its way when the exit is pressed: the exit wins, and the answer
    never appears, not even one Back away."""
    plant(sqlite_engine)
    delay = 3
    neutral_port = free_port()
    neutral = f"http://127.0.0.1:{neutral_port}/"
    app = create_public_app(
        settings_for(
            sqlite_engine,
            exit_url=neutral,
            rate_limits_enabled=True,
            search_crowd="1/hour",
            search_crowd_delay=delay,
            trusted_proxies=("127.0.0.1/32",),
        )
    )
    context = browser.new_context(viewport={"width": 375, "height": 740})
    page = context.new_page()
    with background_server(neutral_site(), port=neutral_port), background_server(app) as base:
        # Two other addresses make a crowd of this person's identifiers.
        for n in (1, 2):
            httpx.post(
                f"{base}/api/v1/search",
                json=PUBLIC.by_a_number(),
                headers={"X-Forwarded-For": f"203.0.113.{n}"},
                timeout=30,
            )
        page.goto(neutral)
        page.goto(f"{base}/")
        page.get_by_label("A-number").fill(PUBLIC.a_number)
        page.get_by_label("Country of birth", exact=True).fill("MX")
        # The way out is held up until the answer has arrived: the race at its worst.
        held: list[Route] = []
        page.route(f"{base}/exit", lambda route: held.append(route))
        with page.expect_request(f"{base}/"):
            page.get_by_role("button", name="Search").click()
        with page.expect_response(f"{base}/", timeout=(delay + 10) * 1000):
            for _ in range(3):  # Shift three times: a click would wait for the navigation
                page.keyboard.press("Shift")
        page.wait_for_timeout(500)  # time enough to put the answer in place of the page
        assert len(held) == 1
        held[0].continue_()
        # Had the answer been put in place, it would have cancelled the way out.
        page.wait_for_url(neutral, timeout=5_000)
        assert page.url == neutral
        expect(page.get_by_role("heading", name="Neutral site")).to_be_visible()
        page.go_back()
        assert not page.url.startswith(base), page.url
        assert "Marisol" not in page.content()
    context.close()
    app.state.safevine.public_engine.dispose()

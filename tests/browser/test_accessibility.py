"""Every public page passes axe-core's WCAG 2.2 AA rules (its bundled copy, run in Debian's
Chromium; nothing is fetched) with no serious or critical finding, in every language; and
search, registration and the quick exit work from the keyboard alone."""

from collections.abc import Callable

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from safevine.languages import CODES
from tests.browser.conftest import Site
from tests.canaries import PROTECTED, PUBLIC

RULES = {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}


@pytest.fixture(scope="module")
def axe() -> Axe:
    return Axe()


def _findings(axe: Axe, page: Page) -> list[tuple[str, str, str]]:
    response = axe.run(page, options={"runOnly": RULES}).response
    return [
        (v["id"], v["help"], v["nodes"][0]["html"][:120])
        for v in response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]


def _search(page: Page, a_number: str, country: str) -> None:
    page.locator("#a_number").fill(a_number)
    page.locator("#country_of_birth").fill(country)
    page.locator(".search-form button[type=submit]").click()
    page.wait_for_load_state()


def _pages(site: Site, code: str) -> list[tuple[str, Callable[[Page], None]]]:
    def search(page: Page) -> None:
        page.goto(f"{site.base}/?lang={code}")

    def result(page: Page) -> None:
        search(page)
        _search(page, PUBLIC.a_number, PUBLIC.country)

    def nobody(page: Page) -> None:
        search(page)
        _search(page, PROTECTED.a_number, PROTECTED.country)

    def search_errors(page: Page) -> None:
        search(page)
        _search(page, "12", "")

    def register(page: Page) -> None:
        result(page)
        page.locator(".register-form button[type=submit]").first.click()
        page.wait_for_load_state()

    def register_errors(page: Page) -> None:
        register(page)
        page.locator("#address").fill("not an address")
        page.locator("form.register > button[type=submit]").click()
        page.wait_for_load_state()

    def code_step(page: Page) -> None:
        register(page)
        page.locator("#address").fill(f"a11y-{code}@example.org")
        page.locator("form.register > button[type=submit]").click()
        page.wait_for_load_state()
        expect(page.locator("#code")).to_be_visible()

    def browse_safely(page: Page) -> None:
        page.goto(f"{site.base}/browse-safely?lang={code}")

    def delays(page: Page) -> None:
        page.goto(f"{site.base}/delays?lang={code}")

    def missing(page: Page) -> None:
        page.goto(f"{site.base}/no-such-page?lang={code}")

    return [
        ("search", search),
        ("result", result),
        ("no match", nobody),
        ("search errors", search_errors),
        ("registration", register),
        ("registration errors", register_errors),
        ("code step", code_step),
        ("browse safely", browse_safely),
        ("delays", delays),
        ("not found", missing),
    ]


@pytest.mark.parametrize("code", CODES)
def test_every_public_page_has_no_serious_finding(
    phone: Page, site: Site, axe: Axe, code: str
) -> None:
    page = phone
    found = {}
    for name, open_page in _pages(site, code):
        open_page(page)
        findings = _findings(axe, page)
        if findings:
            found[name] = findings
    assert found == {}, found


def test_search_registration_and_the_exit_from_the_keyboard_alone(page: Page, site: Site) -> None:
    page.goto(f"{site.base}/")
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "quick-exit"
    page.locator("#a_number").focus()
    page.keyboard.type(PUBLIC.a_number)
    page.locator("#country_of_birth").focus()
    page.keyboard.type("Mexico")
    page.keyboard.press("Enter")  # submits the form
    page.wait_for_load_state()
    expect(page.locator(".result")).to_contain_text(PUBLIC.family)
    # From the focused results, Tab reaches the button that starts a registration.
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('.register-form') !== null"):
            break
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    expect(page.locator("#channel-email")).to_be_checked()
    page.locator("#address").focus()
    page.keyboard.type("keys@example.org")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    expect(page.locator("#code")).to_be_visible()
    # And the exit, from the keyboard, on this step too.
    page.locator("#quick-exit").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(site.neutral)

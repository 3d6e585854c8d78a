"""Every language in Debian's Chromium at 375 pixels: the search page, a result found with
the country typed in that language, and the registration form, each with the right `lang`
and `dir`, no text outside its box, and the quick exit working. Canary people planted as
protected and unscreened stay unfound in every language. Screenshots of the Arabic and
Chinese results go to `docs/screenshots/` with `make screenshots`."""

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from safevine.domain.country import country_name
from safevine.languages import CODES, LANGUAGES
from tests.browser.conftest import Site
from tests.canaries import NON_PUBLIC, PUBLIC

WIDTH = 375
# Every element that shows text a reader needs, checked to lie within the page's width.
OUTSIDE = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.querySelectorAll(
      'h1,h2,h3,p,label,legend,a,button,summary,dt,dd,li,input,select')) {
    const box = el.getBoundingClientRect();
    // Out of sight on purpose: the skip link until it has focus, text for screen readers.
    if (el.closest('.skip-link, .visually-hidden')) continue;
    if (box.width === 0 || getComputedStyle(el).visibility === 'hidden') continue;
    if (box.left < -1 || box.right > width + 1 || el.scrollWidth > el.clientWidth + 2 &&
        getComputedStyle(el).overflowX === 'visible' && el.clientWidth > 0 &&
        !['INPUT', 'SELECT'].includes(el.tagName))
      out.push(el.tagName + ': ' + el.textContent.trim().slice(0, 60));
  }
  return out;
}"""


def _fits(page: Page, where: str) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH, where
    assert page.evaluate(OUTSIDE) == [], where


def _is_in(page: Page, code: str) -> None:
    html = page.locator("html")
    expect(html).to_have_attribute("lang", code)
    expect(html).to_have_attribute("dir", LANGUAGES[code].direction)


def _search(page: Page, site: Site, code: str, a_number: str, country: str) -> None:
    page.goto(f"{site.base}/?lang={code}")
    page.locator("#a_number").fill(a_number)
    page.locator("#country_of_birth").fill(country)
    page.locator(".search-form button[type=submit]").click()
    page.wait_for_load_state()


@pytest.mark.parametrize("code", CODES)
def test_search_result_and_registration_in_each_language(
    phone: Page, site: Site, code: str
) -> None:
    phone.goto(f"{site.base}/?lang={code}")
    _is_in(phone, code)
    _fits(phone, f"{code} search")
    exit_box = phone.locator("#quick-exit").bounding_box()
    assert exit_box is not None and exit_box["x"] + exit_box["width"] > WIDTH - 40
    # The country as a reader of this language writes it.
    _search(phone, site, code, PUBLIC.a_number, country_name(PUBLIC.country, code))
    result = phone.locator(".result")
    expect(result).to_have_count(1)
    expect(result).to_contain_text(PUBLIC.family)
    expect(result).to_contain_text(country_name(PUBLIC.country, code))
    _is_in(phone, code)
    _fits(phone, f"{code} result")
    assert phone.url.startswith(f"{site.base}/")  # no identifier in the address
    assert PUBLIC.a_number not in phone.url

    phone.locator(".register-form button[type=submit]").first.click()
    phone.wait_for_load_state()
    _is_in(phone, code)
    expect(phone.locator(f"#language-{code}")).to_be_checked()
    expect(phone.locator("#channel-email")).to_be_checked()
    # Discreet wording is in sight, not folded away under "More choices".
    expect(phone.locator("#wording-discreet")).to_be_visible()
    _fits(phone, f"{code} registration")
    button = phone.locator("form.register > button[type=submit]").bounding_box()
    footer = phone.locator("footer").bounding_box()
    assert button is not None and footer is not None
    assert footer["y"] - (button["y"] + button["height"]) >= 16  # not flush on the footer
    # A wrong address: the error, in this language, beside its field.
    phone.locator("#channel-email").check()
    phone.locator("#address").fill("not an address")
    phone.locator("form.register > button[type=submit]").last.click()
    phone.wait_for_load_state()
    _is_in(phone, code)
    expect(phone.locator("#address-error")).to_be_visible()
    _fits(phone, f"{code} registration error")
    phone.locator("#address").fill(f"{code}@example.org")
    phone.locator("form.register > button[type=submit]").last.click()
    phone.wait_for_load_state()
    _is_in(phone, code)
    expect(phone.locator("#code")).to_be_visible()  # the step that asks for the code
    _fits(phone, f"{code} confirmation step")

    phone.locator("#quick-exit").click()
    phone.wait_for_url(site.neutral)


@pytest.mark.parametrize("code", CODES)
def test_a_non_public_person_is_not_found_in_any_language(
    phone: Page, site: Site, code: str
) -> None:
    for canary in NON_PUBLIC:
        _search(phone, site, code, canary.a_number, country_name(canary.country, code))
        expect(phone.locator(".result")).to_have_count(0)
        expect(phone.locator(".no-match")).to_be_visible()
        page = phone.content()
        # The A-number typed stays in its field; the person's names appear nowhere.
        assert canary.given not in page and canary.family not in page, (code, canary)


def test_arabic_reads_right_to_left_with_its_numbers_left_to_right(phone: Page, site: Site) -> None:
    phone.goto(f"{site.base}/?lang=ar")
    exit_box = phone.locator("#quick-exit").bounding_box()
    # The quick exit stays top right, where the thumb finds it in every language.
    assert exit_box is not None and exit_box["x"] + exit_box["width"] > WIDTH - 40
    assert exit_box["y"] < 40
    legend = phone.locator(".search-form legend").first.bounding_box()
    assert legend is not None
    # Mirrored: the first legend starts at the right edge.
    assert legend["x"] + legend["width"] > WIDTH - 40
    hint = phone.locator("#a_number-hint span[dir=ltr]")
    expect(hint).to_have_text("A-012-345-678")


def test_screenshots_of_the_arabic_and_chinese_results(
    phone: Page, site: Site, screenshots: Path
) -> None:
    screenshots.mkdir(parents=True, exist_ok=True)
    for code in ("ar", "zh"):
        _search(phone, site, code, PUBLIC.a_number, country_name(PUBLIC.country, code))
        path = screenshots / f"result-{code}-{WIDTH}.png"
        phone.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 5_000


def test_the_icon_a_browser_asks_for_is_none(phone: Page, site: Site) -> None:
    """Browsers keep a site's icon in a store of their own (a trace of the visit): the
    one they ask for is answered with nothing, not an icon and not a 404."""
    answers: dict[str, int] = {}
    phone.on("response", lambda response: answers.setdefault(response.url, response.status))
    problems: list[str] = []
    phone.on("console", lambda message: problems.append(message.text))
    _search(phone, site, "en", PUBLIC.a_number, "MX")
    phone.wait_for_timeout(500)
    icons = {url: status for url, status in answers.items() if "favicon" in url}
    assert all(status == 204 for status in icons.values()), icons
    assert problems == []

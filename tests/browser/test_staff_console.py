"""The staff console in Debian's Chromium: sign in with a password and a code (enrolling
the first time), screen a person and see them on the public site, protect and clear with
two people, sign out. axe-core (bundled, run in the page) finds no serious or critical
problem on any page; every page is screenshot at 375 and 1280 px."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pyotp
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page
from sqlalchemy import Engine

from safevine.actions import accounts
from safevine.actions.actor import Actor
from safevine.contact_vault import ContactVault
from safevine.ingest.events import ingest_events
from safevine.web.public_app import create_public_app
from safevine.web.server import background_server
from safevine.web.staff_app import create_staff_app
from tests.builders import event, jsonl, person
from tests.canaries import PUBLIC, UNSCREENED, plant
from tests.web.conftest import SECRET, settings_for

PASSWORD = "a long enough password"


@dataclass
class Console:
    staff: str
    public: str
    keys: dict[str, str]
    engine: Engine

    def found(self, body: dict[str, str]) -> int:
        answer = httpx.post(f"{self.public}/api/v1/search", json=body, timeout=30)
        return len(answer.json()["results"])


@pytest.fixture
def console(sqlite_engine: Engine) -> Iterator[Console]:
    plant(sqlite_engine)
    keys = {}
    with sqlite_engine.begin() as connection:
        for name, role in (
            ("sam", "screener"),
            ("sue", "supervisor"),
            ("ann", "auditor"),
            ("ada", "admin"),
        ):
            _, enrolment = accounts.create(
                connection,
                ContactVault(SECRET),
                Actor("cli:test"),
                name,
                [role],
                PASSWORD,
                datetime.now(UTC),
            )
            assert enrolment is not None
            keys[name] = enrolment.secret
    # A batch held for review (an event dated days ahead), and one with a rejected record.
    who = person(PUBLIC.a_number, PUBLIC.given, PUBLIC.family, born=PUBLIC.born, country="MX")
    ahead = event("ahead-1", "transferred", datetime.now(UTC) + timedelta(days=3), who)
    held = ingest_events(sqlite_engine, jsonl(ahead), source="clock-error.jsonl", fmt="jsonl")
    assert held.hold_id is not None
    bad = ingest_events(sqlite_engine, [b'{"event_id": "x"}\n'], source="bad.jsonl", fmt="jsonl")
    assert bad.rejected == 1
    settings = settings_for(sqlite_engine)
    staff, public = create_staff_app(settings), create_public_app(settings)
    with background_server(staff) as staff_base, background_server(public) as public_base:
        yield Console(staff_base, public_base, keys, sqlite_engine)
    staff.state.staff.records_engine.dispose()
    public.state.safevine.public_engine.dispose()


# Every control a mouse could use, tagged so the keyboard walk can tell them apart; the
# radio buttons of one group are one stop (Tab enters the group, the arrows move in it).
_CONTROLS = """() => {
  const selector = 'a[href], button, input:not([type=hidden]), select, textarea';
  const all = [...document.querySelectorAll(selector)].filter(e => e.offsetParent !== null);
  const groups = {};
  let stops = 0;
  for (const e of all) {
    if (e.type === 'radio') {
      if (!(e.name in groups)) groups[e.name] = stops++;
      e.dataset.control = groups[e.name];
    } else {
      e.dataset.control = stops++;
    }
  }
  return stops;
}"""


def _keyboard(page: Page) -> None:
    """Tab alone reaches every visible control on the page, each with a focus outline."""
    # A click that navigates returns once the new page commits, before its controls exist.
    page.wait_for_load_state("load")
    count = page.evaluate(_CONTROLS)
    assert count > 0, page.url
    page.evaluate("document.activeElement && document.activeElement.blur()")
    reached, outlines = set(), set()
    # A date field takes a stop for each of its parts.
    for _ in range(4 * count + 10):
        page.keyboard.press("Tab")
        control = page.evaluate("document.activeElement.dataset.control")
        if control is not None:
            reached.add(control)
            outlines.add(page.evaluate("getComputedStyle(document.activeElement).outlineStyle"))
    assert len(reached) == count, (page.url, count, sorted(reached))
    assert outlines == {"solid"}, (page.url, outlines)


def _accessible(page: Page) -> None:
    _keyboard(page)
    results = Axe().run(page)
    serious = [
        v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")
    ]
    assert not serious, [(v["id"], v["help"], v["nodes"][0]["html"]) for v in serious]


def _sign_in(page: Page, console: Console, name: str, used: set[str]) -> None:
    page.goto(f"{console.staff}/")
    assert page.url.endswith("/login")
    _accessible(page)
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/login/code")
    _accessible(page)
    totp = pyotp.TOTP(console.keys[name])
    # A code is accepted once: wait for a fresh one if this one was used already.
    code = totp.now()
    while code in used:
        page.wait_for_timeout(1000)
        code = totp.now()
    used.add(code)
    page.fill("#code", code)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{console.staff}/")
    assert page.locator("h1").inner_text() == "Dashboard"


def _shoot(page: Page, screenshots: Path, name: str) -> None:
    for width in (375, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(screenshots / f"staff-{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_screen_protect_and_clear_with_two_people(
    browser: Browser, console: Console, screenshots: Path
) -> None:
    used: set[str] = set()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    # Enrolment: the first sign-in shows the key as a QR code drawn on the server.
    page.goto(f"{console.staff}/login")
    page.fill("#name", "sam")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    assert page.locator(".qr svg").count() == 1
    assert console.keys["sam"] in page.locator(".key").inner_text()
    _shoot(page, screenshots, "enrol")
    context.clear_cookies()
    _sign_in(page, console, "sam", used)
    assert "1" in page.locator("#t-screening + .figure").inner_text()
    _accessible(page)
    _shoot(page, screenshots, "dashboard")

    # Screening: the unscreened canary becomes public at once.
    assert console.found(UNSCREENED.by_a_number()) == 0
    page.click("text=Screening")
    _accessible(page)
    _shoot(page, screenshots, "screening")
    page.check(f"text={UNSCREENED.given} {UNSCREENED.family}")
    page.check("#d-cleared")
    page.fill("#reason", "no record under 8 U.S.C. 1367")
    page.click("text=Screen the people chosen")
    assert page.locator(".notice").inner_text() == "1 screened."
    assert console.found(UNSCREENED.by_a_number()) == 1

    # A person: looked up by A-number in the form body, protected at once.
    page.click("text=Person")
    page.fill("#a_number", PUBLIC.a_number)
    page.click("main form button[type=submit]")
    assert PUBLIC.a_number not in page.url  # only the internal id is in the address
    assert PUBLIC.family in page.locator("h2#who").inner_text()
    _accessible(page)
    page.fill("#protect-reason", "T visa application")
    page.click("text=Protect now")
    assert "Protected" in page.locator(".notice").inner_text()
    assert console.found(PUBLIC.by_a_number()) == 0
    page.fill("#clear-reason", "the application was withdrawn")
    page.click("text=Ask for a clear")
    assert "supervisor other than you" in page.locator(".notice").inner_text()
    assert page.locator("text=Confirm the clear").count() == 0  # a screener cannot
    _shoot(page, screenshots, "person")
    person_url = page.url
    page.click("text=Sign out")
    assert page.url.endswith("/login")
    page.goto(person_url)
    assert page.url.endswith("/login")  # the session ended on the server

    # The supervisor confirms; the person is public again.
    _sign_in(page, console, "sue", used)
    page.goto(person_url)
    page.click("text=Confirm the clear")
    assert page.locator(".notice").inner_text() == "Cleared."
    assert console.found(PUBLIC.by_a_number()) == 1
    assert page.locator("nav >> text=Reports").count() == 0  # a supervisor reads no reports
    page.goto(f"{console.staff}/reports")
    assert page.locator("h1").inner_text() == "Not allowed"
    context.close()


def test_the_keyboard_reaches_everything_from_the_top(browser: Browser, console: Console) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{console.staff}/login")
    # The name field has the focus at once, with no key pressed; the skip link comes
    # before it. Chromium gives an autofocus at its next rendering, which can come after
    # the load event that `goto` waits for.
    page.wait_for_function("document.activeElement && document.activeElement.id === 'name'")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Tab")
    page.keyboard.type("sam")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/login/code")
    context.close()


def test_a_supervisor_releases_a_hold_and_an_auditor_reads_the_log(
    browser: Browser, console: Console, screenshots: Path
) -> None:
    used: set[str] = set()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    _sign_in(page, console, "sue", used)
    page.click("nav >> text=Holds")
    _accessible(page)
    page.click("text=Hold 1")
    assert "dated in the future" in page.locator(".facts").inner_text()
    _accessible(page)
    _shoot(page, screenshots, "hold")
    page.click("text=Release: the news is real")
    assert "Released" in page.locator(".notice").inner_text()
    assert page.locator("text=Release: the news is real").count() == 0
    context.clear_cookies()

    _sign_in(page, console, "ann", used)
    assert page.locator("nav >> text=Screening").count() == 0  # an auditor changes nothing
    page.click("nav >> text=Batches")
    _accessible(page)
    page.click("text=Batch 5")
    line, field, reason = page.locator("tbody tr").first.locator("td").all_inner_texts()
    assert line == "1" and field and reason  # the rejected record, by line and field
    _accessible(page)
    page.click("nav >> text=Audit log")
    assert "The chain holds" in page.locator(".notice").inner_text()
    _accessible(page)
    _shoot(page, screenshots, "audit")
    page.fill("#actor", "sue")
    page.click("text=Filter")
    actions = page.locator("tbody tr td:nth-child(4)").all_inner_texts()
    assert "hold_release" in actions and "login" in actions
    assert set(page.locator("tbody tr td:nth-child(3)").all_inner_texts()) == {"sue"}
    with page.expect_download() as download:
        page.click("text=Export these entries")
    lines = Path(download.value.path()).read_text().splitlines()
    assert '"head"' in lines[-1] and all('"actor": "sue"' in line for line in lines[:-1])
    page.click("nav >> text=Reports")
    assert page.locator("h1").inner_text() == "Delivery report"
    _accessible(page)
    context.close()


def test_an_administrator_makes_an_account_and_a_token_with_at_most_its_rights(
    browser: Browser, console: Console, screenshots: Path
) -> None:
    used: set[str] = set()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    _sign_in(page, console, "ada", used)
    page.click("nav >> text=Accounts")
    _accessible(page)
    page.fill("#new-name", "newbie")
    page.check("#role-screener")
    page.fill("#new-password", PASSWORD)
    page.click("text=Make the account")
    assert "first sign-in" in page.locator(".notice").inner_text()
    _accessible(page)
    _shoot(page, screenshots, "account")
    page.uncheck("#role-screener")
    page.check("#role-supervisor")
    page.click("text=Change roles")
    assert "Roles changed" in page.locator(".notice").inner_text()

    page.click("nav >> text=API tokens")
    _accessible(page)
    page.fill("#token-name", "newbie-laptop")
    page.select_option("#token-account", label="newbie")
    page.check("#scope-protect")
    page.check("#scope-ingest")
    page.click("text=Make the token")
    assert "do not allow the scopes ingest" in page.locator(".problem").inner_text()
    page.fill("#token-name", "newbie-laptop")
    page.select_option("#token-account", label="newbie")
    page.check("#scope-protect")
    page.click("text=Make the token")
    secret = page.locator(".notice .key").inner_text()
    assert secret.startswith("svt_") and secret not in page.url
    _shoot(page, screenshots, "tokens")
    page.reload()
    assert secret not in page.content()  # shown once

    # The token acts as its account: protect works, and goes when the role goes.
    headers = {"Authorization": f"Bearer {secret}"}
    body = {"a_number": PUBLIC.a_number, "reason": "T visa"}
    url = f"{console.staff}/api/v1/staff/persons/protect"
    assert httpx.post(url, json=body, headers=headers, timeout=30).status_code == 200
    page.goto(f"{console.staff}/accounts")
    page.click("text=newbie")
    page.uncheck("#role-supervisor")
    page.check("#role-auditor")
    page.click("text=Change roles")
    assert httpx.post(url, json=body, headers=headers, timeout=30).status_code == 403
    context.close()


def test_a_supervisor_reads_feed_health_and_pauses_a_silent_facility(
    browser: Browser, console: Console, screenshots: Path
) -> None:
    from sqlalchemy import text

    from safevine.actions import feed_health

    with console.engine.begin() as connection:
        connection.execute(
            text("UPDATE custody_events SET received_at = :t"),
            {"t": datetime.now(UTC) - timedelta(hours=100)},
        )
    feed_health.evaluate(console.engine, settings_for(console.engine), datetime.now(UTC))
    used: set[str] = set()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    _sign_in(page, console, "sue", used)
    assert "1 down" in " ".join(page.locator(".tile-alarm .figure").inner_text().split())
    _shoot(page, screenshots, "dashboard-feeds")
    page.click("nav >> text=Feed health")
    assert page.locator("h1").inner_text() == "Feed health"
    _accessible(page)
    _shoot(page, screenshots, "feed-health")
    for width in (375, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.click("tbody >> text=Facility F1")
    assert "down" in page.locator(".facts").inner_text()
    _accessible(page)
    _shoot(page, screenshots, "feed-facility")
    page.fill("#hold-reason", "the jail is moving to a new system")
    page.get_by_role("button", name="Hold", exact=True).click()
    assert "Paused" in page.locator(".notice").inner_text()
    assert "the jail is moving to a new system (sue)" in page.locator(".facts").inner_text()
    _accessible(page)
    context.close()

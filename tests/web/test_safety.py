"""Safety for victims who visit: headers, one cookie, the quick exit, neutral titles, and
nothing loaded from anywhere but safevine itself."""

import html
import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from safevine.web.public_app import create_public_app
from safevine.web.security_headers import CONTENT_SECURITY_POLICY
from safevine.web.server import background_server
from safevine.web.staff_app import create_staff_app
from tests.canaries import PUBLIC
from tests.web.conftest import Live, settings_for

STATIC = Path(__file__).parents[2] / "src" / "safevine" / "web" / "static"


def _requests(live: Live) -> list[tuple[str, str, dict[str, object] | None]]:
    token = live.csrf()
    return [
        ("GET", "/", None),
        ("GET", "/?lang=es", None),
        ("POST", "/", {"data": {**PUBLIC.by_a_number(), "csrf_token": token}}),
        ("POST", "/api/v1/search", {"json": PUBLIC.by_a_number()}),
        ("POST", "/api/v1/search", {"json": {}}),
        ("GET", "/browse-safely", None),
        ("GET", "/exit", None),
        ("GET", "/no-such-page", None),
        ("GET", "/api/v1/nothing", None),
        ("GET", "/static/safevine.css", None),
        ("GET", "/openapi.json", None),
        ("GET", "/favicon.ico", None),
    ]


def test_the_icon_is_nothing_rather_than_a_404(live: Live) -> None:
    answer = live.client.get("/favicon.ico")
    assert (answer.status_code, answer.content) == (204, b"")


def test_every_response_carries_the_safety_headers(live: Live) -> None:
    for method, path, kwargs in _requests(live):
        response = live.client.request(method, path, **(kwargs or {}))  # type: ignore[arg-type]
        headers = response.headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert headers["referrer-policy"] == "no-referrer", path
        assert headers["x-content-type-options"] == "nosniff", path
        if not path.startswith("/static/"):
            assert headers["cache-control"] == "no-store", path


def test_every_405_says_which_methods_are_allowed(live: Live) -> None:
    answers = {
        ("DELETE", "/"): {"GET", "POST"},
        ("PUT", "/api/v1/search"): {"POST"},
        ("GET", "/api/v1/search"): {"POST"},
        ("POST", "/browse-safely"): {"GET"},
        ("POST", "/static/safevine.css"): {"GET", "HEAD"},
    }
    for (method, path), allowed in answers.items():
        _assert_405(live.client, method, path, allowed)
    staff = create_staff_app(settings_for(live.engine))
    try:
        with background_server(staff) as base, httpx.Client(base_url=base) as client:
            _assert_405(client, "PATCH", "/api/v1/staff/persons/protect", {"POST"})
            _assert_405(client, "DELETE", "/metrics", {"GET"})
    finally:
        staff.state.staff.records_engine.dispose()


def _assert_405(client: httpx.Client, method: str, path: str, allowed: set[str]) -> None:
    response = client.request(method, path)
    assert response.status_code == 405, (method, path)
    assert set(response.headers["allow"].split(", ")) == allowed, (method, path)
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_strict_transport_security_only_when_the_site_is_https(engine: Engine) -> None:
    for base_url, expected in (
        ("https://vine.example.org", "max-age=63072000; includeSubDomains"),
        ("http://127.0.0.1:8000", None),
    ):
        app = create_public_app(settings_for(engine, public_base_url=base_url))
        with background_server(app) as base, httpx.Client(base_url=base) as client:
            for path in ("/", "/static/safevine.css", "/no-such-page"):
                header = client.get(path).headers.get("strict-transport-security")
                assert header == expected, (base_url, path)
            posted = client.post("/api/v1/search", json=PUBLIC.by_a_number())
            assert posted.headers.get("strict-transport-security") == expected
        app.state.safevine.public_engine.dispose()


def test_the_only_cookie_is_a_short_lived_strict_csrf_cookie(live: Live) -> None:
    requests = _requests(live)
    cookies = []
    for method, path, kwargs in requests:
        live.client.cookies.clear()
        response = live.client.request(method, path, **(kwargs or {}))  # type: ignore[arg-type]
        cookies += response.headers.get_list("set-cookie")
    assert cookies
    for cookie in cookies:
        assert cookie.startswith("sv_csrf=")
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=7200" in cookie


def test_exit_clears_site_data_and_leaves_for_the_neutral_site(live: Live) -> None:
    response = live.client.get("/exit", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "http://127.0.0.1:9/neutral"
    assert response.headers["clear-site-data"] == '"cache", "cookies", "storage"'


def test_every_page_has_the_quick_exit_and_the_safety_link_without_javascript(live: Live) -> None:
    token = live.csrf()
    pages = [
        live.client.get("/"),
        live.client.get("/browse-safely"),
        live.client.get("/missing"),
        live.client.post("/", data={**PUBLIC.by_a_number(), "csrf_token": token}),
    ]
    for page in pages:
        assert '<a id="quick-exit" class="quick-exit" href="/exit">' in page.text
        assert 'href="/browse-safely?lang=en"' in page.text
        assert 'class="safety-note"' in page.text


def test_titles_and_addresses_are_neutral(live: Live) -> None:
    token = live.csrf()
    page = live.client.post("/", data={**PUBLIC.by_a_number(), "csrf_token": token})
    title = re.search(r"<title>(.*?)</title>", page.text, re.S)
    assert title is not None
    assert "Marisol" not in title.group(1) and "victim" not in title.group(1).lower()
    assert str(page.url).rstrip("/") == live.base


def test_browse_safely_says_honestly_what_the_exit_cannot_do(live: Live) -> None:
    text = html.unescape(live.client.get("/browse-safely").text)
    assert "does not erase your browser history" in text
    assert "monitoring software" in text and "private or incognito" in text
    # What the history keeps, with JavaScript and without.
    assert "your whole visit takes one place in the tab's history" in text
    assert "Without JavaScript, each page you opened here stays in that history" in text


@pytest.mark.parametrize("asset", sorted(p.name for p in STATIC.iterdir()))
def test_static_assets_reference_no_other_origin(asset: str) -> None:
    text = (STATIC / asset).read_text()
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), asset


def test_pages_reference_no_other_origin(live: Live) -> None:
    token = live.csrf()
    for page in (
        live.client.get("/"),
        live.client.get("/browse-safely?lang=es"),
        live.client.post("/", data={**PUBLIC.by_a_number(), "csrf_token": token}),
    ):
        for url in re.findall(r'(?:src|href|action)="([^"]+)"', page.text):
            assert url.startswith(("/", "#", "tel:")), url
        assert "style=" not in page.text and "<style" not in page.text
        assert re.findall(r"<script[^>]*>", page.text) == [
            '<script src="/static/quick-exit.js" defer>'
        ]

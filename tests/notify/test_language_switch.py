"""The language switch on every page: each language in its own name; on a page reached by a
form, the same form again in the other language, so a result, a half-filled registration
or a code waiting to be entered survives the switch, and no identifier enters a URL."""

import re
from collections.abc import Iterator

import httpx
import pytest

from safevine.languages import LANGUAGES
from safevine.web.public_app import create_public_app
from safevine.web.server import background_server
from tests.canaries import PUBLIC
from tests.notify.conftest import Delivery
from tests.notify.test_registration_pages import hidden


@pytest.fixture
def site(delivery: Delivery) -> Iterator[httpx.Client]:
    app = create_public_app(delivery.settings)
    with background_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        client.get("/")
        yield client
    app.state.safevine.public_engine.dispose()


def switch_form(page: str) -> tuple[str, list[tuple[str, str]]]:
    """The switch's form: where it posts, and its hidden fields."""
    nav = page.split('<details class="language-switch">', 1)[1].split("</details>", 1)[0]
    action = re.search(r'<form method="post" action="([^"]+)">', nav)
    assert action, "the switch of a page reached by a form posts the form again"
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', nav)
    return action.group(1), fields


def posted(fields: list[tuple[str, str]], lang: str) -> dict[str, list[str]]:
    form: dict[str, list[str]] = {"lang": [lang]}
    for name, value in fields:
        form.setdefault(name, []).append(value)
    return form


def urls(page: str) -> list[str]:
    return re.findall(r'(?:href|action|src)="([^"]*)"', page)


def test_every_language_is_offered_in_its_own_name(site: httpx.Client) -> None:
    page = site.get("/").text
    nav = page.split('<details class="language-switch">', 1)[1].split("</details>", 1)[0]
    for code, language in LANGUAGES.items():
        if code != "en":
            assert f'href="/?lang={code}" lang="{code}"' in nav
            assert f">{language.name}</a>" in nav
    assert LANGUAGES["es"].name == "Español"


def test_a_result_survives_the_switch_and_no_identifier_enters_a_url(site: httpx.Client) -> None:
    token = site.cookies.get("sv_csrf") or ""
    results = site.post("/", data={**PUBLIC.by_a_number(), "csrf_token": token})
    assert "In custody" in results.text
    action, fields = switch_form(results.text)
    assert action == "/"
    assert ("a_number", PUBLIC.a_number) in fields
    for url in urls(results.text):
        assert PUBLIC.a_number not in url and PUBLIC.family not in url
    spanish = site.post(action, data=posted(fields, "es"))
    assert spanish.status_code == 200
    assert '<html lang="es" dir="ltr">' in spanish.text and "Bajo custodia" in spanish.text
    assert PUBLIC.family in spanish.text


def test_a_registration_under_way_survives_the_switch_at_every_step(
    delivery: Delivery, site: httpx.Client
) -> None:
    token = site.cookies.get("sv_csrf") or ""
    results = site.post("/", data={**PUBLIC.by_a_number(), "csrf_token": token}).text
    reference = hidden(results, "person")
    form = site.post("/register", data={"csrf_token": token, "person": reference})
    action, fields = switch_form(form.text)
    assert action == "/register" and ("person", reference) in fields
    spanish_form = site.post(action, data=posted(fields, "es"))
    assert (
        spanish_form.status_code == 200 and "Recibir avisos sobre esta persona" in spanish_form.text
    )
    # The messages' language follows the page's.
    assert 'value="es" checked' in spanish_form.text

    refused = site.post(
        "/register/start",
        data={
            "csrf_token": token,
            "person": reference,
            "channel": "email",
            "address": "ana@",
            "events": ["released"],
        },
    )
    assert refused.status_code == 422
    action, fields = switch_form(refused.text)
    assert ("address", "ana@") in fields and ("events", "released") in fields
    kept = site.post(action, data=posted(fields, "es"))
    assert kept.status_code == 200 and 'value="ana@"' in kept.text

    started = site.post(
        "/register/start",
        data={
            "csrf_token": token,
            "person": reference,
            "channel": "email",
            "address": "ana@example.org",
            "language": "en",
            "events": ["released"],
        },
    )
    assert started.status_code == 200
    action, fields = switch_form(started.text)
    spanish_code = site.post(action, data=posted(fields, "es"))
    assert spanish_code.status_code == 200 and '<html lang="es"' in spanish_code.text
    # Switching confirmed nothing: the code still works once, afterwards.
    delivery.dispatch()
    code = re.search(r"code is (\d{6})", delivery.sink.received[-1].text).group(1)  # type: ignore[union-attr]
    done = site.post(
        "/register/confirm",
        data={
            "csrf_token": token,
            "code": code,
            "registration": hidden(spanish_code.text, "registration"),
            "lang": "es",
        },
    )
    assert done.status_code == 200 and "/m/" in done.text
    manage = re.search(r'href="([^"]*/m/[^"]+)"', done.text)
    assert manage
    action, fields = switch_form(done.text)
    english = site.post(action, data=posted(fields, "en"))
    assert english.status_code == 200 and manage.group(1) in english.text


def test_a_page_reached_by_a_form_with_nothing_to_keep_switches_to_the_search_page(
    site: httpx.Client,
) -> None:
    page = site.post("/register/start", data={"csrf_token": "stale"})
    assert page.status_code == 400
    nav = page.text.split('<details class="language-switch">', 1)[1].split("</details>", 1)[0]
    assert 'href="/?lang=es"' in nav and "/register" not in nav

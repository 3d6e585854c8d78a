"""The registration pages, as a person uses them without JavaScript: from a search result to
a confirmed registration, then the manage page and ending it. Every step is a POST."""

import re
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from safevine.config import Settings
from safevine.store.public.registrations import pin_matches
from safevine.store.public.tables import registrations
from safevine.web.public_app import create_public_app
from safevine.web.server import background_server
from tests.canaries import PROTECTED, PUBLIC
from tests.notify.conftest import Delivery


@pytest.fixture
def site(delivery: Delivery) -> Iterator[httpx.Client]:
    app = create_public_app(delivery.settings)
    with background_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        client.get("/")
        yield client
    app.state.safevine.public_engine.dispose()


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, name
    return found.group(1)


def test_from_a_result_to_a_registration_and_back_out(
    delivery: Delivery, site: httpx.Client
) -> None:
    token = site.cookies.get("sv_csrf") or ""
    results = site.post("/", data={**PUBLIC.by_a_number(), "csrf_token": token}).text
    reference = hidden(results, "person")
    form = site.post("/register", data={"csrf_token": token, "person": reference, "lang": "es"})
    assert form.status_code == 200 and "Recibir avisos sobre esta persona" in form.text
    bad = site.post(
        "/register/start",
        data={
            "csrf_token": token,
            "person": reference,
            "channel": "sms",
            "address": "12",
            "language": "es",
        },
    )
    assert bad.status_code == 422 and 'href="#address"' in bad.text
    started = site.post(
        "/register/start",
        data={
            "csrf_token": token,
            "person": reference,
            "channel": "email",
            "address": "ana@example.org",
            "language": "en",
            "wording": "discreet",
            "events": ["released", "removed"],
            "lang": "en",
        },
    )
    assert started.status_code == 200 and "Enter your code" in started.text
    delivery.dispatch()
    code = re.search(r"code is (\d{6})", delivery.sink.received[-1].text).group(1)  # type: ignore[union-attr]
    wrong = site.post(
        "/register/confirm",
        data={
            "csrf_token": token,
            "code": "999999x",
            "registration": hidden(started.text, "registration"),
        },
    )
    assert wrong.status_code == 422
    done = site.post(
        "/register/confirm",
        data={
            "csrf_token": token,
            "code": code,
            "registration": hidden(started.text, "registration"),
        },
    )
    assert done.status_code == 200 and "You are registered" in done.text
    manage_url = re.search(r'href="(http://127\.0\.0\.1:8000/m/[^"]+)"', done.text).group(1)  # type: ignore[union-attr]
    path = manage_url.removeprefix("http://127.0.0.1:8000")
    manage = site.get(path)
    assert (
        manage.status_code == 200
        and "Active" in manage.text
        and "Marisol Quintanilla" in manage.text
    )
    assert manage.headers["cache-control"] == "no-store"
    ended = site.post(f"{path}/end", data={"csrf_token": token})
    assert ended.status_code == 200 and "Your registration has ended" in ended.text
    assert "Ended" in site.get(path).text


def test_the_manage_page_of_a_protected_person_shows_only_the_generic_status(
    delivery: Delivery, site: httpx.Client
) -> None:
    confirmed = delivery.register(delivery.ref(PROTECTED.a_number), "ana@example.org")
    page = site.get(f"/m/{confirmed.manage_token}").text
    assert "This record is no longer available." in page
    for identifier in PROTECTED.identifiers:
        assert identifier not in page
    # It says in a sentence that it has ended, and offers a way back to search.
    assert "This registration has ended: no more messages will be sent." in page
    assert 'href="/?lang=en">Back to search</a>' in page
    assert "Stop these messages" not in page


def test_forms_without_the_csrf_token_change_nothing(
    delivery: Delivery, site: httpx.Client
) -> None:
    answer = site.post(
        "/register/start",
        data={
            "person": delivery.ref(PUBLIC.a_number),
            "channel": "email",
            "address": "a@example.org",
            "language": "en",
        },
    )
    assert answer.status_code == 400
    delivery.dispatch()
    assert delivery.sink.received == []


def test_a_webhook_on_a_private_address_is_an_address_problem_on_the_page(
    delivery: Delivery,
) -> None:
    settings = Settings(**{**delivery.settings.__dict__, "webhook_allow_private": False})
    app = create_public_app(settings)
    with background_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        client.get("/")
        token = client.cookies.get("sv_csrf") or ""
        form = {
            "csrf_token": token,
            "person": delivery.ref(PUBLIC.a_number),
            "channel": "webhook",
            "language": "en",
        }
        # localhost, resolved by the system, leads to loopback.
        refused = client.post("/register/start", data={**form, "address": "https://localhost/h"})
        assert refused.status_code == 422 and 'href="#address"' in refused.text
        assert "Enter the https address of your case system" in refused.text
    app.state.safevine.public_engine.dispose()
    delivery.dispatch()
    assert delivery.provider.requests == [] and delivery.sink.received == []


@pytest.mark.parametrize("language", ["en", "so", "ar"])
def test_the_form_offers_every_language_and_says_which_have_no_calls(
    site: httpx.Client, language: str
) -> None:
    token = site.cookies.get("sv_csrf") or ""
    results = site.post("/", data={**PUBLIC.by_a_number(), "csrf_token": token}).text
    form = site.post(
        "/register",
        data={"csrf_token": token, "person": hidden(results, "person"), "lang": language},
    ).text
    offered = re.findall(r'name="language" value="([a-z]+)"', form)
    assert set(offered) >= {"en", "es", "fr", "zh", "vi", "pt", "ru", "ar", "so"}
    # Preselected to the page's language, and to email (the README's "keep Email").
    assert re.search(rf'name="language" value="{language}" checked', form)
    assert re.search(r'name="channel" value="email" checked', form)
    # Before a call in Somali is chosen, the form says how such a call goes.
    note = re.search(r'<p class="hint" id="no-voice">([^<]*)</p>', form)
    assert note is not None and "Soomaali" in note.group(1)


def test_a_phone_call_registration_from_the_page_keeps_its_pin_and_never_shows_it(
    delivery: Delivery, site: httpx.Client
) -> None:
    """Without JavaScript, as from the search result: the PIN chosen on the form is the one
    calls ask for; a wrong one is refused by name, and neither is ever sent back."""
    token = site.cookies.get("sv_csrf") or ""
    results = site.post("/", data={**PUBLIC.by_a_number(), "csrf_token": token}).text
    form = {
        "csrf_token": token,
        "person": hidden(results, "person"),
        "channel": "voice",
        "address": "+1 555 010 4242",
        "language": "en",
        "lang": "en",
    }
    short = site.post("/register/start", data={**form, "pin": "135"})
    assert short.status_code == 422 and 'href="#pin"' in short.text
    assert "Choose a PIN of exactly 4 digits" in short.text and 'value="135"' not in short.text
    started = site.post("/register/start", data={**form, "pin": "2468"})
    assert started.status_code == 200 and "Enter your code" in started.text
    assert 'value="2468"' not in started.text and ">2468<" not in started.text
    with delivery.engine.connect() as connection:
        pin_hash = connection.execute(
            select(registrations.c.pin_hash).where(registrations.c.channel == "voice")
        ).scalar_one()
    assert pin_matches(pin_hash, "2468") and not pin_matches(pin_hash, "1357")

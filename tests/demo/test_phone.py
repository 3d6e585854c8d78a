"""The demo's phone: a Twilio-compatible provider that keeps what it is sent, behind the
account's credentials as the real one is."""

import httpx

from safevine.demo.phone import Phone, phone_router, spoken, with_phone
from safevine.notify.voice_script import call
from safevine.web.public_app import create_public_app
from safevine.web.server import background_server
from tests.notify.conftest import Delivery, delivery  # noqa: F401 - the fixture

NUMBER = "+15550107777"


def test_the_demo_provider_asks_for_its_account(delivery: Delivery) -> None:  # noqa: F811
    settings = with_phone(delivery.settings, "http://127.0.0.1:1")
    app = create_public_app(settings)
    phone = Phone()
    app.include_router(phone_router(phone, settings))
    url = "/demo/provider/2010-04-01/Accounts/ACdemo/Messages.json"
    form = {"To": NUMBER, "Body": "hello"}
    with background_server(app) as base, httpx.Client(base_url=base) as client:
        assert client.post(url, data=form).status_code == 401
        assert client.post(url, data=form, auth=("ACdemo", "wrong")).status_code == 401
        sent = client.post(url, data=form, auth=("ACdemo", settings.sms_auth_token))
    app.state.safevine.public_engine.dispose()
    assert sent.status_code == 201 and sent.json()["sid"].startswith("SM")
    assert [(r.kind, r.to, r.text) for r in phone.rings()] == [("text", NUMBER, "hello")]


def test_a_call_shows_the_words_it_says() -> None:
    assert spoken(call("Your code is 1, 2, 3. <b>&", "en", None)) == "Your code is 1, 2, 3. <b>&"
    assert spoken("<Response><Say>a</Say><Pause/><Say>b</Say></Response>") == "a\nb"
    assert spoken("not xml <") == "" and spoken("<a>" * 20_000) == ""


def test_a_call_asking_for_the_pin_shows_what_it_says_until_it_waits_for_keys() -> None:
    """Not the goodbye it says only when no key comes: shown at once, it read as though
    the call had already failed."""
    words = spoken(call("Ramón Ortega was released.", "en", "http://127.0.0.1:1/voice/gather"))
    assert words.splitlines()[0] == "Ramón Ortega was released."
    assert "enter your 4-digit PIN" in words
    assert "We did not get your PIN" not in words

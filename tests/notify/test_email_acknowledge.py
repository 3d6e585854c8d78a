"""An email's "I got this" link: following it changes nothing (mail scanners follow
links); the button on its page acknowledges the message. The page is the same for any
key, known or not."""

import re
from dataclasses import replace

import httpx
from sqlalchemy import select

from safevine.store.public.tables import notifications
from safevine.web.public_app import create_public_app
from safevine.web.server import background_server, free_port
from tests.canaries import PUBLIC
from tests.notify.conftest import Delivery
from tests.notify.test_delivery import release


def _event_state(delivery: Delivery) -> str:
    with delivery.engine.connect() as c:
        return str(
            c.execute(
                select(notifications.c.state).where(notifications.c.purpose == "event")
            ).scalar_one()
        )


def _press(client: httpx.Client, link: str) -> httpx.Response:
    page = client.get(link)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    return client.post(link, data={"csrf_token": token.group(1), "lang": "en"})


def test_the_link_asks_and_the_button_acknowledges(delivery: Delivery) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    delivery.settings = replace(delivery.settings, public_base_url=base)
    app = create_public_app(delivery.settings)
    try:
        with background_server(app, port=port), httpx.Client() as client:
            delivery.register(delivery.ref(PUBLIC.a_number), "ana@example.org")
            delivery.dispatch()
            # The code's email has no such link: there is nothing to acknowledge.
            assert "Got this message?" not in delivery.sink.received[-1].text
            release(delivery.engine)
            delivery.dispatch()
            text = delivery.sink.received[-1].text
            [link] = re.findall(rf"Got this message\? Tell us here: ({base}/got-it/\S+)", text)
            followed = client.get(link)
            assert followed.status_code == 200 and "Yes, I got it" in followed.text
            assert _event_state(delivery) == "sent"  # following it changed nothing
            # Without the page's token the button does nothing.
            forged = httpx.post(link, data={"lang": "en"})
            assert forged.status_code == 400 and _event_state(delivery) == "sent"
            done = _press(client, link)
            assert done.status_code == 200 and "Thank you" in done.text
            assert _event_state(delivery) == "acknowledged"
            # Any other key, or the same one again, is answered alike.
            stranger = _press(client, f"{base}/got-it/0123456789abcdef0123456789abcdef")
            nonsense = _press(client, f"{base}/got-it/%3Cscript%3E")
            again = _press(client, link)

            def strip(page: httpx.Response) -> str:
                """The page less its token and its own address (the language switch)."""
                return re.sub(r'value="[^"]+"|/got-it/[^"?]*', "", page.text)

            assert strip(stranger) == strip(done) == strip(again) == strip(nonsense)
    finally:
        app.state.safevine.public_engine.dispose()

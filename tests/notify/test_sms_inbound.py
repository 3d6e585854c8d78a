"""Inbound SMS is heard only when signed with the provider's token, and never without one."""

from dataclasses import replace

import httpx
from sqlalchemy import select

from safevine.domain.contact_address import Channel
from safevine.store.public.tables import registrations
from safevine.web.public.sms_inbound import twilio_signature
from safevine.web.public_app import create_public_app
from safevine.web.server import background_server
from tests.canaries import PUBLIC
from tests.notify.conftest import Delivery


def _states(delivery: Delivery) -> list[str]:
    with delivery.engine.connect() as connection:
        return list(connection.execute(select(registrations.c.state)).scalars())


def test_without_a_token_an_unsigned_stop_is_refused_and_changes_nothing(
    delivery: Delivery,
) -> None:
    delivery.register(delivery.ref(PUBLIC.a_number), "+1 555 010 0100", Channel.SMS)
    app = create_public_app(replace(delivery.settings, sms_auth_token=""))
    form = {"From": "+15550100100", "Body": "STOP", "MessageSid": "SM1"}
    with background_server(app) as base, httpx.Client(base_url=base) as client:
        unsigned = client.post("/api/v1/sms/inbound", data=form)
        # A signature made with an empty key proves nothing either.
        url = f"{delivery.settings.public_base_url}/api/v1/sms/inbound"
        signed_empty = client.post(
            "/api/v1/sms/inbound",
            data=form,
            headers={"X-Twilio-Signature": twilio_signature("", url, form)},
        )
    app.state.safevine.public_engine.dispose()
    assert (unsigned.status_code, signed_empty.status_code) == (403, 403)
    assert _states(delivery) == ["active"]

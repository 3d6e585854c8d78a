"""The demo inbox in a real browser: texts and calls beside emails, readable on a phone,
and a Reply STOP button that ends the registration by text as a real reply would."""

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import Browser, expect
from sqlalchemy import select

from safevine.demo.inbox import inbox_router
from safevine.demo.mailbox import Mailbox
from safevine.demo.phone import Phone, Ring, phone_router, with_phone
from safevine.domain.contact_address import Channel
from safevine.store.public.tables import notifications, registrations
from safevine.web.public_app import create_public_app
from safevine.web.server import background_server, free_port
from tests.canaries import PUBLIC
from tests.notify.conftest import PIN, Delivery, delivery  # noqa: F401 - the fixture
from tests.notify.test_delivery import release

NUMBER = "+15550107777"


def test_texts_and_calls_on_the_inbox_and_reply_stop(
    browser: Browser,
    delivery: Delivery,  # noqa: F811
    screenshots: Path,
) -> None:
    delivery.register(delivery.ref(PUBLIC.a_number), NUMBER, Channel.SMS)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = with_phone(replace(delivery.settings, demo=True, public_base_url=base), base)
    phone = Phone()
    now = datetime.now(UTC)
    phone.receive(Ring("call", now, "+15550108888", "This is an automated message. Released."))
    phone.receive(
        Ring("text", now, NUMBER, f"Update: released. See {base}/browse-safely. Reply STOP.")
    )
    app = create_public_app(settings)
    app.include_router(inbox_router(Mailbox(), phone))
    app.include_router(phone_router(phone, settings))
    with background_server(app, port=port):
        for width in (375, 1280):
            context = browser.new_context(viewport={"width": width, "height": 900})
            page = context.new_page()
            page.goto(f"{base}/demo/inbox")
            assert page.get_by_role("heading", name="Text message").count() == 1
            assert page.get_by_role("heading", name="Phone call").count() == 1
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            page.screenshot(path=str(screenshots / f"demo-inbox-{width}.png"), full_page=True)
            context.close()
        # A link in a message can be followed, as on a phone.
        page = browser.new_page()
        page.goto(f"{base}/demo/inbox")
        page.locator(".letter a", has_text="/browse-safely").click()
        page.wait_for_url(f"{base}/browse-safely")
        page.close()
        page = browser.new_page()
        page.goto(f"{base}/demo/inbox")
        page.get_by_role("button", name=f"Reply STOP from {NUMBER}").click()
        page.wait_for_url(f"{base}/demo/inbox?lang=en")
        page.close()
    app.state.safevine.public_engine.dispose()
    with delivery.engine.connect() as connection:
        row = connection.execute(select(registrations.c.state, registrations.c.end_reason)).one()
    assert tuple(row) == ("ended", "sms_stop")


def test_a_newcomer_answers_a_call_on_the_inbox_and_enters_the_pin(
    browser: Browser,
    delivery: Delivery,  # noqa: F811
    screenshots: Path,
) -> None:
    """Registered for calls with a PIN: the demo's phone rings on the inbox page, a wrong
    PIN is asked again, the right one confirms the call, and the notification says so."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = with_phone(replace(delivery.settings, demo=True, public_base_url=base), base)
    delivery.settings = settings
    phone = Phone()
    app = create_public_app(settings)
    app.include_router(inbox_router(Mailbox(), phone))
    app.include_router(phone_router(phone, settings))
    with background_server(app, port=port):
        delivery.register(delivery.ref(PUBLIC.a_number), "+1 555 010 8888", Channel.VOICE)
        delivery.dispatch()  # the code's call: asks for nothing
        release(delivery.engine)
        delivery.dispatch()
        [ringing] = [r for r in phone.rings() if r.ringing]
        page = browser.new_page(viewport={"width": 375, "height": 900})
        page.goto(f"{base}/demo/inbox")
        keys = page.get_by_label("Answer the call and press keys: your PIN, or 9 to hear it again")
        keys.fill("1111")
        page.get_by_role("button", name="Press").click()
        # The answer replaces the page in place (one history entry): wait for it.
        expect(page.locator(f"#call-{ringing.sid}").locator("..")).to_contain_text(
            "That PIN is not right"
        )
        page.get_by_label("Answer the call and press keys: your PIN, or 9 to hear it again").fill(
            PIN
        )
        page.get_by_role("button", name="Press").click()
        expect(page.get_by_text("We have your confirmation")).to_have_count(1)
        expect(page.get_by_text("The call has ended.")).to_have_count(1)
        for width in (375, 1280):
            page.set_viewport_size({"width": width, "height": 900})
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            page.screenshot(path=str(screenshots / f"demo-call-{width}.png"), full_page=True)
        page.close()
    app.state.safevine.public_engine.dispose()
    with delivery.engine.connect() as connection:
        states = dict(
            (purpose, state)
            for purpose, state in connection.execute(
                select(notifications.c.purpose, notifications.c.state)
            )
        )
    assert states == {"confirmation": "delivered", "event": "acknowledged"}

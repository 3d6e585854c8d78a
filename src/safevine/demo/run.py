"""`make run`: the public site, the staff service, a dispatcher, a local mail server and a
phone (texts and calls) whose messages one inbox page shows, and a custody-event
simulator, in one process on 127.0.0.1. (In production each service is a process of its
own: docs/deploy.md.)"""

import asyncio
import contextlib
from dataclasses import replace

import uvicorn

from safevine.config import Settings
from safevine.demo.authenticator import authenticator_router
from safevine.demo.inbox import inbox_router
from safevine.demo.mailbox import start_mail_server
from safevine.demo.phone import Phone, phone_router, with_phone
from safevine.demo.simulator import simulate
from safevine.demo.staff_accounts import DemoStaff
from safevine.notify.dispatcher import Dispatcher
from safevine.notify.operations import OperationsSender
from safevine.store.engine import make_engine
from safevine.store.public.connection import make_public_engine
from safevine.web.public_app import create_public_app
from safevine.web.server import UVICORN_OPTIONS
from safevine.web.staff_app import DEFAULT_PORT as STAFF_PORT
from safevine.web.staff_app import create_staff_app

MAIL_PORT = 8025


def _server(app: object, port: int) -> uvicorn.Server:
    return uvicorn.Server(
        uvicorn.Config(
            app,  # type: ignore[arg-type]
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            **UVICORN_OPTIONS,
        )
    )


async def run_demo(
    settings: Settings,
    port: int,
    every_seconds: float = 20.0,
    mail_port: int = MAIL_PORT,
    staff_port: int = STAFF_PORT,
    staff_accounts: list[DemoStaff] | None = None,
    silent_facility: int | None = None,
) -> None:
    base_url = f"http://127.0.0.1:{port}"
    settings = replace(
        settings,
        demo=True,
        smtp_host="127.0.0.1",
        smtp_port=mail_port,
        smtp_security="none",
        public_base_url=base_url,
        staff_base_url=f"http://127.0.0.1:{staff_port}",
        # The audit chain's daily head lands in the demo inbox too.
        operations_email="operations@safevine.demo",
        webhook_allow_private=True,
        retry_base_seconds=5.0,
        # The silent facility goes late after three minutes and down after five.
        feed_health_every_seconds=30,
    )
    settings = with_phone(settings, base_url)
    mailbox, mail_server = start_mail_server(mail_port)
    phone = Phone()
    app = create_public_app(settings)
    app.include_router(inbox_router(mailbox, phone))
    app.include_router(phone_router(phone, settings))
    staff = create_staff_app(settings)
    staff.include_router(authenticator_router(staff_accounts or []))
    records = make_engine(settings.database_url)
    public = make_public_engine(settings.database_url, settings.public_database_url)
    dispatcher = Dispatcher(settings, public, name="demo-worker")
    stop = asyncio.Event()
    servers = [_server(app, port), _server(staff, staff_port)]
    background = [
        asyncio.create_task(dispatcher.run(stop)),
        asyncio.create_task(OperationsSender(settings, public, dispatcher.transports).run(stop)),
        asyncio.create_task(simulate(records, stop, every_seconds, silent_facility)),
    ]
    serving = [asyncio.create_task(s.serve()) for s in servers]
    try:
        # Either service stopping (Ctrl-C stops both) ends the demo.
        await asyncio.wait(serving, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*serving, return_exceptions=True)
        stop.set()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await dispatcher.close()
        mail_server.stop()
        records.dispose()
        public.dispose()
        app.state.safevine.public_engine.dispose()
        staff.state.staff.records_engine.dispose()

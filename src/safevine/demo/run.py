"""`make run`: the web app, a dispatcher, a local mail server and a phone (texts and calls)
whose messages one inbox page shows, and a custody-event simulator, in one process on
127.0.0.1."""

import asyncio
import contextlib
from dataclasses import replace

import uvicorn

from safevine.config import Settings
from safevine.demo.inbox import inbox_router
from safevine.demo.mailbox import start_mail_server
from safevine.demo.phone import Phone, phone_router, with_phone
from safevine.demo.simulator import simulate
from safevine.notify.dispatcher import Dispatcher
from safevine.store.engine import make_engine
from safevine.store.public.connection import make_public_engine
from safevine.web.app import create_app

MAIL_PORT = 8025


async def run_demo(
    settings: Settings, port: int, every_seconds: float = 20.0, mail_port: int = MAIL_PORT
) -> None:
    base_url = f"http://127.0.0.1:{port}"
    settings = replace(
        settings,
        demo=True,
        smtp_host="127.0.0.1",
        smtp_port=mail_port,
        smtp_security="none",
        public_base_url=base_url,
        webhook_allow_private=True,
        retry_base_seconds=5.0,
    )
    settings = with_phone(settings, base_url)
    mailbox, mail_server = start_mail_server(mail_port)
    phone = Phone()
    app = create_app(settings)
    app.include_router(inbox_router(mailbox, phone))
    app.include_router(phone_router(phone, settings))
    records = make_engine(settings.database_url)
    public = make_public_engine(settings.database_url, settings.public_database_url)
    dispatcher = Dispatcher(settings, public, name="demo-worker")
    stop = asyncio.Event()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            server_header=False,
            proxy_headers=False,
        )
    )
    background = [
        asyncio.create_task(dispatcher.run(stop)),
        asyncio.create_task(simulate(records, stop, every_seconds)),
    ]
    try:
        await server.serve()
    finally:
        stop.set()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await dispatcher.close()
        mail_server.stop()
        records.dispose()
        public.dispose()
        app.state.safevine.public_engine.dispose()

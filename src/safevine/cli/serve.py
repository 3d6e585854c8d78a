"""The long-running processes: `serve` (public), `staff serve`, `worker`."""

from datetime import UTC, datetime
from typing import Annotated

import typer
from sqlalchemy.exc import DBAPIError

from safevine.cli.common import (
    MetricsPort,
    UserError,
    app,
    err,
    open_engine,
    out,
    run,
    serving_settings,
)
from safevine.config import Settings
from safevine.logs import configure as configure_logging


def _public_path_ready(settings: Settings) -> None:
    """The public path's database is there and migrated, checked through the public path
    itself: the public service never opens a connection on the full records."""
    from safevine.store.public.connection import make_public_engine

    open_engine(settings).dispose()  # a missing SQLite file is named, not created
    engine = make_public_engine(settings.database_url, settings.public_database_url)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1 FROM public_persons LIMIT 1").all()
    except DBAPIError as error:
        raise UserError(
            "the public path cannot read the public views; run `safevine db upgrade` "
            f"(the database said: {str(error.orig).splitlines()[0][:200]})"
        ) from None
    finally:
        engine.dispose()


@app.command("worker")
def worker_cmd(
    once: Annotated[bool, typer.Option("--once", help="Work what is due now, then stop.")] = False,
    metrics_port: MetricsPort = None,
) -> None:
    """Send due notifications: claim, check, render, send, record, retry."""
    import asyncio
    import signal

    from safevine.notify.dispatcher import Dispatcher
    from safevine.notify.operations import OperationsSender
    from safevine.store.public.connection import make_public_engine

    def action() -> None:
        settings = serving_settings()
        _public_path_ready(settings)
        engine = make_public_engine(settings.database_url, settings.public_database_url)

        configure_logging(settings.log_level)

        async def work() -> None:
            dispatcher = Dispatcher(settings, engine)
            operations = OperationsSender(settings, engine, dispatcher.transports)
            if metrics_port:
                from prometheus_client import start_http_server

                start_http_server(metrics_port, addr="127.0.0.1", registry=dispatcher.registry)
            try:
                if once:
                    while (await dispatcher.run_once()).claimed:
                        pass
                    await operations.tick(datetime.now(UTC))
                    return
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, stop.set)
                out.print(f"worker {dispatcher.name} is sending (Ctrl-C stops it)")
                await asyncio.gather(dispatcher.run(stop), operations.run(stop))
            finally:
                await dispatcher.close()
                engine.dispose()

        asyncio.run(work())

    run(action)


@app.command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    metrics_port: MetricsPort = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1, max=256, help="Processes serving on the one port (share rate limits via Redis)."
        ),
    ] = 1,
) -> None:
    """Serve the public site and API (the staff service is `safevine staff serve`)."""
    from safevine.web.public_app import create_public_app
    from safevine.web.server import serve, serve_processes

    def action() -> None:
        settings = serving_settings()
        _public_path_ready(settings)
        if workers > 1:
            if not settings.secret_key_configured:
                raise UserError(
                    "--workers needs SAFEVINE_SECRET_KEY: every process must sign and "
                    "encrypt with the same key"
                )
            if metrics_port:
                raise UserError(
                    "--metrics-port serves one process's metrics: run one process per port "
                    "to scrape each, or leave --workers at 1"
                )
            if settings.rate_limits_enabled and not settings.redis_url:
                err.print(
                    f"warning: without SAFEVINE_REDIS_URL each of the {workers} processes "
                    "counts rate limits on its own (docs/rate-limits.md)"
                )
            out.print(
                f"safevine is serving on http://{host}:{port}/ with {workers} processes "
                "(Ctrl-C stops them)"
            )
            configure_logging(settings.log_level)
            serve_processes("safevine.web.public_app:app_from_env", host, port, workers)
            return
        application = create_public_app(settings)
        if metrics_port:
            from prometheus_client import start_http_server

            start_http_server(
                metrics_port, addr="127.0.0.1", registry=application.state.safevine.metrics.registry
            )
        out.print(f"safevine is serving on http://{host}:{port}/ (Ctrl-C stops it)")
        configure_logging(settings.log_level)
        serve(application, host, port)

    run(action)


@app.command("bounces")
def bounces_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (SMTP).")] = 2525,
    seconds: Annotated[
        float | None, typer.Option(help="Stop after this long (default: at Ctrl-C).")
    ] = None,
) -> None:
    """Receive bounces for SAFEVINE_BOUNCE_ADDRESS: a hard one fails its email for good
    and marks the address as bouncing, a soft one sends it again. Route mail for
    bounces+*@ that domain here (for example from your mail server's transport map)."""
    import signal
    import threading

    from safevine.notify.bounces import start_bounce_server
    from safevine.store.public.connection import make_public_engine

    def action() -> None:
        settings = serving_settings()
        if not settings.bounce_address:
            raise UserError("set SAFEVINE_BOUNCE_ADDRESS (for example bounces@agency.example)")
        _public_path_ready(settings)
        engine = make_public_engine(settings.database_url, settings.public_database_url)
        configure_logging(settings.log_level)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        _, controller = start_bounce_server(settings, engine, host, port)
        out.print(f"bounces for {settings.bounce_address} on smtp://{host}:{port} (Ctrl-C stops)")
        try:
            stop.wait(seconds)
        finally:
            controller.stop()
            engine.dispose()

    run(action)

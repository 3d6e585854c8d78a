"""`safevine demo`: the demo database, and with `--serve` everything `make run` runs."""

from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import func, select

from safevine.cli.common import app, load_settings, open_engine, out, run
from safevine.store import migrate
from safevine.store.decoy import real_events, real_persons
from safevine.store.public.lookup import public_count
from safevine.store.schema import custody_events, facilities, persons


@app.command("demo")
def demo_cmd(
    people: Annotated[int, typer.Option(help="Synthetic people to create.")] = 400,
    seed: Annotated[int, typer.Option(help="Seed for the synthetic data.")] = 2017,
    serve: Annotated[
        bool,
        typer.Option(
            help="Then serve it all on 127.0.0.1: the site, the staff service, a "
            "worker, a local inbox for mail, texts and calls, and an event simulator."
        ),
    ] = False,
    port: Annotated[int, typer.Option(help="Port for --serve.")] = 8000,
    every: Annotated[float, typer.Option(help="Seconds between simulated events.")] = 20.0,
    mail_port: Annotated[int, typer.Option(help="Port of the demo's mail server.")] = 8025,
    staff_port: Annotated[int, typer.Option(help="Port of the staff service.")] = 8001,
) -> None:
    """Set up a demo database: the real ICE facility list and a synthetic population."""
    from safevine.contact_vault import ContactVault
    from safevine.demo.held_batch import hold_one
    from safevine.demo.population import examples, load_demo
    from safevine.demo.silent_facility import silence_one
    from safevine.demo.staff_accounts import demo_staff

    def action() -> None:
        settings = load_settings()
        engine = open_engine(settings, must_exist=False)
        migrate.upgrade(engine, settings.retention_days)
        loaded = load_demo(engine, people, seed)
        hold_one(engine)
        silent = silence_one(engine)
        staff = demo_staff(engine, ContactVault(settings.secret_key, settings.old_secret_keys))
        with engine.connect() as connection:
            counts = {
                "facilities": connection.execute(
                    select(func.count()).select_from(facilities)
                ).scalar(),
                "persons": connection.execute(
                    select(func.count()).select_from(persons).where(real_persons())
                ).scalar(),
                "custody events": connection.execute(
                    select(func.count()).select_from(custody_events).where(real_events())
                ).scalar(),
                "public (searchable)": public_count(connection),
            }
            by_protection: dict[str, int] = dict(
                connection.execute(
                    select(persons.c.protection, func.count())
                    .where(real_persons())
                    .group_by(persons.c.protection)
                ).all()
            )
        table = Table("what", "how many", title="safevine demo database")
        for key, value in counts.items():
            table.add_row(key, str(value))
        for key in ("cleared", "unscreened", "protected"):
            table.add_row(f"persons {key}", str(by_protection.get(key, 0)))
        out.print(table)
        out.print(
            f"{len(loaded.population)} synthetic people, {loaded.events} events fed through ingest"
        )
        samples = Table(
            "A-number", "name", "country of birth", title="try searching for these (public) people"
        )
        for a_number, name, country in examples(engine):
            samples.add_row(a_number, name, country)
        engine.dispose()
        out.print(samples)
        if silent is not None:
            out.print(
                f"\n{silent.name} ({silent.code}) stops sending: about five minutes after the "
                "demo starts, results there say their information may be out of date, and "
                f"http://127.0.0.1:{port}/delays lists it. People held there:",
                highlight=False,
            )
            for a_number, name, country in silent.people:
                out.print(f"  {a_number}  {name}  {country}", highlight=False)
        # Plain lines, never a table: a narrow terminal would cut a password short.
        out.print(
            f"\nstaff console http://127.0.0.1:{staff_port}/ accounts (demo only, made fresh now):"
        )
        for member in staff:
            out.print(
                f"  {member.name} ({', '.join(member.roles)}): password {member.password}  "
                f"second-factor key {member.key}",
                highlight=False,
                soft_wrap=True,
            )
        out.print(
            "Sign in with an authenticator app (scan the code shown at the first sign-in, or "
            "type the key), or read the codes at "
            f"http://127.0.0.1:{staff_port}/demo/authenticator while the demo runs.",
            highlight=False,
        )
        if serve:
            import asyncio

            from safevine.demo.run import run_demo

            out.print(
                f"\nsafevine demo: http://127.0.0.1:{port}/   "
                f"inbox (mail, texts, calls): http://127.0.0.1:{port}/demo/inbox   "
                f"(mail server 127.0.0.1:{mail_port}; Ctrl-C stops everything)\n"
                f"staff service: http://127.0.0.1:{staff_port}/ (for staff only; "
                "in production on an internal network)"
            )
            asyncio.run(
                run_demo(
                    settings,
                    port,
                    every,
                    mail_port,
                    staff_port,
                    staff,
                    silent.id if silent else None,
                )
            )

    run(action)

"""The `safevine` command. User mistakes end in one clear line and a non-zero exit code."""

import getpass
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from safevine.actions import holds as hold_actions
from safevine.actions import ingest, tokens
from safevine.actions import persons as person_actions
from safevine.actions.actor import Actor
from safevine.config import ConfigError, Settings
from safevine.domain import value_ranges
from safevine.domain.a_number import format_a_number
from safevine.domain.errors import (
    ConflictError,
    FieldError,
    InvalidError,
    NotAllowedError,
    NotFoundError,
    RefusedError,
)
from safevine.domain.value_ranges import (
    MAX_ID,
    NAME_LENGTH,
    REASON_LENGTH,
    check_free_text,
    check_text,
)
from safevine.ingest.fields import timestamp
from safevine.ingest.source import FeedLines, UnreadableSourceError, file_lines
from safevine.ingest.summary import IngestSummary
from safevine.logs import configure as configure_logging
from safevine.store import migrate
from safevine.store.decoy import real_events, real_persons
from safevine.store.engine import make_engine
from safevine.store.public.lookup import public_count
from safevine.store.records.holds import Hold
from safevine.store.records.person_view import StaffPersonView, view_json
from safevine.store.schema import custody_events, facilities, persons

app = typer.Typer(
    help="safevine: custody records and notifications, confidential by construction.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
ingest_app = typer.Typer(
    help="Load feeds: facilities, custody events, rosters, protection lists.", no_args_is_help=True
)
person_app = typer.Typer(help="Staff view of persons.", no_args_is_help=True)
audit_app = typer.Typer(help="Audits: prove nothing non-public leaks.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.add_typer(ingest_app, name="ingest")
app.add_typer(person_app, name="person")

out = Console()
err = Console(stderr=True)


def _actor() -> str:
    """Who is at the keyboard, for the audit trail: the CLI's login name."""
    return f"cli:{getpass.getuser()}"


A_NUMBER = "A-NUMBER"  # how an A-number argument is named in an error


def _who(actor: str | None) -> Actor:
    return Actor(actor or _actor())


class UserError(Exception):
    """A mistake the user can fix; printed as one line, exit code 2."""


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    raise typer.Exit(code)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as error:
        raise UserError(str(error)) from None


def _engine(settings: Settings, must_exist: bool = True) -> Engine:
    url = make_url(settings.database_url)
    sqlite_file = url.database if url.get_backend_name() == "sqlite" else None
    if must_exist and sqlite_file and not Path(sqlite_file).exists():
        raise UserError(f"no database at {sqlite_file}; run `safevine db upgrade` first")
    try:
        return make_engine(settings.database_url)
    except (ValueError, ImportError) as error:
        raise UserError(f"SAFEVINE_DATABASE_URL: {error}") from None


@contextmanager
def _store() -> Iterator[Engine]:
    """An engine on an up-to-date database, with the policy values synced from the environment."""
    settings = _settings()
    engine = _engine(settings)
    try:
        if not migrate.is_current(engine):
            raise UserError("the database schema is not up to date; run `safevine db upgrade`")
        with engine.begin() as connection:
            migrate.sync_policy(connection, settings.retention_days)
        yield engine
    except OperationalError as error:
        raise UserError(f"cannot use the database: {error.orig}") from None
    finally:
        engine.dispose()


def _run(action: Callable[[], None]) -> None:
    try:
        action()
    except UserError as error:
        _fail(str(error))
    except UnreadableSourceError as error:
        _fail(str(error))
    except FieldError as error:
        _fail(f"{error.field} {error.reason}")
    except RefusedError as error:
        _fail(str(error), exit_code(error))


# An action's refusal, by kind, as an exit code (the README lists them). 1 is also a stale
# roster's: refused by the state of things, nothing changed.
EXIT_CODES: tuple[tuple[type[RefusedError], int], ...] = (
    (NotAllowedError, 4),
    (NotFoundError, 2),
    (ConflictError, 1),
    (InvalidError, 2),
)


def exit_code(error: RefusedError) -> int:
    return next(code for kind, code in EXIT_CODES if isinstance(error, kind))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the database schema to the newest version."""

    def action() -> None:
        settings = _settings()
        engine = _engine(settings, must_exist=False)
        try:
            migrate.upgrade(engine, settings.retention_days)
        except OperationalError as error:
            raise UserError(f"cannot use the database: {error.orig}") from None
        finally:
            engine.dispose()
        out.print(f"database is up to date ({make_url(settings.database_url).render_as_string()})")

    _run(action)


JsonFlag = Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")]
FileArg = Annotated[Path, typer.Argument(help="The file to load.", show_default=False)]


class EventFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


class RosterScope(StrEnum):
    listed = "listed"
    all = "all"


def _report(summary: IngestSummary, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(summary.to_dict()))
    else:
        table = Table(title=f"{summary.kind}: {summary.source}", show_header=False)
        for key in ("status", "total", "applied", "duplicates", "rejected", "derived_events"):
            table.add_row(key, str(getattr(summary, key)))
        out.print(table)
        for reject in summary.rejects:
            out.print(f"  line {reject.line}: {reject.field} {reject.reason}", highlight=False)
        if summary.rejected > len(summary.rejects):
            out.print(
                f"  ... and {summary.rejected - len(summary.rejects)} more, kept in the database"
            )
        for note in summary.notes:
            out.print(f"  note: {note}", highlight=False)
    if summary.status == "refused":
        raise typer.Exit(1)
    if summary.rejected:
        raise typer.Exit(3)


def _lines(path: Path) -> FeedLines:
    return file_lines(
        path, progress=err.is_terminal, max_line_bytes=Settings.from_env().feed_max_line_bytes
    )


@ingest_app.command("facilities")
def ingest_facilities_cmd(path: FileArg, as_json: JsonFlag = False) -> None:
    """Load a facility list (safevine's CSV columns, or ICE's FOIA list as published)."""

    def action() -> None:
        with _store() as engine:
            summary = ingest.facilities(engine, _who(None), _lines(path), source=path.name)
            _report(summary, as_json)

    _run(action)


@ingest_app.command("events")
def ingest_events_cmd(
    path: FileArg,
    fmt: Annotated[
        EventFormat | None, typer.Option("--format", help="Default: from the file name.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Load custody events (JSON Lines or CSV); re-running a file is a no-op."""

    def action() -> None:
        chosen = fmt or (EventFormat.csv if path.suffix.lower() == ".csv" else EventFormat.jsonl)
        with _store() as engine:
            summary = ingest.events(
                engine, _who(None), _lines(path), source=path.name, fmt=chosen.value
            )
            _report(summary, as_json)

    _run(action)


@ingest_app.command("roster")
def ingest_roster_cmd(
    path: FileArg,
    scope: Annotated[
        RosterScope,
        typer.Option(help="Facilities the snapshot covers: those listed in it, or all facilities."),
    ] = RosterScope.listed,
    facility: Annotated[
        list[str] | None,
        typer.Option(
            "--facility", help="Also covers this facility (repeatable), e.g. one now empty."
        ),
    ] = None,
    snapshot_at: Annotated[
        str | None, typer.Option(help="When the snapshot was taken, for a file that lists nobody.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Apply a roster snapshot: bookings, transfers and departures are derived from it."""

    def action() -> None:
        when = None
        if snapshot_at:
            when = timestamp(snapshot_at, "--snapshot-at")
        with _store() as engine:
            summary = ingest.roster(
                engine,
                _who(None),
                _lines(path),
                source=path.name,
                scope=scope.value,
                declared=facility or [],
                snapshot_at=when,
            )
            _report(summary, as_json)

    _run(action)


@ingest_app.command("protections")
def ingest_protections_cmd(path: FileArg, as_json: JsonFlag = False) -> None:
    """Apply a protection list; `protected` takes effect at once, feeds never unprotect."""

    def action() -> None:
        with _store() as engine:
            summary = ingest.protections(engine, _who(None), _lines(path), source=path.name)
            _report(summary, as_json)

    _run(action)


def _checked(check: Callable[[str, str, int], str], limit: int) -> Callable[[str | None], Any]:
    """A Typer callback holding an argument to the value ranges (`domain.value_ranges`)."""

    def callback(value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return check(value, "value", limit)
        except FieldError as error:
            raise typer.BadParameter(error.reason) from None

    return callback


Reason = Annotated[
    str,
    typer.Option(
        "--reason",
        help="Why; kept with the change.",
        callback=_checked(check_free_text, REASON_LENGTH),
    ),
]
ActorOption = Annotated[
    str | None,
    typer.Option(
        "--actor",
        help="Who; default: the login name.",
        callback=_checked(check_text, NAME_LENGTH),
    ),
]
# A row id (a hold, a clear request): BIGINT in the database.
RowIdArg = Annotated[int, typer.Argument(min=1, max=MAX_ID, show_default=False)]


@app.command("protect")
def protect_cmd(a_number: str, reason: Reason, actor: ActorOption = None) -> None:
    """Protect a person at once: they disappear from every public surface."""

    def action() -> None:
        with _store() as engine, engine.begin() as connection:
            person, changed = person_actions.protect(
                connection, _who(actor), a_number, reason, datetime.now(UTC), A_NUMBER
            )
        label = format_a_number(person.a_number)
        out.print(f"{label} is now protected" if changed else f"{label} was already protected")

    _run(action)


@app.command("clear")
def clear_cmd(a_number: str, reason: Reason, actor: ActorOption = None) -> None:
    """Clear a person's protection (a staff decision with a reason): they may become public.

    With SAFEVINE_TWO_PERSON_CLEAR (the default) this only asks; a different person
    confirms with `safevine clear-confirm REQUEST` within 24 hours.
    """

    def action() -> None:
        settings = _settings()
        with _store() as engine, engine.begin() as connection:
            outcome = person_actions.clear(
                connection,
                _who(actor),
                a_number,
                reason,
                datetime.now(UTC),
                two_person=settings.two_person_clear,
                field=A_NUMBER,
            )
        label = format_a_number(outcome.person.a_number)
        asked = outcome.request
        if asked is not None:
            out.print(
                f"clear request {asked.id} for {label} is waiting for a second person: "
                f"`safevine clear-confirm {asked.id}` before "
                f"{asked.expires_at:%Y-%m-%d %H:%M} UTC; until then {label} stays protected"
            )
        else:
            out.print(
                f"{label} is now cleared" if outcome.changed else f"{label} was already cleared"
            )

    _run(action)


@app.command("clear-confirm")
def clear_confirm_cmd(request_id: RowIdArg, actor: ActorOption = None) -> None:
    """Confirm someone else's clear request: the person is cleared."""

    def action() -> None:
        with _store() as engine, engine.begin() as connection:
            person_id = person_actions.confirm_clear(
                connection, _who(actor), request_id, datetime.now(UTC)
            )
        out.print(f"clear request {request_id} confirmed: person {person_id} is now cleared")

    _run(action)


@person_app.command("show")
def person_show(a_number: str, as_json: JsonFlag = False) -> None:
    """Everything about a person, protection and history included (staff only)."""

    def action() -> None:
        with _store() as engine, engine.begin() as connection:
            view = person_actions.view(
                connection, _who(None), a_number, datetime.now(UTC), A_NUMBER
            )
        if as_json:
            out.print_json(json.dumps(view_json(view)))
            return
        _print_view(view)

    _run(action)


def _print_view(view: StaffPersonView) -> None:
    name = " ".join(p for p in (view.given_name, view.family_name) if p) or "(no name on record)"
    out.print(f"[bold]{name}[/bold]  {format_a_number(view.a_number)}  (internal id {view.id})")
    if view.aliases:
        out.print(
            "also known as: " + "; ".join(f"{g} {f}" for g, f in view.aliases), highlight=False
        )
    out.print(
        f"born {view.date_of_birth or 'unknown'} in {view.country_of_birth or 'unknown'}",
        highlight=False,
    )
    out.print(
        f"protection: [bold]{view.protection}[/bold]"
        + (f" (screened {view.screened_at:%Y-%m-%d %H:%M} UTC)" if view.screened_at else "")
    )
    if view.state:
        out.print(
            f"status: {view.state} since {view.status_since:%Y-%m-%d %H:%M} UTC"
            + (f" at {view.facility_name} ({view.facility_code})" if view.facility_code else ""),
            highlight=False,
        )
    else:
        out.print("status: no custody events")
    history = Table("occurred (UTC)", "event", "facility", "details", "origin", title="history")
    for e in view.history:
        history.add_row(
            f"{e.occurred_at:%Y-%m-%d %H:%M}",
            e.kind,
            e.facility_code or "",
            json.dumps(e.details) if e.details else "",
            e.origin,
        )
    out.print(history)
    if view.protection_history:
        changes = Table("recorded (UTC)", "change", "by", "source", "reason", title="protection")
        for c in view.protection_history:
            changes.add_row(
                f"{c.recorded_at:%Y-%m-%d %H:%M}",
                f"{c.from_status} -> {c.to_status}",
                c.actor,
                c.source,
                c.reason or "",
            )
        out.print(changes)


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
    from safevine.demo.population import examples, load_demo

    def action() -> None:
        settings = _settings()
        engine = _engine(settings, must_exist=False)
        migrate.upgrade(engine, settings.retention_days)
        loaded = load_demo(engine, people, seed)
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
            asyncio.run(run_demo(settings, port, every, mail_port, staff_port))

    _run(action)


def _serving_settings() -> Settings:
    """Settings for a long-running process: it must have a lasting secret key, because
    contacts are encrypted with it, unless this is the demo."""
    settings = _settings()
    if not settings.secret_key_configured and not settings.demo:
        raise UserError(
            "set SAFEVINE_SECRET_KEY (or SAFEVINE_SECRET_KEY_FILE) to a secret of at "
            "least 32 characters: contact addresses are encrypted with it"
        )
    return settings


def _public_path_ready(settings: Settings) -> None:
    """The public path's database is there and migrated, checked through the public path
    itself: the public service never opens a connection on the full records."""
    from safevine.store.public.connection import make_public_engine

    _engine(settings).dispose()  # a missing SQLite file is named, not created
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


MetricsPort = Annotated[
    int | None,
    typer.Option(help="Serve this process's Prometheus metrics on 127.0.0.1 at this port."),
]


@app.command("worker")
def worker_cmd(
    once: Annotated[bool, typer.Option("--once", help="Work what is due now, then stop.")] = False,
    metrics_port: MetricsPort = None,
) -> None:
    """Send due notifications: claim, check, render, send, record, retry."""
    import asyncio
    import signal

    from safevine.notify.dispatcher import Dispatcher
    from safevine.store.public.connection import make_public_engine

    def action() -> None:
        settings = _serving_settings()
        _public_path_ready(settings)
        engine = make_public_engine(settings.database_url, settings.public_database_url)

        configure_logging(settings.log_level)

        async def work() -> None:
            dispatcher = Dispatcher(settings, engine)
            if metrics_port:
                from prometheus_client import start_http_server

                start_http_server(metrics_port, addr="127.0.0.1", registry=dispatcher.registry)
            try:
                if once:
                    while (await dispatcher.run_once()).claimed:
                        pass
                    return
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, stop.set)
                out.print(f"worker {dispatcher.name} is sending (Ctrl-C stops it)")
                await dispatcher.run(stop)
            finally:
                await dispatcher.close()
                engine.dispose()

        asyncio.run(work())

    _run(action)


@app.command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    metrics_port: MetricsPort = None,
) -> None:
    """Serve the public site and API (the staff service is `safevine staff serve`)."""
    from safevine.web.public_app import create_public_app
    from safevine.web.server import serve

    def action() -> None:
        settings = _serving_settings()
        _public_path_ready(settings)
        application = create_public_app(settings)
        if metrics_port:
            from prometheus_client import start_http_server

            start_http_server(
                metrics_port, addr="127.0.0.1", registry=application.state.safevine.metrics.registry
            )
        out.print(f"safevine is serving on http://{host}:{port}/ (Ctrl-C stops it)")
        configure_logging(settings.log_level)
        serve(application, host, port)

    _run(action)


staff_app = typer.Typer(help="The staff service and staff accounts.", no_args_is_help=True)
app.add_typer(staff_app, name="staff")


@staff_app.command("serve")
def staff_serve_cmd(
    host: Annotated[
        str, typer.Option(help="Address to listen on (keep it on an internal network).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8001,
) -> None:
    """Serve the staff API, its reports and /metrics, apart from the public site."""
    from safevine.web.server import serve
    from safevine.web.staff_app import create_staff_app

    def action() -> None:
        with _store():
            pass
        settings = _serving_settings()
        out.print(f"safevine staff service on http://{host}:{port}/ (Ctrl-C stops it)")
        configure_logging(settings.log_level)
        serve(create_staff_app(settings), host, port)

    _run(action)


@audit_app.command("exposure")
def audit_exposure_cmd(as_json: JsonFlag = False) -> None:
    """Search for every non-public person through the real app; exit 1 if any appears."""
    from safevine.exposure_audit import audit_exposure

    def action() -> None:
        with _store() as engine:
            report = audit_exposure(_settings(), engine)
        if as_json:
            out.print_json(json.dumps({**report.__dict__, "passed": report.passed}))
        else:
            out.print(
                f"checked {report.persons_checked} non-public persons with "
                f"{report.searches} searches ({report.unreachable} have no country of "
                "birth, so no public search can reach them)"
            )
            if report.exposed:
                out.print(f"[red]EXPOSED[/red] internal ids: {', '.join(map(str, report.exposed))}")
            if report.unverified:
                out.print(
                    f"[red]NOT VERIFIED[/red] (search failed) internal ids: "
                    f"{', '.join(map(str, report.unverified))}"
                )
            if report.passed:
                out.print("[green]no non-public person appears on any public surface[/green]")
        if not report.passed:
            raise typer.Exit(1)

    _run(action)


token_app = typer.Typer(help="Staff API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    name: Annotated[
        str,
        typer.Option(
            "--name", help="Who or what holds it.", callback=_checked(check_text, NAME_LENGTH)
        ),
    ],
    scope: Annotated[
        list[str],
        typer.Option("--scope", help="ingest, protect, read, report or admin (repeatable)."),
    ],
) -> None:
    """Make a token; it is printed once and only its hash is kept."""

    def action() -> None:
        now = datetime.now(UTC)
        with _store() as engine, engine.begin() as connection:
            secret = tokens.create(connection, _who(None), name, scope, now)
        out.print(secret, highlight=False, soft_wrap=True)
        err.print("store it now: it is not shown again")

    _run(action)


@token_app.command("list")
def token_list() -> None:
    """Tokens, their scopes and whether they are revoked (never the secrets)."""
    from safevine.store.records import staff_tokens

    def action() -> None:
        with _store() as engine, engine.connect() as connection:
            rows = staff_tokens.listing(connection)
        table = Table("name", "scopes", "created (UTC)", "last used (UTC)", "revoked")
        for t in rows:
            table.add_row(
                t.name,
                ", ".join(t.scopes),
                f"{t.created_at:%Y-%m-%d %H:%M}",
                f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "",
                "yes" if t.revoked_at else "",
            )
        out.print(table)

    _run(action)


@token_app.command("revoke")
def token_revoke(
    name: Annotated[str, typer.Argument(callback=_checked(check_text, NAME_LENGTH))],
) -> None:
    """Revoke a token at once."""

    def action() -> None:
        now = datetime.now(UTC)
        with _store() as engine, engine.begin() as connection:
            tokens.revoke(connection, _who(None), name, now)
        out.print(f"token {name!r} is revoked")

    _run(action)


@audit_app.command("verify")
def audit_verify(
    expect_head: Annotated[
        str | None,
        typer.Option(help="A chain head exported earlier: it must still be in the chain."),
    ] = None,
) -> None:
    """Recompute the audit chain; exit 1 at the first broken link."""
    from safevine.store.records import audit

    def action() -> None:
        with _store() as engine, engine.connect() as connection:
            result = audit.verify(connection)
            known = {e.hash for e in audit.entries(connection)} if expect_head else set()
        if not result.ok:
            err.print(
                f"[red]audit chain broken[/red] at entry {result.broken_at}: {result.problem}"
            )
            raise typer.Exit(1)
        if expect_head and expect_head not in known:
            err.print(
                "[red]audit chain broken[/red]: the expected head is no longer in the "
                "chain (entries at the end were removed or replaced)"
            )
            raise typer.Exit(1)
        out.print(f"audit chain intact: {result.entries} entries, head {result.head}")

    _run(action)


@audit_app.command("export")
def audit_export(
    since: Annotated[str | None, typer.Option(help="ISO date or date and time.")] = None,
) -> None:
    """Entries as JSON Lines, then the chain head, to keep outside the database."""
    from safevine.store.records import audit

    def action() -> None:
        start = value_ranges.since(since, "--since", datetime.now(UTC)) if since else None
        with _store() as engine, engine.connect() as connection:
            for entry in audit.entries(connection, start):
                print(json.dumps(entry.as_json(), ensure_ascii=False))
            print(json.dumps({"head": audit.verify(connection).head}))

    _run(action)


holds_app = typer.Typer(
    help="Batches held for review because they looked like data accidents.", no_args_is_help=True
)
app.add_typer(holds_app, name="holds")


def _hold_json(hold: Hold) -> dict[str, Any]:
    return {
        "id": hold.id,
        "batch": hold.batch_id,
        "batch_kind": hold.batch_kind,
        "source": hold.source,
        "state": hold.state,
        "rule": hold.rule,
        "created_at": hold.created_at.isoformat(),
        "age_seconds": round((datetime.now(UTC) - hold.created_at).total_seconds()),
        "decided_at": hold.decided_at.isoformat() if hold.decided_at else None,
        "decided_by": hold.decided_by,
        "note": hold.note,
        **hold.detail,
    }


@holds_app.command("list")
def holds_list(
    all_holds: Annotated[bool, typer.Option("--all", help="Decided ones too.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Held batches, oldest first, with the rule each tripped."""
    from safevine.store.records import holds

    def action() -> None:
        with _store() as engine, engine.connect() as connection:
            rows = holds.listing(connection, only_open=not all_holds)
        if as_json:
            out.print_json(json.dumps([_hold_json(h) for h in rows]))
            return
        table = Table("hold", "batch", "kind", "state", "held since (UTC)", "rule")
        for h in rows:
            table.add_row(
                str(h.id),
                str(h.batch_id),
                h.batch_kind,
                h.state,
                f"{h.created_at:%Y-%m-%d %H:%M}",
                h.rule,
            )
        out.print(table)

    _run(action)


@holds_app.command("show")
def holds_show(hold_id: RowIdArg) -> None:
    """One hold: counts by kind and facility, a sample of its changes (internal ids)."""
    from safevine.store.records import holds

    def action() -> None:
        with _store() as engine, engine.connect() as connection:
            hold = holds.get(connection, hold_id)
            if hold is not None and hold.state == "held":
                hold = replace(hold, detail=holds.batch_detail(connection, hold.batch_id))
        if hold is None:
            raise UserError(f"no hold {hold_id}")
        out.print_json(json.dumps(_hold_json(hold)))

    _run(action)


@holds_app.command("release")
def holds_release(hold_id: RowIdArg, actor: ActorOption = None) -> None:
    """The batch was real: its notifications go out, each once."""

    def action() -> None:
        with _store() as engine, engine.begin() as connection:
            queued = hold_actions.release(connection, _who(actor), hold_id, datetime.now(UTC))
        out.print(f"hold {hold_id} released: {queued} notifications queued")

    _run(action)


@holds_app.command("discard")
def holds_discard(hold_id: RowIdArg, actor: ActorOption = None) -> None:
    """The batch was an accident: its changes are reverted and no alert is ever sent."""

    def action() -> None:
        with _store() as engine, engine.begin() as connection:
            restored = hold_actions.discard(connection, _who(actor), hold_id, datetime.now(UTC))
        out.print(f"hold {hold_id} discarded: {restored} statuses restored, no alert sent")

    _run(action)

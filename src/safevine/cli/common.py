"""The pieces every command shares: the root command, output, settings, the database,
and how an error becomes one line and an exit code (in one place)."""

import getpass
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from safevine.actions.actor import Actor
from safevine.config import ConfigError, Settings
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
from safevine.ingest.source import UnreadableSourceError
from safevine.store import migrate
from safevine.store.engine import make_engine

app = typer.Typer(
    help="safevine: custody records and notifications, confidential by construction.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

out = Console()
err = Console(stderr=True)


def login_actor() -> str:
    """Who is at the keyboard, for the audit trail: the CLI's login name."""
    return f"cli:{getpass.getuser()}"


A_NUMBER = "A-NUMBER"  # how an A-number argument is named in an error


def who(actor: str | None) -> Actor:
    return Actor(actor or login_actor())


class UserError(Exception):
    """A mistake the user can fix; printed as one line, exit code 2."""


def fail(message: str, code: int = 2) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    raise typer.Exit(code)


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as error:
        raise UserError(str(error)) from None


def open_engine(settings: Settings, must_exist: bool = True) -> Engine:
    url = make_url(settings.database_url)
    sqlite_file = url.database if url.get_backend_name() == "sqlite" else None
    if must_exist and sqlite_file and not Path(sqlite_file).exists():
        raise UserError(f"no database at {sqlite_file}; run `safevine db upgrade` first")
    try:
        return make_engine(settings.database_url)
    except (ValueError, ImportError) as error:
        raise UserError(f"SAFEVINE_DATABASE_URL: {error}") from None


@contextmanager
def store() -> Iterator[Engine]:
    """An engine on an up-to-date database, with the policy values synced from the environment."""
    settings = load_settings()
    engine = open_engine(settings)
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


def run(action: Callable[[], None]) -> None:
    try:
        action()
    except UserError as error:
        fail(str(error))
    except UnreadableSourceError as error:
        fail(str(error))
    except FieldError as error:
        fail(f"{error.field} {error.reason}")
    except RefusedError as error:
        fail(str(error), exit_code(error))


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


JsonFlag = Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")]
FileArg = Annotated[Path, typer.Argument(help="The file to load.", show_default=False)]


def checked(check: Callable[[str, str, int], str], limit: int) -> Callable[[str | None], Any]:
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
        callback=checked(check_free_text, REASON_LENGTH),
    ),
]
ActorOption = Annotated[
    str | None,
    typer.Option(
        "--actor",
        help="Who; default: the login name.",
        callback=checked(check_text, NAME_LENGTH),
    ),
]
# A row id (a hold, a clear request): BIGINT in the database.
RowIdArg = Annotated[int, typer.Argument(min=1, max=MAX_ID, show_default=False)]


def serving_settings() -> Settings:
    """Settings for a long-running process: it must have a lasting secret key, because
    contacts are encrypted with it, unless this is the demo."""
    settings = load_settings()
    if not settings.secret_key_configured and not settings.demo:
        raise UserError(
            "set SAFEVINE_SECRET_KEY (or SAFEVINE_SECRET_KEY_FILE) to a secret of at "
            "least 32 characters: contact addresses are encrypted with it"
        )
    return settings


MetricsPort = Annotated[
    int | None,
    typer.Option(help="Serve this process's Prometheus metrics on 127.0.0.1 at this port."),
]

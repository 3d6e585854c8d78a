"""`safevine db`: the schema."""

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from safevine.cli.common import UserError, app, load_settings, open_engine, out, run
from safevine.store import migrate

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the database schema to the newest version."""

    def action() -> None:
        settings = load_settings()
        engine = open_engine(settings, must_exist=False)
        try:
            migrate.upgrade(engine, settings.retention_days)
        except OperationalError as error:
            raise UserError(f"cannot use the database: {error.orig}") from None
        finally:
            engine.dispose()
        out.print(f"database is up to date ({make_url(settings.database_url).render_as_string()})")

    run(action)

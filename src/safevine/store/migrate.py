"""Schema upgrades through Alembic, and the policy values the public views read.

Alembic is imported where it is used: every command imports this module (through
`safevine.cli`), the public server included, and Alembic would add about 10 MB to each.
"""

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, select, update

from safevine.store.schema import publication_policy

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(connection: Connection) -> "Config":
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, retention_days: int) -> None:
    """Bring the schema to the newest revision and store the current policy values."""
    from alembic import command

    with engine.begin() as connection:
        command.upgrade(_config(connection), "head")
        sync_policy(connection, retention_days)


def is_current(engine: Engine) -> bool:
    """True when the database is at the newest revision."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
        heads = ScriptDirectory.from_config(_config(connection)).get_heads()
    return set(current) == set(heads)


def sync_policy(connection: Connection, retention_days: int) -> None:
    """Write the retention window the public views apply (SAFEVINE_RETENTION_DAYS)."""
    stored = connection.execute(select(publication_policy.c.retention_days)).scalar()
    if stored != retention_days:
        connection.execute(update(publication_policy).values(retention_days=retention_days))

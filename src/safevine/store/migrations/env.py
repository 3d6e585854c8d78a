"""Alembic environment: runs on the connection `store.migrate` hands over."""

from alembic import context

from safevine.store import schema  # noqa: F401 - registers every table
from safevine.store.metadata import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

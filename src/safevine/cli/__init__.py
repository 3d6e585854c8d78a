"""The `safevine` command: a module per command group. User mistakes end in one clear
line and a non-zero exit code (`common.run`)."""

from safevine.cli import (
    audit,
    db,
    demo,
    events,
    feed_health,
    holds,
    ingest,
    persons,
    purge,
    serve,
    staff,
    tokens,
)
from safevine.cli.common import app, exit_code

__all__ = [
    "app",
    "audit",
    "db",
    "demo",
    "events",
    "exit_code",
    "feed_health",
    "holds",
    "ingest",
    "persons",
    "purge",
    "serve",
    "staff",
    "tokens",
]

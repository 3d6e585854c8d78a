"""A held batch, released (its notifications go out, each once) or discarded (its changes
reverted, nobody alerted)."""

from datetime import datetime

from sqlalchemy import Connection

from safevine.actions.actor import Actor
from safevine.store.records import holds


def release(connection: Connection, actor: Actor, hold_id: int, now: datetime) -> int:
    """How many notifications were queued."""
    return holds.release(connection, hold_id, actor=actor.name, now=now)


def discard(connection: Connection, actor: Actor, hold_id: int, now: datetime) -> int:
    """How many statuses were restored."""
    return holds.discard(connection, hold_id, actor=actor.name, now=now)

"""Connections for the public path, which can read the public views and nothing else.

On PostgreSQL they belong to the `safevine_public` role (migrations 0002 and 0003), either
through their own login (SAFEVINE_PUBLIC_DATABASE_URL) or by switching to it on connect.
SQLite has no roles, so an authorizer callback enforces the same grants on each connection.
"""

import sqlite3
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

from safevine.store.engine import make_engine

PUBLIC_ROLE = "safevine_public"
PUBLIC_VIEWS = frozenset(
    {
        "public_persons",
        "public_person_names",
        "public_search_by_a_number",
        "public_search_by_name",
        "audit_head",
        "public_feed_delays",
    }
)
PUBLIC_TABLES = frozenset(
    {"registrations", "notifications", "operations_messages", "call_attempts"}
)


def make_public_engine(database_url: str, public_database_url: str | None = None) -> Engine:
    if public_database_url:
        return make_engine(public_database_url)
    engine = make_engine(database_url)
    backend = make_url(database_url).get_backend_name()
    event.listen(engine, "connect", _set_role if backend == "postgresql" else _query_only)
    return engine


SET_PUBLIC_ROLE = f"SET ROLE {PUBLIC_ROLE}"


def switches_role(engine: Engine) -> bool:
    """Whether `engine`'s connections take the public role on connect (not when they log
    in as it): a connection made beside the engine must then take it too."""
    return event.contains(engine, "connect", _set_role)


def _set_role(dbapi_connection: Any, _record: Any) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute(SET_PUBLIC_ROLE)
    dbapi_connection.commit()


def _query_only(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.set_authorizer(_authorize)


def _authorize(
    action: int, first: str | None, second: str | None, _db: str | None, through: str | None
) -> int:
    """The PostgreSQL grants, for SQLite: base tables only through the public views;
    insert and update only on registrations and notifications; never delete."""
    if action == sqlite3.SQLITE_READ:
        # An empty column name is a join inside a view touching a table for its rows
        # alone; SQLite does not always say which view, and no value is read.
        if first in PUBLIC_VIEWS or first in PUBLIC_TABLES or through in PUBLIC_VIEWS:
            return sqlite3.SQLITE_OK
        # Foreign key checks read the key they point at (PostgreSQL runs these checks with
        # the owner's rights); a bare id reveals nothing.
        if (first, second) in _FOREIGN_KEYS or second == "":
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY
    if action in (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE):
        return sqlite3.SQLITE_OK if first in PUBLIC_TABLES else sqlite3.SQLITE_DENY
    if action in _DENIED:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


_FOREIGN_KEYS = {("custody_events", "id")}
_DENIED = {
    sqlite3.SQLITE_DELETE,
    sqlite3.SQLITE_DROP_TABLE,
    sqlite3.SQLITE_DROP_VIEW,
    sqlite3.SQLITE_CREATE_TABLE,
    sqlite3.SQLITE_CREATE_VIEW,
    sqlite3.SQLITE_ALTER_TABLE,
    sqlite3.SQLITE_ATTACH,
    sqlite3.SQLITE_DETACH,
    sqlite3.SQLITE_PRAGMA,
    sqlite3.SQLITE_CREATE_INDEX,
    sqlite3.SQLITE_DROP_INDEX,
    sqlite3.SQLITE_CREATE_TRIGGER,
}

"""Connections for the public path, which can read the public views and nothing else.

On PostgreSQL they belong to the `safevine_public` role (migration 0002), either through
their own login (SAFEVINE_PUBLIC_DATABASE_URL) or by switching to it on connect. On
SQLite, which has no roles, they are opened query-only.
"""

from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

from safevine.store.engine import make_engine

PUBLIC_ROLE = "safevine_public"


def make_public_engine(database_url: str, public_database_url: str | None = None) -> Engine:
    if public_database_url:
        return make_engine(public_database_url)
    engine = make_engine(database_url)
    backend = make_url(database_url).get_backend_name()
    event.listen(engine, "connect", _set_role if backend == "postgresql" else _query_only)
    return engine


def _set_role(dbapi_connection: Any, _record: Any) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute(f"SET ROLE {PUBLIC_ROLE}")
    dbapi_connection.commit()


def _query_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only = ON")
    cursor.close()

"""Connections for the public path, which can read the public views and nothing else.

On PostgreSQL they belong to the `safevine_public` role (migrations 0002 and 0003), either
through their own login (SAFEVINE_PUBLIC_DATABASE_URL) or by switching to it on connect.
SQLite has no roles, so an authorizer callback (`sqlite_grants`) enforces the same grants on
each connection.
"""

from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

from safevine.store.engine import make_engine
from safevine.store.public.sqlite_grants import authorize

PUBLIC_ROLE = "safevine_public"


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
    dbapi_connection.set_authorizer(authorize)

"""The public role's grants, for SQLite, which has no roles: an authorizer callback that
every public connection carries (`connection.make_public_engine`, and the lookup process,
`lookup_worker`, which has no SQLAlchemy)."""

import sqlite3

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


def authorize(
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

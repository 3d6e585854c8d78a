"""`column IN (values)`, written the way each database handles a long list best."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY


def member_of(
    connection: Connection, column: ColumnElement[Any], values: Sequence[Any]
) -> ColumnElement[bool]:
    """On PostgreSQL `column = ANY(:values)`, the list bound as one array; elsewhere IN.

    psycopg parses (in Python) every statement with over 50 parameters afresh, so a
    500-value IN list cost more on the client than the lookup did on the server; one
    array parameter keeps the statement short, cached and prepared.
    """
    if connection.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)

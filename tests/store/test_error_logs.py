"""A database error logged through the structured log names its type, code and place,
never the values of the statement that failed."""

import json
import logging

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from safevine.logs import JsonLines
from tests.canaries import NON_PUBLIC

CANARY = NON_PUBLIC[0]


def test_a_failed_statement_is_logged_without_its_values(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    log = logging.getLogger("safevine.test")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE probe (a_number VARCHAR(9) UNIQUE)"))
    with pytest.raises(IntegrityError) as raised, engine.begin() as connection:
        for _ in range(2):
            connection.execute(
                text("INSERT INTO probe (a_number) VALUES (:a)"), {"a": CANARY.a_number}
            )
    # The engine keeps the parameters out of the error's own text.
    assert "SQL parameters hidden" in str(raised.value)
    with caplog.at_level(logging.ERROR, logger="safevine.test"):
        try:
            raise raised.value
        except IntegrityError:
            log.exception("write failed")
    line = json.loads(JsonLines().format(caplog.records[-1]))
    expected_code = "23505" if engine.dialect.name == "postgresql" else "SQLITE_CONSTRAINT_UNIQUE"
    assert line["error"].startswith("sqlalchemy.exc.IntegrityError <- ")
    assert line["code"] == expected_code
    assert " in " in line["at"]  # file:line in function, here inside SQLAlchemy
    # PostgreSQL's own message repeats the value ("Key (a_number)=(...) already exists").
    for identifier in CANARY.identifiers:
        assert identifier not in json.dumps(line)

"""A public search for nobody examines the person whose key comes next, not the decoy.

Migration 0010 made a search for nobody examine the decoy, so that it does the same work
as a search for a hidden person. The same work, but not on the same pages: the decoy's
rows are read by every such search and so are always in the cache (SQLite's page cache,
PostgreSQL's shared buffers), while a hidden person's rows are wherever that person
happens to be. On SQLite a search for nobody stayed 3 to 7 µs faster, measurably
(BENCHMARKS.md); on a database larger than its cache, the gap would be a read from disk.

The index probe that looks for the key already lands on the first real key at or after
it. Here the search examines that entry's rows whether or not its key is the one
searched for, and the key-equality term of the publication rule (already part of the one
expression) makes them not public when it is not. A search for nobody therefore reads a
person's rows from wherever people's rows are, as a search for a hidden person does; only
past the last real key is it the decoy, which still sorts after every real key.

By name, the probe's entry alone is examined when its key is not the one searched for
(never every holder of a neighbouring name), and every holder of the key when it is, as
before: the third part of the key compared is the entry's id when the name differs, and 0
for every holder when it is the name searched for.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _revision_0010() -> ModuleType:
    """0010's definitions, which this revision keeps but for the probe (its file name is
    not an importable module name)."""
    path = Path(__file__).with_name("0010_constant_work_search.py")
    spec = importlib.util.spec_from_file_location("safevine_revision_0010", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_0010 = _revision_0010()


def _same(a: str, b: str) -> str:
    return str(_0010._same(a, b))


def _json(index: int) -> str:
    return str(_0010._json(index))


# SQLite ------------------------------------------------------------------------------------

_SQLITE_BY_A_NUMBER = f"""
CREATE VIEW public_search_by_a_number AS
SELECT {_0010._SQLITE_SHOWN}
FROM json_each q
CROSS JOIN persons p
{_0010._SQLITE_JOINED}
WHERE q.key = 0
  AND p.id = (
      SELECT x.id
      FROM persons x
      WHERE x.a_number >= {_json(0)}
      ORDER BY x.a_number
      LIMIT 1)
  AND {_0010._sqlite_rule(_same("p.a_number", _json(0)), _json(1))} = 1
"""


def _sqlite_named(entry: str) -> str:
    """1 when `entry`'s name is the one searched for, 0 when it is not."""
    return _same(f"{entry}.family_key", _json(1)) + " * " + _same(f"{entry}.given_key", _json(0))


_SQLITE_BY_NAME = f"""
CREATE VIEW public_search_by_name AS
SELECT {_0010._SQLITE_SHOWN}
FROM json_each q
CROSS JOIN person_names n
CROSS JOIN persons p ON p.id = n.person_id
{_0010._SQLITE_JOINED}
WHERE q.key = 0
  AND (n.family_key, n.given_key, n.id * (1 - {_sqlite_named("n")})) = (
      SELECT x.family_key, x.given_key, x.id * (1 - {_sqlite_named("x")})
      FROM person_names x
      WHERE (x.family_key, x.given_key) >= ({_json(1)}, {_json(0)})
      ORDER BY x.family_key, x.given_key
      LIMIT 1)
  AND {
    _0010._sqlite_rule(
        _sqlite_named("n") + " * ifnull(" + _same("p.date_of_birth", _json(3)) + ", 1)",
        _json(2),
    )
} = 1
"""

# PostgreSQL --------------------------------------------------------------------------------

_PG_BY_A_NUMBER = f"""
CREATE OR REPLACE FUNCTION public_search_by_a_number(wanted_a_number text, wanted_country text)
RETURNS TABLE ({_0010._PG_RETURNS}) {_0010._PG_OPTIONS} AS $search$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT {_0010._PG_SHOWN}
    FROM (
        SELECT {_0010._PG_CANDIDATE}
        FROM (
            SELECT x.a_number
            FROM persons x
            WHERE x.a_number >= wanted_a_number
            ORDER BY x.a_number
            LIMIT 1
        ) k
        JOIN persons p ON p.a_number = k.a_number
        JOIN custody_status s ON s.person_id = p.id
        LEFT JOIN held_status h ON h.person_id = p.id AND h.batch_id = {_0010._HELD}
        CROSS JOIN publication_policy pol
        WHERE {_0010._pg_rule("wanted_a_number", None, None)} = 1
        OFFSET 0
    ) c
    LEFT JOIN facilities f ON f.id = c.facility_id;
END
$search$
"""

# The probe's entry is named by its id when its name is not the one searched for, and
# the join reads that entry alone; by 0 when it is, and the join reads every holder.
_PG_BY_NAME = f"""
CREATE OR REPLACE FUNCTION public_search_by_name(
    wanted_given_key text, wanted_family_key text, wanted_country text, wanted_birth date
)
RETURNS TABLE ({_0010._PG_RETURNS}) {_0010._PG_OPTIONS} AS $search$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT {_0010._PG_SHOWN}
    FROM (
        SELECT {_0010._PG_CANDIDATE}
        FROM (
            SELECT x.family_key, x.given_key,
                   CASE WHEN x.family_key = wanted_family_key
                         AND x.given_key = wanted_given_key
                        THEN 0 ELSE x.id END AS entry
            FROM person_names x
            WHERE (x.family_key, x.given_key) >= (wanted_family_key, wanted_given_key)
            ORDER BY x.family_key, x.given_key
            LIMIT 1
        ) k
        JOIN person_names n ON n.family_key = k.family_key AND n.given_key = k.given_key
                           AND k.entry IN (0, n.id)
        {_0010._PG_NAME_JOINS}
        WHERE {_0010._pg_rule(None, "wanted_given_key", "wanted_family_key")} = 1
        OFFSET 0
    ) c
    LEFT JOIN facilities f ON f.id = c.facility_id;
END
$search$
"""


def _replace_sqlite_views(by_a_number: str, by_name: str) -> None:
    for view in _0010.SEARCHES:
        op.execute(f"DROP VIEW {view}")
    op.execute(by_a_number)
    op.execute(by_name)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        _replace_sqlite_views(_SQLITE_BY_A_NUMBER, _SQLITE_BY_NAME)
        return
    # CREATE OR REPLACE keeps the functions' owner and grants.
    op.execute(_PG_BY_A_NUMBER)
    op.execute(_PG_BY_NAME)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        _replace_sqlite_views(_0010._SQLITE_BY_A_NUMBER, _0010._SQLITE_BY_NAME)
        return
    op.execute(_0010._PG_BY_A_NUMBER.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
    op.execute(_0010._PG_BY_NAME.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))

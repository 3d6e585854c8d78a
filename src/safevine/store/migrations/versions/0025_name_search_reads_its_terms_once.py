"""The public search by name reads the terms searched for once, not at every use (SQLite).

The search views take their terms as one JSON array (the `query` column, which a search
constrains to `json_array(...)`), and revision 0011's name view read each term with
`json_extract`, which parses the whole array again at every call: about twenty parses a
search, a third of its time on SQLite 3.40. Here each term is a row of `json_each` over
that array, parsed once for the search, and read as a column after that. The probe's
range keeps `json_extract`, which the planner turns into an index range on (family_key,
given_key); with a `json_each` value it would bound family_key alone and read every
holder of a family name up to the given name.

The same joins and expression, on the same rows, whoever is searched for: the work stays
constant. The search by A-number reads two terms a few times, where the parse costs less
than the extra joins would; it stays as it is. PostgreSQL's functions take their terms as
arguments and are unchanged.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _revision(file_name: str) -> ModuleType:
    """An earlier revision's definitions (its file name is not an importable name)."""
    path = Path(__file__).with_name(file_name)
    spec = importlib.util.spec_from_file_location(f"safevine_revision_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_0011 = _revision("0011_search_examines_the_neighbour.py")
_0010 = _0011._0010

# The terms, in `json_array(given_key, family_key, country, date_of_birth)` order.
_GIVEN, _FAMILY, _COUNTRY, _BIRTH = (f"t{i}.value" for i in range(4))
_TERMS = "\n".join(f"CROSS JOIN json_each(q.json) t{i}" for i in range(4))
_ONE_EACH = " AND ".join(f"t{i}.key = {i}" for i in range(4))


def _same(a: str, b: str) -> str:
    return str(_0010._same(a, b))


def _named(entry: str) -> str:
    """1 when `entry`'s name is the one searched for, 0 when it is not."""
    return _same(f"{entry}.family_key", _FAMILY) + " * " + _same(f"{entry}.given_key", _GIVEN)


_SQLITE_BY_NAME = f"""
CREATE VIEW public_search_by_name AS
SELECT {_0010._SQLITE_SHOWN}
FROM json_each q
{_TERMS}
CROSS JOIN person_names n
CROSS JOIN persons p ON p.id = n.person_id
{_0010._SQLITE_JOINED}
WHERE q.key = 0 AND {_ONE_EACH}
  AND (n.family_key, n.given_key, n.id * (1 - {_named("n")})) = (
      SELECT x.family_key, x.given_key, x.id * (1 - {_named("x")})
      FROM person_names x
      WHERE (x.family_key, x.given_key) >= ({_0010._json(1)}, {_0010._json(0)})
      ORDER BY x.family_key, x.given_key
      LIMIT 1)
  AND {
    _0010._sqlite_rule(
        _named("n") + " * ifnull(" + _same("p.date_of_birth", _BIRTH) + ", 1)", _COUNTRY
    )
} = 1
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        return
    _0011._replace_sqlite_views(_0011._SQLITE_BY_A_NUMBER, _SQLITE_BY_NAME)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        return
    _0011._replace_sqlite_views(_0011._SQLITE_BY_A_NUMBER, _0011._SQLITE_BY_NAME)

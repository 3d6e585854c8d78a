"""Public searches that do the same work whether the person searched for is hidden or
does not exist: every search examines exactly one candidate (or the k people who share a
name), and when nobody matches, that candidate is a decoy that is never public.

Through the security_barrier views, a search for a hidden person found their row and then
applied the publication rule to it (a heap fetch and the joins), while a search for nobody
found nothing at all: a difference in time that a client can measure
(`bench/lookup_timing.py`, BENCHMARKS.md). Here each search runs in three steps:

1. One index probe for the first key at or after the one searched for (an index-only
   read). The decoy's keys sort after every real key, so there always is one.
2. The key searched for if that probe found it, the decoy's key otherwise.
3. The rows holding that key: their person, custody status, held status and policy,
   joined and judged by the publication rule written as one expression, so that no part
   of it can be checked (and a row dropped) before every join is made; the facility only
   for the rows found public.

The decoy is a person (id 0) with a name, an event and a custody status, as real people
have, protected, born in 1900, removed in 1900, whose A-number and name keys no search or
feed can produce (an A-number has nine digits; a name key never holds U+10FFFF, which
`clean_name` refuses). `store/decoy.py` names it for the readers that list everyone.

On PostgreSQL the searches are SECURITY DEFINER functions, the only new thing
`safevine_public` may use: it still reads no base table. They are PL/pgSQL so that their
plans are kept for the session (a SQL function is planned again on every call before
PostgreSQL 18), and always generic, so that the plan never depends on the key searched.
On SQLite they are views that take the search as a JSON array through the hidden `json`
column of `json_each` (`WHERE query = json_array(...)`), which SQLite passes to the table
function; the authorizer lets the public connection read through them as through the
other public views.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op

from safevine.store.types import BigId, UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PUBLIC_ROLE = "safevine_public"
SEARCHES = ("public_search_by_a_number", "public_search_by_name")

# The decoy. Its keys sort after every real one: letters after digits, and U+10FFFF (the
# last code point) after any character a name can hold, byte for byte (SQLite) and in the
# C collation (PostgreSQL's test and benchmark databases; see BENCHMARKS.md for others).
DECOY_ID = 0
DECOY_A_NUMBER = "ZZZZZZZZZ"
DECOY_KEY = "\U0010ffff decoy"
# A second name of the decoy's, after its first in the name index: a search stops reading
# a key's entries at the next entry, and the decoy's must have one as everyone's does.
DECOY_LAST_KEY = "\U0010ffff\U0010ffff"
DECOY_EVENT_ID = "\x01decoy: never public"
_LONG_AGO = datetime(1900, 1, 1, tzinfo=UTC)

# As in 0005 and 0008: the status the public may see is the one from before the earliest
# unconfirmed batch that changed the person, or the current one.
_HELD = "(SELECT MIN(h2.batch_id) FROM held_status h2 WHERE h2.person_id = p.id)"
_STATE = "CASE WHEN h.person_id IS NULL THEN s.state ELSE h.state END"
_LEFT = "CASE WHEN h.person_id IS NULL THEN s.left_custody_at ELSE h.left_custody_at END"
_SINCE = "CASE WHEN h.person_id IS NULL THEN s.occurred_at ELSE h.occurred_at END"
_CHANGED = "CASE WHEN h.person_id IS NULL THEN s.updated_at ELSE h.updated_at END"
_FACILITY = "CASE WHEN h.person_id IS NULL THEN s.facility_id ELSE h.facility_id END"

_PG_NAME_JOINS = f"""
    JOIN persons p ON p.id = n.person_id
    JOIN custody_status s ON s.person_id = p.id
    LEFT JOIN held_status h ON h.person_id = p.id AND h.batch_id = {_HELD}
    CROSS JOIN publication_policy pol
"""

# PostgreSQL --------------------------------------------------------------------------------
#
# The rule as one product of 0/1 terms: a plain AND would let the planner check
# `p.protection = 'cleared'` on the persons row before any join, which is the very
# difference between a hidden person and nobody that this migration removes.


def _pg_rule(a_number: str | None, given: str | None, family: str | None) -> str:
    terms = [
        "(p.country_of_birth = wanted_country)",
        "(p.protection = 'cleared')",
        """(EXTRACT(YEAR FROM (now() AT TIME ZONE 'UTC'))::int
            - EXTRACT(YEAR FROM p.date_of_birth)::int
            - CASE WHEN to_char(now() AT TIME ZONE 'UTC', 'MM-DD')
                        < to_char(p.date_of_birth, 'MM-DD')
                   THEN 1 ELSE 0 END >= 18)""",
        "(h.person_id IS NULL OR h.had_status = 1)",
        f"""({_STATE} = 'in_custody'
             OR ({_LEFT} IS NOT NULL
                 AND {_LEFT} > now() - make_interval(days => pol.retention_days)))""",
    ]
    if a_number is not None:
        terms.insert(0, f"(p.a_number = {a_number})")
    else:
        terms.insert(0, f"(n.given_key = {given} AND n.family_key = {family})")
        terms.append("(wanted_birth IS NULL OR p.date_of_birth = wanted_birth)")
    # A term that is NULL (an unknown date of birth or country) makes the product NULL,
    # which is not 1: not public, as the views have it.
    return " * ".join(f"({term})::int" for term in terms)


_PG_SHOWN = """
    c.public_ref, c.given_name, c.family_name, c.country_of_birth, c.custody_state,
    c.status_since, c.last_changed_at, f.name::text, f.address::text, f.city::text,
    f.state::text, f.postal_code::text, f.phone::text, f.time_zone::text
"""
_PG_CANDIDATE = f"""
    p.public_ref::text AS public_ref, p.given_name::text AS given_name,
    p.family_name::text AS family_name, p.country_of_birth::text AS country_of_birth,
    ({_STATE})::text AS custody_state, {_SINCE} AS status_since,
    {_CHANGED} AS last_changed_at, {_FACILITY} AS facility_id
"""
_PG_RETURNS = """
    public_ref text, given_name text, family_name text, country_of_birth text,
    custody_state text, status_since timestamptz, last_changed_at timestamptz,
    facility_name text, facility_address text, facility_city text, facility_state text,
    facility_postal_code text, facility_phone text, facility_time_zone text
"""
_PG_OPTIONS = """
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = public, pg_temp
    SET plan_cache_mode = force_generic_plan
"""

# OFFSET 0 keeps the candidate query whole: the facility is joined to the public rows
# only, after the rule, for hidden people and the decoy alike.
_PG_BY_A_NUMBER = f"""
CREATE FUNCTION public_search_by_a_number(wanted_a_number text, wanted_country text)
RETURNS TABLE ({_PG_RETURNS}) {_PG_OPTIONS} AS $search$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT {_PG_SHOWN}
    FROM (
        SELECT {_PG_CANDIDATE}
        FROM (
            SELECT CASE WHEN x.a_number = wanted_a_number THEN x.a_number
                        ELSE '{DECOY_A_NUMBER}' END AS a_number
            FROM persons x
            WHERE x.a_number >= wanted_a_number
            ORDER BY x.a_number
            LIMIT 1
        ) k
        JOIN persons p ON p.a_number = k.a_number
        JOIN custody_status s ON s.person_id = p.id
        LEFT JOIN held_status h ON h.person_id = p.id AND h.batch_id = {_HELD}
        CROSS JOIN publication_policy pol
        WHERE {_pg_rule("wanted_a_number", None, None)} = 1
        OFFSET 0
    ) c
    LEFT JOIN facilities f ON f.id = c.facility_id;
END
$search$
"""

_PG_BY_NAME = f"""
CREATE FUNCTION public_search_by_name(
    wanted_given_key text, wanted_family_key text, wanted_country text, wanted_birth date
)
RETURNS TABLE ({_PG_RETURNS}) {_PG_OPTIONS} AS $search$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT {_PG_SHOWN}
    FROM (
        SELECT {_PG_CANDIDATE}
        FROM (
            SELECT CASE WHEN x.family_key = wanted_family_key
                         AND x.given_key = wanted_given_key
                        THEN x.family_key ELSE '{DECOY_KEY}' END AS family_key,
                   CASE WHEN x.family_key = wanted_family_key
                         AND x.given_key = wanted_given_key
                        THEN x.given_key ELSE '{DECOY_KEY}' END AS given_key
            FROM person_names x
            WHERE (x.family_key, x.given_key) >= (wanted_family_key, wanted_given_key)
            ORDER BY x.family_key, x.given_key
            LIMIT 1
        ) k
        JOIN person_names n ON n.family_key = k.family_key AND n.given_key = k.given_key
        {_PG_NAME_JOINS}
        WHERE {_pg_rule(None, "wanted_given_key", "wanted_family_key")} = 1
        OFFSET 0
    ) c
    LEFT JOIN facilities f ON f.id = c.facility_id;
END
$search$
"""

_PG_SIGNATURES = {
    "public_search_by_a_number": "public_search_by_a_number(text, text)",
    "public_search_by_name": "public_search_by_name(text, text, text, date)",
}

# SQLite ------------------------------------------------------------------------------------
#
# SQLite's VM takes one instruction more for a comparison used as a value when it is false
# than when it holds, and jumps over the rest of an AND or a CASE. Each term here is
# therefore computed from a condition and its opposite, both evaluated (`_flag`), and a
# choice between two values is made by arithmetic (`_choose`): the instructions a search
# runs are then the same for a hidden person and for the decoy, which
# tests/store/test_constant_work.py counts. A NULL (an unknown date of birth or country)
# makes a term, and so the product, NULL: not public.


def _flag(condition: str, opposite: str) -> str:
    """1 when `condition` holds, 0 when `opposite` does."""
    return f"(({condition}) * 2 + ({opposite}) - 1)"


def _same(a: str, b: str) -> str:
    return _flag(f"{a} = {b}", f"{a} <> {b}")


def _choose(flag: str, when_one: str, when_zero: str) -> str:
    """`when_one` if `flag` is 1, `when_zero` if it is 0."""
    return (
        f"(substr({when_one}, 1, {flag} * length({when_one}))"
        f" || substr({when_zero}, 1, (1 - {flag}) * length({when_zero})))"
    )


def _json(index: int) -> str:
    return f"json_extract(q.json, '$[{index}]')"


# Completed years from the dates as numbers (YYYYMMDD): the same as the views' year
# difference less one before the birthday, 29 February included, without a CASE.
_SQLITE_YEARS_TIMES_10000 = (
    "(CAST(strftime('%Y%m%d', 'now') AS INTEGER)"
    " - CAST(strftime('%Y%m%d', p.date_of_birth) AS INTEGER))"
)
# printf turns an unknown time into '' (earlier than any), so that a person in custody
# (who has none) and one who left take the same instructions; stored times are text in
# one format, so they compare as text, to the millisecond the views' julianday has.
_SQLITE_LEFT = f"printf('%s', {_LEFT})"
_SQLITE_SINCE_RETENTION = (
    "strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || pol.retention_days || ' days')"
)


def _sqlite_rule(match: str, country: str) -> str:
    terms = [
        match,
        _same("p.country_of_birth", country),
        _same("p.protection", "'cleared'"),
        _flag(f"{_SQLITE_YEARS_TIMES_10000} >= 180000", f"{_SQLITE_YEARS_TIMES_10000} < 180000"),
        # Only for a person under a hold does this take another path; the decoy never is.
        "ifnull(h.had_status, 1)",
        "max("
        + _same(_STATE, "'in_custody'")
        + ", "
        + _flag(
            f"{_SQLITE_LEFT} > {_SQLITE_SINCE_RETENTION}",
            f"{_SQLITE_LEFT} <= {_SQLITE_SINCE_RETENTION}",
        )
        + ")",
    ]
    return " * ".join(terms)


_SQLITE_SHOWN = f"""
    q.json AS query, p.public_ref, p.given_name, p.family_name, p.country_of_birth,
    {_STATE} AS custody_state, {_SINCE} AS status_since, {_CHANGED} AS last_changed_at,
    f.name AS facility_name, f.address AS facility_address, f.city AS facility_city,
    f.state AS facility_state, f.postal_code AS facility_postal_code,
    f.phone AS facility_phone, f.time_zone AS facility_time_zone
"""
# CROSS JOIN fixes SQLite's join order: the facility comes last, so the rule (which needs
# every other table) is judged before it and it is read for public rows only.
_SQLITE_JOINED = f"""
    CROSS JOIN custody_status s ON s.person_id = p.id
    LEFT JOIN held_status h ON h.person_id = p.id AND h.batch_id = {_HELD}
    CROSS JOIN publication_policy pol
    LEFT JOIN facilities f ON f.id = {_FACILITY}
"""

# The query: [a_number, country]. The probe yields the id of the person with that
# A-number, or the decoy's (0).
_SQLITE_BY_A_NUMBER = f"""
CREATE VIEW public_search_by_a_number AS
SELECT {_SQLITE_SHOWN}
FROM json_each q
CROSS JOIN persons p
{_SQLITE_JOINED}
WHERE q.key = 0
  AND p.id = (
      SELECT x.id * {_same("x.a_number", _json(0))}
      FROM persons x
      WHERE x.a_number >= {_json(0)}
      ORDER BY x.a_number
      LIMIT 1)
  AND {_sqlite_rule(_same("p.a_number", _json(0)), _json(1))} = 1
"""

# The query: [given_key, family_key, country, date_of_birth or null]. The probe yields
# the key searched for, or the decoy's.
_SQLITE_FOUND = _same("x.family_key", _json(1)) + " * " + _same("x.given_key", _json(0))
_SQLITE_BY_NAME = f"""
CREATE VIEW public_search_by_name AS
SELECT {_SQLITE_SHOWN}
FROM json_each q
CROSS JOIN person_names n
CROSS JOIN persons p ON p.id = n.person_id
{_SQLITE_JOINED}
WHERE q.key = 0
  AND (n.family_key, n.given_key) = (
      SELECT {_choose(_SQLITE_FOUND, _json(1), f"'{DECOY_KEY}'")},
             {_choose(_SQLITE_FOUND, _json(0), f"'{DECOY_KEY}'")}
      FROM person_names x
      WHERE (x.family_key, x.given_key) >= ({_json(1)}, {_json(0)})
      ORDER BY x.family_key, x.given_key
      LIMIT 1)
  AND {
    _sqlite_rule(
        _same("n.family_key", _json(1))
        + " * "
        + _same("n.given_key", _json(0))
        + " * ifnull("
        + _same("p.date_of_birth", _json(3))
        + ", 1)",
        _json(2),
    )
} = 1
"""


# The decoy's rows ----------------------------------------------------------------------------


def _insert_decoy() -> None:
    persons = sa.table(
        "persons",
        sa.column("id", BigId),
        sa.column("a_number", sa.String),
        sa.column("public_ref", sa.String),
        sa.column("given_name", sa.String),
        sa.column("family_name", sa.String),
        sa.column("date_of_birth", sa.Date),
        sa.column("country_of_birth", sa.String),
        sa.column("protection", sa.String),
        sa.column("created_at", UTCDateTime),
        sa.column("updated_at", UTCDateTime),
    )
    names = sa.table(
        "person_names",
        sa.column("id", BigId),
        sa.column("person_id", BigId),
        sa.column("given_name", sa.String),
        sa.column("family_name", sa.String),
        sa.column("given_key", sa.String),
        sa.column("family_key", sa.String),
        sa.column("is_primary", sa.Integer),
    )
    events = sa.table(
        "custody_events",
        sa.column("id", BigId),
        sa.column("event_id", sa.String),
        sa.column("person_id", BigId),
        sa.column("kind", sa.String),
        sa.column("occurred_at", UTCDateTime),
        sa.column("sequence", sa.Integer),
        sa.column("received_at", UTCDateTime),
        sa.column("details", sa.JSON),
        sa.column("content_hash", sa.String),
        sa.column("origin", sa.String),
    )
    status = sa.table(
        "custody_status",
        sa.column("person_id", BigId),
        sa.column("state", sa.String),
        sa.column("event_pk", BigId),
        sa.column("event_id", sa.String),
        sa.column("occurred_at", UTCDateTime),
        sa.column("sequence", sa.Integer),
        sa.column("left_custody_at", UTCDateTime),
        sa.column("updated_at", UTCDateTime),
    )
    op.bulk_insert(
        persons,
        [
            {
                "id": DECOY_ID,
                "a_number": DECOY_A_NUMBER,
                "public_ref": "decoy-never-public",
                "given_name": "(decoy)",
                "family_name": "(never public, migration 0010)",
                "date_of_birth": date(1900, 1, 1),
                "country_of_birth": "ZZ",
                "protection": "protected",
                "created_at": _LONG_AGO,
                "updated_at": _LONG_AGO,
            }
        ],
    )
    op.bulk_insert(
        names,
        [
            {
                "id": DECOY_ID,
                "person_id": DECOY_ID,
                "given_name": "(decoy)",
                "family_name": "(never public, migration 0010)",
                "given_key": DECOY_KEY,
                "family_key": DECOY_KEY,
                "is_primary": 1,
            },
            {
                "id": DECOY_ID - 1,
                "person_id": DECOY_ID,
                "given_name": "(decoy)",
                "family_name": "(never public, migration 0010)",
                "given_key": DECOY_LAST_KEY,
                "family_key": DECOY_LAST_KEY,
                "is_primary": 0,
            },
        ],
    )
    op.bulk_insert(
        events,
        [
            {
                "id": DECOY_ID,
                "event_id": DECOY_EVENT_ID,
                "person_id": DECOY_ID,
                "kind": "removed",
                "occurred_at": _LONG_AGO,
                "sequence": 0,
                "received_at": _LONG_AGO,
                "details": {},
                "content_hash": "0" * 64,
                "origin": "decoy",
            }
        ],
    )
    op.bulk_insert(
        status,
        [
            {
                "person_id": DECOY_ID,
                "state": "removed",
                "event_pk": DECOY_ID,
                "event_id": DECOY_EVENT_ID,
                "occurred_at": _LONG_AGO,
                "sequence": 0,
                "left_custody_at": _LONG_AGO,
                "updated_at": _LONG_AGO,
            }
        ],
    )


def upgrade() -> None:
    _insert_decoy()
    if op.get_bind().dialect.name != "postgresql":
        op.execute(_SQLITE_BY_A_NUMBER)
        op.execute(_SQLITE_BY_NAME)
        return
    op.execute(_PG_BY_A_NUMBER)
    op.execute(_PG_BY_NAME)
    for signature in _PG_SIGNATURES.values():
        # Functions may be run by anyone unless told otherwise.
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {PUBLIC_ROLE}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for signature in _PG_SIGNATURES.values():
            op.execute(f"DROP FUNCTION {signature}")
    else:
        for view in SEARCHES:
            op.execute(f"DROP VIEW {view}")
    for table, key in (
        ("custody_status", "person_id"),
        ("custody_events", "id"),
        ("person_names", "person_id"),
        ("persons", "id"),
    ):
        op.execute(f"DELETE FROM {table} WHERE {key} = {DECOY_ID}")

"""A search for a hidden person does the same work in the database as a search for nobody
(migrations 0010 and 0011), counted deterministically, never timed (bench/lookup_timing.py
times it).

SQLite: the virtual machine's progress handler, called at every instruction boundary it
checks, counts the instructions a search runs; each table is read by key, never scanned.
PostgreSQL: auto_explain logs the plan of every statement the search runs, nested ones
included, with the rows each node returned and the buffers it read; they must be the same.
Both run through the prepared lookups on the public role's own connections, as the server
runs them.
"""

import json
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any, NamedTuple

import pytest
from sqlalchemy import Engine

from safevine.domain.names import fold_name
from safevine.store.public.connection import make_public_engine
from safevine.store.public.prepared_lookup import PreparedLookups
from tests.canaries import NEVER_EXISTED, NON_PUBLIC, PUBLIC, Canary, plant

Search = Callable[[], object]


def _lookups(engine: Engine) -> Iterator[PreparedLookups]:
    plant(engine)
    public = make_public_engine(engine.url.render_as_string(hide_password=False))
    yield PreparedLookups(public)
    public.dispose()


@pytest.fixture
def sqlite_lookups(sqlite_engine: Engine) -> Iterator[PreparedLookups]:
    yield from _lookups(sqlite_engine)


@pytest.fixture
def postgres_lookups(postgres_engine: Engine) -> Iterator[PreparedLookups]:
    plant(postgres_engine)
    # As autovacuum would: the canaries' held statuses, copied and dropped while their
    # feed was judged, leave dead index entries behind, which a search must look past (a
    # heap page more) until then. The decoy has none. BENCHMARKS.md says what remains.
    with postgres_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.exec_driver_sql("VACUUM")
    public = make_public_engine(postgres_engine.url.render_as_string(hide_password=False))
    yield PreparedLookups(public)
    public.dispose()


def _by_a_number(lookups: PreparedLookups, a_number: str, country: str) -> Search:
    return lambda: lookups.by_a_number(a_number, country)


def _by_name(
    lookups: PreparedLookups, given: str, family: str, country: str, born: date | None
) -> Search:
    return lambda: lookups.by_name(fold_name(given), fold_name(family), country, born)


def _searches(lookups: PreparedLookups, canary: Canary) -> dict[str, Search]:
    return {
        "a_number": _by_a_number(lookups, canary.a_number, canary.country),
        "name": _by_name(lookups, canary.given, canary.family, canary.country, None),
        "name and birth": _by_name(
            lookups, canary.given, canary.family, canary.country, canary.born
        ),
    }


# SQLite ------------------------------------------------------------------------------------


def _instructions(lookups: PreparedLookups, search: Search) -> int:
    dbapi: Any = lookups._connection().connection.dbapi_connection
    counted = 0

    def count() -> int:
        nonlocal counted
        counted += 1
        return 0  # go on

    search()  # compiled and cached by the driver first
    dbapi.set_progress_handler(count, 1)
    try:
        assert search() == []
    finally:
        dbapi.set_progress_handler(None, 1)
    return counted


def test_sqlite_runs_the_same_instructions_for_a_hidden_person_as_for_nobody(
    sqlite_lookups: PreparedLookups,
) -> None:
    lookups = sqlite_lookups
    for how in ("a_number", "name", "name and birth"):
        nobody = _instructions(lookups, _searches(lookups, NEVER_EXISTED)[how])
        assert nobody > 100
        for canary in NON_PUBLIC:
            found = _instructions(lookups, _searches(lookups, canary)[how])
            if how == "a_number":
                assert found == nobody, (how, canary.kind)
            else:
                # One probe finds the first name at or after the one searched for. SQLite
                # rechecks that row against both parts of the name, and stops at the family
                # name when it differs: a name in a family no one has (nobody here) takes
                # a few instructions fewer than one whose family someone has. A made-up
                # given name in the hidden person's own family costs exactly the same.
                kin = _by_name(lookups, "Aaron", canary.family, canary.country, None)
                if how == "name and birth":
                    kin = _by_name(lookups, "Aaron", canary.family, canary.country, canary.born)
                assert found == _instructions(lookups, kin), (how, canary.kind)
                assert 0 < found - nobody <= 16, (how, canary.kind)
    # A-numbers before and after everyone's, and the decoy's own place, cost the same.
    for a_number in ("100000000", "999999999", PUBLIC.a_number[:-1] + "0"):
        search = _by_a_number(lookups, a_number, "GT")
        assert _instructions(lookups, search) == _instructions(
            lookups, _searches(lookups, NEVER_EXISTED)["a_number"]
        )


def test_sqlite_reads_every_table_by_key(sqlite_lookups: PreparedLookups) -> None:
    dbapi: Any = sqlite_lookups._connection().connection.dbapi_connection
    for view, values in (
        ("public_search_by_a_number", ("300000002", "GT")),
        ("public_search_by_name", ("zorayda", "velasquilla", "GT", None)),
    ):
        marks = ", ".join("?" * len(values))
        plan = [
            row[3]
            for row in dbapi.execute(
                f"EXPLAIN QUERY PLAN SELECT * FROM {view} WHERE query = json_array({marks})",
                values,
            )
        ]
        scans = [step for step in plan if step.startswith("SCAN")]
        # json_each over the terms searched for (q, and t0-t3 for each term of a name
        # search, migration 0025) and the one-row policy: no table is read whole.
        terms = [f"SCAN t{i} VIRTUAL TABLE INDEX 1:" for i in range(len(values))]
        wanted = [
            "SCAN q VIRTUAL TABLE INDEX 1:",
            *(terms if view == "public_search_by_name" else []),
            "SCAN pol",
        ]
        assert scans == wanted, plan
        assert not any("AUTOMATIC" in step for step in plan), plan
        if view == "public_search_by_name":
            # The probe bounds both parts of the name, not the family name alone.
            probe = (
                "SEARCH x USING COVERING INDEX ix_person_names_match ((family_key,given_key)>(?,?))"
            )
            assert probe in plan, plan


# PostgreSQL --------------------------------------------------------------------------------

_AUTO_EXPLAIN = (
    "LOAD 'auto_explain'",
    "SET auto_explain.log_min_duration = 0",
    "SET auto_explain.log_nested_statements = on",
    "SET auto_explain.log_analyze = on",
    "SET auto_explain.log_buffers = on",
    "SET auto_explain.log_timing = off",
    "SET auto_explain.log_format = json",
    "SET auto_explain.log_level = notice",
    # A handful of rows would be read whole; on a database of any size they are read by
    # key, as here.
    "SET enable_seqscan = off",
    # which prices every plan as if it had to, so far above jit_above_cost that each
    # statement would be compiled (a quarter of a second) and nothing more learned.
    "SET jit = off",
)


class Node(NamedTuple):
    kind: str
    index: str | None
    table: str | None
    rows: int
    loops: int
    buffers: int


def _nodes(node: dict[str, Any]) -> Iterator[Node]:
    yield Node(
        node["Node Type"],
        node.get("Index Name"),
        node.get("Relation Name"),
        node["Actual Rows"],
        node["Actual Loops"],
        node.get("Shared Hit Blocks", 0) + node.get("Shared Read Blocks", 0),
    )
    for child in node.get("Plans", []):
        yield from _nodes(child)


Plans = list[list[Node]]


def _plans(lookups: PreparedLookups, searches: list[Search], runs: int = 5) -> list[Plans]:
    """For each search, every statement it ran (the call, and the query inside the
    function), as its plan's nodes: type, index, table, rows, loops and buffers.

    The searches take turns, `runs` times. Each node must be the same in every run but
    for its buffers, of which the fewest count: they include the pages of the system
    catalogs and index metapages read again after the session's caches were cleared,
    which other sessions' schema changes cause at any time, and which only ever add."""
    dbapi: Any = lookups._connection().connection.dbapi_connection
    notices: list[str] = []

    def note(diagnostic: Any) -> None:
        notices.append(diagnostic.message_primary)

    for search in searches:
        for _ in range(3):
            search()  # the function compiled and its plan made and kept
    seen: list[list[Plans]] = [[] for _ in searches]
    dbapi.add_notice_handler(note)
    try:
        for _ in range(runs):
            for search, runs_of_it in zip(searches, seen, strict=True):
                notices.clear()
                assert search() == []
                plans = [json.loads(n[n.index("{") :]) for n in notices if '"Plan"' in n]
                assert len(plans) == 2, notices
                runs_of_it.append([list(_nodes(plan["Plan"])) for plan in plans])
    finally:
        dbapi.remove_notice_handler(note)
    return [_fewest(runs_of_it) for runs_of_it in seen]


def _fewest(runs: list[Plans]) -> Plans:
    shapes = {tuple(tuple(n._replace(buffers=0) for n in plan) for plan in run) for run in runs}
    assert len(shapes) == 1, shapes
    return [
        [
            node._replace(buffers=min(run[p][i].buffers for run in runs))
            for i, node in enumerate(plan)
        ]
        for p, plan in enumerate(runs[0])
    ]


def test_postgres_reads_the_same_rows_and_buffers_for_a_hidden_person_as_for_nobody(
    postgres_lookups: PreparedLookups,
) -> None:
    lookups = postgres_lookups
    dbapi: Any = lookups._connection().connection.dbapi_connection
    with dbapi.cursor() as cursor:
        # auto_explain is the superuser's to load and set; the searches run as the role.
        cursor.execute("RESET ROLE")
        for statement in _AUTO_EXPLAIN:
            cursor.execute(statement)
        cursor.execute("SET ROLE safevine_public")
    for how in ("a_number", "name", "name and birth"):
        nobody_search = _searches(lookups, NEVER_EXISTED)[how]
        for canary in NON_PUBLIC:
            nobody, found = _plans(lookups, [nobody_search, _searches(lookups, canary)[how]])
            # The next person's row is read through every join, as a hidden person's is.
            read = {node.table for plan in nobody for node in plan if node.rows}
            assert {"persons", "custody_status", "publication_policy"} <= read, (how, nobody)
            differing = [
                (p, i, a, b)
                for p, (ours, theirs) in enumerate(zip(found, nobody, strict=True))
                for i, (a, b) in enumerate(zip(ours, theirs, strict=False))
                if a != b
            ]
            assert found == nobody, "\n".join(map(str, [how, canary.kind, *differing]))
    for a_number in ("100000000", "999999999"):
        nobody, elsewhere = _plans(
            lookups,
            [_searches(lookups, NEVER_EXISTED)["a_number"], _by_a_number(lookups, a_number, "GT")],
        )
        assert elsewhere == nobody, a_number

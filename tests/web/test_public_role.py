"""The public path's database connections can read the public views and nothing else."""

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from safevine.store.public.connection import make_public_engine
from tests.canaries import NEVER_EXISTED, NON_PUBLIC, PUBLIC, Canary, plant

BASE_TABLES = [
    "persons",
    "person_names",
    "custody_events",
    "custody_status",
    "facilities",
    "protection_changes",
    "ingest_rejects",
    "publication_policy",
]


@pytest.mark.parametrize("table", BASE_TABLES)
def test_the_public_role_cannot_read_base_tables(postgres_engine: Engine, table: str) -> None:
    plant(postgres_engine)
    public = make_public_engine(postgres_engine.url.render_as_string(hide_password=False))
    try:
        with public.connect() as connection:
            assert connection.execute(text("SELECT current_user")).scalar() == "safevine_public"
            assert connection.execute(text("SELECT count(*) FROM public_persons")).scalar() == 1
            with pytest.raises(DBAPIError, match="permission denied"):
                connection.execute(text(f"SELECT * FROM {table}"))
    finally:
        public.dispose()


SEARCHES = {
    "public_search_by_a_number": ("a_number", "country"),
    "public_search_by_name": ("given_key", "family_key", "country", "born"),
}


def _search_arguments(name: str, canary: Canary) -> dict[str, object]:
    values = {
        "a_number": canary.a_number,
        "country": canary.country,
        "given_key": canary.given.casefold(),
        "family_key": canary.family.casefold(),
        "born": None,
    }
    return {key: values[key] for key in SEARCHES[name]}


def test_the_public_role_searches_only_through_its_definer_functions(
    postgres_engine: Engine,
) -> None:
    """The searches (migration 0010) read base tables with their owner's rights: only the
    public role may run them, with a search path of their own, and they show only the
    public; the role itself still reads no base table (above)."""
    plant(postgres_engine)
    with postgres_engine.connect() as connection:
        functions = connection.execute(
            text(
                "SELECT proname, prosecdef, proconfig, proacl::text[] FROM pg_proc "
                "WHERE proname LIKE 'public_search_%' ORDER BY proname"
            )
        ).all()
    assert [f.proname for f in functions] == sorted(SEARCHES)
    for function in functions:
        assert function.prosecdef  # SECURITY DEFINER
        assert "search_path=public, pg_temp" in function.proconfig
        grantees = {entry.split("=")[0] for entry in function.proacl}
        assert "" not in grantees  # PUBLIC may not run it
        assert "safevine_public" in grantees
    public = make_public_engine(postgres_engine.url.render_as_string(hide_password=False))
    try:
        with public.connect() as connection:
            for name, parameters in SEARCHES.items():
                call = f"SELECT public_ref FROM {name}({', '.join(':' + p for p in parameters)})"
                for canary in [NEVER_EXISTED, *NON_PUBLIC]:
                    found = connection.execute(text(call), _search_arguments(name, canary)).all()
                    assert found == [], (name, canary.kind)
                found = connection.execute(text(call), _search_arguments(name, PUBLIC)).all()
                assert len(found) == 1, name
    finally:
        public.dispose()


def test_the_public_path_on_sqlite_searches_through_its_views(sqlite_engine: Engine) -> None:
    """The search views (migration 0010) are readable by the public path; they show only
    the public, and nothing at all without a search."""
    plant(sqlite_engine)
    public = make_public_engine(sqlite_engine.url.render_as_string(hide_password=False))
    try:
        with public.connect() as connection:
            for name, parameters in SEARCHES.items():
                assert connection.execute(text(f"SELECT * FROM {name}")).all() == []
                query = f"json_array({', '.join(':' + p for p in parameters)})"
                call = f"SELECT public_ref FROM {name} WHERE query = {query}"
                for canary in [NEVER_EXISTED, *NON_PUBLIC]:
                    found = connection.execute(text(call), _search_arguments(name, canary)).all()
                    assert found == [], (name, canary.kind)
                found = connection.execute(text(call), _search_arguments(name, PUBLIC)).all()
                assert len(found) == 1, name
            with pytest.raises(DBAPIError, match=r"not authorized|prohibited"):
                connection.execute(text("SELECT * FROM persons"))
    finally:
        public.dispose()


@pytest.mark.parametrize(
    "statement",
    [
        *(f"SELECT * FROM {table}" for table in BASE_TABLES),
        "SELECT a_number FROM persons WHERE a_number = '300000002'",
        "UPDATE persons SET protection = 'cleared'",
        "DELETE FROM registrations",
        "DROP VIEW public_persons",
    ],
)
def test_the_public_path_on_sqlite_has_the_same_walls(
    sqlite_engine: Engine, statement: str
) -> None:
    plant(sqlite_engine)
    public = make_public_engine(sqlite_engine.url.render_as_string(hide_password=False))
    try:
        with public.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM public_persons")).scalar() == 1
            assert connection.execute(text("SELECT count(*) FROM registrations")).scalar() == 0
            with pytest.raises(DBAPIError, match=r"not authorized|prohibited"):
                connection.execute(text(statement))
    finally:
        public.dispose()

"""The public path's database connections can read the public views and nothing else."""

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from safevine.store.public.connection import make_public_engine
from tests.canaries import plant

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

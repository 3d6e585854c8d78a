"""Facility ids by code, as a feed asks for them once a chunk."""

from sqlalchemy import Engine

from safevine.store.records.facilities import FacilityInput, facility_ids, upsert_facilities


def test_ids_of_known_codes_only_matched_exactly(engine: Engine) -> None:
    with engine.begin() as connection:
        upsert_facilities(
            connection,
            [FacilityInput(code, f"Facility {code}") for code in ("ABC", "abd", "Ñ-1", "X%_")],
        )
    with engine.connect() as connection:
        stored = dict(connection.exec_driver_sql("SELECT code, id FROM facilities").all())
        asked = ["ABC", "ABC", "abc", "abd", "Ñ-1", "X%_", "X", "", "nowhere", "'; --"]
        assert facility_ids(connection, asked) == {
            code: stored[code] for code in ("ABC", "abd", "Ñ-1", "X%_")
        }
        assert facility_ids(connection, []) == {}
        assert facility_ids(connection, (c for c in ["abd"])) == {"abd": stored["abd"]}
        many = [f"Q{n}" for n in range(5_000)] + ["ABC"]
        assert facility_ids(connection, many) == {"ABC": stored["ABC"]}

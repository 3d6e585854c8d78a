"""Breaking the public path's database objects on purpose, the way a bad migration could:
tests that a failing or leaking projection is caught use these."""

from sqlalchemy import Connection, text

_FUNCTIONS = (
    "public_search_by_a_number(text, text)",
    "public_search_by_name(text, text, text, date)",
)
_SEARCHES = ("public_search_by_a_number", "public_search_by_name")

# What a search answers with (store/public/views.py), read without the publication rule.
_SHOWN = (
    "p.public_ref, p.given_name, p.family_name, p.country_of_birth, "
    "s.state AS custody_state, s.occurred_at AS status_since, "
    "s.updated_at AS last_changed_at, f.name AS facility_name, "
    "f.address AS facility_address, f.city AS facility_city, f.state AS facility_state, "
    "f.postal_code AS facility_postal_code, f.phone AS facility_phone, "
    "f.time_zone AS facility_time_zone"
)
_FROM = "JOIN custody_status s ON s.person_id = p.id LEFT JOIN facilities f ON f.id = s.facility_id"


def drop_searches(connection: Connection) -> None:
    """Drop migration 0010's searches: every public search then fails in the database."""
    if connection.dialect.name == "postgresql":
        for function in _FUNCTIONS:
            connection.execute(text(f"DROP FUNCTION {function}"))
    else:
        for view in _SEARCHES:
            connection.execute(text(f"DROP VIEW {view}"))


def drop_public_reads(connection: Connection) -> None:
    """Drop everything the public path reads from: the searches and the views."""
    drop_searches(connection)
    connection.execute(text("DROP VIEW public_person_names"))
    connection.execute(text("DROP VIEW public_persons"))


def install_leaking_searches(connection: Connection) -> None:
    """Replace the searches by ones without the publication rule: everyone is found."""
    drop_searches(connection)
    if connection.dialect.name == "postgresql":
        returns = (
            "public_ref text, given_name text, family_name text, country_of_birth text, "
            "custody_state text, status_since timestamptz, last_changed_at timestamptz, "
            "facility_name text, facility_address text, facility_city text, "
            "facility_state text, facility_postal_code text, facility_phone text, "
            "facility_time_zone text"
        )
        shown = ", ".join(f"{column.split(' AS ')[0]}::text" for column in _SHOWN.split(", "))
        shown = shown.replace("s.occurred_at::text", "s.occurred_at").replace(
            "s.updated_at::text", "s.updated_at"
        )
        for function, where in (
            (_FUNCTIONS[0], "p.a_number = $1 AND p.country_of_birth = $2"),
            (
                _FUNCTIONS[1],
                "p.id IN (SELECT person_id FROM person_names n "
                "WHERE n.given_key = $1 AND n.family_key = $2) AND p.country_of_birth = $3",
            ),
        ):
            connection.execute(
                text(
                    f"CREATE FUNCTION {function} RETURNS TABLE ({returns}) LANGUAGE sql "
                    f"SECURITY DEFINER AS $$ SELECT {shown} FROM persons p {_FROM} "
                    f"WHERE {where} $$"
                )
            )
            connection.execute(text(f"GRANT EXECUTE ON FUNCTION {function} TO safevine_public"))
        return
    for view, where in (
        (
            _SEARCHES[0],
            "p.a_number = json_extract(q.json, '$[0]') "
            "AND p.country_of_birth = json_extract(q.json, '$[1]')",
        ),
        (
            _SEARCHES[1],
            "p.id IN (SELECT person_id FROM person_names n "
            "WHERE n.given_key = json_extract(q.json, '$[0]') "
            "AND n.family_key = json_extract(q.json, '$[1]')) "
            "AND p.country_of_birth = json_extract(q.json, '$[2]')",
        ),
    ):
        connection.execute(
            text(
                f"CREATE VIEW {view} AS SELECT q.json AS query, {_SHOWN} "
                f"FROM json_each q CROSS JOIN persons p {_FROM} WHERE q.key = 0 AND {where}"
            )
        )

"""Name search from the name index: public_person_names applies the publication rule to
the person its name belongs to, instead of joining the whole public_persons view.

A security_barrier view is planned as a closed subquery, so the old join to
public_persons computed that view for every person on every name query. The rule is now
written out against `persons` (the same joins and conditions as public_persons, less the
facility, which no condition reads), so PostgreSQL can start from ix_person_names_match
(family_key, given_key) and check the few persons found. The rows are the same.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in 0005: the status the public may see is the one from before the earliest
# unconfirmed batch that changed the person, or the current one.
_HELD = "(SELECT MIN(h2.batch_id) FROM held_status h2 WHERE h2.person_id = p.id)"
_STATE = "CASE WHEN h.person_id IS NULL THEN s.state ELSE h.state END"
_LEFT = "CASE WHEN h.person_id IS NULL THEN s.left_custody_at ELSE h.left_custody_at END"

_RULE = {
    "postgresql": f"""
        p.protection = 'cleared'
        AND p.date_of_birth IS NOT NULL
        AND (EXTRACT(YEAR FROM (now() AT TIME ZONE 'UTC'))::int
             - EXTRACT(YEAR FROM p.date_of_birth)::int
             - CASE WHEN to_char(now() AT TIME ZONE 'UTC', 'MM-DD')
                         < to_char(p.date_of_birth, 'MM-DD')
                    THEN 1 ELSE 0 END) >= 18
        AND ({_STATE} = 'in_custody'
             OR ({_LEFT} IS NOT NULL
                 AND {_LEFT} > now() - make_interval(days => pol.retention_days)))
    """,
    "sqlite": f"""
        p.protection = 'cleared'
        AND p.date_of_birth IS NOT NULL
        AND (CAST(strftime('%Y', 'now') AS INTEGER)
             - CAST(strftime('%Y', p.date_of_birth) AS INTEGER)
             - CASE WHEN strftime('%m-%d', 'now') < strftime('%m-%d', p.date_of_birth)
                    THEN 1 ELSE 0 END) >= 18
        AND ({_STATE} = 'in_custody'
             OR ({_LEFT} IS NOT NULL
                 AND julianday({_LEFT}) > julianday('now') - pol.retention_days))
    """,
}

# One row per name of a person public_persons shows: persons.public_ref is unique, and
# public_persons has one row per person and policy row, as here (its LEFT JOIN to
# facilities is on the primary key, so it neither adds nor removes rows).
_PUBLIC_NAMES = f"""
    SELECT p.public_ref, n.given_key, n.family_key, p.date_of_birth
    FROM person_names n
    JOIN persons p ON p.id = n.person_id
    JOIN custody_status s ON s.person_id = p.id
    LEFT JOIN held_status h ON h.person_id = p.id AND h.batch_id = {_HELD}
    CROSS JOIN publication_policy pol
    WHERE (h.person_id IS NULL OR h.had_status = 1) AND {{rule}}
"""

# 0005's definition, restored by the downgrade.
_PUBLIC_NAMES_0005 = """
    SELECT pp.public_ref, n.given_key, n.family_key, p.date_of_birth
    FROM person_names n
    JOIN persons p ON p.id = n.person_id
    JOIN public_persons pp ON pp.public_ref = p.public_ref
"""


def _replace_names_view(definition: str) -> None:
    dialect = op.get_bind().dialect.name
    barrier = " WITH (security_barrier = true)" if dialect == "postgresql" else ""
    op.execute("DROP VIEW public_person_names")
    op.execute(f"CREATE VIEW public_person_names{barrier} AS {definition}")
    if dialect == "postgresql":
        op.execute("GRANT SELECT ON public_person_names TO safevine_public")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    _replace_names_view(_PUBLIC_NAMES.format(rule=_RULE[dialect]))


def downgrade() -> None:
    _replace_names_view(_PUBLIC_NAMES_0005)

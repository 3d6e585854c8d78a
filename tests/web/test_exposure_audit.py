"""`safevine audit exposure`: finds nobody on a sound database, and catches a broken one."""

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine, text

from safevine.exposure_audit import audit_exposure
from safevine.store.records.persons import person_ids_by_a_number
from tests.canaries import NON_PUBLIC, plant
from tests.public_schema import install_leaking_searches
from tests.web.conftest import settings_for


def test_the_audit_passes_over_canaries_of_every_kind(engine: Engine) -> None:
    plant(engine)
    report = audit_exposure(settings_for(engine), engine)
    assert report.passed
    assert report.persons_checked == len(NON_PUBLIC)
    assert report.searches == len(NON_PUBLIC) * 3 * 2  # A-number, name, name + birth date


def test_the_audit_catches_a_projection_that_leaks(engine: Engine) -> None:
    """Break the public views and searches the way a bad migration could: drop the
    publication rule."""
    plant(engine)
    with engine.begin() as connection:
        install_leaking_searches(connection)
        connection.execute(text("DROP VIEW public_person_names"))
        connection.execute(text("DROP VIEW public_persons"))
        connection.execute(
            text(
                "CREATE VIEW public_persons AS SELECT p.public_ref, p.a_number, p.given_name, "
                "p.family_name, p.country_of_birth, s.state AS custody_state, "
                "s.occurred_at AS status_since, s.updated_at AS last_changed_at, "
                "f.name AS facility_name, f.address AS facility_address, f.city AS facility_city, "
                "f.state AS facility_state, f.postal_code AS facility_postal_code, "
                "f.phone AS facility_phone, f.time_zone AS facility_time_zone FROM persons p "
                "JOIN custody_status s ON s.person_id = p.id "
                "LEFT JOIN facilities f ON f.id = s.facility_id"
            )
        )
        connection.execute(
            text(
                "CREATE VIEW public_person_names AS SELECT p.public_ref, n.given_key, "
                "n.family_key, p.date_of_birth FROM person_names n "
                "JOIN persons p ON p.id = n.person_id"
            )
        )
        if engine.dialect.name == "postgresql":
            connection.execute(
                text("GRANT SELECT ON public_persons, public_person_names TO safevine_public")
            )
        ids = person_ids_by_a_number(connection, [c.a_number for c in NON_PUBLIC])
    report = audit_exposure(settings_for(engine), engine)
    assert not report.passed
    assert sorted(report.exposed) == sorted(ids.values())


def test_the_command_lists_internal_ids_only(tmp_path: Path, sqlite_engine: Engine) -> None:
    plant(sqlite_engine)
    url = sqlite_engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "SAFEVINE_DATABASE_URL": url}
    command = [str(Path(sys.executable).parent / "safevine"), "audit", "exposure", "--json"]
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] and report["exposed"] == [] and report["persons_checked"] == 4
    for canary in NON_PUBLIC:
        for identifier in canary.identifiers:
            assert identifier not in result.stdout + result.stderr

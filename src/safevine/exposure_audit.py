"""The exposure audit: every non-public person, searched for through the real HTTP app.

It plants nothing. It takes the people the public must never see, searches for each of
them by every identifier combination on the page and the API, and reports (by internal
id only) anyone who shows up.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from sqlalchemy import Engine, select

from safevine.config import Settings
from safevine.domain.event_kinds import CustodyState
from safevine.domain.protection import Protection
from safevine.domain.publication import is_public
from safevine.store.decoy import real_names, real_persons
from safevine.store.schema import custody_status, person_names, persons
from safevine.web import csrf
from safevine.web.public_app import create_public_app
from safevine.web.server import background_server

RESULT_MARKER = 'class="result"'


@dataclass(frozen=True)
class Probe:
    person_id: int
    body: dict[str, str]


@dataclass
class ExposureReport:
    persons_checked: int = 0
    searches: int = 0
    exposed: list[int] = field(default_factory=list)
    # Searches that did not get a clean 200 answer: not proven safe, so they fail the audit.
    unverified: list[int] = field(default_factory=list)
    # Persons with no country of birth: every public search needs one, so none reaches them.
    unreachable: int = 0

    @property
    def passed(self) -> bool:
        return not self.exposed and not self.unverified


def non_public_probes(engine: Engine, retention_days: int) -> Iterator[Probe]:
    """Every identifier combination a public search accepts, for every non-public person.

    Who is non-public is decided here by the domain rule over the records, not by the
    public views: the audit must catch a view that has gone wrong, so it cannot trust it.
    """
    now = datetime.now(UTC)
    with engine.connect() as connection:
        people = connection.execute(
            select(
                persons.c.id,
                persons.c.a_number,
                persons.c.protection,
                persons.c.country_of_birth,
                persons.c.date_of_birth,
                custody_status.c.state,
                custody_status.c.left_custody_at,
            )
            .outerjoin(custody_status, custody_status.c.person_id == persons.c.id)
            # The decoy is nobody: no search can name it, and the tests search for it.
            .where(real_persons())
            .order_by(persons.c.id)
        ).all()
        names: dict[int, list[tuple[str, str]]] = {}
        for row in connection.execute(
            select(
                person_names.c.person_id, person_names.c.given_name, person_names.c.family_name
            ).where(real_names())
        ):
            names.setdefault(row.person_id, []).append((row.given_name, row.family_name))
    for person in people:
        public = is_public(
            protection=Protection(person.protection),
            date_of_birth=person.date_of_birth,
            state=CustodyState(person.state) if person.state else None,
            left_custody_at=person.left_custody_at,
            now=now,
            retention_days=retention_days,
        )
        if public:
            continue
        country = person.country_of_birth
        if country is None:
            yield Probe(person.id, {})
            continue
        yield Probe(person.id, {"a_number": person.a_number, "country_of_birth": country})
        for given, family in names.get(person.id, []):
            by_name = {"given_name": given, "family_name": family, "country_of_birth": country}
            yield Probe(person.id, by_name)
            if person.date_of_birth:
                yield Probe(
                    person.id, {**by_name, "date_of_birth": person.date_of_birth.isoformat()}
                )


def audit_exposure(settings: Settings, records: Engine) -> ExposureReport:
    """Search for every non-public person through a live app; rate limits are off for it."""
    audit_settings = Settings(**{**settings.__dict__, "rate_limits_enabled": False})
    app = create_public_app(audit_settings)
    report = ExposureReport()
    seen: set[int] = set()
    with background_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        client.get("/")
        token = client.cookies.get(csrf.COOKIE) or ""
        for probe in non_public_probes(records, settings.retention_days):
            seen.add(probe.person_id)
            if not probe.body:
                report.unreachable += 1
                continue
            api = client.post("/api/v1/search", json=probe.body)
            page = client.post("/", data={**probe.body, csrf.FIELD: token})
            report.searches += 2
            if api.status_code != 200 or page.status_code != 200:
                _note(report.unverified, probe.person_id)
            elif api.json().get("results") != [] or RESULT_MARKER in page.text:
                _note(report.exposed, probe.person_id)
    app.state.safevine.public_engine.dispose()
    report.persons_checked = len(seen)
    return report


def _note(found: list[int], person_id: int) -> None:
    if person_id not in found:
        found.append(person_id)

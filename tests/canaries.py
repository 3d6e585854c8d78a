"""Canary people: one public person and one of each kind of non-public person.

Every public-surface test plants these and asserts that no canary identifier appears
anywhere the public can see. Their names are unusual on purpose, so a leak is unmistakable.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine

from safevine.ingest.events import ingest_events
from safevine.ingest.protections import ingest_protections
from tests.builders import NOW, csv_lines, days_ago, event, jsonl, load_facilities, person


@dataclass(frozen=True)
class Canary:
    kind: str
    a_number: str
    given: str
    family: str
    country: str = "GT"
    born: date = date(1988, 4, 12)

    @property
    def identifiers(self) -> list[str]:
        """What must never leak: the A-number in its spellings, and the names."""
        n = self.a_number
        return [n, f"A{n}", f"A-{n[0:3]}-{n[3:6]}-{n[6:9]}", self.given, self.family]

    def by_a_number(self) -> dict[str, str]:
        return {"a_number": self.a_number, "country_of_birth": self.country}

    def by_name(self) -> dict[str, str]:
        return {
            "given_name": self.given,
            "family_name": self.family,
            "country_of_birth": self.country,
        }


def _years_ago(years: int, extra_days: int = 0) -> date:
    today = datetime.now(UTC).date()
    try:
        return today.replace(year=today.year - years) + timedelta(days=extra_days)
    except ValueError:
        return today.replace(year=today.year - years, day=28) + timedelta(days=extra_days)


PUBLIC = Canary("public", "300000001", "Marisol", "Quintanilla", "MX")
PROTECTED = Canary("protected", "300000002", "Zorayda", "Velasquilla")
UNSCREENED = Canary("unscreened", "300000003", "Ximena", "Oyarzabalde")
# Half a year short of 18, so a minor all through a run that crosses midnight (the day's edge
# itself is tested in tests/store/test_public_projection.py).
MINOR = Canary("minor", "300000004", "Yulissa", "Barrientosa", born=_years_ago(18, 180))
AGED_OUT = Canary("aged_out", "300000005", "Wendolyn", "Arrechedera")
NEVER_EXISTED = Canary("never_existed", "300000009", "Evaristo", "Nuncaestuvo")
NON_PUBLIC = [PROTECTED, UNSCREENED, MINOR, AGED_OUT]


def plant(engine: Engine, *, with_non_public: bool = True) -> None:
    """The public canary, plus (by default) every kind of non-public canary."""
    load_facilities(engine, "F1")
    people = [PUBLIC, *(NON_PUBLIC if with_non_public else [])]
    records = []
    for c in people:
        who = person(c.a_number, c.given, c.family, born=c.born, country=c.country)
        records.append(event(f"book-{c.a_number}", "booked", days_ago(90), who))
        if c is AGED_OUT:
            records.append(event(f"rel-{c.a_number}", "released", days_ago(61), who, reason="bond"))
    summary = ingest_events(engine, jsonl(*records), source="canaries.jsonl", fmt="jsonl")
    assert summary.rejected == 0
    today = NOW.date().isoformat()
    rows = [[c.a_number, "cleared", today] for c in people if c is not UNSCREENED]
    rows += [[PROTECTED.a_number, "protected", today]] if with_non_public else []
    summary = ingest_protections(
        engine, csv_lines(["a_number", "status", "as_of"], *rows), source="screening.csv"
    )
    assert summary.rejected == 0

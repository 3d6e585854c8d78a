"""The national roster sweep: a snapshot of everyone in custody, diffed and applied.

The population is bulk-loaded (`dataset.load_population`), as a long-running system
would hold it. Then two full snapshots go through the real path, `ingest_roster` with
`scope="all"`, each timed from the call to its return (staging, diff, judgement, derived
events, bookkeeping):

1. one that matches the population exactly: the steady-state cost of the sweep that
   runs every 15 minutes and finds nothing new;
2. one with `scale.roster_churn` churn: bookings of new people, transfers between
   facilities and releases (people absent from the snapshot), spread evenly over every
   facility so no facility's share trips the hold thresholds.

The ceiling is loading the same CSV rows into a bare table with `executemany`.
Usage: python -m bench.roster_sweep [smoke|quick|full] [sqlite|postgresql]
"""

import csv
import io
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, column, func, insert, select, table

from bench.dataset import (
    START,
    Person,
    home_facility,
    load_facilities,
    load_population,
    people,
    roster_lines,
    settle,
    write_lines,
)
from bench.harness import SCALES, Context, Databases, Result, Target
from safevine.domain.batch_thresholds import Thresholds
from safevine.ingest.roster import ingest_roster
from safevine.ingest.summary import IngestSummary
from safevine.store.engine import make_engine
from safevine.store.schema import custody_events, custody_status, facilities, persons

# Two sweeps 15 minutes apart, after every booking `load_population` writes (all before
# START) and before the day the benchmark runs, so no snapshot is dated in the future.
FIRST_AT = START + timedelta(days=30, hours=6)
SECOND_AT = FIRST_AT + timedelta(minutes=15)
# Shares of the churn: as many bookings as releases keeps the population steady.
BOOKED_SHARE, TRANSFERRED_SHARE = 0.40, 0.20
CEILING_CHUNK = 20_000
SPOT_CHECKS = 5


@dataclass(frozen=True)
class Churn:
    """What the second snapshot changes, by person index (newcomers by their own list)."""

    placement: list[tuple[Person, str]]
    released: list[int]
    transferred: dict[int, str]
    booked: list[tuple[Person, str]]

    @property
    def events(self) -> int:
        return len(self.released) + len(self.transferred) + len(self.booked)


def run(ctx: Context) -> list[Result]:
    url = ctx.databases.fresh("roster")
    engine = make_engine(url)
    try:
        return [_run(ctx, engine)]
    finally:
        engine.dispose()


def _run(ctx: Context, engine: Engine) -> Result:
    scale = ctx.scale
    began = time.perf_counter()
    codes = load_facilities(engine, scale.roster_facilities)
    population = people(scale.roster_people, ctx.seed)
    load_population(engine, population, codes, seed=ctx.seed)
    settle(engine)
    setup_s = time.perf_counter() - began
    home = [home_facility(i, codes) for i in range(len(population))]
    # Thresholds fixed at their defaults, so the environment cannot change the outcome.
    thresholds = Thresholds()

    first = write_lines(
        ctx.folder / "roster-unchanged.csv",
        roster_lines(FIRST_AT, list(zip(population, home, strict=True))),
    )
    unchanged_s, unchanged = _sweep(engine, first, thresholds)
    _expect(unchanged, len(population), 0, "unchanged sweep")

    churn = _churn(population, home, codes, scale.roster_churn, ctx.seed)
    second = write_lines(ctx.folder / "roster-churn.csv", roster_lines(SECOND_AT, churn.placement))
    churn_s, churned = _sweep(engine, second, thresholds)
    _expect(churned, len(churn.placement), churn.events, "churn sweep")
    _spot_check(engine, population, home, churn, ctx.seed)
    with engine.connect() as connection:
        stored = connection.execute(
            select(func.count())
            .select_from(custody_events)
            .where(custody_events.c.batch_id == churned.batch_id)
        ).scalar_one()
    if stored != churn.events:
        raise AssertionError(f"churn sweep stored {stored} events, expected {churn.events}")

    ceiling_s = _ceiling(ctx, engine, second)
    rows = len(churn.placement)
    return Result(
        "roster",
        ctx.db,
        figures={
            "facilities": len(codes),
            "people": len(population),
            "churn_share": scale.roster_churn,
            "unchanged_sweep_s": round(unchanged_s, 3),
            "churn_sweep_s": round(churn_s, 3),
            "derived_events": churned.derived_events,
            "rows_per_s": round(rows / churn_s, 1),
            "unchanged_rows_per_s": round(len(population) / unchanged_s, 1),
            "booked": len(churn.booked),
            "transferred": len(churn.transferred),
            "released": len(churn.released),
            "ceiling_stage_s": round(ceiling_s, 3),
            "setup_s": round(setup_s, 3),
        },
        ratio=round(ceiling_s / churn_s, 4),
        targets=[Target("churn sweep, diff and apply", churn_s, 60, "s", higher_is_better=False)],
        notes=[
            f"{len(population):,} people bulk-loaded into {len(codes):,} facilities, then two "
            "full snapshots through ingest_roster(scope='all'): one matching the population "
            f"(unchanged, {unchanged_s:.1f} s), one 15 minutes later with "
            f"{scale.roster_churn:.0%} churn ({churn_s:.1f} s): {len(churn.booked):,} "
            f"bookings, {len(churn.transferred):,} transfers, {len(churn.released):,} "
            "releases, spread evenly over every facility",
            "both sweeps completed with no rejects, derived events equal to the churn "
            "generated, and spot-checked custody statuses",
            "ratio = ceiling_stage_s / churn_sweep_s; the ceiling reads the same CSV and "
            f"loads its rows into a bare table with executemany ({CEILING_CHUNK:,} rows a "
            "statement, one transaction)",
            "hold thresholds fixed at their defaults (Thresholds()), not read from the environment",
        ],
    )


def _sweep(engine: Engine, path: Path, thresholds: Thresholds) -> tuple[float, IngestSummary]:
    began = time.perf_counter()
    with path.open("rb") as handle:
        summary = ingest_roster(
            engine, handle, source=path.name, scope="all", thresholds=thresholds
        )
    return time.perf_counter() - began, summary


def _expect(summary: IngestSummary, rows: int, events: int, what: str) -> None:
    problems = []
    if summary.status != "completed":
        problems.append(f"status {summary.status!r} ({'; '.join(summary.notes)})")
    if summary.rejected:
        problems.append(f"{summary.rejected} rejects, first {summary.rejects[:3]}")
    if summary.total != rows or summary.applied != rows:
        problems.append(f"total {summary.total} / applied {summary.applied}, expected {rows}")
    if summary.derived_events != events:
        problems.append(f"{summary.derived_events} derived events, expected {events}")
    if problems:
        raise AssertionError(f"{what}: " + "; ".join(problems))


def _churn(
    population: Sequence[Person], home: Sequence[str], codes: Sequence[str], share: float,
    seed: int,
) -> Churn:  # fmt: skip
    """Pick the people who move or leave uniformly over the whole population, and book
    newcomers into uniformly chosen facilities: every facility sees about the same share."""
    rng = random.Random(seed + 53)
    total = round(len(population) * share)
    booked_count = round(total * BOOKED_SHARE)
    transferred_count = round(total * TRANSFERRED_SHARE)
    released_count = total - booked_count - transferred_count
    moving = rng.sample(range(len(population)), transferred_count + released_count)
    released = sorted(moving[:released_count])
    transferred: dict[int, str] = {}
    for index in sorted(moving[released_count:]):
        to = rng.choice(codes)
        while to == home[index] and len(codes) > 1:
            to = rng.choice(codes)
        transferred[index] = to
    newcomers = people(booked_count, seed, offset=len(population))
    booked = [(p, rng.choice(codes)) for p in newcomers]
    gone = set(released)
    placement = [
        (p, transferred.get(i, home[i])) for i, p in enumerate(population) if i not in gone
    ]
    # Newcomers appear among the others, as a facility's roster would list them.
    for entry in booked:
        placement.insert(rng.randrange(len(placement) + 1), entry)
    return Churn(placement, released, transferred, booked)


def _spot_check(
    engine: Engine, population: Sequence[Person], home: Sequence[str], churn: Churn, seed: int
) -> None:
    """A few people of each kind: where custody_status says they are now."""
    rng = random.Random(seed + 59)
    moved = set(churn.released) | set(churn.transferred)
    still = [i for i in rng.sample(range(len(population)), 50) if i not in moved][:SPOT_CHECKS]
    expected: dict[str, tuple[str, str | None]] = {}
    for i in still:
        expected[population[i].a_number] = ("in_custody", home[i])
    for i in rng.sample(churn.released, min(SPOT_CHECKS, len(churn.released))):
        expected[population[i].a_number] = ("released", None)
    for i in rng.sample(sorted(churn.transferred), min(SPOT_CHECKS, len(churn.transferred))):
        expected[population[i].a_number] = ("in_custody", churn.transferred[i])
    for p, code in rng.sample(churn.booked, min(SPOT_CHECKS, len(churn.booked))):
        expected[p.a_number] = ("in_custody", code)
    with engine.connect() as connection:
        rows = connection.execute(
            select(persons.c.a_number, custody_status.c.state, facilities.c.code)
            .join(custody_status, custody_status.c.person_id == persons.c.id)
            .outerjoin(facilities, facilities.c.id == custody_status.c.facility_id)
            .where(persons.c.a_number.in_(sorted(expected)))
        ).all()
    found: dict[str, tuple[str, str | None]] = {a: (s, c) for a, s, c in rows}
    for a_number, (state, at) in expected.items():
        got = found.get(a_number)
        # A release keeps the facility the person left; only the state is checked.
        if got is None or got[0] != state or (at is not None and got[1] != at):
            raise AssertionError(f"{a_number}: custody status {got}, expected {(state, at)}")


_BARE_COLUMNS = (
    "snapshot_at", "facility_code", "a_number", "given_name", "family_name", "date_of_birth",
    "country_of_birth",
)  # fmt: skip


def _ceiling(ctx: Context, engine: Engine, path: Path) -> float:
    """Read the CSV and executemany its rows into a bare table, in one transaction."""
    ctx.databases.bare_table(
        engine, "bare_roster", ", ".join(f"{name} TEXT" for name in _BARE_COLUMNS)
    )
    bare = table("bare_roster", *(column(name) for name in _BARE_COLUMNS))
    began = time.perf_counter()
    with path.open("rb") as raw, engine.begin() as connection:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
        next(reader)
        batch: list[dict[str, str]] = []
        for row in reader:
            batch.append(dict(zip(_BARE_COLUMNS, row, strict=True)))
            if len(batch) == CEILING_CHUNK:
                connection.execute(insert(bare), batch)
                batch = []
        if batch:
            connection.execute(insert(bare), batch)
    return time.perf_counter() - began


def main(scale: str, db: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        databases = Databases(db, Path(folder))
        try:
            for result in run(Context(db, SCALES[scale], Path(folder), databases)):
                print(result.as_json())
        finally:
            if db == "postgresql":
                databases.close()


if __name__ == "__main__":
    main(
        sys.argv[1] if len(sys.argv) > 1 else "smoke",
        sys.argv[2] if len(sys.argv) > 2 else "sqlite",
    )

"""Event ingest through the real path, against a bare `executemany` of the same rows.

A long-running system is set up first (facilities, 90% of the people booked, active
registrations on cleared people), then one feed of `scale.events` records is ingested:
mixed kinds, exact resends, late arrivals and malformed records, with the outbox fan-out
to the registrations happening as it would in production.
"""

import gc
import json
import os
import time

from sqlalchemy import Engine, func, select, text

from bench.dataset import (
    event_feed,
    load_facilities,
    load_population,
    load_registrations,
    people,
    public_refs,
    settle,
    write_lines,
)
from bench.harness import Context, Result, Target, iter_chunks
from bench.process_cpu import server_cpu_since, server_processes
from bench.statement_floor import Floor, measure, snapshot
from safevine.contact_vault import ContactVault
from safevine.ingest.events import EVENT_CHUNK, ingest_events
from safevine.store.engine import make_engine
from safevine.store.public.tables import notifications

FACILITIES = 3_000
KNOWN_SHARE = 0.9

# Events a second the feed must reach (issue 20): half on PostgreSQL, whose server shares
# the two cores with this process.
RATE_TARGET = {"sqlite": 20_000, "postgresql": 10_000}


def run(ctx: Context) -> list[Result]:
    scale = ctx.scale
    url = ctx.databases.fresh("events")
    engine = make_engine(url)
    try:
        codes = load_facilities(engine, FACILITIES)
        everyone = people(scale.event_people, ctx.seed)
        known = everyone[: round(len(everyone) * KNOWN_SHARE)]
        load_population(engine, known, codes, seed=ctx.seed)
        vault = ContactVault(b"bench contact key, not a secret!")
        load_registrations(engine, vault, public_refs(engine), scale.registrations, ctx.seed)
        settle(engine)
        feed = event_feed(scale.events, known, everyone[len(known) :], codes, ctx.seed)
        path = write_lines(ctx.folder / "events.jsonl", feed.lines)
        loaded, booked = len(known), len(everyone) - len(known)
        # The generated people go before the timing: left in this process, Python's
        # collections would walk their objects, a cost no real ingest process carries.
        del everyone, known
        gc.collect()
        before = snapshot(url, ctx.folder) if ctx.db == "sqlite" else None

        server_before = server_processes(engine)
        began, began_cpu = time.perf_counter(), time.process_time()
        with path.open("rb") as handle:
            summary = ingest_events(engine, handle, source=path.name, fmt="jsonl")
        ingest_s = time.perf_counter() - began
        # This process's CPU: on a shared machine it separates a slower path from a
        # busier host, and on PostgreSQL it is the client's share of the work; the
        # server's processes did the rest (its connections stay pooled until the end).
        ingest_cpu_s = time.process_time() - began_cpu
        server_cpu_s = server_cpu_since(engine, server_before)
        with engine.connect() as connection:
            queued = connection.execute(select(func.count()).select_from(notifications)).scalar()
        ceiling_s, ceiling_cpu_s = _bare_insert(ctx, engine, feed.lines)
    finally:
        engine.dispose()
    # Untimed, after the feed: its statements alone, on SQLite (`statement_floor`).
    floor = None if before is None else measure(before, path, ctx.folder)

    problems = []
    if summary.status != "completed":
        problems.append(f"the feed ended {summary.status}: {summary.notes}")
    if summary.rejected != feed.malformed:
        problems.append(f"{summary.rejected} rejects for {feed.malformed} malformed records")
    if summary.duplicates < feed.duplicates:
        problems.append(f"{summary.duplicates} duplicates found of {feed.duplicates} planted")
    if problems:
        raise RuntimeError("event ingest benchmark went wrong: " + "; ".join(problems))
    rate = scale.events / ingest_s
    ceiling = scale.events / ceiling_s
    ratio = rate / ceiling
    return [
        Result(
            "events",
            ctx.db,
            figures={
                "events": scale.events,
                "people": scale.event_people,
                "registrations": scale.registrations,
                "applied": summary.applied,
                "duplicates": summary.duplicates,
                "rejected": summary.rejected,
                "late": feed.out_of_order,
                "notifications_queued": int(queued or 0),
                "ingest_s": ingest_s,
                "ingest_cpu_s": ingest_cpu_s,
                "ceiling_s": ceiling_s,
                "ceiling_cpu_s": ceiling_cpu_s,
                "events_per_s": rate,
                "ceiling_rows_per_s": ceiling,
                # PostgreSQL on this machine only: what its processes spent meanwhile.
                **({} if server_cpu_s is None else {"server_cpu_s": server_cpu_s}),
                **_bounds(ceiling_s, ingest_cpu_s, server_cpu_s, floor),
            },
            ratio=ratio,
            targets=[
                Target("events/s", rate, RATE_TARGET[ctx.db], "events/s"),
                Target("ratio to bare executemany", ratio, 0.25, "x"),
            ],
            notes=[
                f"{loaded:,} people and {scale.registrations:,} registrations loaded "
                f"before the timed feed; the feed books the other {booked:,}",
                *_bound_notes(floor),
            ],
        )
    ]


def _bounds(
    ceiling_s: float, client_cpu_s: float, server_cpu_s: float | None, floor: Floor | None
) -> dict[str, float]:
    """The best ratio to the ceiling that the feed's own work allows on this machine.

    SQLite: the feed's statements replayed alone (`statement_floor`), as SQLite's one
    writer runs them one after another whatever sends them. PostgreSQL: the client's and
    the server's CPU time spread over every core with none idle, the most any overlap of
    the two could give."""
    if floor is not None:
        return {
            "statements_s": floor.seconds,
            "statements_cpu_s": floor.cpu_seconds,
            "statements_commit_s": floor.commit_seconds,
            "statements_rows": floor.rows,
            "statements_ratio": ceiling_s / floor.seconds,
        }
    if server_cpu_s is None:
        return {}
    busy_s = (client_cpu_s + server_cpu_s) / (os.cpu_count() or 1)
    return {"all_cores_busy_s": busy_s, "all_cores_busy_ratio": ceiling_s / busy_s}


def _bound_notes(floor: Floor | None) -> list[str]:
    if floor is None:
        return []
    return [
        f"the feed's {floor.statements:,} statements ({floor.rows:,} rows) and commits "
        f"replayed alone: {floor.seconds:.1f} s, {floor.commit_seconds:.1f} s of it commits"
    ]


def _bare_insert(ctx: Context, engine: Engine, lines: list[bytes]) -> tuple[float, float]:
    """Wall and CPU seconds to insert the feed's well-formed, distinct records into a bare
    table."""
    rows: dict[str, dict[str, object]] = {}
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        rows[record["event_id"]] = {
            "event_id": record["event_id"],
            "kind": record["kind"],
            "occurred_at": record["occurred_at"],
            "facility_code": record.get("facility_code"),
            "a_number": record["person"]["a_number"],
            "body": line.decode(),
        }
    ctx.databases.bare_table(
        engine,
        "bare_events",
        "event_id VARCHAR(200) PRIMARY KEY, kind VARCHAR(20), occurred_at VARCHAR(40), "
        "facility_code VARCHAR(40), a_number VARCHAR(20), body TEXT",
    )
    insert = text(
        "INSERT INTO bare_events (event_id, kind, occurred_at, facility_code, a_number, body) "
        "VALUES (:event_id, :kind, :occurred_at, :facility_code, :a_number, :body)"
    )
    began, began_cpu = time.perf_counter(), time.process_time()
    # The same chunk size and one transaction per chunk, as the real path commits.
    for part in iter_chunks(list(rows.values()), EVENT_CHUNK):
        with engine.begin() as connection:
            connection.execute(insert, part)
    return time.perf_counter() - began, time.process_time() - began_cpu

"""Event ingest throughput against its ceiling, on a fresh SQLite file.

The ceiling is a plain `executemany` of the same rows into a bare table in the same
database and run; the figure that matters is the ratio, since absolute speed drifts with
the machine. Usage: python bench/ingest_events.py [EVENTS]
"""

import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from safevine.ingest.events import ingest_events
from safevine.ingest.facilities import ingest_facilities
from safevine.store import migrate
from safevine.store.engine import make_engine

SEED = 2017


def lines(count: int) -> list[bytes]:
    rng = random.Random(SEED)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    people = max(1, count // 3)
    kinds = ["booked", "transferred", "released", "hearing_scheduled"]
    out = []
    for i in range(count):
        who = rng.randrange(people)
        kind = rng.choice(kinds)
        record = {
            "event_id": f"bench-{i}",
            "kind": kind,
            "occurred_at": (start + timedelta(minutes=i)).isoformat(),
            "facility_code": f"B{rng.randrange(50):03d}",
            "person": {
                "a_number": f"3{who:08d}",
                "given_name": "Ana",
                "family_name": f"P{who}",
                "date_of_birth": "1990-01-01",
                "country_of_birth": "MX",
            },
        }
        if kind == "released":
            record["details"] = {"reason": "bond"}
        if kind == "hearing_scheduled":
            record["details"] = {"court": "Court", "hearing_at": "2026-12-01T09:00:00-05:00"}
        out.append(json.dumps(record).encode() + b"\n")
    return out


def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        migrate.upgrade(engine, 60)
        header = b"code,name,city,state\n"
        ingest_facilities(
            engine,
            [header] + [f"B{i:03d},Bench {i},Eloy,AZ\n".encode() for i in range(50)],
            source="bench",
        )
        feed = lines(count)
        began = time.perf_counter()
        summary = ingest_events(engine, feed, source="bench.jsonl", fmt="jsonl")
        ingest_s = time.perf_counter() - began
        rows = [{"a": json.loads(line)["event_id"], "b": line.decode()} for line in feed]
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE bare (a TEXT PRIMARY KEY, b TEXT)"))
        began = time.perf_counter()
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO bare (a, b) VALUES (:a, :b)"), rows)
        ceiling_s = time.perf_counter() - began
        engine.dispose()
    rate, ceiling = count / ingest_s, count / ceiling_s
    print(f"events: {count}, applied {summary.applied}, rejected {summary.rejected}")
    print(
        f"ingest: {rate:,.0f} events/s; ceiling (bare executemany): {ceiling:,.0f} rows/s; "
        f"ratio {rate / ceiling:.2f}"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)

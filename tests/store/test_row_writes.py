"""Many rows in one statement (`store.row_writes`): each row gets exactly its own values,
the fixed ones go on every row named, and nothing else changes; on SQLite and on
PostgreSQL, whose arrays carry NULLs, long text and every kind of character."""

from datetime import UTC, datetime

from sqlalchemy import Engine, select

from safevine.store.row_writes import insert_rows, update_rows
from safevine.store.schema import ingest_batches, ingest_rejects, purged_persons

AWKWARD = [
    "",
    "O'Brien; DROP TABLE persons",
    'quote " and \\ backslash',
    "ñandú 中文 🙂",
    "x" * 5000,
]


def _batch(engine: Engine) -> int:
    with engine.begin() as connection:
        return int(
            connection.execute(
                ingest_batches.insert()
                .values(
                    source="rows.csv", kind="events", status="done", started_at=datetime.now(UTC)
                )
                .returning(ingest_batches.c.id)
            ).scalar_one()
        )


def test_each_row_gets_its_own_values_and_no_other_row_changes(engine: Engine) -> None:
    batch = _batch(engine)
    count = 3_000  # past SQLite's and PostgreSQL's limits on bound parameters per list
    with engine.begin() as connection:
        insert_rows(
            connection,
            ingest_rejects,
            [
                {
                    "batch_id": batch,
                    "source": "rows.csv",
                    "created_at": datetime.now(UTC),
                    "line": line,
                    "field": f"field {line}",
                    "reason": "kept",
                    "raw": AWKWARD[line % len(AWKWARD)],
                }
                for line in range(1, count + 1)
            ],
        )
    with engine.connect() as connection:
        stored = connection.execute(
            select(ingest_rejects.c.id, ingest_rejects.c.line, ingest_rejects.c.raw).order_by(
                ingest_rejects.c.line
            )
        ).all()
    assert [(r.line, r.raw) for r in stored] == [
        (line, AWKWARD[line % len(AWKWARD)]) for line in range(1, count + 1)
    ]
    # Every other row: a field of its own, and the same reason and raw text for all.
    chosen = stored[::2]
    with engine.begin() as connection:
        update_rows(
            connection,
            ingest_rejects,
            "id",
            [{"id": r.id, "field": f"new {r.line} {AWKWARD[3]}"} for r in chosen],
            {"reason": "changed", "raw": ""},
        )
    with engine.connect() as connection:
        after = {
            r.line: r
            for r in connection.execute(
                select(
                    ingest_rejects.c.line,
                    ingest_rejects.c.field,
                    ingest_rejects.c.reason,
                    ingest_rejects.c.raw,
                )
            )
        }
    for r in stored:
        row = after[r.line]
        if r.line % 2 == 1:  # chosen: lines 1, 3, 5...
            expected = f"new {r.line} {AWKWARD[3]}"
            assert (row.field, row.reason, row.raw) == (expected, "changed", ""), r.line
        else:
            assert (row.field, row.reason, row.raw) == (f"field {r.line}", "kept", r.raw)


def test_nulls_travel_in_the_arrays(engine: Engine) -> None:
    batches = [_batch(engine) for _ in range(6)]
    messages = [None, "one", None, AWKWARD[2], AWKWARD[4], None]
    with engine.begin() as connection:
        update_rows(
            connection,
            ingest_batches,
            "id",
            [
                {"id": b, "message": m, "total": i}
                for i, (b, m) in enumerate(zip(batches, messages, strict=True))
            ],
        )
    with engine.connect() as connection:
        stored = connection.execute(
            select(ingest_batches.c.message, ingest_batches.c.total).order_by(ingest_batches.c.id)
        ).all()
    assert [tuple(r) for r in stored] == [(m, i) for i, m in enumerate(messages)]


def test_nothing_to_write_writes_nothing(engine: Engine) -> None:
    with engine.begin() as connection:
        insert_rows(connection, purged_persons, [])
        update_rows(connection, purged_persons, "person_id", [], {"returned_as": 1})
        assert connection.execute(select(purged_persons)).all() == []

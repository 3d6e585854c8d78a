"""UTC datetimes in a real SQLite file: the text SQLAlchemy stores, read back aware."""

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, create_engine, select, text

from safevine.store.types import UTCDateTime

metadata = MetaData()
stamps = Table(
    "stamps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime),
    Column("plain", DateTime),
)

MOMENTS = [
    datetime(2026, 11, 25, 14, 3, tzinfo=UTC),
    datetime(2026, 3, 1, 0, 0, 0, 999_999, tzinfo=timezone(timedelta(hours=-5))),
    datetime(999, 5, 6, 7, 8, 9, 12, tzinfo=timezone(timedelta(hours=5, minutes=30))),
]


def test_stored_text_is_what_sqlalchemy_stores_and_reads_back_aware(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'stamps.db'}")
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            stamps.insert(),
            [
                {"id": n, "at": m, "plain": m.astimezone(UTC).replace(tzinfo=None)}
                for n, m in enumerate(MOMENTS)
            ],
        )
        connection.execute(stamps.insert().values(id=99, at=None))
    with engine.connect() as connection:
        raw = connection.execute(text("SELECT at, plain FROM stamps WHERE id < 99 ORDER BY id"))
        for at, plain in raw:
            assert at == plain  # the text SQLAlchemy's own DateTime writes
        read = connection.execute(select(stamps.c.at).order_by(stamps.c.id)).scalars().all()
        # Text written by SQL itself (CURRENT_TIMESTAMP has no fraction) reads as well.
        connection.execute(text("UPDATE stamps SET at = '2026-11-25 14:03:00' WHERE id = 99"))
        written_by_sql = connection.execute(select(stamps.c.at).where(stamps.c.id == 99)).scalar()
        newest = connection.execute(
            select(stamps.c.at).where(stamps.c.at > MOMENTS[1]).order_by(stamps.c.id)
        ).scalars()
        assert list(newest) == [MOMENTS[0], datetime(2026, 11, 25, 14, 3, tzinfo=UTC)]
    assert read[:3] == MOMENTS and all(r.tzinfo is UTC for r in read[:3])
    assert read[3] is None
    assert written_by_sql == datetime(2026, 11, 25, 14, 3, tzinfo=UTC)
    engine.dispose()


def test_a_naive_datetime_is_refused(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'stamps.db'}")
    metadata.create_all(engine)
    with pytest.raises(Exception, match="naive datetime"), engine.begin() as connection:
        connection.execute(stamps.insert().values(id=1, at=datetime(2026, 11, 25)))
    engine.dispose()

"""What every benchmark shares: sizes, fresh databases, and results with targets and ratios.

A result carries its figures, the ceiling measured in the same run, and the targets the
issue sets; `met` is computed, never written by hand.
"""

import os
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from safevine.store import migrate
from safevine.store.engine import make_engine

ROOT = Path(__file__).resolve().parent.parent
SEED = 2017
RETENTION_DAYS = 60
POSTGRES_URL = os.environ.get(
    "SAFEVINE_BENCH_POSTGRES_URL",
    os.environ.get(
        "SAFEVINE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
)


@dataclass(frozen=True)
class Scale:
    """The sizes of one run. `full` is what the issue asks for; never shrink it to pass."""

    name: str
    events: int
    event_people: int
    registrations: int
    roster_facilities: int
    roster_people: int
    roster_churn: float
    search_persons: int
    search_seconds: int
    search_connections: int
    delivery_messages: int
    steady_rate: int
    steady_seconds: int
    timing_requests: int  # per class of search, in the lookup timing benchmark
    purge_persons: int


SCALES = {
    "full": Scale(
        "full", 1_000_000, 300_000, 100_000, 3_000, 2_000_000, 0.02, 1_000_000, 20, 32,
        100_000, 200, 30, 5_000, 2_000_000,
    ),
    "quick": Scale(
        "quick", 100_000, 30_000, 10_000, 3_000, 200_000, 0.02, 100_000, 8, 32,
        10_000, 200, 10, 2_000, 200_000,
    ),
    # Checks the harness end to end in the test suite; its figures mean nothing.
    "smoke": Scale(
        "smoke", 3_000, 1_000, 200, 12, 2_000, 0.02, 2_000, 1, 4, 200, 20, 2, 15, 2_000,
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Target:
    name: str
    value: float
    limit: float
    unit: str
    higher_is_better: bool = True

    @property
    def met(self) -> bool:
        return self.value >= self.limit if self.higher_is_better else self.value <= self.limit


@dataclass
class Result:
    """One benchmark on one database. `series` holds samples for the plots only."""

    benchmark: str
    db: str
    figures: dict[str, float]
    ratio: float | None = None
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    series: dict[str, list[float]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["targets"] = [{**asdict(t), "met": t.met} for t in self.targets]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Result":
        targets = [
            Target(t["name"], t["value"], t["limit"], t["unit"], t["higher_is_better"])
            for t in data.get("targets", [])
        ]
        return cls(
            data["benchmark"],
            data["db"],
            data["figures"],
            data.get("ratio"),
            targets,
            data.get("notes", []),
            data.get("series", {}),
        )


def postgres_available(url: str = POSTGRES_URL) -> bool:
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception:
        return False
    return True


class Databases:
    """Fresh migrated databases of one kind for a run; PostgreSQL ones are dropped after."""

    def __init__(self, kind: str, folder: Path, postgres_url: str = POSTGRES_URL) -> None:
        self.kind, self.folder, self.postgres_url = kind, folder, postgres_url
        self._created: list[str] = []

    def fresh(self, label: str) -> str:
        """The URL of a new, migrated, empty database."""
        if self.kind == "sqlite":
            path = self.folder / f"{label}-{uuid.uuid4().hex[:6]}.db"
            url = f"sqlite:///{path}"
        else:
            name = f"bench_{label}_{uuid.uuid4().hex[:6]}"
            with self._admin() as admin, admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            self._created.append(name)
            url = (
                make_url(self.postgres_url).set(database=name).render_as_string(hide_password=False)
            )
        engine = make_engine(url)
        migrate.upgrade(engine, RETENTION_DAYS)
        engine.dispose()
        return url

    def bare_table(self, engine: Engine, name: str, columns: str) -> None:
        with engine.begin() as connection:
            connection.execute(text(f"DROP TABLE IF EXISTS {name}"))
            connection.execute(text(f"CREATE TABLE {name} ({columns})"))

    def close(self) -> None:
        with self._admin() as admin, admin.connect() as connection:
            for name in self._created:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._created.clear()

    def _admin(self) -> "_Disposing":
        return _Disposing(create_engine(self.postgres_url, isolation_level="AUTOCOMMIT"))


class _Disposing:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __enter__(self) -> Engine:
        return self.engine

    def __exit__(self, *_: object) -> None:
        self.engine.dispose()


@dataclass
class Context:
    """What a benchmark gets: the database kind, the sizes and a scratch folder."""

    db: str
    scale: Scale
    folder: Path
    databases: Databases

    @property
    def seed(self) -> int:
        return SEED


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a live process (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def percentile(samples: list[float], share: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def iter_chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]

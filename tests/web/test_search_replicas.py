"""Public search served from a real PostgreSQL streaming replica: a protection committed
on the primary hides the person from every answer that starts after it, however far the
replica lags (here: with its replay paused, the replica still lists them)."""

import threading
import time
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import Engine, text

from safevine.config import ConfigError, Settings
from safevine.ingest.protections import ingest_protections
from safevine.store.engine import make_engine
from safevine.web.public_app import create_public_app
from safevine.web.server import background_server, free_port
from tests.builders import NOW, csv_lines
from tests.canaries import NEVER_EXISTED, NON_PUBLIC, PUBLIC, plant
from tests.notify.conftest import Delivery
from tests.replica_cluster import ReplicaPair
from tests.web.conftest import settings_for


@dataclass
class Replicated:
    engine: Engine  # the primary, as the records' owner
    replica_url: str


def _replicated(pair: ReplicaPair) -> Replicated:
    primary_url, replica_url = pair.migrated_database()
    engine = make_engine(primary_url)
    plant(engine)
    pair.wait_caught_up()
    return Replicated(engine, replica_url)


def _on_replica(url: str, a_number: str) -> bool:
    """Whether the replica's public view still lists the person (as the public role)."""
    replica = make_engine(url)
    try:
        with replica.connect() as connection:
            connection.execute(text("SET ROLE safevine_public"))
            found = connection.execute(
                text("SELECT count(*) FROM public_persons WHERE a_number = :n"), {"n": a_number}
            ).scalar_one()
    finally:
        replica.dispose()
    return bool(found)


def _protect(engine: Engine, a_number: str) -> None:
    rows = [[a_number, "protected", NOW.date().isoformat()]]
    summary = ingest_protections(
        engine, csv_lines(["a_number", "status", "as_of"], *rows), source="urgent.csv"
    )
    assert summary.applied == 1


def test_a_protection_hides_the_person_at_once_though_the_replica_lags(
    replica_pair: ReplicaPair,
) -> None:
    db = _replicated(replica_pair)
    settings = settings_for(db.engine, search_replica_urls=(db.replica_url,))
    app = create_public_app(settings)
    with background_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        found = client.post("/api/v1/search", json=PUBLIC.by_a_number()).json()["results"]
        assert [r["name"] for r in found] == ["Marisol Quintanilla"]
        reference = found[0]["reference"]
        for canary in (*NON_PUBLIC, NEVER_EXISTED):
            assert client.post("/api/v1/search", json=canary.by_a_number()).json() == {
                "results": []
            }

        replica_pair.pause_replay()
        try:
            _protect(db.engine, PUBLIC.a_number)
            # The replica has not replayed the protection: it would still show them...
            assert _on_replica(db.replica_url, PUBLIC.a_number)
            # ...but no answer does, by A-number or by name, page or API.
            for body in (PUBLIC.by_a_number(), PUBLIC.by_name()):
                assert client.post("/api/v1/search", json=body).json() == {"results": []}
            client.get("/")
            page = client.post(
                "/",
                data={**PUBLIC.by_a_number(), "csrf_token": client.cookies.get("sv_csrf") or ""},
            )
            assert page.status_code == 200 and "Quintanilla" not in page.text
            # A registration started from the earlier answer ends at once, as for anyone
            # not public.
            started = client.post(
                "/api/v1/registrations",
                json={
                    "person": reference,
                    "channel": "email",
                    "address": "late@example.org",
                    "language": "en",
                },
            )
            assert started.status_code == 202
            with db.engine.connect() as connection:
                code = Delivery.latest_code(
                    Delivery(db.engine, db.engine, settings, None, None),  # type: ignore[arg-type]
                    connection,
                )
            confirmed = client.post(
                "/api/v1/registrations/confirm",
                json={"registration": started.json()["registration"], "code": code},
            )
            assert confirmed.status_code == 200
            shown = client.get(f"/api/v1/registrations/{confirmed.json()['manage_token']}")
            assert shown.json()["status"] == "ended"
            assert shown.json()["ended_reason"] == "This record is no longer available."
        finally:
            replica_pair.resume_replay()
        replica_pair.wait_caught_up()
        assert not _on_replica(db.replica_url, PUBLIC.a_number)
    app.state.safevine.public_engine.dispose()
    db.engine.dispose()


def test_no_answer_after_a_protection_commits_shows_the_person(
    replica_pair: ReplicaPair,
) -> None:
    """Searches run without pause against the replica while people are protected one by
    one on the primary: every answer that began after a person's protection committed
    leaves them out."""
    db = _replicated(replica_pair)
    settings = settings_for(db.engine, search_replica_urls=(db.replica_url,))
    app = create_public_app(settings)
    answers: list[tuple[float, bool]] = []
    stop = threading.Event()

    def search(base: str) -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            deadline = time.monotonic() + 60
            while not stop.is_set() and time.monotonic() < deadline:
                began = time.monotonic()
                results = client.post("/api/v1/search", json=PUBLIC.by_a_number()).json()
                answers.append((began, bool(results["results"])))

    with background_server(app) as base:
        searchers = [threading.Thread(target=search, args=(base,)) for _ in range(3)]
        for thread in searchers:
            thread.start()
        time.sleep(1.0)
        _protect(db.engine, PUBLIC.a_number)
        committed = time.monotonic()
        time.sleep(1.0)
        stop.set()
        for thread in searchers:
            thread.join(timeout=30)
    app.state.safevine.public_engine.dispose()
    db.engine.dispose()
    before = [shown for began, shown in answers if began < committed]
    after = [shown for began, shown in answers if began > committed]
    assert before and any(before)  # searches really ran and found them before
    assert after and not any(after), f"{sum(after)} of {len(after)} answers showed them"


def test_the_public_url_names_the_primary_then_its_replicas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    primary = "postgresql+psycopg://safevine_public:pw@primary/db"
    replica = "postgresql+psycopg://safevine_public:pw@replica1/db"
    monkeypatch.setenv("SAFEVINE_PUBLIC_DATABASE_URL", f" {primary} , {replica} ,")
    settings = Settings.from_env()
    assert (settings.public_database_url, settings.search_replica_urls) == (primary, (replica,))
    monkeypatch.setenv("SAFEVINE_PUBLIC_DATABASE_URL", primary)
    assert Settings.from_env().search_replica_urls == ()
    monkeypatch.setenv("SAFEVINE_PUBLIC_DATABASE_URL", f"{primary},sqlite:///copy.db")
    with pytest.raises(ConfigError, match="a search replica must be PostgreSQL, not 'sqlite'"):
        Settings.from_env()


def test_a_replica_that_fails_is_passed_over_for_the_primary(
    postgres_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    plant(postgres_engine)
    down = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere"
    app = create_public_app(settings_for(postgres_engine, search_replica_urls=(down,)))
    with background_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        for _ in range(3):
            found = client.post("/api/v1/search", json=PUBLIC.by_a_number())
            assert [r["name"] for r in found.json()["results"]] == ["Marisol Quintanilla"]
            hidden = client.post("/api/v1/search", json=NON_PUBLIC[0].by_a_number())
            assert hidden.json() == {"results": []}
    app.state.safevine.public_engine.dispose()
    assert caplog.text.count("search replica 1 failed") == 1  # then left to rest

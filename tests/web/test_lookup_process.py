"""SQLite's lookups in a lookup process answer exactly as they do in the web process, see
a protection at once, go in batches, survive the process ending, name an error's type
only, and end with the engine; the public app uses the process when told to, over HTTP."""

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from safevine.domain.names import fold_name
from safevine.ingest.protections import ingest_protections
from safevine.store.public import lookup_process, waiting_lookups
from safevine.store.public.connection import make_public_engine
from safevine.store.public.lookup_process import LookupProcessError, ProcessLookups
from safevine.store.public.prepared_lookup import PreparedLookups
from safevine.web.public_app import create_public_app
from tests.builders import csv_lines
from tests.canaries import NEVER_EXISTED, NON_PUBLIC, PUBLIC, plant
from tests.loops import run
from tests.public_schema import drop_public_reads
from tests.web.conftest import settings_for
from tests.web.test_prepared_lookup import _plant_namesakes, _searches

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


@pytest.fixture
def public(sqlite_engine: Engine) -> Iterator[Engine]:
    plant(sqlite_engine)
    _plant_namesakes(sqlite_engine)
    public = make_public_engine(sqlite_engine.url.render_as_string(hide_password=False))
    yield public
    public.dispose()


def _exchanges(monkeypatch: pytest.MonkeyPatch, unanswered: list[int] | None = None) -> list[int]:
    """The size of every batch sent to a lookup process, in order (and in `unanswered`,
    how many batches sent before it were still unanswered)."""
    sizes: list[int] = []
    post = ProcessLookups._post

    def recording(self: ProcessLookups, batch: list[Any]) -> None:
        sizes.append(len(batch))
        if unanswered is not None:
            unanswered.append(len(self._flight))
        post(self, batch)

    monkeypatch.setattr(ProcessLookups, "_post", recording)
    return sizes


def test_every_answer_is_the_answer_in_the_web_process(
    public: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = _exchanges(monkeypatch)
    prepared = PreparedLookups(public)
    process = ProcessLookups(public)

    async def one_by_one() -> list[Any]:
        return [await getattr(process, how)(*arguments) for how, arguments in _searches()]

    async def together() -> list[Any]:
        return await asyncio.gather(
            *(getattr(process, how)(*arguments) for how, arguments in _searches())
        )

    expected = [getattr(prepared, how)(*arguments) for how, arguments in _searches()]
    assert run(one_by_one()) == expected
    assert run(together()) == expected
    assert any(len(found) == 4 for found in expected)  # the four public namesakes
    assert any(found and found[0].status_since.tzinfo for found in expected)
    searches = len(_searches())
    # Those waiting together go in batches of `BATCH_MAX`.
    whole, rest = divmod(searches, waiting_lookups.BATCH_MAX)
    assert searches > waiting_lookups.BATCH_MAX
    assert sizes == [1] * searches + [waiting_lookups.BATCH_MAX] * whole + ([rest] if rest else [])
    process.close()


def test_a_batch_goes_while_the_one_before_is_answered(
    public: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two batches unanswered at a time, never more: the lookup process has the next to
    run while this process answers the last."""
    unanswered: list[int] = []
    sizes = _exchanges(monkeypatch, unanswered)
    prepared = PreparedLookups(public)
    process = ProcessLookups(public)
    many = _searches() * 4

    async def together() -> list[Any]:
        return await asyncio.gather(*(getattr(process, how)(*args) for how, args in many))

    assert run(together()) == [getattr(prepared, how)(*args) for how, args in many]
    assert sum(sizes) == len(many) and max(sizes) == waiting_lookups.BATCH_MAX
    assert max(unanswered) == 1 == lookup_process.IN_FLIGHT - 1
    process.close()


def test_batches_in_flight_when_the_process_ends_are_all_asked_again(
    public: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process killed with two batches unanswered: a new one answers every search of
    both, in the order they were asked."""
    process = ProcessLookups(public)
    post = ProcessLookups._post
    killed: list[int] = []

    def killing(self: ProcessLookups, batch: list[Any]) -> None:
        post(self, batch)
        worker = self._worker
        if not killed and len(self._flight) == 2 and worker is not None:
            worker.process.kill()
            worker.process.wait(10)
            killed.append(worker.process.pid)

    monkeypatch.setattr(ProcessLookups, "_post", killing)
    prepared = PreparedLookups(public)
    many = _searches() * 2

    async def together() -> list[Any]:
        searches = (getattr(process, how)(*args) for how, args in many)
        return await asyncio.wait_for(asyncio.gather(*searches), 30)

    assert run(together()) == [getattr(prepared, how)(*args) for how, args in many]
    assert killed and process.running and process._worker is not None
    assert process._worker.process.pid not in killed
    process.close()


def test_a_protection_is_seen_by_the_next_lookup(public: Engine, sqlite_engine: Engine) -> None:
    process = ProcessLookups(public)

    async def search() -> list[Any]:
        return await process.by_a_number(PUBLIC.a_number, PUBLIC.country)

    assert len(run(search())) == 1
    rows = [[PUBLIC.a_number, "protected", NOW.date().isoformat()]]
    summary = ingest_protections(
        sqlite_engine, csv_lines(["a_number", "status", "as_of"], *rows), source="urgent.csv"
    )
    assert summary.applied == 1
    assert run(search()) == []
    process.close()


def test_a_lookup_process_that_ends_is_replaced(public: Engine) -> None:
    process = ProcessLookups(public)

    async def search() -> list[Any]:
        return await process.by_a_number(PUBLIC.a_number, PUBLIC.country)

    first = run(search())
    worker = process._worker
    assert worker is not None and process.running
    worker.process.kill()
    worker.process.wait(10)
    again = run(search())
    assert again == first and process._worker is not worker and process.running
    process.close()


def test_a_lookup_process_that_cannot_start_fails_each_search_with_a_type_only(
    public: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lookup_process, "PYTHON", "/nonexistent/python")
    process = ProcessLookups(public)

    async def searches() -> Any:
        return await asyncio.gather(
            process.by_a_number(PUBLIC.a_number, PUBLIC.country),
            process.by_name(fold_name(PUBLIC.given), fold_name(PUBLIC.family), "MX"),
            return_exceptions=True,
        )

    failed = run(searches())
    assert [type(error) for error in failed] == [LookupProcessError, LookupProcessError]
    assert [str(error) for error in failed] == ["FileNotFoundError"] * 2


def test_an_error_in_the_lookup_process_names_its_type_only(
    public: Engine, sqlite_engine: Engine, capfd: pytest.CaptureFixture[str]
) -> None:
    with sqlite_engine.begin() as connection:
        drop_public_reads(connection)
    process = ProcessLookups(public)

    async def searches() -> Any:
        return await asyncio.gather(
            process.by_name(fold_name(PUBLIC.given), fold_name(PUBLIC.family), "MX"),
            process.by_a_number(PUBLIC.a_number, PUBLIC.country),
            return_exceptions=True,
        )

    failed = run(searches())
    assert [type(error) for error in failed] == [LookupProcessError, LookupProcessError]
    assert [str(error) for error in failed] == ["OperationalError"] * 2
    assert process.running  # an answer with an error does not end the process
    process.close()
    printed = "".join(capfd.readouterr())
    for canary in [PUBLIC, NEVER_EXISTED, *NON_PUBLIC]:
        for identifier in canary.identifiers:
            assert identifier not in printed


def test_dispose_ends_the_lookup_process(public: Engine) -> None:
    process = ProcessLookups(public)

    async def search() -> list[Any]:
        return await process.by_a_number(PUBLIC.a_number, PUBLIC.country)

    run(search())
    worker = process._worker
    assert worker is not None
    public.dispose()
    assert worker.process.wait(10) is not None and not process.running
    # A later search starts another.
    assert len(run(search())) == 1
    process.close()


def test_only_for_sqlite(postgres_engine: Engine) -> None:
    with pytest.raises(ValueError):
        ProcessLookups(postgres_engine)


def test_the_public_app_searches_through_its_lookup_process(
    sqlite_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    plant(sqlite_engine)
    caplog.set_level(logging.DEBUG)
    app = create_public_app(settings_for(sqlite_engine, search_lookup_process=True))
    lookups = app.state.safevine.searcher.lookups
    assert isinstance(lookups, ProcessLookups)
    with TestClient(app) as client:
        found = client.post("/api/v1/search", json=PUBLIC.by_a_number())
        answers = [
            client.post("/api/v1/search", json=body)
            for canary in [NEVER_EXISTED, *NON_PUBLIC]
            for body in (canary.by_a_number(), canary.by_name())
        ]
        worker = lookups._worker
        assert worker is not None and lookups.running
    app.state.safevine.public_engine.dispose()  # as the app's process ends
    assert worker.process.wait(10) is not None and not lookups.running
    assert worker.process.pid != os.getpid()
    assert found.status_code == 200 and len(found.json()["results"]) == 1
    assert {(a.status_code, a.content) for a in answers} == {(200, answers[0].content)}
    assert answers[0].json() == {"results": []}
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for canary in NON_PUBLIC:
        for identifier in canary.identifiers:
            assert identifier not in logged


def test_the_lookup_process_needs_no_sqlalchemy() -> None:
    """It runs the web process's statements as given: all it imports is the driver, the
    wire and the grants, so each web process's lookup process costs little memory."""
    code = (
        "import sys, safevine.store.public.lookup_worker; "
        "print(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'fastapi'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_lookups_waiting_when_the_process_is_ended_are_asked_again(public: Engine) -> None:
    """Ended under a batch (the engine disposed of meanwhile): the batch is not left
    waiting for an answer that cannot come."""
    process = ProcessLookups(public)

    async def scenario() -> list[Any]:
        await process.by_a_number(PUBLIC.a_number, PUBLIC.country)  # started
        waiting = asyncio.ensure_future(process.by_a_number(PUBLIC.a_number, PUBLIC.country))
        for _ in range(100_000):  # until the batch waits for its answer
            worker = process._worker
            if worker is not None and worker._waiter is not None:
                break
            await asyncio.sleep(0)
        else:
            raise AssertionError("the batch was never sent")
        process.close()
        return await asyncio.wait_for(waiting, 10)

    assert len(run(scenario())) == 1
    process.close()

"""What the public is told about a facility whose feed has gone silent: a notice on each
search result there (page and API), and the list of delayed facilities, with facility
facts only: the canaries held at that facility appear nowhere, and a hidden person is
still answered exactly as nobody is."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine, text

from safevine.actions import feed_health
from safevine.actions.actor import Actor
from safevine.domain.feed_health import Health
from safevine.store.public.connection import make_public_engine
from safevine.web import csrf
from safevine.web.public.feed_delays import FRESH_FOR, DelayBoard
from safevine.web.public_app import create_public_app
from safevine.web.server import background_server
from tests.builders import load_facilities
from tests.canaries import NEVER_EXISTED, NON_PUBLIC, PUBLIC, plant
from tests.web.conftest import settings_for

NOTICE = "Information from this facility may be out of date. Last received:"


def _silence(engine: Engine, hours: float) -> datetime:
    then = datetime.now(UTC) - timedelta(hours=hours)
    with engine.begin() as c:
        c.execute(text("UPDATE custody_events SET received_at = :t"), {"t": then})
    return then


def _evaluate(engine: Engine) -> None:
    feed_health.evaluate(engine, settings_for(engine), datetime.now(UTC))


@contextmanager
def _site(engine: Engine) -> Iterator[httpx.Client]:
    app = create_public_app(settings_for(engine))
    try:
        with background_server(app) as base, httpx.Client(base_url=base, timeout=30) as client:
            yield client
    finally:
        app.state.safevine.public_engine.dispose()


def _page_search(client: httpx.Client, body: dict[str, str]) -> str:
    client.get("/")
    token = client.cookies.get(csrf.COOKIE) or ""
    answer = client.post("/", data={**body, csrf.FIELD: token})
    assert answer.status_code == 200
    return answer.text


def _leaked(body: str) -> list[str]:
    return [w for c in NON_PUBLIC for w in c.identifiers if w in body]


def test_a_result_at_a_down_facility_says_its_information_may_be_out_of_date(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    plant(engine)
    then = _silence(engine, 100)
    _evaluate(engine)
    with _site(engine) as client:
        [result] = client.post("/api/v1/search", json=PUBLIC.by_a_number()).json()["results"]
        delayed = result["information_delayed"]
        assert delayed["state"] == "down"
        assert delayed["state_text"] == "Information is not being received"
        assert abs(datetime.fromisoformat(delayed["last_received"]) - then) < timedelta(seconds=1)
        assert delayed["text"].startswith(NOTICE)
        # The facility's own time (Arizona) and the reader's language.
        assert str(then.year) in delayed["last_received_text"]
        assert "MST" in delayed["last_received_text"]
        page = _page_search(client, PUBLIC.by_a_number())
        assert NOTICE in page and 'href="/delays?lang=en"' in page
        spanish = client.post("/api/v1/search?lang=es", json=PUBLIC.by_a_number()).json()
        assert spanish["results"][0]["information_delayed"]["text"].startswith(
            "La información de este centro puede no estar actualizada."
        )

        listing = client.get("/delays")
        assert listing.status_code == 200
        assert "Facility F1" in listing.text and "Eloy, AZ" in listing.text
        assert '<a href="tel:520-555-0100" dir="ltr">520-555-0100</a>' in listing.text
        assert "Information is not being received" in listing.text
        assert "Last received:" in listing.text
        assert "<title>Delayed information · safevine</title>" in listing.text

        # Hidden people at the same facility: nothing about them, on any of these.
        for canary in NON_PUBLIC:
            pairs = (
                (canary.by_a_number(), NEVER_EXISTED.by_a_number()),
                (canary.by_name(), NEVER_EXISTED.by_name()),
            )
            for body, never in pairs:
                api = client.post("/api/v1/search", json=body)
                nobody = client.post("/api/v1/search", json=never)
                assert api.content == nobody.content == b'{"results":[]}'
                assert NOTICE not in _page_search(client, body)
        assert _leaked(listing.text) == []
        assert _leaked(_page_search(client, PUBLIC.by_a_number())) == []
    ours = [r for r in caplog.records if r.name.startswith("safevine")]
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in ours)
    assert ours and _leaked(logged) == []


def test_a_current_facility_shows_no_notice_and_the_list_says_all_is_well(
    engine: Engine,
) -> None:
    plant(engine)
    _evaluate(engine)
    with _site(engine) as client:
        [result] = client.post("/api/v1/search", json=PUBLIC.by_a_number()).json()["results"]
        assert result["information_delayed"] is None
        assert NOTICE not in _page_search(client, PUBLIC.by_a_number())
        listing = client.get("/delays").text
        assert "Information from every facility is arriving as expected." in listing
        assert "Facility F1" not in listing


def test_a_paused_facility_is_listed_and_a_closed_one_is_not(engine: Engine) -> None:
    plant(engine)
    load_facilities(engine, "F2")
    _evaluate(engine)
    now = datetime.now(UTC)
    with engine.begin() as c:
        feed_health.hold(c, Actor("sue"), "F1", Health.PAUSED, "new feed", now)
        feed_health.hold(c, Actor("sue"), "F2", Health.CLOSED, "closed", now)
    with _site(engine) as client:
        listing = client.get("/delays").text
        assert "Facility F1" in listing and "Information is paused" in listing
        assert "Facility F2" not in listing
        [result] = client.post("/api/v1/search", json=PUBLIC.by_a_number()).json()["results"]
        assert result["information_delayed"]["state"] == "paused"


def test_the_list_is_read_again_once_it_is_older_than_its_freshness(engine: Engine) -> None:
    plant(engine)
    _evaluate(engine)
    clock = [1000.0]
    public = make_public_engine(engine.url.render_as_string(hide_password=False))
    try:
        board = DelayBoard(public, clock=lambda: clock[0])
        assert board.all() == []
        _silence(engine, 100)
        _evaluate(engine)
        clock[0] += FRESH_FOR - 1
        assert board.all() == []  # still fresh
        clock[0] += 2
        [delay] = board.all()
        assert (delay.facility_name, delay.health) == ("Facility F1", "down")
    finally:
        public.dispose()


def test_the_public_path_reads_the_delays_view_and_not_the_health_table(engine: Engine) -> None:
    plant(engine)
    _evaluate(engine)
    public = make_public_engine(engine.url.render_as_string(hide_password=False))
    try:
        with public.connect() as c:
            c.execute(text("SELECT * FROM public_feed_delays")).all()
        for table in ("facility_health", "feed_outages", "facility_health_changes"):
            try:
                with public.connect() as c:
                    c.execute(text(f"SELECT * FROM {table}")).all()
            except Exception as error:  # refused: what must happen
                said = str(error).lower()
                assert "permission denied" in said or "prohibited" in said, said
            else:
                raise AssertionError(f"the public path read {table}")
    finally:
        public.dispose()

"""A non-public person is indistinguishable from one who never existed.

Two worlds with the same public people: in one the non-public canaries exist, in the
other they never did. The same search in both must give the same status, the same headers
(but the date) and byte-identical bodies, on the page and on the API, and run the very
same SQL statements.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import Engine, event

from safevine.i18n import LANGUAGES
from safevine.store.engine import make_engine
from safevine.web import csrf
from safevine.web.public_app import create_public_app
from safevine.web.server import background_server
from tests.canaries import NEVER_EXISTED, NON_PUBLIC, Canary, plant
from tests.conftest import Databases
from tests.web.conftest import SECRET, settings_for


@dataclass
class World:
    client: httpx.Client
    statements: list[str]


# One CSRF cookie for both worlds, as one browser would carry.
TOKEN = csrf.issue(SECRET)


@contextmanager
def _serve(engine: Engine) -> Iterator[World]:
    app = create_public_app(settings_for(engine))
    statements: list[str] = []
    event.listen(
        app.state.safevine.public_engine,
        "before_cursor_execute",
        lambda conn, cursor, statement, *rest: statements.append(statement),
    )
    with background_server(app) as base, httpx.Client(base_url=base) as client:
        client.cookies.set(csrf.COOKIE, TOKEN)
        yield World(client, statements)
    app.state.safevine.public_engine.dispose()


@pytest.fixture
def worlds(engine: Engine, databases: Databases) -> Iterator[tuple[World, World]]:
    """(with the non-public canaries, without them), on the same kind of database."""
    plant(engine)
    empty = make_engine(databases.create(engine.dialect.name))
    plant(empty, with_non_public=False)
    with _serve(engine) as with_canaries, _serve(empty) as without:
        yield with_canaries, without
    empty.dispose()


def _same(a: httpx.Response, b: httpx.Response) -> None:
    assert a.status_code == b.status_code
    headers_a = {k: v for k, v in a.headers.items() if k != "date"}
    headers_b = {k: v for k, v in b.headers.items() if k != "date"}
    assert headers_a == headers_b
    assert a.content == b.content


@pytest.mark.parametrize("canary", NON_PUBLIC, ids=lambda c: c.kind)
@pytest.mark.parametrize("how", ["by_a_number", "by_name"])
def test_non_public_looks_exactly_like_never_existed(
    worlds: tuple[World, World], canary: Canary, how: str
) -> None:
    present, absent = worlds
    body = getattr(canary, how)()
    for world in worlds:
        world.statements.clear()
    _same(
        present.client.post("/api/v1/search", json=body),
        absent.client.post("/api/v1/search", json=body),
    )
    _same(
        present.client.post("/", data={**body, "csrf_token": TOKEN}),
        absent.client.post("/", data={**body, "csrf_token": TOKEN}),
    )
    assert present.statements == absent.statements and present.statements


@pytest.mark.parametrize("canary", NON_PUBLIC, ids=lambda c: c.kind)
def test_api_answers_for_non_public_and_unknown_people_are_identical(
    worlds: tuple[World, World], canary: Canary
) -> None:
    present, _ = worlds
    _same(
        present.client.post("/api/v1/search", json=canary.by_a_number()),
        present.client.post("/api/v1/search", json=NEVER_EXISTED.by_a_number()),
    )


def test_in_every_language_a_non_public_person_looks_like_one_who_never_existed(
    worlds: tuple[World, World],
) -> None:
    present, absent = worlds
    for language in LANGUAGES:
        for canary in NON_PUBLIC:
            body = canary.by_a_number()
            accept = {"Accept-Language": language}
            api = [w.client.post("/api/v1/search", json=body, headers=accept) for w in worlds]
            _same(*api)
            form = {**body, "csrf_token": TOKEN, "lang": language}
            pages = [w.client.post("/", data=form) for w in worlds]
            _same(*pages)
            assert f'<html lang="{language}"' in pages[0].text
            for shown in (api[0].text, pages[0].text):
                assert canary.given not in shown and canary.family not in shown
            # And a non-public person's answer is a never-existing person's, in this language.
            _same(
                present.client.post("/api/v1/search", json=body, headers=accept),
                present.client.post(
                    "/api/v1/search", json=NEVER_EXISTED.by_a_number(), headers=accept
                ),
            )
    assert absent.statements

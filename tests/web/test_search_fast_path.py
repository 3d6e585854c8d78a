"""The search fast path answers exactly as the route does: status, headers and bytes, for
every kind of body, content type, query string and way the body arrives."""

import asyncio
import json
from collections.abc import Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from starlette.types import Message

from safevine.web.public.api import PATH, SearchRequest
from safevine.web.public.search_fast_path import _search_request
from safevine.web.public_app import create_public_app
from tests.canaries import NEVER_EXISTED, NON_PUBLIC, PUBLIC, plant
from tests.web.conftest import settings_for

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]

BODIES: list[bytes] = [
    *(
        json.dumps(body).encode()
        for canary in [PUBLIC, NEVER_EXISTED, *NON_PUBLIC]
        for body in (canary.by_a_number(), canary.by_name())
    ),
    json.dumps({**PUBLIC.by_name(), "date_of_birth": "1988-04-12"}).encode(),
    json.dumps({"a_number": "A-300-000-001", "country_of_birth": "México"}).encode(),
    b"",
    b"{",
    b"[]",
    b'"x"',
    b"null",
    b"{}",
    b'{"a_number": 5}',
    b'{"surname": "x"}',
    b'{"a_number": "12", "country_of_birth": "MX"}',
    b'{"a_number": "300000001", "country_of_birth": "MX", "a_number": "1"}',
    b'{"given_name": "\\ud800", "family_name": "x", "country_of_birth": "MX"}',
    b'{"given_name": "Mari*", "family_name": "Q%", "country_of_birth": "Atlantis"}',
    b'{"a_number": "' + b"9" * 300 + b'"}',
    # Each field's bound (200 characters), in ASCII and beyond, and what JSON can spell.
    *(
        json.dumps(
            {"given_name": text, "family_name": "x", "country_of_birth": "MX"}, ensure_ascii=ascii
        ).encode()
        for size in (200, 201)
        for text in ("a" * size, "é" * size, "\U0001f600" * size)
        for ascii in (True, False)
    ),
    b'{"given_name": "\\ud83d\\ude00", "family_name": "a\\u0000b", "country_of_birth": "MX"}',
    b'{"given_name": "Mar\\udfffa", "family_name": "x", "country_of_birth": "M\\u00e9xico"}',
    b'{"a_number": null, "given_name": "Pedro", "family_name": "Vargas", "country_of_birth": "MX"}',
    b'{"a_number": "300000001", "country_of_birth": ["MX"]}',
    b"\xff\xfe{}",
    b"[" * 5000,
]
CONTENT_TYPES: list[bytes | None] = [
    b"application/json",
    b"application/json; charset=utf-8",
    b"Application/JSON",
    b"application/problem+json",
    b"text/plain",
    b"application/x-www-form-urlencoded",
    None,
]
QUERIES = [b"", b"lang=es", b"lang=en&lang=es", b"lang=", b"lang=de", b"other=1"]


# Requests run on one thread of their own, with a loop of their own: the test's thread may
# have a loop left running (Playwright's sync API leaves one), and one thread keeps the
# app's SQLite lookups on one held connection, as on the server.
_LOOP_THREAD = ThreadPoolExecutor(1, thread_name_prefix="fast-path-test")


def _in_loop(work: Coroutine[Any, Any, None]) -> None:
    _LOOP_THREAD.submit(asyncio.run, work).result()


def _scope(
    content_type: bytes | None, query: bytes, accept_language: bytes | None
) -> dict[str, object]:
    headers = [(b"host", b"127.0.0.1")]
    if content_type is not None:
        headers.append((b"content-type", content_type))
    if accept_language is not None:
        headers.append((b"accept-language", accept_language))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": "POST",
        "root_path": "",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": query,
        "headers": headers,
        "state": {},
    }


def _call(
    app: FastAPI,
    chunks: Sequence[bytes],
    content_type: bytes | None = b"application/json",
    query: bytes = b"",
    accept_language: bytes | None = b"en",
    disconnect_after: int | None = None,
) -> Answer:
    """One request through the whole app; the body in `chunks`, or a disconnect after
    `disconnect_after` of them."""
    messages: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    if disconnect_after is not None:
        messages = [*messages[:disconnect_after], {"type": "http.disconnect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    async def run() -> None:
        await app(_scope(content_type, query, accept_language), receive, send)

    _in_loop(run())
    if not sent:
        return (0, [], b"")
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return int(start["status"]), list(start["headers"]), body


@pytest.fixture
def apps(engine: Engine) -> Iterator[tuple[FastAPI, FastAPI]]:
    plant(engine)
    fast = create_public_app(settings_for(engine))
    slow = create_public_app(settings_for(engine), search_fast_path=False)
    yield fast, slow
    fast.state.safevine.public_engine.dispose()
    slow.state.safevine.public_engine.dispose()


def test_every_body_and_content_type_answers_as_the_route(apps: tuple[FastAPI, FastAPI]) -> None:
    fast, slow = apps
    statuses = set()
    for body in BODIES:
        for content_type in CONTENT_TYPES:
            for query in QUERIES:
                answer = _call(fast, [body], content_type, query)
                assert answer == _call(slow, [body], content_type, query), (body, content_type)
                statuses.add(answer[0])
    assert {200, 400, 422} <= statuses


@pytest.mark.parametrize("accept_language", [None, b"es-MX,es;q=0.9", b"fr, en;q=0.1", b"es;q=0"])
def test_languages_answer_as_the_route(
    apps: tuple[FastAPI, FastAPI], accept_language: bytes | None
) -> None:
    fast, slow = apps
    for body in BODIES[:4]:
        assert _call(fast, [body], accept_language=accept_language) == _call(
            slow, [body], accept_language=accept_language
        )


def test_a_body_in_pieces_or_cut_short_answers_as_the_route(
    apps: tuple[FastAPI, FastAPI],
) -> None:
    fast, slow = apps
    body = json.dumps(PUBLIC.by_a_number()).encode()
    pieces = [body[:5], body[5:20], b"", body[20:]]
    found = _call(fast, pieces)
    assert found == _call(slow, pieces)
    assert json.loads(found[2])["results"]
    for cut in range(len(pieces)):
        assert _call(fast, pieces, disconnect_after=cut) == _call(
            slow, pieces, disconnect_after=cut
        )


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.dictionaries(
        st.sampled_from(
            ["a_number", "country_of_birth", "given_name", "family_name", "date_of_birth", "x"]
        ),
        st.one_of(st.none(), st.text(max_size=30), st.integers(), st.booleans()),
    )
)
def test_any_json_object_answers_as_the_route(
    sqlite_engine: Engine, body: dict[str, object]
) -> None:
    fast, slow = _hypothesis_apps(sqlite_engine)
    encoded = json.dumps(body).encode()
    assert _call(fast, [encoded]) == _call(slow, [encoded])


_made: dict[str, tuple[FastAPI, FastAPI]] = {}


def _hypothesis_apps(engine: Engine) -> tuple[FastAPI, FastAPI]:
    """One pair of apps per database for all of hypothesis's examples."""
    key = str(engine.url)
    if key not in _made:
        plant(engine)
        _made[key] = (
            create_public_app(settings_for(engine)),
            create_public_app(settings_for(engine), search_fast_path=False),
        )
    return _made[key]


def test_other_paths_and_methods_are_left_to_the_app(apps: tuple[FastAPI, FastAPI]) -> None:
    fast, slow = apps
    body = json.dumps(PUBLIC.by_a_number()).encode()
    for path, method, root in [
        (PATH + "/", "POST", ""),
        (PATH.upper(), "POST", ""),
        (PATH, "PUT", ""),
        (PATH, "GET", ""),
        (PATH, "POST", "/mounted"),
    ]:
        scope = _with(path)
        scope["method"], scope["root_path"] = method, root
        # Pages carry a fresh CSRF token each time: compare all but the values.
        answers = [_call_scope(app, dict(scope), body) for app in (fast, slow)]
        shapes = [(status, [name for name, _ in headers]) for status, headers, _ in answers]
        assert shapes[0] == shapes[1], (path, method, root)


def _with(path: str) -> dict[str, object]:
    scope = _scope(b"application/json", b"", b"en")
    scope["path"] = path
    scope["raw_path"] = path.encode()
    return scope


def _call_scope(app: FastAPI, scope: dict[str, object], body: bytes) -> Answer:
    messages: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    _in_loop(app(scope, receive, send))
    start = sent[0]
    body_out = b"".join(m.get("body", b"") for m in sent[1:])
    return int(start["status"]), list(start["headers"]), body_out


# What decoding could take otherwise than `json.loads` does: repeated keys, every spelling
# of a surrogate, bytes that are no UTF-8 (or another UTF), a BOM, raw controls, what JSON
# calls whitespace and what it does not, trailing text, two documents, and non-JSON.
_NAME = b'"family_name": "x", "country_of_birth": "MX"'
DECODING = [
    b'{"given_name": "a", "given_name": "b", ' + _NAME + b"}",
    b'{"given_name": "a", ' + _NAME + b', "given_name": null}',
    *(
        b'{"given_name": "' + escape + b'", ' + _NAME + b"}"
        for escape in (
            b"\\ud800",
            b"\\udfff",
            b"\\udc00\\ud800",
            b"\\ud83d\\ude00",
            b"\\ud83d",
            b"a\\ud83dx",
            b"\\u0000",
            b"\\u00e9\\/\\\\",
            "\U0001f600".encode(),
            "\ud800".encode("utf-8", "surrogatepass"),
            b"\xed\xa0\x80\xed\xb0\x80",
            b"\xc0\xaf",
            b"\xff",
            b"\xe9",
            b"a\x01b",
            b"a\tb",
            b"a\x7fb",
        )
    ),
    b'\xef\xbb\xbf{"a_number": "300000001", "country_of_birth": "MX"}',
    *(
        '{"a_number": "300000001", "country_of_birth": "MX"}'.encode(codec)
        for codec in ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le")
    ),
    b' \t\r\n{"a_number": "300000001", "country_of_birth": "MX"}\n ',
    b'{"a_number": "300000001", "country_of_birth": "MX"}\x0c',
    b'{"a_number": "300000001", "country_of_birth": "MX"}\x00',
    b'{"a_number": "300000001", "country_of_birth": "MX"} x',
    b'{"a_number": "1", "country_of_birth": "MX"}\n{"a_number": "2"}',
    b'{"a_number": "300000001", "country_of_birth": "MX",}',
    b"{'a_number': '300000001', 'country_of_birth': 'MX'}",
    b'{"a_number": "300000001", "country_of_birth": NaN}',
    b'{"a_number": "300000001", "country_of_birth": 1e999}',
    b'{"a_number": "300000001", "country_of_birth": ' + b"9" * 5000 + b"}",
    b'{"a_number": "' + b"9" * 200 + b'", "country_of_birth": "MX"}',
    b'{"a_number": "' + b"9" * 201 + b'", "country_of_birth": "MX"}',
    b"{" * 3000 + b"}" * 3000,
]


def _by_the_model(body: bytes) -> object:
    """What the route makes of a body: the model's dump, or None where it refuses."""
    try:
        return SearchRequest.model_validate(json.loads(body)).model_dump()
    except Exception:
        return None


@pytest.mark.parametrize("body", DECODING + BODIES)
def test_the_fast_path_takes_a_body_as_json_and_the_model_do(body: bytes) -> None:
    assert _search_request(body) == _by_the_model(body)


_FIELD_NAMES = ["a_number", "country_of_birth", "given_name", "family_name", "date_of_birth"]
# Any text, lone surrogates included, which JSON can spell as escapes.
_ANY_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, categories=None))


@settings(max_examples=400, deadline=None)
@given(
    body=st.dictionaries(
        st.sampled_from([*_FIELD_NAMES, "x"]),
        st.one_of(st.none(), _ANY_TEXT, st.integers(), st.booleans(), st.floats()),
    ),
    ascii=st.booleans(),
)
def test_any_object_is_decoded_as_json_and_the_model_do(
    body: dict[str, object], ascii: bool
) -> None:
    encoded = json.dumps(body, ensure_ascii=ascii).encode("utf-8", "surrogatepass")
    assert _search_request(encoded) == _by_the_model(encoded)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120))
def test_any_bytes_are_decoded_as_json_and_the_model_do(body: bytes) -> None:
    assert _search_request(body) == _by_the_model(body)

"""Two services, two trust zones: the public service has no staff route and holds no
engine on the full records; the staff service has the staff routes and no public one."""

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from safevine.actions import screening
from safevine.actions.actor import Actor
from safevine.store.public import connection as public_connection
from safevine.store.records.persons import person_ids_by_a_number
from safevine.web.public_app import create_public_app
from safevine.web.server import background_server, free_port
from safevine.web.staff_app import create_staff_app
from tests.canaries import PUBLIC, UNSCREENED, plant
from tests.loops import until_answering
from tests.web.conftest import SECRET, settings_for

SAFEVINE = Path(sys.executable).parent / "safevine"


def _staff_paths(staff: FastAPI, public: FastAPI) -> list[tuple[str, str]]:
    """Every route of the staff service that the public one does not have by the same
    path (both have a home page, `/`), with a made-up value for each path parameter."""
    own = {getattr(route, "path", "") for route in public.state.routes}
    paths = []
    for route in staff.state.routes:
        if getattr(route, "path", "") in own:
            continue
        methods = sorted(getattr(route, "methods", None) or ())
        path = re.sub(r"\{[^}]+\}", "1", getattr(route, "path", ""))
        paths += [(method, path) for method in methods if method != "HEAD"]
    return paths


def _answer(base: str, method: str, path: str) -> tuple[int, str, dict[str, str]]:
    """The answer to a first visit, but for what differs between any two: the path where a
    page links to itself in another language, and the value of a fresh CSRF cookie."""
    with httpx.Client(base_url=base) as client:
        response = client.request(method, path, headers={"Authorization": "Bearer svt_x"})
    headers = {
        k: v.split("=")[0] if k == "set-cookie" else v
        for k, v in response.headers.items()
        if k not in ("date", "content-length")
    }
    return response.status_code, response.text.replace(path, "(path)"), headers


def test_a_staff_path_on_the_public_service_answers_as_any_unknown_path(engine: Engine) -> None:
    plant(engine)
    settings = settings_for(engine)
    public, staff = create_public_app(settings), create_staff_app(settings)
    paths = _staff_paths(staff, public)
    assert ("POST", "/api/v1/staff/persons/protect") in paths and ("GET", "/metrics") in paths
    assert ("POST", "/login") in paths and ("GET", "/screening") in paths
    try:
        with background_server(public) as base, httpx.Client(base_url=base) as client:
            for method, path in paths:
                # An unknown path of the same shape: an API path or a page.
                unknown = "/api/v1/nothing-here" if path.startswith("/api/") else "/nothing-here"
                assert _answer(base, method, path) == _answer(base, method, unknown), path
            assert "/staff" not in client.get("/openapi.json").text
    finally:
        public.state.safevine.public_engine.dispose()
        staff.state.staff.records_engine.dispose()


def test_the_staff_service_has_no_public_route(engine: Engine) -> None:
    plant(engine)
    staff = create_staff_app(settings_for(engine))
    try:
        with background_server(staff) as base, httpx.Client(base_url=base) as client:
            assert client.post("/api/v1/search", json=PUBLIC.by_a_number()).status_code == 404
            assert client.get("/browse-safely").status_code == 404
            # Its home is the console's, which asks who is there.
            home = client.get("/")
            assert home.status_code == 303 and home.headers["location"] == "/login"
            schema = client.get("/openapi.json").json()
            assert schema["paths"] and all(
                p.startswith("/api/v1/staff/") or p in ("/metrics", "/staff/report")
                for p in schema["paths"]
            )
    finally:
        staff.state.staff.records_engine.dispose()


def _engines(app: FastAPI) -> list[Engine]:
    state = app.state.safevine
    found = [value for value in vars(state).values() if isinstance(value, Engine)]
    return [*found, state.searcher.lookups._engine]


def test_every_engine_of_the_public_app_is_on_the_public_path(engine: Engine) -> None:
    app = create_public_app(settings_for(engine))
    try:
        engines = _engines(app)
        assert engines
        guard = (
            public_connection._set_role
            if engine.dialect.name == "postgresql"
            else public_connection._query_only
        )
        for held in engines:
            assert event.contains(held, "connect", guard)
            refused = pytest.raises(DBAPIError, match=r"denied|prohibited")
            with held.connect() as connection, refused:
                connection.execute(text("SELECT a_number FROM persons"))
    finally:
        app.state.safevine.public_engine.dispose()


# The running process, seen from the database server --------------------------------------


@pytest.fixture
def public_login(postgres_engine: Engine) -> Iterator[str]:
    """A login that is the public role and nothing more, as README's production setup
    has it."""
    role = f"sv_web_{uuid.uuid4().hex[:8]}"
    with postgres_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text(f"CREATE ROLE {role} LOGIN IN ROLE safevine_public"))
    url = make_url(postgres_engine.url.render_as_string(hide_password=False))
    yield url.set(username=role).render_as_string(hide_password=False)
    with postgres_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text(f"DROP ROLE {role}"))


def _local_ports(pid: int) -> set[int]:
    """The local TCP ports of the sockets process `pid` holds open."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_the_public_process_connects_to_the_database_only_as_the_public_role(
    postgres_engine: Engine, public_login: str
) -> None:
    plant(postgres_engine)
    port = free_port()
    env = {
        **os.environ,
        "SAFEVINE_DATABASE_URL": postgres_engine.url.render_as_string(hide_password=False),
        "SAFEVINE_PUBLIC_DATABASE_URL": public_login,
        "SAFEVINE_SECRET_KEY": SECRET.decode(),
        "SAFEVINE_RATE_LIMITS": "false",
    }
    server = subprocess.Popen(
        [str(SAFEVINE), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    admin = create_engine(postgres_engine.url, isolation_level="AUTOCOMMIT")
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as client:
            until_answering(client, server)
            # A search, a registration and a confirmation: every database path it has.
            found = client.post("/api/v1/search", json=PUBLIC.by_a_number()).json()["results"]
            started = client.post(
                "/api/v1/registrations",
                json={
                    "person": found[0]["reference"],
                    "channel": "email",
                    "address": "someone@example.org",
                    "language": "en",
                },
            )
            assert started.status_code == 202, started.text
            # Screened as cleared on the staff side, found at once by `safevine serve`.
            assert client.post("/api/v1/search", json=UNSCREENED.by_a_number()).json() == {
                "results": []
            }
            with postgres_engine.begin() as connection:
                who = person_ids_by_a_number(connection, [UNSCREENED.a_number])
                screening.screen(
                    connection,
                    Actor("sam"),
                    who[UNSCREENED.a_number],
                    screening.Decision.CLEARED,
                    "no 1367 record",
                    datetime.now(UTC),
                )
            found = client.post("/api/v1/search", json=UNSCREENED.by_a_number()).json()
            assert len(found["results"]) == 1
            ports = _local_ports(server.pid)
            with admin.connect() as connection:
                roles = connection.execute(
                    text(
                        "SELECT usename FROM pg_stat_activity "
                        "WHERE client_addr = '127.0.0.1' AND client_port = ANY(:ports)"
                    ),
                    {"ports": list(ports)},
                ).all()
        assert roles, "the public process holds no connection at all"
        assert {role for (role,) in roles} == {make_url(public_login).username}
    finally:
        server.terminate()
        server.communicate(timeout=30)
        admin.dispose()


# Run in a fresh interpreter: the public service as `safevine serve` builds it, then which
# of the delivery libraries it loaded.
_LOADED_BY_THE_PUBLIC_SERVICE = """
import json, sys
from safevine.cli import app
from safevine.config import Settings
from safevine.web.public_app import create_public_app
create_public_app(Settings(database_url=sys.argv[1], secret_key=b"x" * 32))
print(json.dumps(sorted({"aiohttp", "aiosmtplib", "httpx"} & set(sys.modules))))
"""


def test_the_public_service_loads_no_delivery_library(sqlite_engine: Engine) -> None:
    """The public process composes and never sends: aiohttp, httpx and aiosmtplib (15 MB
    of its memory) belong to the worker. httpx loads in it only to check a webhook
    address someone registers."""
    url = sqlite_engine.url.render_as_string(hide_password=False)
    found = subprocess.run(
        [sys.executable, "-c", _LOADED_BY_THE_PUBLIC_SERVICE, url],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert found.stdout.strip() == "[]", found.stdout + found.stderr

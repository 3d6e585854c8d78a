"""A real PostgreSQL primary and a streaming replica of it, both on loopback ports of their
own, for tests of what a lagging or paused replica answers.

The fixture `replica_pair` starts the pair once per test session (once per pytest-xdist
worker: each worker has its own directory and ports) and stops both servers at the end,
however the tests went; `running_pair` does the same for a block (the replica benchmark,
`bench/search_replicas.py`, uses it). Every wait is bounded and, when it gives up, says what did not
happen and how the server's log ends.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL

from safevine.web.server import free_port


def _newest_bin() -> Path:
    """Debian's newest installed PostgreSQL (`/usr/lib/postgresql/<major>/bin`)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return found[-1] if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = Path(os.environ.get("SAFEVINE_TEST_POSTGRES_BIN") or _newest_bin())
TOOLS = ("initdb", "pg_ctl", "pg_basebackup", "postgres")
HOST = "127.0.0.1"
DRIVER = "postgresql+psycopg"  # the driver tests/conftest.py and the app use
SERVICE_USER = "postgres"  # PostgreSQL refuses to run as root: as root, run as this user
AS_ROOT = os.geteuid() == 0
START_SECONDS = 60  # pg_ctl's own bound on start and stop
STATEMENT_MS = 30_000  # no control statement may hang a test run


@dataclass(frozen=True)
class Server:
    name: str  # "primary" or "replica", for messages
    data: Path
    log: Path
    port: int

    def url(self, database: str = "postgres") -> str:
        return URL.create(
            DRIVER, username="postgres", host=HOST, port=self.port, database=database
        ).render_as_string(hide_password=False)

    def query(self, statement: str | sql.Composed, *params: object) -> Any:
        """The first column of the first row (None without rows), on a connection of its
        own in autocommit, so that no test's transaction is ever involved."""
        with psycopg.connect(
            host=HOST,
            port=self.port,
            user="postgres",
            dbname="postgres",
            autocommit=True,
            connect_timeout=5,
            options=f"-c statement_timeout={STATEMENT_MS}",
        ) as connection:
            cursor = connection.execute(statement, params or None)
            row = cursor.fetchone() if cursor.description else None
        return None if row is None else row[0]

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError as error:
            return f"(no log at {self.log}: {error})"
        return "\n".join(text.splitlines()[-lines:])


def wait_until(server: Server, what: str, check: Callable[[], bool], timeout: float) -> None:
    """Poll `check` until it holds; past `timeout` seconds, fail naming `what` did not
    happen. A check that raises (the server still starting) counts as not yet."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            if check():
                return
        except psycopg.Error as error:
            last_error = error
        if time.monotonic() > deadline:
            because = f" (last error: {last_error})" if last_error else ""
            raise TimeoutError(
                f"{what}: not within {timeout}s{because}\n"
                f"the {server.name}'s log ends:\n{server.log_tail()}"
            )
        time.sleep(0.05)


@dataclass(frozen=True)
class ReplicaPair:
    primary: Server
    replica: Server

    @property
    def primary_url(self) -> str:
        return self.primary.url()

    @property
    def replica_url(self) -> str:
        return self.replica.url()

    def database_urls(self, name: str) -> tuple[str, str]:
        """The URLs of database `name` on the primary and on the replica."""
        return self.primary.url(name), self.replica.url(name)

    def create_database(self, name: str, timeout: float = 10) -> None:
        """Create `name` on the primary; return once the replica has it too."""
        self.primary.query(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._wait_for_replay(
            f"database {name!r} reaching the replica",
            lambda: self.replica.query("SELECT 1 FROM pg_database WHERE datname = %s", name) == 1,
            timeout,
        )

    def migrated_database(self) -> tuple[str, str]:
        """A new database at the newest schema, as every test database is: its URLs on the
        primary and on the replica."""
        # Imported here, not at the top: tests/conftest.py imports this module.
        from tests.conftest import migrate_database

        name = f"sv_replica_{uuid.uuid4().hex[:8]}"
        self.create_database(name)
        primary_url, replica_url = self.database_urls(name)
        migrate_database(primary_url)
        return primary_url, replica_url

    def pause_replay(self, timeout: float = 10) -> None:
        """Stop the replica applying WAL (it still receives it): it answers from the past."""
        self.replica.query("SELECT pg_wal_replay_pause()")
        # A pause is only requested until the startup process reaches it.
        wait_until(self.replica, "replay pausing", lambda: self._pause_state() == "paused", timeout)

    def resume_replay(self, timeout: float = 10) -> None:
        self.replica.query("SELECT pg_wal_replay_resume()")
        wait_until(
            self.replica, "replay resuming", lambda: self._pause_state() == "not paused", timeout
        )

    def wait_caught_up(self, timeout: float = 10) -> None:
        """Wait until the replica has replayed all the primary had written at this call."""
        target = self.primary.query("SELECT pg_current_wal_lsn()")

        def replayed() -> bool:
            return bool(self.replica.query("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", target))

        self._wait_for_replay(f"replay reaching the primary's {target}", replayed, timeout)

    def _wait_for_replay(self, what: str, check: Callable[[], bool], timeout: float) -> None:
        try:
            wait_until(self.replica, what, check, timeout)
        except TimeoutError as error:
            # The likeliest cause is a test that paused replay and never resumed it.
            raise TimeoutError(f"{error}\nreplay pause state: {self._pause_state()}") from None

    def _pause_state(self) -> str:
        return str(self.replica.query("SELECT pg_get_wal_replay_pause_state()"))


def _unavailable() -> str | None:
    """Why a pair cannot be started here, or None."""
    missing = [tool for tool in TOOLS if not (PG_BIN / tool).is_file()]
    if missing:
        return f"PostgreSQL binaries missing from {PG_BIN}: {', '.join(missing)}"
    if AS_ROOT:
        if shutil.which("runuser") is None:
            return "running as root, but there is no runuser to start PostgreSQL as another user"
        try:
            pwd.getpwnam(SERVICE_USER)
        except KeyError:
            return f"running as root, but there is no {SERVICE_USER!r} user to run PostgreSQL"
    return None


def _run(*args: str, cwd: Path, timeout: float = START_SECONDS + 30) -> str:
    """Run a PostgreSQL program (as the service user when we are root); its output."""
    command = [str(PG_BIN / args[0]), *args[1:]]
    if AS_ROOT:
        command = ["runuser", "-u", SERVICE_USER, "--", *command]
    # C locale: messages in English, whatever the machine's.
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )
    return done.stdout


def _own(path: Path) -> Path:
    """Hand `path` to the user the servers run as."""
    if AS_ROOT:
        user = pwd.getpwnam(SERVICE_USER)
        os.chown(path, user.pw_uid, user.pw_gid)
    return path


def _make_dir(path: Path) -> Path:
    path.mkdir(mode=0o700)
    return _own(path)


@contextmanager
def _workdir(tmp_path_factory: pytest.TempPathFactory | None = None) -> Iterator[Path]:
    if not AS_ROOT and tmp_path_factory is not None:
        yield tmp_path_factory.mktemp("replica")
        return
    # pytest's temporary tree is root's alone (0700), and pytest closes it again whenever
    # another session starts: the postgres user could not reach a directory inside it.
    path = Path(tempfile.mkdtemp(prefix="safevine-replica-"))
    try:
        yield _own(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _configure(data: Path, settings: dict[str, str]) -> None:
    """Append to postgresql.conf: a setting's last line is the one that counts."""
    lines = "".join(f"{key} = {value}\n" for key, value in settings.items())
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(f"\n# tests/replica_cluster.py\n{lines}")


def _start(name: str, data: Path, log: Path, sockets: Path) -> Server:
    """Start the server in `data` on a free port. A port found free can be taken before
    the server binds it (another xdist worker starting its pair): then try another."""
    tries = 3
    for attempt in range(1, tries + 1):
        port = free_port(HOST)
        _configure(data, {"port": str(port), "unix_socket_directories": f"'{sockets}'"})
        server = Server(name, data, log, port)
        try:
            _run("pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", str(START_SECONDS),
                 "start", cwd=data.parent)  # fmt: skip
            return server
        except RuntimeError as error:
            if attempt == tries or "Address already in use" not in server.log_tail(40):
                tail = server.log_tail()
                raise RuntimeError(f"{error}\nthe {name}'s log ends:\n{tail}") from None
    raise AssertionError("unreachable")


def _stop(data: Path) -> None:
    """Stop the server in `data` if it runs: fast (no waiting for clients), else at once."""
    if not (data / "postmaster.pid").exists():
        return
    try:
        _run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "-t", "30", "stop", cwd=data.parent)
    except (RuntimeError, subprocess.TimeoutExpired):
        _run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "-t", "30", "stop",
             cwd=data.parent)  # fmt: skip


def _start_primary(root: Path, stack: ExitStack, settings: dict[str, str]) -> Server:
    data = root / "primary"
    _run("initdb", "-D", str(data), "--auth=trust", "-U", "postgres", "--encoding=UTF8",
         "--locale=C", "--no-sync", "--no-instructions", cwd=root)  # fmt: skip
    stack.callback(_stop, data)  # registered before starting: a half-started server stops too
    _configure(
        data,
        {
            "listen_addresses": f"'{HOST}'",
            "wal_level": "replica",
            "max_wal_senders": "4",
            "hot_standby": "on",
            "shared_buffers": "16MB",
            "fsync": "off",  # a test cluster need not survive a crash
        }
        | settings,
    )
    # Trust, from loopback only; no line for unix sockets, which no test uses.
    (data / "pg_hba.conf").write_text(
        "host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n"
    )
    return _start("primary", data, root / "primary.log", _make_dir(root / "primary-run"))


def _start_replica(root: Path, primary: Server, stack: ExitStack) -> Server:
    data = root / "replica"
    # -R writes standby.signal and primary_conninfo; a fast checkpoint starts the copy now.
    _run("pg_basebackup", "-h", HOST, "-p", str(primary.port), "-U", "postgres",
         "-D", str(data), "-R", "-X", "stream", "--checkpoint=fast", "--no-sync",
         cwd=root)  # fmt: skip
    stack.callback(_stop, data)
    # The copy carries the primary's settings: the replica's own come after them.
    _configure(data, {"hot_standby": "on", "hot_standby_feedback": "on"})
    replica = _start("replica", data, root / "replica.log", _make_dir(root / "replica-run"))
    wait_until(
        replica,
        "the replica in recovery",
        lambda: replica.query("SELECT pg_is_in_recovery()") is True,
        30,
    )
    wait_until(
        replica,
        "the replica streaming from the primary",
        lambda: replica.query("SELECT status FROM pg_stat_wal_receiver") == "streaming",
        30,
    )
    return replica


@contextmanager
def running_pair(
    tmp_path_factory: pytest.TempPathFactory | None = None,
    primary_settings: dict[str, str] | None = None,
) -> Iterator[ReplicaPair]:
    """Start a primary (with `primary_settings` over the defaults above, which the replica
    copies) and its streaming replica; stop both when the block ends. Raises RuntimeError
    saying why when this machine cannot run them."""
    reason = _unavailable()
    if reason is not None:
        raise RuntimeError(reason)
    with _workdir(tmp_path_factory) as root, ExitStack() as stack:
        # Callbacks run last-in first-out: the replica stops before its primary.
        primary = _start_primary(root, stack, primary_settings or {})
        replica = _start_replica(root, primary, stack)
        yield ReplicaPair(primary, replica)


@pytest.fixture(scope="session")
def replica_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicaPair]:
    """A primary and its streaming replica, for this session (this xdist worker)."""
    reason = _unavailable()
    if reason is not None:
        # As tests/conftest.py does: skip, unless CI said PostgreSQL must be there.
        from tests.conftest import REQUIRE_POSTGRES

        if REQUIRE_POSTGRES:
            pytest.fail(reason)
        pytest.skip(reason)
    with running_pair(tmp_path_factory) as pair:
        yield pair

"""CPU time of processes, from /proc: a benchmark's helpers, and a PostgreSQL server's
processes when it runs on this machine.

On PostgreSQL a benchmark's own process is only the client's share of the work; the
server's backends, and its background processes (the WAL writer, the checkpointer), do
the rest on the same cores. What each spent over a timed stretch says which side limits
the rate. A server elsewhere has no processes in /proc: then there is no figure.
"""

import contextlib
import os
from pathlib import Path

from sqlalchemy import Engine, text


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Every process of the server, this connection's own backend too: the pool hands it to
# what is timed next.
_EVERY = "SELECT pid FROM pg_stat_activity"
# The other backends connected to this database.
_THIS_DATABASE = _EVERY + " WHERE datname = current_database() AND pid <> pg_backend_pid()"


def server_processes(engine: Engine, this_database: bool = False) -> dict[int, float] | None:
    """CPU seconds so far of each process of the server `engine` reaches (every backend and
    background process `pg_stat_activity` lists; with `this_database`, the other backends
    connected to its database alone), when they are on this machine; None on SQLite or
    for a server elsewhere."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as connection:
        pids = connection.execute(text(_THIS_DATABASE if this_database else _EVERY)).scalars()
        found = [int(pid) for pid in pids]
    taken: dict[int, float] = {}
    for pid in found:
        # A process that ended since it was listed, or a pid of another machine (or of a
        # container's namespace), where this one is another program or none.
        with contextlib.suppress(OSError, ValueError, IndexError):
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"postgres"):
                taken[pid] = cpu_seconds(pid)
    return taken or None


def server_cpu_since(
    engine: Engine, before: dict[int, float] | None, this_database: bool = False
) -> float | None:
    """The server's CPU seconds since `before` (`server_processes` then, with the same
    `this_database`): each process's time since, or all of it for a process started since.
    A process that ended meanwhile is missed, so pooled connections should outlive the
    stretch timed."""
    if before is None:
        return None
    after = server_processes(engine, this_database)
    if after is None:
        return None
    total = 0.0
    for pid, seconds in after.items():
        earlier = before.get(pid)
        # A pid not there before, or whose time went back (another process now): all new.
        total += seconds if earlier is None or seconds < earlier else seconds - earlier
    return total

"""Public search from a PostgreSQL streaming replica beside search from the primary alone,
in the same run (PostgreSQL only: SQLite has no replicas).

A primary and its streaming replica are started on loopback for the run
(`tests/replica_cluster.running_pair`: initdb and pg_basebackup from Debian's packages).
The primary gets the population of the search benchmark (`search_persons` people, 5%
protected, 5% unscreened); once the replica has replayed it all, `safevine serve` is
driven by wrk with the search benchmark's bodies twice: with SAFEVINE_PUBLIC_DATABASE_URL
naming the primary only, then naming the primary and the replica (the replica takes every
search's lookups, the primary confirms each person found by reference). Both servers log
in as a login role that is a member of the public role, as a deployment's would.
"""

import sys
from collections.abc import Sequence
from pathlib import Path

from psycopg import sql
from sqlalchemy.engine import make_url
from tests.replica_cluster import ReplicaPair, running_pair

from bench.dataset import Person, load_facilities, load_population, people, settle
from bench.harness import Context, Databases, Result, Target
from bench.search_load import (
    BODIES,
    FACILITIES,
    WrkRun,
    canary,
    measure,
    request_bodies,
    safevine_command,
    safevine_env,
    serving,
    throttle_delay_ms,
    write_bodies,
    wrk,
)
from safevine.store.engine import make_engine
from safevine.store.public.connection import PUBLIC_ROLE
from safevine.web.server import free_port

LOGIN = "bench_public"  # a login role in the public role, as SAFEVINE_PUBLIC_DATABASE_URL has
# The primary's memory as the machine's own PostgreSQL server has it (the default), so the
# two set-ups differ only in where searches go. The pair runs without fsync: this run only
# reads, and loading the population is not what it measures.
PRIMARY_SETTINGS = {"shared_buffers": "128MB", "max_connections": "100"}
WANTED = 1.0  # the replica set-up should answer at least as many searches as the primary


def run(ctx: Context) -> list[Result]:
    if ctx.db != "postgresql":
        return []
    with running_pair(primary_settings=PRIMARY_SETTINGS) as pair:
        return [_run(ctx, pair)]


def _run(ctx: Context, pair: ReplicaPair) -> Result:
    databases = Databases("postgresql", ctx.folder, postgres_url=pair.primary.url("postgres"))
    database_url = databases.fresh("replicas")
    engine = make_engine(database_url)
    try:
        codes = load_facilities(engine, FACILITIES)
        population = people(ctx.scale.search_persons, ctx.seed)
        load_population(engine, population, codes, seed=ctx.seed)
        settle(engine)
    finally:
        engine.dispose()
    pair.primary.query(
        sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(
            sql.Identifier(LOGIN), sql.Identifier(PUBLIC_ROLE)
        )
    )
    pair.wait_caught_up(timeout=600)
    name = str(make_url(database_url).database)
    primary_public = _login(pair.primary.url(name))
    replica_public = _login(pair.replica.url(name))
    bodies = write_bodies(
        ctx.folder / "replica-bodies.jsonl", request_bodies(population, BODIES, ctx.seed)
    )
    alone, alone_half, checked = _measure(ctx, database_url, [primary_public], bodies, population)
    both, both_half, _ = _measure(
        ctx, database_url, [primary_public, replica_public], bodies, population
    )
    ratio = both.rate / alone.rate
    return Result(
        "search-replicas",
        ctx.db,
        figures={
            "primary_requests_per_s": alone.rate,
            "primary_p99_ms": alone.p(99),
            "primary_half_p99_ms": alone_half.p(99),
            "replica_requests_per_s": both.rate,
            "replica_p99_ms": both.p(99),
            "replica_half_p99_ms": both_half.p(99),
            "replica_vs_primary": ratio,
            "persons": float(ctx.scale.search_persons),
        },
        targets=[Target("primary and replica vs primary alone", ratio, WANTED, "x")],
        notes=[
            f"{ctx.scale.search_persons:,} persons on a primary and its streaming replica, "
            "both started for the run on this machine (initdb, pg_basebackup; shared_buffers "
            f"{PRIMARY_SETTINGS['shared_buffers']}, fsync off), the replica caught up first",
            "one `safevine serve` process each time, as a login role in the public role; "
            "SAFEVINE_PUBLIC_DATABASE_URL naming the primary alone, then the primary and the "
            "replica (lookups on the replica, each person found confirmed on the primary)",
            f"wrk -t1 -c{ctx.scale.search_connections} -d{ctx.scale.search_seconds}s at "
            "saturation, then at about half that rate, with the search benchmark's bodies",
            f"canary before each load: {' and '.join(checked)} people answer as a miss",
            "every process (both servers, the web process, wrk) shares this machine's cores: "
            "the figure shows what the replica costs or saves here, not on separate hosts",
        ],
        series={
            "latency_ms:primary alone saturated": alone.percentiles_ms,
            "latency_ms:primary and replica saturated": both.percentiles_ms,
        },
    )


def _login(url: str) -> str:
    return make_url(url).set(username=LOGIN).render_as_string(hide_password=False)


def _measure(
    ctx: Context,
    database_url: str,
    public_urls: list[str],
    bodies: Path,
    population: Sequence[Person],
) -> tuple[WrkRun, WrkRun, list[str]]:
    port = free_port()
    env = safevine_env(database_url) | {"SAFEVINE_PUBLIC_DATABASE_URL": ",".join(public_urls)}
    command = [safevine_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    log = ctx.folder / f"replicas-web-{len(public_urls)}.log"
    connections, seconds = ctx.scale.search_connections, ctx.scale.search_seconds
    with serving(command, env, port, log) as web:
        checked = canary(web.port, population)
        saturated = measure(web.url, bodies, connections, seconds)
        delay_ms = throttle_delay_ms(saturated, connections)
        half = wrk(web.url, bodies, connections, seconds, delay_ms)
    return saturated, half, checked


if __name__ == "__main__":
    import json
    import tempfile

    from bench.harness import SCALES

    scale_name = sys.argv[1] if len(sys.argv) > 1 else "smoke"
    with tempfile.TemporaryDirectory() as tmp:
        context = Context(
            "postgresql", SCALES[scale_name], Path(tmp), Databases("postgresql", Path(tmp))
        )
        for result in run(context):
            print(json.dumps(result.as_json(), indent=1))

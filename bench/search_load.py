"""Public search under load: `safevine serve` driven by wrk, against a bare FastAPI ceiling.

A fresh database holds `search_persons` people (5% protected, 5% unscreened). The real
server runs in its own process on a loopback port; wrk (one thread, `search_connections`
connections) cycles through a file of realistic request bodies made from the same
deterministic people: hits by A-number and by name, misses, and searches for protected
and unscreened people, which must answer exactly as misses do. It measures at saturation,
then at about half the saturated rate, then the ceiling: `bench/ceiling_app.py`, one
constant JSON endpoint served by uvicorn with the options `safevine serve` uses, driven
by the same wrk settings and bodies. Between them the same server runs as two processes on
one port (`serve --workers 2`) and is measured at saturation. Before the load, real
requests check that protected and unscreened people look exactly like nobody, and that a
cleared person is found.
"""

import contextlib
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.dataset import (
    Person,
    load_facilities,
    load_population,
    people,
    protection_of,
    settle,
)
from bench.harness import ROOT, Context, Result, Target, peak_rss_mb
from safevine.domain.a_number import format_a_number
from safevine.domain.country import country_name
from safevine.domain.names import PersonName
from safevine.store.engine import make_engine
from safevine.web.server import free_port

LUA = Path(__file__).resolve().parent / "search.lua"
PATH = "/api/v1/search"
FACILITIES = 3_000
BODIES = 4_000
PROTECTED_SHARE = UNSCREENED_SHARE = 0.05  # load_population's defaults
SECRET = "bench-search-load-secret-key-0123456789"
# The least share of its ceiling a search must reach (issue 20). Lower on PostgreSQL: its
# server is a third process on the two cores that the web server and wrk already share,
# and the ceiling runs without it.
RATIO_TARGET = {"sqlite": 0.5, "postgresql": 0.35}
MARKER = "SEARCH_JSON "
WORKERS = 2  # `serve --workers N` measured beside one process


@dataclass(frozen=True)
class WrkRun:
    """One wrk run: rate, latency percentiles 0..100 (ms) and what went wrong."""

    requests: int
    seconds: float
    percentiles_ms: list[float]
    errors: dict[str, int]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def p(self, share: int) -> float:
        return self.percentiles_ms[share]


# Request bodies -------------------------------------------------------------------------


def _a_number_spelling(a_number: str, rng: random.Random) -> str:
    """The A-number as people type it: with or without the A, hyphens or spaces."""
    choice = rng.randrange(4)
    if choice == 0:
        return format_a_number(a_number)
    if choice == 1:
        return f"A{a_number}"
    if choice == 2:
        return f"A {a_number[0:3]} {a_number[3:6]} {a_number[6:9]}"
    return a_number


def _country_spelling(code: str, rng: random.Random) -> str:
    return code if rng.random() < 0.7 else country_name(code, "en")


def _by_a_number(person: Person, rng: random.Random) -> dict[str, str]:
    return {
        "a_number": _a_number_spelling(person.a_number, rng),
        "country_of_birth": _country_spelling(person.country, rng),
    }


def _by_name(person: Person, rng: random.Random, with_birth: bool = False) -> dict[str, str]:
    body = {
        "given_name": person.given if rng.random() < 0.8 else person.given.upper(),
        "family_name": person.family,
        "country_of_birth": _country_spelling(person.country, rng),
    }
    if with_birth:
        body["date_of_birth"] = person.date_of_birth.isoformat()
    return body


def _miss_a_number(n: int) -> str:
    """An A-number nobody has: the population lives in 2xxxxxxxx."""
    return f"{700_000_000 + n * 7_919:09d}"


def request_bodies(population: Sequence[Person], count: int, seed: int) -> list[dict[str, str]]:
    """`count` bodies, shuffled: 35% cleared by A-number, 20% cleared by name (a third with
    the date of birth), 25% unknown A-numbers, 5% unknown names, 15% protected or
    unscreened people (by A-number or by name)."""
    rng = random.Random(seed + 53)
    cleared: list[Person] = []
    hidden: list[Person] = []
    for index, person in enumerate(population):
        kind = protection_of(index, PROTECTED_SHARE, UNSCREENED_SHARE)
        (cleared if kind == "cleared" else hidden).append(person)
    bodies: list[dict[str, str]] = []
    for n in range(count):
        roll = rng.random()
        if roll < 0.35:
            bodies.append(_by_a_number(rng.choice(cleared), rng))
        elif roll < 0.55:
            bodies.append(_by_name(rng.choice(cleared), rng, with_birth=rng.random() < 1 / 3))
        elif roll < 0.80:
            code = rng.choice(population).country
            bodies.append(
                {
                    "a_number": _a_number_spelling(_miss_a_number(n), rng),
                    "country_of_birth": _country_spelling(code, rng),
                }
            )
        elif roll < 0.85:
            person = rng.choice(population)
            bodies.append(
                {
                    "given_name": "Zebulon",
                    "family_name": f"{person.family} Nowhere",
                    "country_of_birth": person.country,
                }
            )
        else:
            person = rng.choice(hidden)
            if rng.random() < 0.6:
                bodies.append(_by_a_number(person, rng))
            else:
                bodies.append(_by_name(person, rng))
    return bodies


def write_bodies(path: Path, bodies: Sequence[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for body in bodies:
            handle.write(json.dumps(body, ensure_ascii=False) + "\n")
    return path


# Servers --------------------------------------------------------------------------------


@dataclass
class Server:
    process: "subprocess.Popen[bytes]"
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"


def safevine_command() -> str:
    beside = Path(sys.executable).parent / "safevine"
    if beside.exists():
        return str(beside)
    found = shutil.which("safevine") or str(ROOT / ".venv" / "bin" / "safevine")
    return found


@contextmanager
def serving(command: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[Server]:
    """Run `command` (a server on 127.0.0.1:`port`) until the block ends; always stopped."""
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT
        )
        server = Server(process, port, log)
        try:
            _wait_until_answering(server)
            yield server
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=15)


def _wait_until_answering(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"the server exited with {server.process.returncode} before answering:\n"
                + server.log.read_text(errors="replace")[-3000:]
            )
        try:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
            connection.request("GET", "/")
            connection.getresponse().read()
            connection.close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the server on port {server.port} did not answer within {timeout:.0f} s")


def safevine_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEVINE_")}
    env.update(
        SAFEVINE_DATABASE_URL=database_url,
        SAFEVINE_SECRET_KEY=SECRET,
        # One load generator on one address would be throttled to 30 searches a minute;
        # the limits are measured elsewhere, this measures the search path.
        SAFEVINE_RATE_LIMITS="false",
        SAFEVINE_LOG_LEVEL="warning",
    )
    return env


def _children(pid: int) -> list[int]:
    """The processes `pid` started (its lookup process), from /proc."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _python_pid(process: "subprocess.Popen[bytes]") -> int:
    """The server's own Python process (the console script execs python; no shell)."""
    cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes()
    if b"python" not in cmdline:
        raise RuntimeError(f"process {process.pid} is not the Python server: {cmdline!r}")
    return process.pid


# HTTP checks ----------------------------------------------------------------------------


def post(port: int, body: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers (without Date) and body of one search."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(
            "POST",
            PATH,
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Accept-Language": "en"},
        )
        response = connection.getresponse()
        content = response.read()
        headers = sorted((k.lower(), v) for k, v in response.getheaders() if k.lower() != "date")
        return response.status, headers, content
    finally:
        connection.close()


def canary(port: int, population: Sequence[Person]) -> list[str]:
    """Protected and unscreened people answer byte for byte as nobody does; a cleared
    person is found. Raises if not; returns what was checked, for the notes."""
    first: dict[str, int] = {}
    cleared_names: set[tuple[str, str, str]] = set()
    for index, person in enumerate(population):
        kind = protection_of(index, PROTECTED_SHARE, UNSCREENED_SHARE)
        first.setdefault(kind, index)
        if kind == "cleared":
            cleared_names.add((*PersonName(person.given, person.family).key, person.country))
    hidden_by_name: dict[str, int] = {}
    for index, person in enumerate(population):
        kind = protection_of(index, PROTECTED_SHARE, UNSCREENED_SHARE)
        key = (*PersonName(person.given, person.family).key, person.country)
        if kind != "cleared" and key not in cleared_names:
            hidden_by_name.setdefault(kind, index)
    missing = {"protected", "unscreened", "cleared"} - set(first)
    if missing or set(hidden_by_name) != {"protected", "unscreened"}:
        raise RuntimeError(f"the population is too small for the canary check: {missing}")

    checked: list[str] = []
    for kind in ("protected", "unscreened"):
        person = population[first[kind]]
        miss = post(port, {"a_number": _miss_a_number(1), "country_of_birth": person.country})
        hidden = post(port, {"a_number": person.a_number, "country_of_birth": person.country})
        if hidden != miss or miss[0] != 200 or json.loads(miss[2]) != {"results": []}:
            raise RuntimeError(
                f"canary: a {kind} person searched by A-number answers {hidden[0]} "
                f"{hidden[2]!r}, a miss answers {miss[0]} {miss[2]!r}"
            )
        person = population[hidden_by_name[kind]]
        miss = post(
            port,
            {
                "given_name": "Zebulon",
                "family_name": "Nowhere Nobody",
                "country_of_birth": person.country,
            },
        )
        hidden = post(
            port,
            {
                "given_name": person.given,
                "family_name": person.family,
                "country_of_birth": person.country,
            },
        )
        if hidden != miss or miss[0] != 200:
            raise RuntimeError(
                f"canary: a {kind} person searched by name answers {hidden[0]} "
                f"{hidden[2]!r}, a miss answers {miss[0]} {miss[2]!r}"
            )
        checked.append(kind)
    person = population[first["cleared"]]
    for body in (
        {"a_number": format_a_number(person.a_number), "country_of_birth": person.country},
        {
            "given_name": person.given,
            "family_name": person.family,
            "country_of_birth": person.country,
        },
    ):
        status, _, content = post(port, body)
        results = json.loads(content).get("results") if status == 200 else None
        if not results or not any(
            r["given_name"] == person.given and r["family_name"] == person.family for r in results
        ):
            raise RuntimeError(f"canary: a cleared person was not found: {status} {content!r}")
    return checked


# wrk ------------------------------------------------------------------------------------


def wrk(
    url: str, bodies: Path, connections: int, seconds: int, delay_ms: int | None = None
) -> WrkRun:
    """One wrk run with bench/search.lua; raises on any error or non-2xx answer."""
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
        "-s", str(LUA), url, "--", str(bodies), str(delay_ms or 0),
    ]  # fmt: skip
    env = dict(os.environ, SEARCH_LUA_THROTTLED="1" if delay_ms else "0")
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    data: dict[str, Any] = json.loads(lines[-1][len(MARKER) :])
    errors: dict[str, int] = data["errors"]
    if any(errors.values()):
        raise RuntimeError(
            f"wrk saw errors against {url}: {errors} "
            "(status counts answers of 400 and above, e.g. 429 or 500)\n" + done.stdout
        )
    return WrkRun(
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        percentiles_ms=[v / 1000 for v in data["percentiles_us"]],
        errors=errors,
    )


def throttle_delay_ms(saturated: WrkRun, connections: int) -> int:
    """Mean pause per connection so that all of them together send about half the
    saturated rate: each cycles every connections / (rate / 2) seconds, of which about
    one service time (1 / rate) is the request itself."""
    rate = max(saturated.rate, 1.0)
    return max(1, round(1000 * (2 * connections / rate - 1 / rate)))


def measure(url: str, bodies: Path, connections: int, seconds: int) -> WrkRun:
    wrk(url, bodies, connections, max(1, min(3, seconds // 4)))  # warm-up
    return wrk(url, bodies, connections, seconds)


# The benchmark --------------------------------------------------------------------------


def run(ctx: Context) -> list[Result]:
    scale = ctx.scale
    database_url = ctx.databases.fresh("search")
    engine = make_engine(database_url)
    try:
        codes = load_facilities(engine, FACILITIES)
        population = people(scale.search_persons, ctx.seed)
        load_population(engine, population, codes, seed=ctx.seed)
        settle(engine)
    finally:
        engine.dispose()
    bodies = write_bodies(
        ctx.folder / "search-bodies.jsonl", request_bodies(population, BODIES, ctx.seed)
    )
    connections, seconds = scale.search_connections, scale.search_seconds

    port = free_port()
    command = [safevine_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with serving(command, safevine_env(database_url), port, ctx.folder / "search-web.log") as web:
        checked = canary(web.port, population)
        saturated = measure(web.url, bodies, connections, seconds)
        delay_ms = throttle_delay_ms(saturated, connections)
        half = wrk(web.url, bodies, connections, seconds, delay_ms)
        server = _python_pid(web.process)
        web_rss = peak_rss_mb(server)
        # The lookup process beside it (SQLite) is the web service's memory too.
        lookup_rss = sum(peak_rss_mb(child) for child in _children(server))
        rss = web_rss + lookup_rss

    # The same server as N = 2 processes on one port (`serve --workers 2`), same run.
    port = free_port()
    two_command = [*command[:-1], str(port), "--workers", str(WORKERS)]
    log = ctx.folder / "search-web-workers.log"
    with serving(two_command, safevine_env(database_url), port, log) as web:
        canary(web.port, population)
        workers = measure(web.url, bodies, connections, seconds)

    port = free_port()
    ceiling_command = [sys.executable, "-m", "bench.ceiling_app", str(port)]
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    with serving(ceiling_command, env, port, ctx.folder / "search-ceiling.log") as bare:
        ceiling = measure(bare.url, bodies, connections, seconds)

    ratio = saturated.rate / ceiling.rate
    workers_ratio = workers.rate / saturated.rate
    notes = [
        f"{scale.search_persons:,} persons ({PROTECTED_SHARE:.0%} protected, "
        f"{UNSCREENED_SHARE:.0%} unscreened) on {ctx.db}; `safevine serve` in its own process",
        "rate limits off (SAFEVINE_RATE_LIMITS=false): a single-address load generator would "
        "be throttled to 30 searches a minute, which measures the limiter, not the search",
        f"wrk -t1 -c{connections} -d{seconds}s after a warm-up run, cycling {BODIES:,} bodies: "
        "35% cleared by A-number, 20% cleared by name, 30% misses, 15% protected or unscreened",
        f"half load: {delay_ms} ms mean pause per connection aimed at "
        f"{saturated.rate / 2:,.0f} requests/s; achieved {half.rate:,.0f} requests/s",
        "ceiling: bench/ceiling_app.py, one constant-JSON POST endpoint on uvicorn with the "
        "options `safevine serve` uses, same wrk settings and bodies, same run",
        f"canary before the load: {' and '.join(checked)} people answer byte for byte as a "
        "miss (by A-number and by name); a cleared person is found",
        "no non-2xx answers and no socket errors in any run (wrk fails the benchmark otherwise)",
        f"`safevine serve --workers {WORKERS}` saturated with the same wrk settings, same run: "
        f"{workers.rate:,.0f} requests/s, {workers_ratio:.2f} times one process (wrk and the "
        f"database share the same {os.cpu_count()} cores)",
    ]
    search = Result(
        "search",
        ctx.db,
        figures={
            "requests_per_s": saturated.rate,
            "p50_ms": saturated.p(50),
            "p95_ms": saturated.p(95),
            "p99_ms": saturated.p(99),
            "half_load_requests_per_s": half.rate,
            "half_p50_ms": half.p(50),
            "half_p95_ms": half.p(95),
            "half_p99_ms": half.p(99),
            "workers_requests_per_s": workers.rate,
            "workers_p99_ms": workers.p(99),
            "workers_vs_one": workers_ratio,
            "ceiling_requests_per_s": ceiling.rate,
            "ceiling_p99_ms": ceiling.p(99),
            "persons": float(scale.search_persons),
        },
        ratio=ratio,
        targets=[
            Target("ratio to ceiling", ratio, RATIO_TARGET[ctx.db], "x"),
            Target("p99 at half load", half.p(99), 20, "ms", higher_is_better=False),
        ],
        notes=notes,
        series={
            "latency_ms:search saturated": saturated.percentiles_ms,
            "latency_ms:search half load": half.percentiles_ms,
            f"latency_ms:search {WORKERS} workers saturated": workers.percentiles_ms,
            "latency_ms:ceiling saturated": ceiling.percentiles_ms,
        },
    )
    memory = Result(
        "memory-web",
        ctx.db,
        figures={
            "peak_rss_mb": rss,
            "serve_process_mb": web_rss,
            "lookup_process_mb": lookup_rss,
        },
        targets=[Target("web peak RSS", rss, 150, "MB", higher_is_better=False)],
        notes=[
            f"VmHWM of the `safevine serve` process after both search runs, plus that of "
            f"its lookup process where it has one (SQLite) "
            f"({scale.search_persons:,} persons, {ctx.db})"
        ],
    )
    return [search, memory]


if __name__ == "__main__":
    import tempfile

    from bench.harness import SCALES, Databases

    kind = sys.argv[1] if len(sys.argv) > 1 else "sqlite"
    scale_name = sys.argv[2] if len(sys.argv) > 2 else "smoke"
    with tempfile.TemporaryDirectory() as tmp:
        databases = Databases(kind, Path(tmp))
        try:
            began = time.perf_counter()
            for result in run(Context(kind, SCALES[scale_name], Path(tmp), databases)):
                print(json.dumps(result.as_json(), indent=1))
            print(f"took {time.perf_counter() - began:.0f} s")
        finally:
            if kind == "postgresql":
                databases.close()

"""Does searching for a hidden person take as long as searching for nobody?

A fresh database holds `search_persons` people, as `load_population` writes them (5%
protected, 5% unscreened), of whom 2% of the cleared are then made minors and 2% aged out
(released long before the retention window). Their A-numbers are spread out (even
numbers only), so that the A-numbers of nobody (odd ones) fall between them, as a guess
near a real A-number would. `safevine serve` runs in its own process on 127.0.0.1 with
rate limits off; one client on one kept-alive HTTP connection sends, round after round,
one search of every class in a shuffled order: the classes are who is searched for
(public, protected, unscreened, minor, aged out, nobody) and how (A-number, or a name
held by that person alone). Each search is timed on the client, from sending the request
to reading the whole answer. Every hidden class is compared with nobody searched the
same way by a two-sided Mann-Whitney U test: a small p-value says the two take
measurably different times, which is what the promise that they are indistinguishable
forbids. Every answer is checked too: the hidden and nobody answer byte for byte alike,
and a public person is found.
"""

import gc
import http.client
import json
import random
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, bindparam, update

from bench.dataset import (
    COUNTRIES,
    FAMILY,
    GIVEN,
    Person,
    load_facilities,
    load_population,
    people,
    protection_of,
    settle,
)
from bench.harness import Context, Result, Target, percentile
from bench.rank_test import mann_whitney_u
from bench.search_load import PATH, safevine_command, safevine_env, serving
from safevine.domain.names import PersonName
from safevine.store.engine import make_engine
from safevine.store.schema import custody_status, persons
from safevine.web.server import free_port

FACILITIES = 900
PROTECTED_SHARE = UNSCREENED_SHARE = 0.05  # load_population's defaults
MINOR_EVERY = AGED_OUT_EVERY = 50  # of the cleared: 2% each
HIDDEN = ("protected", "unscreened", "minor", "aged_out")
WHO = ("public", *HIDDEN, "nobody")
HOW = ("a_number", "name")
WARM_UP_ROUNDS = 30
# The promise is broken if any hidden class differs from nobody; with this many
# comparisons, a p-value below 0.05 / comparisons is taken as a difference (Bonferroni).
ALPHA = 0.05


@dataclass(frozen=True)
class Population:
    """Who is who, after the changes this benchmark makes to the loaded people."""

    people: list[Person]
    kinds: list[str]  # public, protected, unscreened, minor, aged_out per person


def _spread(population: Sequence[Person]) -> list[Person]:
    """Even A-numbers only, so that misses (odd) fall between real people."""
    return [replace(p, a_number=f"{200_000_000 + 2 * i:09d}") for i, p in enumerate(population)]


def _kinds(count: int) -> list[str]:
    kinds: list[str] = []
    cleared = 0
    for index in range(count):
        kind = protection_of(index, PROTECTED_SHARE, UNSCREENED_SHARE)
        if kind == "cleared":
            cleared += 1
            if cleared % MINOR_EVERY == 1:
                kind = "minor"
            elif cleared % AGED_OUT_EVERY == 2:
                kind = "aged_out"
            else:
                kind = "public"
        kinds.append(kind)
    return kinds


def _minor_birth(index: int, today: date) -> date:
    """Seventeen, and not eighteen for another month at least."""
    return today.replace(year=today.year - 17, day=1) - timedelta(days=31 + index % 300)


def make_hidden(engine: Engine, population: Population) -> None:
    """Turn the chosen cleared people into minors and into people released long ago."""
    today = datetime.now(UTC).date()
    long_ago = datetime.now(UTC) - timedelta(days=400)
    minors = [
        {"a": p.a_number, "born": _minor_birth(i, today)}
        for i, (p, kind) in enumerate(zip(population.people, population.kinds, strict=True))
        if kind == "minor"
    ]
    aged_out = [
        {"a": p.a_number, "left": long_ago}
        for p, kind in zip(population.people, population.kinds, strict=True)
        if kind == "aged_out"
    ]
    born = update(persons).where(persons.c.a_number == bindparam("a"))
    released = (
        update(custody_status)
        .where(
            custody_status.c.person_id
            == persons.select()
            .with_only_columns(persons.c.id)
            .where(persons.c.a_number == bindparam("a"))
            .scalar_subquery()
        )
        .values(state="released", left_custody_at=bindparam("left"), occurred_at=bindparam("left"))
    )
    with engine.begin() as connection:
        if minors:
            connection.execute(born.values(date_of_birth=bindparam("born")), minors)
        if aged_out:
            connection.execute(released, aged_out)


# Requests --------------------------------------------------------------------------------


def _by_a_number(a_number: str, country: str) -> bytes:
    return json.dumps({"a_number": a_number, "country_of_birth": country}).encode()


def _by_name(given: str, family: str, country: str) -> bytes:
    body = {"given_name": given, "family_name": family, "country_of_birth": country}
    return json.dumps(body, ensure_ascii=False).encode()


def request_pools(population: Population, size: int, seed: int) -> dict[str, list[bytes]]:
    """Up to `size` distinct request bodies per class ("how:who"). By name, only people
    whose folded name nobody else has: one candidate each, like a name that nobody has."""
    rng = random.Random(seed + 71)
    keys = Counter(PersonName(p.given, p.family).key for p in population.people)
    pools: dict[str, list[bytes]] = {f"{how}:{who}": [] for how in HOW for who in WHO}
    for p, kind in zip(population.people, population.kinds, strict=True):
        pools[f"a_number:{kind}"].append(_by_a_number(p.a_number, p.country))
        if keys[PersonName(p.given, p.family).key] == 1:
            pools[f"name:{kind}"].append(_by_name(p.given, p.family, p.country))
    codes = [c for c, _ in COUNTRIES]
    weights = [w for _, w in COUNTRIES]
    count = len(population.people)
    for _ in range(size):
        odd = 200_000_000 + 2 * rng.randrange(count) + 1
        pools["a_number:nobody"].append(_by_a_number(f"{odd:09d}", rng.choices(codes, weights)[0]))
    while len(pools["name:nobody"]) < size:
        given, family = rng.choice(GIVEN), f"{rng.choice(FAMILY)} {rng.choice(FAMILY)}"
        if keys[PersonName(given, family).key] == 0:
            pools["name:nobody"].append(_by_name(given, family, rng.choices(codes, weights)[0]))
    for name, pool in pools.items():
        if not pool:
            raise RuntimeError(f"the population is too small: no one for {name}")
        rng.shuffle(pool)
        del pool[size:]
    return pools


def schedule(pools: dict[str, list[bytes]], rounds: int, seed: int) -> list[tuple[str, bytes]]:
    """`rounds` rounds of one request per class, in a fresh random order each round."""
    rng = random.Random(seed + 73)
    classes = sorted(pools)
    plan: list[tuple[str, bytes]] = []
    for n in range(rounds):
        order = classes[:]
        rng.shuffle(order)
        plan += [(name, pools[name][n % len(pools[name])]) for name in order]
    return plan


# Timing ----------------------------------------------------------------------------------


class Client:
    """One kept-alive HTTP/1.1 connection, as a browser or a script would hold."""

    def __init__(self, port: int) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self._headers = {"Content-Type": "application/json", "Accept-Language": "en"}

    def search(self, body: bytes) -> tuple[int, int, bytes]:
        """Nanoseconds from sending to the whole answer read, status and body."""
        began = time.perf_counter_ns()
        self._connection.request("POST", PATH, body=body, headers=self._headers)
        response = self._connection.getresponse()
        content = response.read()
        took = time.perf_counter_ns() - began
        return took, response.status, content

    def close(self) -> None:
        self._connection.close()


def time_searches(port: int, plan: Sequence[tuple[str, bytes]]) -> dict[str, list[float]]:
    """Microseconds per search, by class; raises on any answer that is not as it must be."""
    client = Client(port)
    timings: dict[str, list[float]] = {name: [] for name, _ in plan}
    miss: bytes | None = None
    gc.collect()
    gc.disable()  # a collection in the middle of one search would be timed as its search
    try:
        for name, body in plan:
            took, status, content = client.search(body)
            if status != 200:
                raise RuntimeError(f"{name}: answered {status} {content[:200]!r}")
            if name.endswith(":public"):
                if not json.loads(content)["results"]:
                    raise RuntimeError(f"{name}: a public person was not found: {body!r}")
            else:
                miss = miss or content
                if content != miss:
                    raise RuntimeError(f"{name}: answered {content[:200]!r}, not as nobody")
            timings[name].append(took / 1000)
    finally:
        gc.enable()
        client.close()
    return timings


# The benchmark ---------------------------------------------------------------------------


def run(ctx: Context) -> list[Result]:
    scale = ctx.scale
    database_url = ctx.databases.fresh("timing")
    loaded = _spread(people(scale.search_persons, ctx.seed))
    population = Population(loaded, _kinds(len(loaded)))
    engine = make_engine(database_url)
    try:
        codes = load_facilities(engine, FACILITIES)
        load_population(engine, loaded, codes, seed=ctx.seed)
        make_hidden(engine, population)
        settle(engine)
    finally:
        engine.dispose()
    rounds = scale.timing_requests
    pools = request_pools(population, rounds, ctx.seed)
    warm_up = schedule(pools, min(WARM_UP_ROUNDS, rounds), ctx.seed + 1)
    plan = schedule(pools, rounds, ctx.seed)

    port = free_port()
    command = [safevine_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    log = ctx.folder / "timing-web.log"
    began = time.perf_counter()
    with serving(command, safevine_env(database_url), port, log) as web:
        time_searches(web.port, warm_up)
        timings = time_searches(web.port, plan)
    seconds = time.perf_counter() - began
    return [summarise(ctx, timings, seconds)]


def summarise(ctx: Context, timings: dict[str, list[float]], seconds: float) -> Result:
    figures: dict[str, float] = {}
    lowest = 1.0
    differences: list[str] = []
    for how in HOW:
        nobody = timings[f"{how}:nobody"]
        for who in WHO:
            samples = timings[f"{how}:{who}"]
            figures[f"{how} {who} p50_us"] = statistics.median(samples)
            figures[f"{how} {who} p90_us"] = percentile(samples, 0.9)
        for who in HIDDEN:
            samples = timings[f"{how}:{who}"]
            p_value = mann_whitney_u(samples, nobody).p_value
            figures[f"{how} {who} vs nobody p"] = p_value
            lowest = min(lowest, p_value)
            shift = statistics.median(samples) - statistics.median(nobody)
            differences.append(f"{how} {who} {shift:+.1f}")
    comparisons = len(HOW) * len(HIDDEN)
    requests = sum(len(samples) for samples in timings.values())
    figures["searches"] = float(requests)
    notes = [
        f"{ctx.scale.search_persons:,} persons on {ctx.db} ({PROTECTED_SHARE:.0%} protected, "
        f"{UNSCREENED_SHARE:.0%} unscreened; of the cleared, 2% made minors and 2% released "
        "400 days ago); `safevine serve` in its own process, rate limits off",
        f"{ctx.scale.timing_requests:,} searches per class over one kept-alive connection, "
        f"one of each of the {len(timings)} classes per round in a shuffled order, after "
        f"{WARM_UP_ROUNDS} rounds of warm-up; {requests:,} searches in {seconds:.0f} s",
        "by name: only people whose folded name no one else has, and names no one has",
        "p: two-sided Mann-Whitney U test of each hidden class against nobody searched the "
        f"same way; the target is the smallest of the {comparisons}, against "
        f"{ALPHA} / {comparisons} (Bonferroni)",
        "median minus nobody's median (µs): " + ", ".join(differences),
        "every answer checked: hidden people answered byte for byte as nobody, public found",
    ]
    return Result(
        "lookup-timing",
        ctx.db,
        figures=figures,
        targets=[Target("smallest p, hidden vs nobody", lowest, ALPHA / comparisons, "")],
        notes=notes,
    )


if __name__ == "__main__":
    import sys
    import tempfile

    from bench.harness import SCALES, Databases

    kind = sys.argv[1] if len(sys.argv) > 1 else "sqlite"
    scale_name = sys.argv[2] if len(sys.argv) > 2 else "smoke"
    with tempfile.TemporaryDirectory() as tmp:
        databases = Databases(kind, Path(tmp))
        try:
            for result in run(Context(kind, SCALES[scale_name], Path(tmp), databases)):
                print(json.dumps(result.as_json(), indent=1))
        finally:
            if kind == "postgresql":
                databases.close()

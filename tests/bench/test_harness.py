"""The benchmark harness runs end to end on a tiny data set: every benchmark, both
databases, results, summary and plots. Its figures mean nothing at this size; only that
`make bench` would work is checked here (benchmarks themselves never run in CI)."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL, REQUIRE_POSTGRES

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {
    "events",
    "feed-health",
    "roster",
    "search",
    "lookup-timing",
    "memory-web",
    "delivery",
    "delivery-steady",
    "delivery-receipts",
    "memory-worker",
    "purge",
}


def _databases() -> list[str]:
    from bench.harness import postgres_available

    if postgres_available(POSTGRES_URL):
        return ["sqlite", "postgresql"]
    if REQUIRE_POSTGRES:
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} does not answer")
    return ["sqlite"]


def _server_here() -> bool:
    """The test server's processes are in this machine's /proc."""
    from bench.process_cpu import server_processes

    from safevine.store.engine import make_engine

    engine = make_engine(POSTGRES_URL)
    try:
        return server_processes(engine) is not None
    finally:
        engine.dispose()


def test_every_benchmark_runs_on_a_tiny_data_set(tmp_path: Path) -> None:
    if shutil.which("wrk") is None:
        if os.environ.get("SAFEVINE_REQUIRE_WRK") == "1":
            pytest.fail("wrk is not installed")
        pytest.skip("wrk is not installed (`make bench-tools` installs it)")
    kinds = _databases()
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--scale", "smoke", "--db", ",".join(kinds),
         "--out", str(tmp_path), "--no-docs"],
        cwd=ROOT,
        env={**os.environ, "SAFEVINE_BENCH_POSTGRES_URL": POSTGRES_URL},
        capture_output=True,
        text=True,
        timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]

    for kind in kinds:
        [path] = tmp_path.glob(f"*-smoke-{kind}.json")
        document = json.loads(path.read_text())
        assert document["scale"] == "smoke" and document["db"] == kind
        assert document["machine"]["cores"] >= 1
        results = {r["benchmark"]: r for r in document["results"]}
        # A replica benchmark needs PostgreSQL's streaming replication.
        assert set(results) == EXPECTED | ({"search-replicas"} if kind == "postgresql" else set())
        for result in results.values():
            assert result["figures"], result
            for name, value in result["figures"].items():
                assert math.isfinite(value) and value >= 0, (result["benchmark"], name)
            for target in result["targets"]:
                better = target["value"] >= target["limit"]
                worse = target["value"] <= target["limit"]
                assert target["met"] == (better if target["higher_is_better"] else worse)
        events = results["events"]["figures"]
        # Every record is accounted for: stored, a resend, or a kept reject.
        assert events["applied"] + events["duplicates"] + events["rejected"] == events["events"]
        assert events["rejected"] > 0 and events["duplicates"] > 0
        assert events["notifications_queued"] > 0
        assert results["search"]["ratio"] > 0
        assert results["search"]["figures"]["workers_requests_per_s"] > 0
        if kind == "postgresql" and _server_here():
            # The server's share of the feed, from its processes on this machine.
            assert events["server_cpu_s"] > 0
            assert events["all_cores_busy_ratio"] > 0
        if kind == "sqlite":
            # The feed's statements replayed alone (the replay checks what it stored).
            assert events["statements_s"] > events["statements_commit_s"] > 0
            assert events["statements_rows"] > events["applied"]
            assert events["statements_ratio"] > 0
        if kind == "postgresql":
            replicas = results["search-replicas"]["figures"]
            assert replicas["replica_requests_per_s"] > 0 < replicas["primary_requests_per_s"]
        assert results["delivery"]["figures"]["messages"] > 0
        # Every text sent, every receipt posted for it applied, none refused.
        texts = results["delivery-receipts"]["figures"]
        assert texts["texts"] > 0 and texts["receipts_applied"] == texts["texts"]
        assert texts["receipts_refused"] == 0 and texts["receipts_applied_per_s"] > 0
        assert texts["lag_p95_ms"] >= texts["lag_p50_ms"] > 0
        feeds = results["feed-health"]["figures"]
        assert feeds["silent_facilities"] > 0 and feeds["delay_notices"] >= 0
        # The notices each run queued are counted on both databases (not PostgreSQL's -1).
        assert feeds["first_notices"] >= 0 and feeds["notices_per_s"] >= 0
        purged = results["purge"]["figures"]
        # Everyone due was purged (the benchmark itself checks that their names are gone).
        assert purged["purged"] == purged["due"] > 0
        assert purged["write_tx_max_ms"] >= purged["write_tx_p95_ms"] > 0
        timing = results["lookup-timing"]["figures"]
        for how in ("a_number", "name"):
            for who in ("public", "protected", "unscreened", "minor", "aged_out", "nobody"):
                assert timing[f"{how} {who} p50_us"] > 0
            for who in ("protected", "unscreened", "minor", "aged_out"):
                assert 0 <= timing[f"{how} {who} vs nobody p"] <= 1

    [summary] = tmp_path.glob("*-smoke.md")
    text = summary.read_text()
    for benchmark in EXPECTED:
        assert f"### {benchmark}" in text
    plots = sorted((tmp_path / "plots").glob("*.png"))
    assert {p.name.rsplit("-", 1)[1] for p in plots} == {
        "targets.png",
        "throughput.png",
        "latency.png",
    }
    for plot in plots:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

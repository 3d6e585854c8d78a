"""BENCHMARKS.md's generated figures: a full run of some benchmarks replaces their figures
and keeps, under their own run's date, those of the benchmarks it did not run."""

from pathlib import Path

from bench.harness import SCALES, Result, Target
from bench.report import (
    BEGIN,
    EARLIER_RUN,
    END,
    carried_figures,
    merge_json,
    summary_text,
    update_benchmarks_md,
    write_json,
)

MACHINE = {
    "cpu": "a CPU",
    "cores": 2,
    "memory_gb": 1.0,
    "os": "an OS",
    "python": "3",
    "sqlite": "3",
    "postgresql": None,
    "wrk": None,
    "packages": {},
}


def _result(name: str, value: float, db: str = "sqlite") -> Result:
    return Result(
        name, db, {f"{name}_per_s": value}, targets=[Target(f"{name} rate", value, 10, "x/s")]
    )


def _run(folder: Path, day: str, **figures: float) -> str:
    """A full run of these benchmarks on `day`: its JSON, and its summary."""
    results = {kind: [_result(n, v, kind) for n, v in figures.items()] for kind in ("sqlite",)}
    write_json(
        folder / f"{day}-sqlite.json", day, SCALES["full"], "sqlite", MACHINE, results["sqlite"]
    )
    return summary_text(day, "full", MACHINE, results, [], [])


def test_a_run_of_some_benchmarks_keeps_the_figures_of_the_others(tmp_path: Path) -> None:
    docs = tmp_path / "BENCHMARKS.md"
    docs.write_text(f"# Benchmarks\n\nWords.\n\n{BEGIN}\n{END}\n\nMore words.\n")
    first = _run(tmp_path, "2026-01-01", alpha=1, beta=2)
    update_benchmarks_md(docs, first)
    assert (
        carried_figures(docs, tmp_path, "2026-01-01", {("alpha", "sqlite"), ("beta", "sqlite")})
        == ""
    )

    # Only beta runs again: alpha's figures stay, dated, and beta's old ones go.
    second = _run(tmp_path, "2026-01-02", beta=20)
    carried = carried_figures(docs, tmp_path, "2026-01-02", {("beta", "sqlite")})
    assert "## Figures of 2026-01-01 (full scale)" in carried and "Not run since: alpha." in carried
    assert "### alpha" in carried and "### beta" not in carried
    update_benchmarks_md(docs, second + "\n" + carried)
    text = docs.read_text()
    assert text.startswith("# Benchmarks\n\nWords.") and text.endswith("More words.\n")
    assert text.index("2026-01-02") < text.index("2026-01-01")
    assert "| beta_per_s | 20 |" in text and "| beta_per_s | 2 |" not in text
    assert "| alpha_per_s | 1 |" in text

    # Then alpha alone: beta of the second run stays, nothing of the first.
    third = _run(tmp_path, "2026-01-03", alpha=10)
    carried = carried_figures(docs, tmp_path, "2026-01-03", {("alpha", "sqlite")})
    assert "2026-01-02" in carried and "2026-01-01" not in carried
    assert "| beta_per_s | 20 |" in carried and "alpha" not in carried
    update_benchmarks_md(docs, third + "\n" + carried)
    assert docs.read_text().count("## Figures of") == 2


def test_a_benchmark_run_again_on_one_database_keeps_the_others_figures(
    tmp_path: Path,
) -> None:
    docs = tmp_path / "BENCHMARKS.md"
    docs.write_text(f"{BEGIN}\n{END}\n")
    both = {kind: [_result("alpha", n, kind), _result("beta", n + 1, kind)]
            for kind, n in (("sqlite", 1), ("postgresql", 5))}  # fmt: skip
    for kind, found in both.items():
        write_json(tmp_path / f"2026-01-01-{kind}.json", "2026-01-01", SCALES["full"], kind,
                   MACHINE, found)  # fmt: skip
    update_benchmarks_md(docs, summary_text("2026-01-01", "full", MACHINE, both, [], []))

    # alpha again on SQLite alone, the next day: its PostgreSQL figures stay, and beta's.
    carried = carried_figures(docs, tmp_path, "2026-01-02", {("alpha", "sqlite")})
    assert "Not run since: alpha (postgresql), beta." in carried
    assert "| alpha_per_s | n/a | 5 |" in carried
    assert "| beta_per_s | 2 | 6 |" in carried
    update_benchmarks_md(docs, _run(tmp_path, "2026-01-02", alpha=10) + "\n" + carried)

    # Then alpha on PostgreSQL too: nothing of alpha is left of the first day.
    carried = carried_figures(docs, tmp_path, "2026-01-03", {("alpha", "postgresql")})
    assert "| alpha_per_s | 10 |" in carried and "2026-01-02" in carried
    first = carried[carried.index("2026-01-01") :]
    assert "alpha" not in first and "| beta_per_s | 2 | 6 |" in first


def test_a_result_kept_from_a_run_on_another_machine_says_so(tmp_path: Path) -> None:
    path = tmp_path / "2026-01-01-sqlite.json"
    full = SCALES["full"]
    merge_json(path, "2026-01-01", full, "sqlite", MACHINE, [_result("alpha", 1)])
    same = merge_json(path, "2026-01-01", full, "sqlite", MACHINE, [_result("beta", 2)])
    assert [r.notes for r in same] == [[], []]  # the same machine: nothing to say
    other = {**MACHINE, "cpu": "another CPU"}
    merged = merge_json(path, "2026-01-01", full, "sqlite", other, [_result("gamma", 3)])
    again = merge_json(path, "2026-01-01", full, "sqlite", other, [_result("gamma", 4)])
    for found in (merged, again):
        notes = {r.benchmark: r.notes for r in found}
        assert notes["gamma"] == []
        for kept in ("alpha", "beta"):
            [note] = notes[kept]
            assert note.startswith(EARLIER_RUN) and "a CPU, 2 cores" in note


def test_a_target_that_differs_by_database_is_one_row_naming_each() -> None:
    results = {
        "sqlite": [Result("search", "sqlite", {}, targets=[Target("ratio", 0.47, 0.5, "x")])],
        "postgresql": [
            Result("search", "postgresql", {}, targets=[Target("ratio", 0.36, 0.35, "x")])
        ],
    }
    rows = [
        line
        for line in summary_text("2026-01-01", "full", MACHINE, results, [], []).splitlines()
        if line.startswith("| search: ratio")
    ]
    assert rows == [
        "| search: ratio | ≥ 0.5 x (sqlite); ≥ 0.35 x (postgresql) | 0.47 ❌ | 0.36 ✅ |"
    ]


def test_a_target_the_same_on_every_database_names_it_once() -> None:
    results = {
        kind: [Result("events", kind, {}, targets=[Target("rate", 12.0, 10, "x/s")])]
        for kind in ("sqlite", "postgresql")
    }
    text = summary_text("2026-01-01", "full", MACHINE, results, [], [])
    assert "| events: rate | ≥ 10 x/s | 12 ✅ | 12 ✅ |" in text.splitlines()

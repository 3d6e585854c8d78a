"""Run the benchmarks: `python -m bench.run [--scale full|quick|smoke] [--db sqlite,postgresql]`.

Each benchmark runs on each database in turn, never two at once, so they do not compete
for the machine. PostgreSQL is skipped, with a note, when no server answers. Results go
to `bench/results/` (JSON per database, one Markdown summary, PNG plots); a full run also
rewrites the figures in BENCHMARKS.md: this run's, and, under their own date, those it
showed of benchmarks not run this time.
"""

import argparse
import json
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    delivery,
    event_ingest,
    feed_health,
    lookup_timing,
    purge,
    roster_sweep,
    search_load,
    search_replicas,
)
from bench.harness import POSTGRES_URL, ROOT, SCALES, Context, Databases, Result, postgres_available
from bench.machine import describe
from bench.plots import draw
from bench.report import carried_figures, merge_json, update_benchmarks_md, write_summary

BENCHMARKS: dict[str, Callable[[Context], list[Result]]] = {
    "events": event_ingest.run,
    "roster": roster_sweep.run,
    "search": search_load.run,
    "search-replicas": search_replicas.run,
    "lookup-timing": lookup_timing.run,
    "delivery": delivery.run,
    "feed-health": feed_health.run,
    "purge": purge.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--db", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--docs",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="rewrite the figures in BENCHMARKS.md (default: for a full run only)",
    )
    args = parser.parse_args(argv)
    scale = SCALES[args.scale]
    wanted = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(wanted) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    kinds = [kind.strip() for kind in args.db.split(",") if kind.strip()]
    skipped: list[str] = []
    if "postgresql" in kinds and not postgres_available():
        kinds.remove("postgresql")
        skipped.append(f"PostgreSQL skipped: no server answered at {POSTGRES_URL}")
        print(skipped[-1])

    day = datetime.now(UTC).date().isoformat()
    stem = day if scale.name == "full" else f"{day}-{scale.name}"
    # The server is described whenever one answers: a run of SQLite alone is merged into
    # figures that keep PostgreSQL's from an earlier run on the same machine.
    machine = describe(POSTGRES_URL)
    results: dict[str, list[Result]] = {}
    failures: list[str] = []
    for kind in kinds:
        results[kind] = []
        for name in wanted:
            print(f"== {name} on {kind} ({scale.name})", flush=True)
            began = time.perf_counter()
            with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as folder:
                databases = Databases(kind, Path(folder))
                try:
                    found = BENCHMARKS[name](Context(kind, scale, Path(folder), databases))
                except Exception:
                    failures.append(f"{name} on {kind}:\n{traceback.format_exc()}")
                    print(failures[-1], flush=True)
                    continue
                finally:
                    if kind == "postgresql":
                        databases.close()
            for result in found:
                print(f"   {result.benchmark}: {_line(result)}", flush=True)
            print(f"   ({time.perf_counter() - began:.0f} s)", flush=True)
            results[kind].extend(found)

    args.out.mkdir(parents=True, exist_ok=True)
    for kind, found in results.items():
        results[kind] = merge_json(
            args.out / f"{stem}-{kind}.json", day, scale, kind, machine, found
        )
    for kind in ("sqlite", "postgresql"):
        earlier = args.out / f"{stem}-{kind}.json"
        if kind not in results and earlier.exists():
            document = json.loads(earlier.read_text())
            results[kind] = [Result.from_json(r) for r in document["results"]]
    results = {k: results[k] for k in ("sqlite", "postgresql") if k in results}
    plots = draw(results, args.out / "plots", stem)
    notes = skipped + [f.splitlines()[0] for f in failures]
    summary = write_summary(args.out / f"{stem}.md", day, scale, machine, results, plots, notes)
    print(f"wrote {summary}")
    if args.docs if args.docs is not None else scale.name == "full":
        # The figures of benchmarks not run this time stay, under their own run's date.
        docs = ROOT / "BENCHMARKS.md"
        fresh = {(r.benchmark, kind) for kind, found in results.items() for r in found}
        carried = carried_figures(docs, args.out, day, fresh) if scale.name == "full" else ""
        update_benchmarks_md(docs, summary.read_text() + ("\n" + carried if carried else ""))
        print("updated BENCHMARKS.md")
    return 1 if failures else 0


def _line(result: Result) -> str:
    parts = [
        f"{k}={v:,.3g}" if isinstance(v, float) else f"{k}={v:,}" for k, v in result.figures.items()
    ]
    if result.ratio is not None:
        parts.append(f"ratio={result.ratio:.2f}")
    parts += [f"[{'met' if t.met else 'MISSED'}: {t.name}]" for t in result.targets]
    return " ".join(parts)


if __name__ == "__main__":
    raise SystemExit(main())

"""Results as JSON (one file per database), a Markdown summary, and BENCHMARKS.md's figures."""

import json
import re
from pathlib import Path
from typing import Any

from bench.harness import Result, Scale

BEGIN = "<!-- figures:begin (written by `make bench`; edit the text around it) -->"
END = "<!-- figures:end -->"


def merge_json(
    path: Path, day: str, scale: Scale, db: str, machine: dict[str, Any], results: list[Result]
) -> list[Result]:
    """Write this run's results into the day's file for `db`, keeping any benchmark run
    earlier that day and not re-run now (so one benchmark can be re-run alone)."""
    kept: list[Result] = []
    if path.exists():
        fresh = {r.benchmark for r in results}
        earlier = json.loads(path.read_text())
        kept = [Result.from_json(r) for r in earlier["results"] if r["benchmark"] not in fresh]
        # The file names one machine, this run's: a result kept from a run on another
        # says where it was measured.
        before = earlier["machine"]
        if _host(before) != _host(machine):
            where = f"{EARLIER_RUN} {_host(before)}"
            for result in kept:
                if not any(note.startswith(EARLIER_RUN) for note in result.notes):
                    result.notes.append(where)
    merged = kept + results
    write_json(path, day, scale, db, machine, merged)
    return merged


EARLIER_RUN = "measured in an earlier run that day, on another machine:"


def _host(machine: dict[str, Any]) -> str:
    return f"{machine['cpu']}, {machine['cores']} cores, {machine['memory_gb']} GB; {machine['os']}"


def write_json(
    path: Path, day: str, scale: Scale, db: str, machine: dict[str, Any], results: list[Result]
) -> Path:
    document = {
        "date": day,
        "scale": scale.name,
        "sizes": {k: v for k, v in scale.__dict__.items() if k != "name"},
        "db": db,
        "machine": machine,
        "results": [r.as_json() for r in results],
    }
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    return path


def write_summary(
    path: Path,
    day: str,
    scale: Scale,
    machine: dict[str, Any],
    results: dict[str, list[Result]],
    plots: list[Path],
    notes: list[str],
) -> Path:
    path.write_text(summary_text(day, scale.name, machine, results, plots, notes))
    return path


def summary_text(
    day: str,
    scale: str,
    machine: dict[str, Any],
    results: dict[str, list[Result]],
    plots: list[Path],
    notes: list[str],
    preface: str | None = None,
) -> str:
    kinds = list(results)
    lines = [f"## Figures of {day} ({scale} scale)", ""]
    if preface:
        lines += [preface, ""]
    lines += [_machine_line(machine), ""]
    lines += ["| benchmark | target | " + " | ".join(kinds) + " |"]
    lines += ["|---|---|" + "---|" * len(kinds)]
    for name, target in _targets(results):
        cells = []
        for kind in kinds:
            found = _target(results[kind], name, target)
            cells.append("n/a" if found is None else _met(found))
        lines.append(f"| {name} | {target} | " + " | ".join(cells) + " |")
    lines.append("")
    for benchmark in _benchmarks(results):
        lines += [f"### {benchmark}", "", "| figure | " + " | ".join(kinds) + " |"]
        lines.append("|---|" + "---|" * len(kinds))
        by_kind = {
            k: next((r for r in results[k] if r.benchmark == benchmark), None) for k in kinds
        }
        figures: list[str] = []
        for found in by_kind.values():
            for key in found.figures if found else {}:
                if key not in figures:
                    figures.append(key)
        for key in figures:
            cells = [_number(r.figures.get(key)) if r else "n/a" for r in by_kind.values()]
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
        if any(r is not None and r.ratio is not None for r in by_kind.values()):
            cells = [
                f"**{r.ratio:.2f}**" if r is not None and r.ratio is not None else "n/a"
                for r in by_kind.values()
            ]
            lines.append("| ratio to ceiling | " + " | ".join(cells) + " |")
        lines.append("")
        for kind, found in by_kind.items():
            for note in found.notes if found else []:
                lines.append(f"- {kind}: {note}")
        lines.append("")
    if notes:
        lines += ["### Run notes", ""] + [f"- {n}" for n in notes] + [""]
    if plots:
        lines += ["### Plots", ""]
        lines += [f"![{p.stem}](plots/{p.name})" for p in plots]
        lines.append("")
    return "\n".join(lines)


_REGION = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
_FULL_RUN = re.compile(r"^## Figures of (\d{4}-\d{2}-\d{2}) \(full scale\)$", re.MULTILINE)
_BENCHMARK = re.compile(r"^### (\S+)$", re.MULTILINE)


def carried_figures(path: Path, folder: Path, day: str, fresh: set[tuple[str, str]]) -> str:
    """The figures BENCHMARKS.md shows now that are not in `fresh` (this run's, as
    (benchmark, database)): each earlier full run's section, redrawn from that run's JSON
    in `folder` with only what was not run since, so a run of some benchmarks on some
    databases replaces those figures and keeps the others' (a benchmark re-run on SQLite
    alone keeps its PostgreSQL figures). Empty when there are none."""
    current = path.read_text() if path.exists() else ""
    region = _REGION.search(current)
    if region is None:
        return ""
    text = region.group(0)
    starts = list(_FULL_RUN.finditer(text))
    done = set(fresh)
    sections = []
    for n, start in enumerate(starts):
        date = start.group(1)
        end = starts[n + 1].start() if n + 1 < len(starts) else len(text)
        shown = set(_BENCHMARK.findall(text[start.end() : end]))
        if date == day or not shown:
            continue
        results: dict[str, list[Result]] = {}
        machine: dict[str, Any] | None = None
        # Each benchmark of that run, in its order, with the databases it ran on.
        ran: dict[str, list[str]] = {}
        for kind in ("sqlite", "postgresql"):
            file = folder / f"{date}-{kind}.json"
            if not file.exists():
                continue
            document = json.loads(file.read_text())
            machine = machine or document["machine"]
            for r in document["results"]:
                ran.setdefault(r["benchmark"], []).append(kind)
            kept = [
                Result.from_json(r)
                for r in document["results"]
                if r["benchmark"] in shown and (r["benchmark"], kind) not in done
            ]
            if kept:
                results[kind] = kept
        if machine is None or not results:
            continue
        left = {(r.benchmark, kind) for kind, found in results.items() for r in found}
        done.update(left)
        names = []
        for name, kinds in ran.items():
            still = [kind for kind in kinds if (name, kind) in left]
            if still:
                names.append(name if still == kinds else f"{name} ({', '.join(still)})")
        plots = sorted((folder / "plots").glob(f"{date}-*.png"))
        preface = f"Not run since: {', '.join(names)}."
        sections.append(summary_text(date, "full", machine, results, plots, [], preface))
    return "\n".join(sections)


def update_benchmarks_md(path: Path, summary: str) -> None:
    """Replace the figures between the markers, keeping the hand-written text around them."""
    block = f"{BEGIN}\n{summary.replace('](plots/', '](bench/results/plots/')}\n{END}"
    current = path.read_text() if path.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in current or END not in current:
        current = current.rstrip() + f"\n\n{BEGIN}\n{END}\n"
    path.write_text(_REGION.sub(lambda _: block, current))


def _machine_line(m: dict[str, Any]) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    settings = m.get("postgresql_settings")
    server = f" ({', '.join(f'{k}={v}' for k, v in settings.items())})" if settings else ""
    return (
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; {m['os']}. "
        f"Python {m['python']}, SQLite {m['sqlite']}, "
        f"PostgreSQL {m['postgresql'] or 'n/a'}{server}, "
        f"{m['wrk'] or 'wrk n/a'}; {packages}."
    )


def _benchmarks(results: dict[str, list[Result]]) -> list[str]:
    seen: list[str] = []
    for found in results.values():
        for r in found:
            if r.benchmark not in seen:
                seen.append(r.benchmark)
    return seen


def _targets(results: dict[str, list[Result]]) -> list[tuple[str, str]]:
    """Each target's row and what it asks: one limit, or each database's where they differ."""
    asked: dict[str, dict[str, str]] = {}
    for kind, found in results.items():
        for r in found:
            for t in r.targets:
                limit = f"{'≥' if t.higher_is_better else '≤'} {_number(t.limit)} {t.unit}"
                asked.setdefault(f"{r.benchmark}: {t.name}", {})[kind] = limit
    rows: list[tuple[str, str]] = []
    for name, by_kind in asked.items():
        limits = set(by_kind.values())
        if len(limits) == 1:
            rows.append((name, limits.pop()))
        else:
            rows.append((name, "; ".join(f"{limit} ({kind})" for kind, limit in by_kind.items())))
    return rows


def _target(found: list[Result], name: str, target: str) -> Any:
    for r in found:
        for t in r.targets:
            if f"{r.benchmark}: {t.name}" == name:
                return t
    return None


def _met(t: Any) -> str:
    return f"{_number(t.value)} {'✅' if t.met else '❌'}"


def _number(value: float | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.3g}"

"""PNG plots of a run: each target against its limit, throughput against its ceiling, and
latency distributions (as CDFs, from samples or from evenly spaced percentiles)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a screen
import matplotlib.pyplot as plt

from bench.harness import Result

LATENCY = "latency_ms:"
# (benchmark, measured figure, ceiling figure, unit) for the throughput plot.
THROUGHPUT = (
    ("events", "events_per_s", "ceiling_rows_per_s", "events/s"),
    ("search", "requests_per_s", "ceiling_requests_per_s", "requests/s"),
    ("delivery", "one_worker_messages_per_s", "ceiling_messages_per_s", "messages/s"),
)


def draw(results: dict[str, list[Result]], folder: Path, stem: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    drawn = [
        _targets(results, folder / f"{stem}-targets.png"),
        _throughput(results, folder / f"{stem}-throughput.png"),
        _latency(results, folder / f"{stem}-latency.png"),
    ]
    return [p for p in drawn if p is not None]


def _targets(results: dict[str, list[Result]], path: Path) -> Path | None:
    """Every target as measured/limit (limit/measured where lower is better): 1 is the line."""
    labels, scores, colours = [], [], []
    for kind, found in results.items():
        for r in found:
            for t in r.targets:
                if t.value <= 0 or t.limit <= 0:
                    continue
                score = t.value / t.limit if t.higher_is_better else t.limit / t.value
                labels.append(f"{r.benchmark}: {t.name} ({kind})")
                scores.append(score)
                colours.append("#2a7d4f" if t.met else "#b03a2e")
    if not labels:
        return None
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(labels) + 1.2))
    ax.barh(range(len(labels)), scores, color=colours)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("share of target (log scale; right of the line = met)")
    ax.set_title("Targets")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _throughput(results: dict[str, list[Result]], path: Path) -> Path | None:
    panels = []
    for benchmark, figure, ceiling, unit in THROUGHPUT:
        bars = []
        for kind, found in results.items():
            r = next((r for r in found if r.benchmark == benchmark), None)
            if r is not None and figure in r.figures and ceiling in r.figures:
                bars.append((kind, r.figures[figure], r.figures[ceiling]))
        if bars:
            panels.append((benchmark, unit, bars))
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, (benchmark, unit, bars) in zip(axes[0], panels, strict=True):
        xs = range(len(bars))
        ax.bar([x - 0.2 for x in xs], [b[1] for b in bars], width=0.4, label="safevine")
        ax.bar([x + 0.2 for x in xs], [b[2] for b in bars], width=0.4, label="ceiling")
        ax.set_xticks(list(xs), [b[0] for b in bars])
        ax.set_ylabel(unit)
        ax.set_title(benchmark)
        for x, (_label, value, ceiling_value) in zip(xs, bars, strict=True):
            ax.annotate(f"{value / ceiling_value:.2f}x", (x - 0.2, value), ha="center", va="bottom")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _latency(results: dict[str, list[Result]], path: Path) -> Path | None:
    groups: dict[str, list[tuple[str, list[float]]]] = {}
    for kind, found in results.items():
        for r in found:
            for key, samples in r.series.items():
                if key.startswith(LATENCY) and samples:
                    label = f"{key[len(LATENCY) :]} ({kind})"
                    groups.setdefault(r.benchmark, []).append((label, samples))
    if not groups:
        return None
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 3.8), squeeze=False)
    for ax, (benchmark, lines) in zip(axes[0], groups.items(), strict=True):
        for label, samples in lines:
            ordered = sorted(samples)
            share = [100 * (i + 1) / len(ordered) for i in range(len(ordered))]
            ax.plot(ordered, share, label=label)
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms, log scale)")
        ax.set_ylabel("percentile")
        ax.set_title(f"{benchmark} latency")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

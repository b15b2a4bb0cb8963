"""How long one step takes to render, in every form, on the project's scenarios.

Usage: python benchmarks/render_bench.py [--every N] [--out FILE]

For every scenario under scenarios/ (every Nth with --every), run under the
scheme its file names, and for each step of the trace time:

- text:   render.world_text (what ``show`` prints and nbval compares)
- diff:   render.diff_words + render.diff_cells (what changed)
- html:   render.world_html with the step's changes highlighted
- figure: figure.world_figure + PNG at the live stepper's 90 dpi
- widget: a live Stepper moving to a step it has not drawn yet (header,
          listing, diff, invariants panel, figure PNG into the Image widget)

and write the per-step milliseconds (median, 95th percentile, max) to
benchmarks/results/render.md. The target: well under 100 ms a step.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import statistics
import sys
import time
from collections.abc import Callable

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import matplotlib  # noqa: E402

from anonlib.scenario.runner import run_scenario  # noqa: E402
from anonlib.schemes import Scheme  # noqa: E402
from anonlib.state import World  # noqa: E402
from anonlib.views.figure import figure_png, world_figure  # noqa: E402
from anonlib.views.player import scheme_of  # noqa: E402
from anonlib.views.render import diff_cells, diff_words, world_html, world_text  # noqa: E402
from anonlib.views.widgets import Stepper  # noqa: E402


def ms(fn: Callable[..., object], *args: object) -> tuple[float, float]:
    """(CPU ms, wall-clock ms) that ``fn(*args)`` takes."""
    c, t = time.process_time(), time.perf_counter()
    fn(*args)
    return (time.process_time() - c) * 1000, (time.perf_counter() - t) * 1000


def diff(before: World, after: World, scheme: Scheme) -> None:
    diff_words(before, after, scheme)
    diff_cells(before, after, scheme)


def figure(world: World, scheme: Scheme) -> None:
    figure_png(world_figure(world, scheme, legend=False), dpi=90)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--every", type=int, default=1, help="time every Nth scenario file")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "render.md"))
    args = ap.parse_args()
    files = sorted((ROOT / "scenarios").rglob("*.scn"))[:: args.every]
    load = os.getloadavg()[0]
    times: dict[str, list[tuple[float, float]]] = {
        k: [] for k in ("text", "diff", "html", "figure", "widget")}
    rows = 0
    biggest = 0
    warm = run_scenario("spawn P\nP mmap A 1\n").world
    assert warm is not None
    figure_png(world_figure(warm, scheme_of(run_scenario("spawn P\n"))))  # warm up fonts, caches
    for path in files:
        result = run_scenario(path.read_text(), name=path.name)
        scheme = scheme_of(result)
        prev = result.initial
        if prev is None:  # did not parse: no trace either
            continue
        for step in result.trace:
            world = step.world
            rows = max(rows, len(world_text(world, scheme).splitlines()))
            times["text"].append(ms(world_text, world, scheme))
            times["diff"].append(ms(diff, prev, world, scheme))
            changed = diff_cells(prev, world, scheme)
            times["html"].append(ms(world_html, world, scheme, changed))
            times["figure"].append(ms(figure, world, scheme))
            prev = world
        biggest = max(biggest, len(result.trace))
        stepper = Stepper(result)
        for i in range(1, len(stepper.frames)):
            times["widget"].append(ms(stepper.goto, i))
    steps = len(times["text"])
    lines = [
        "# Render time per step",
        "",
        "Written by `python benchmarks/render_bench.py`. CPU time of the process (so that",
        "other work on a shared machine does not count), with the wall-clock median for",
        "comparison; numbers vary with the machine, so compare runs on the same one.",
        "",
        f"- scenarios: {len(files)} files under `scenarios/` (each under the scheme it names), "
        f"{steps} steps; the longest run has {biggest} steps, the largest world "
        f"{rows} lines of `show` text",
        f"- Python {platform.python_version()}, matplotlib {matplotlib.__version__}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average {load:.1f} at the start",
        "",
        "| form | median ms | p95 ms | max ms | wall median ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, label in (("text", "text (`world_text`)"), ("diff", "diff (`diff_words` + cells)"),
                        ("html", "HTML (`world_html`)"),
                        ("figure", "figure (`world_figure` + PNG, 90 dpi)"),
                        ("widget", "live `Stepper` step (all panels + figure)")):
        xs = sorted(cpu for cpu, _wall in times[name])
        wall = statistics.median(w for _cpu, w in times[name])
        p95 = xs[min(len(xs) - 1, int(0.95 * len(xs)))]
        lines.append(f"| {label} | {statistics.median(xs):.2f} | {p95:.2f} | {xs[-1]:.2f} "
                     f"| {wall:.2f} |")
    text = "\n".join(lines) + "\n"
    pathlib.Path(args.out).write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

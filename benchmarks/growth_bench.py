"""How time and peak memory grow with the size of the input, case by case.

Usage: python benchmarks/growth_bench.py [--scale F] [--cases a,b] [--out FILE]

Each case is a generated scenario (or call) at three sizes, 1x, 10x and
100x; each size runs in a fresh Python process, which reports the CPU
seconds the case took and how much its peak resident memory rose above what
the imports left (``resource``: ru_maxrss). The growth rate is the ratio
from one size to the next, ten times larger: about 10 is linear, about 100
quadratic. The table goes to benchmarks/results/growth.md with the commit
and the machine (sections of that file after the table, such as the same
benchmark run on an older tree, are kept). docs/limits.md says which cases
are linear by nature and which are not, and why.

Cases:

- mmap:      ``spawn P`` and N lines ``P mmap Ai 1`` (N mappings in one process)
- fork:      N ``P fork Ci`` of a one-page process (N processes alive at the end)
- fork-exit: N times ``P fork Ci`` then ``Ci exit`` (at most two processes alive)
- write:     N writes to a 4-page mapping
- trace:     ``run --trace`` of 64 written pages and N forks (the text it prints)
- stepper:   constructing a Stepper (every frame's diff) of N forks
- to_html:   the static player (table view) of a Stepper of N forks
- token:     a line that is one unknown N-character word

The scenario cases run as ``python -m anonlib run`` runs them (no per-step
record). ``--scale`` multiplies every size (0.1 for a quick look).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _mmap(n: int) -> str:
    return "spawn P\n" + "".join(f"P mmap A{i} 1\n" for i in range(n))


def _fork(n: int) -> str:
    return "spawn P\nP mmap A 1\nP write A[0] x\n" + "".join(f"P fork C{i}\n" for i in range(n))


def _fork_exit(n: int) -> str:
    return ("spawn P\nP mmap A 1\nP write A[0] x\n"
            + "".join(f"P fork C{i}\nC{i} exit\n" for i in range(n)))


def _write(n: int) -> str:
    return "spawn P\nP mmap A 4\n" + "".join(f"P write A[{i % 4}] v{i}\n" for i in range(n))


def _trace(n: int) -> str:
    pages = 64
    return (f"spawn P\nP mmap A {pages}\n" + "".join(f"P write A[{i}] x\n" for i in range(pages))
            + "".join(f"P fork C{i}\n" for i in range(n)))


def _token(n: int) -> str:
    return "spawn P\n" + "x" * n + "\n"


#: case -> (what N counts, size at 1x, the input for size N, what is timed)
CASES: dict[str, tuple[str, int, Callable[[int], str], str]] = {
    "mmap": ("mmap lines", 30, _mmap, "run"),
    "fork": ("forks", 10, _fork, "run"),
    "fork-exit": ("fork+exit pairs", 100, _fork_exit, "run"),
    "write": ("writes", 1000, _write, "run"),
    "trace": ("forks (64 pages)", 1, _trace, "run --trace"),
    "stepper": ("forks", 3, _fork, "Stepper"),
    "to_html": ("forks", 1, _fork, "to_html"),
    "token": ("characters", 500_000, _token, "run"),
}


def child(case: str, n: int) -> dict[str, object]:
    """Run one case at size ``n`` in this process; what it cost."""
    sys.path.insert(0, str(ROOT))
    from anonlib.scenario.runner import run_scenario
    from anonlib.views.widgets import Stepper

    _what, _base, make, how = CASES[case]
    text = make(n)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu, wall = time.process_time(), time.perf_counter()
    out = ""
    if how == "run":
        result = run_scenario(text, keep_steps=False)
        out = result.verdict()
    elif how == "run --trace":
        result = run_scenario(text, trace=True, keep_steps=False)
        out = f"{len(str(result)):,} characters printed"
    elif how == "Stepper":
        out = f"{len(Stepper(text).frames)} frames"
    else:
        out = f"{len(Stepper(text, view='table').to_html()):,} characters of HTML"
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"cpu": cpu, "wall": wall, "kb": max(peak - before, 0), "out": out}


def measure(case: str, n: int) -> dict[str, object]:
    """Run one case at size ``n`` in a fresh interpreter."""
    proc = subprocess.run([sys.executable, __file__, "--child", case, str(n)],
                          capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONHASHSEED": "0"})
    out: dict[str, object] = json.loads(proc.stdout)
    return out


def _ratio(a: float, b: float) -> str:
    return f"{b / a:.1f}" if a > 0 else "-"


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=False).stdout.strip()
    dirty = " (with uncommitted changes)" if git("status", "--porcelain", "--", "anonlib") else ""
    return (git("rev-parse", "--short", "HEAD") or "unknown") + dirty


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every size by this")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated cases to run")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "growth.md"))
    ap.add_argument("--child", nargs=2, metavar=("CASE", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]))))
        return 0
    cases = [c for c in args.cases.split(",") if c]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        print(f"unknown case(s) {', '.join(unknown)}; cases: {', '.join(CASES)}",
              file=sys.stderr)
        return 2
    rows = []
    for case in cases:
        what, base, _make, how = CASES[case]
        sizes = [max(1, round(base * args.scale * k)) for k in (1, 10, 100)]
        got = [measure(case, n) for n in sizes]
        cpu = [float(g["cpu"]) for g in got]  # type: ignore[arg-type]
        kb = [float(g["kb"]) for g in got]  # type: ignore[arg-type]
        row = (f"| {case} | {how} | {what} | "
               + " / ".join(f"{n:,}" for n in sizes) + " | "
               + " / ".join(f"{c:.2f}" for c in cpu) + " | "
               + f"{_ratio(cpu[0], cpu[1])}, {_ratio(cpu[1], cpu[2])} | "
               + " / ".join(f"{k / 1024:.1f}" for k in kb) + " | "
               + f"{_ratio(kb[0], kb[1]) if kb[0] >= 1024 else '-'}, "
               + f"{_ratio(kb[1], kb[2]) if kb[1] >= 1024 else '-'} | {got[-1]['out']} |")
        print(row, flush=True)
        rows.append(row)
    head = [
        "# Growth: time and peak memory at 1x, 10x and 100x",
        "",
        "Written by `python benchmarks/growth_bench.py"
        + (f" --scale {args.scale:g}" if args.scale != 1 else "") + "`"
        + f" at commit {commit()}, on {platform.machine()} with {os.cpu_count()} cores "
        f"({platform.processor() or platform.platform()}), Python "
        f"{platform.python_version()}. CPU seconds (the machine may be shared; wall time "
        "is not shown); memory is how far the peak resident set rose above what the "
        "imports left, in MB (`-`: under 1 MB, too small to compare). Growth: the ratio "
        "from each size to the next, ten times larger; about 10 is linear, about 100 "
        "quadratic. What each case is, and why the ones that are not linear are not: "
        "`docs/limits.md`, \"Time and memory\".",
        "",
        "| case | what runs | N counts | N at 1x / 10x / 100x | CPU s | time growth | "
        "peak MB | memory growth | at 100x |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    out = pathlib.Path(args.out)
    # sections after the table ("## ...", such as measurements of an older tree) are kept
    old = out.read_text(encoding="utf-8") if out.exists() else ""
    kept = old[old.find("\n## "):] if "\n## " in old else ""
    out.write_text("\n".join(head + rows) + "\n" + kept, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

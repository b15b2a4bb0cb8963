"""The explorer on the one-mTHP world (mthp:4): what each scheme costs there, and finds.

    python benchmarks/mthp_explore.py      # writes benchmarks/results/mthp-explore.md

One process with one 16 kB mTHP mapping (``--pages mthp:4``), up to two
processes, one GUP reference, the whole alphabet, one core: mainline and
lts-6.18 searched to depth 5 in full (no invariant is violated there), and the
three schemes chapters 13 and 17 explore there with the explorer's default
(stop at the end of the first depth with a violation). Each run is a forked
child of this script, so its CPU time and peak memory are its own.
"""

from __future__ import annotations

import functools
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from explore_bench import commit, in_child, write_results  # noqa: E402

from anonlib.explorer import explore  # noqa: E402
from anonlib.ops import to_text  # noqa: E402

#: (scheme, depth, --full): the runs of the table, in its order
RUNS = (("mainline", 5, True), ("lts-6.18", 5, True), ("mprotect-batch-head", 6, False),
        ("iouring-unpin-head", 6, False), ("head-only", 6, False))


def _run(scheme: str, depth: int, full: bool) -> tuple[Any, ...]:
    r = explore(scheme, "mthp:4", depth=depth, stop_at_first=not full)
    cex = r.counterexample
    found = ("no invariant violated" if cex is None else
             f"{' and '.join(c.invariant for c in r.violations)} after {cex.length} operations"
             + (f": `{'; '.join(to_text(op) for op in cex.ops)}`" if cex.length <= 5 else ""))
    return (found, r.states, [n for n, _t in r.per_depth], r.first_cpu, r.mirrored,
            r.transitions)


def main() -> int:
    rows = ["| scheme | command | result | states | CPU s to the first counterexample | "
            "CPU s | peak MB |", "|---|---|---|---:|---:|---:|---:|"]
    per_depth = []
    for scheme, depth, full in RUNS:
        got = in_child(functools.partial(_run, scheme, depth, full))
        assert got is not None
        (found, states, layers, first, mirrored, transitions), cpu, peak = got
        cmd = (f"`explore --scheme {scheme} --pages mthp:4"
               + (f" --depth {depth} --full`" if full else "`"))
        rows.append(f"| {scheme} | {cmd} | {found} | {states:,} | "
                    f"{'-' if first is None else f'{first:.1f}'} | {cpu:.0f} | {peak:,.0f} |")
        per_depth.append(f"{scheme} {', '.join(f'{n:,}' for n in layers)} "
                         f"({mirrored:,} of {transitions:,} operations counted from a mirror "
                         "image, not applied)")
        print(f"  {scheme}: {found}, {states:,} states, {cpu:.0f} s", file=sys.stderr)
    out = [
        "# The explorer on the one-mTHP world (mthp:4)",
        "",
        f"`python benchmarks/mthp_explore.py` on {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}, "
        f"commit {commit()}; load average {os.getloadavg()[0]:.1f} at the end.",
        "",
        "One process with one 16 kB mTHP mapping (`--pages mthp:4`, four pages), up to two "
        "processes, one GUP reference, the whole alphabet, one core. CPU time and peak "
        "resident set are each run's own (a forked child; the loaded interpreter, about "
        "20 MB, included). A run without `--full` stops at the end of the first depth with "
        "a violation; its first counterexample (a shortest one) is announced on the "
        "progress line when it is found, the CPU s to the first column.",
        "",
        *rows,
        "",
        "New states per depth: " + "; ".join(per_depth) + ".",
    ]
    return write_results(ROOT / "benchmarks" / "results" / "mthp-explore.md", out)


if __name__ == "__main__":
    sys.exit(main())

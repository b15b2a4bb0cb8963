"""Explorer benchmark: states per second and time for each standard world, and where time goes.

    python benchmarks/explore_bench.py                 # writes benchmarks/results/explore.md
    python benchmarks/explore_bench.py --quick         # smaller depths, for a smoke run
    python benchmarks/explore_bench.py --profile       # also: cProfile of one run, by function
    python benchmarks/explore_bench.py --findings      # also: what each scheme's search finds
    python benchmarks/explore_bench.py --symmetry      # also: the tail-page symmetry check
    python benchmarks/explore_bench.py --floor         # also: the floor any search must pay
    python benchmarks/explore_bench.py --targets       # also: the issue's target runs, peak memory
    python benchmarks/explore_bench.py --first         # only: time to the first counterexample
    python benchmarks/explore_bench.py --scaling       # only: one worker against two

For each standard world (2 processes via fork, full operation alphabet, one
reference at a time) it runs the explorer under ``mainline``:

* ``canonical, 1 job``: the explorer as shipped (symmetry reduction);
* ``canonical, 2 jobs``: each depth expanded by two forked workers;
* ``raw, 1 job``: the straightforward implementation, the bar to beat: the
  same breadth-first search with states deduplicated by plain equality
  (no renaming), so symmetric states are explored again;
* for thp:4 also ``names, 1 job``: renaming only, without permuting the THP's
  tail pages, to show what that symmetry saves.

``--symmetry`` checks that saving is sound for the model: for every scheme
that treats tail pages alike, a search of thp:4 to depth 3 that keeps one
state per class reaches exactly the classes a search without it reaches.

``--first`` (written to ``benchmarks/results/first-counterexample.md``
instead) times, for every scheme of the library in each standard world
(base:1, thp:4, hugetlb:2) at the default depth, the explorer as shipped:
it stops at the end of the first depth with a violation, so the time is the
time to the shortest counterexample. Each run is a forked child process with
a wall-clock budget; a run that finds nothing within it is reported as such
(a scheme with no counterexample, such as mainline, searches on to the full
depth, which is the other part of issue 21).

The floor table answers "could a better search meet the target?": every
exhaustive search of the model must make each state it reaches at least once
with a model step, and must tell it from the states it has seen. It times
those two costs on a sample of each world's states (``model.apply`` over
the operations that change the state, and the canonical key of the result)
and multiplies them by the number of states at the target depth: a lower
bound for any search of this model, however clever, before it checks an
invariant or tries an operation that leads nowhere new. The ratio table then
sets the explorer's time per state against that floor, next to what the
model's own code (``model.apply`` of every operation the explorer applies,
and the invariant checks it runs) costs in the same search: no search that
applies and checks every transition goes below that.

Wall time, CPU time (this process and its workers) and the load average are
recorded: on a shared machine other work slows the wall clock, and the CPU
time says what the run itself cost. Where a world cannot reach the target
depth within the budget, the table says how deep it got and projects the
target from the growth of the last depths.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import os
import platform
import pstats
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anonlib.explorer import explore  # noqa: E402

#: (world, the deepest depth to attempt in a full run, in a quick run). The standard worlds
#: of the explorer's target are base:1, thp:4 (one THP of four subpages) and hugetlb:2;
#: thp:2 (two subpages) is the smaller THP world chapter 14 explores; mthp:4 is one mTHP of
#: four pages mapped by PTEs from the first fault.
WORLDS = (("base:1", 6, 4), ("thp:2", 6, 3), ("thp:4", 6, 2), ("hugetlb:2", 6, 4),
          ("mthp:4", 6, 3))
TARGET_SECONDS = 60.0
MODES = (("canonical", 1), ("canonical", 2), ("raw", 1))
EXTRA_MODES = {"thp:4": (("names", 1),)}
TARGET_DEPTH = 6


@dataclass
class Row:
    world: str
    mode: str
    jobs: int
    depth: int
    states: int
    transitions: int
    wall: float
    cpu: float
    load: float
    found: str
    peak_mb: float = 0.0  # the run's peak resident set (its process and its workers)
    base_mb: float = 0.0  # of that, the interpreter with the library loaded, before the run
    growth: float = 0.0  # new states at the last depth over those at the one before

    @property
    def bytes_per_state(self) -> float:
        """What the search keeps per state: the peak above the loaded interpreter."""
        return max(0.0, self.peak_mb - self.base_mb) * 2**20 / self.states if self.states else 0.0

    @property
    def rate(self) -> float:
        return self.states / self.wall if self.wall else 0.0

    @property
    def trate(self) -> float:
        return self.transitions / self.wall if self.wall else 0.0


def commit() -> str:
    """The model's version the numbers belong to (the tree may have local changes)."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_now() -> float:
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def in_child(fn: Callable[[], Any], budget: float | None = None, interrupt: bool = False
             ) -> tuple[Any, float, float] | None:
    """Run ``fn`` in a forked child: (its result, its CPU seconds, its peak RSS in MB).

    The child's own resource usage (``os.wait4``: CPU time and the largest
    resident set of it and the workers it reaped), so that every run's peak
    memory is its own and not the benchmark's running maximum. None if the
    child did not answer within ``budget`` wall seconds (it is then killed).
    With ``interrupt``, the child first gets Ctrl-C (SIGINT) at the budget, as a
    user would press it, and a few seconds to answer: a search that has found a
    counterexample by then ends with it (see ``explore``'s Ctrl-C).
    """
    import pickle
    import select
    import signal

    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, send the result, leave without cleanup handlers
        os.close(rfd)
        if interrupt:
            # a shell starts a background job (`... &`) with Ctrl-C ignored, and Python then
            # leaves it ignored: the Ctrl-C at the budget would not reach the search
            signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            data = pickle.dumps(fn())
            with os.fdopen(wfd, "wb") as w:
                w.write(data)
        except KeyboardInterrupt:
            pass  # interrupted before it had anything to say: no data, the parent sees None
        finally:
            os._exit(0)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as r:
        ready, _w, _x = select.select([r], [], [], budget)
        interrupted = not ready and interrupt
        if interrupted:
            os.kill(pid, signal.SIGINT)
            ready, _w, _x = select.select([r], [], [], 15.0)
        if not ready:
            os.kill(pid, signal.SIGKILL)  # this run's own child only
            os.wait4(pid, 0)
            return None
        data = r.read()
    _pid, _status, usage = os.wait4(pid, 0)
    if not data and interrupted:
        return None
    if not data:
        raise RuntimeError("the benchmark's child process failed (see its error above)")
    return pickle.loads(data), usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def write_results(dest: Path, lines: list[str]) -> int:
    """Write a results file (and show it); the exit status of a benchmark that did."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def own_mb() -> float:
    """This process's resident set now, in MB (what a forked child starts with)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run(world: str, key: str, jobs: int, depth: int) -> Row:
    load = os.getloadavg()[0]
    base = own_mb()

    def search() -> tuple[int, int, float, str, float]:
        t0 = time.perf_counter()
        r = explore("mainline", world, depth=depth, jobs=jobs, key=key, coverage=True,
                    stop_at_first=False)
        wall = time.perf_counter() - t0
        (before, _t), (last, _u) = r.per_depth[-2:]
        found = ", ".join(f"{k}@{v}" for k, v in r.found().items()) or "-"
        if r.crashes:
            found += f"; {len(r.crashes)} model crash(es)"
        return r.states, r.transitions, wall, found, last / max(before, 1)

    got = in_child(search)
    assert got is not None
    (states, transitions, wall, found, growth), cpu, peak = got
    return Row(world, key, jobs, depth, states, transitions, wall, cpu, load, found, peak, base,
               growth)


def sweep(world: str, key: str, jobs: int, max_depth: int, budget: float) -> list[Row]:
    """Depths 1, 2, ... until ``max_depth`` or until the next depth would blow the budget."""
    rows: list[Row] = []
    for d in range(1, max_depth + 1):
        if rows and len(rows) >= 2:
            growth = rows[-1].transitions / max(rows[-2].transitions, 1)
            if rows[-1].wall * growth > budget:
                break
        rows.append(run(world, key, jobs, d))
        print(f"  {world} {key} jobs={jobs} depth {d}: {rows[-1].states} states, "
              f"{rows[-1].wall:.1f} s", file=sys.stderr)
    return rows


def projection(rows: list[Row], target: int) -> tuple[str, str, str, float]:
    """States and time for depth ``target``, and how that compares with the target time.

    Measured when the sweep got there; else projected from the last depth by
    the growth of the last two (states and transitions each by their own).
    """
    last = rows[-1]
    if last.depth >= target:
        t, n = last.wall, float(last.states)
        states, time_text = f"{last.states:,}", f"{t:.1f} s (measured)"
    else:
        prev = rows[-2] if len(rows) > 1 else None
        growth = last.transitions / max(prev.transitions, 1) if prev else 10.0
        sgrowth = last.states / max(prev.states, 1) if prev else 10.0
        k = target - last.depth
        t, n = last.wall * growth ** k, last.states * sgrowth ** k
        states = f"~{n:,.0f} (x{sgrowth:.1f} per depth)"
        time_text = f"~{t:,.0f} s (projected, x{growth:.1f} per depth)"
    verdict = ("met" if t <= TARGET_SECONDS else
               f"missed: {t / TARGET_SECONDS:,.1f} x the {TARGET_SECONDS:.0f} s target")
    return states, time_text, verdict, n


@dataclass
class Floor:
    world: str
    sample: int  # states sampled
    steps: int  # state-changing transitions timed
    step_us: float  # one model step that changes the state
    key_us: float  # one canonical key of its result
    applied: int  # the operations a search one depth further applies in the states up to the
    # sampled depth (the states it expands), mirror images counted and not applied
    apply_s: float  # applying, in every one of them, each operation the explorer applies there
    work_s: float  # the same, with the transition checks of each operation that changes the state
    check_us: float  # the state checks of one state (mean over the sampled depth)


def floor(world: str, depth: int, repeat: int = 3) -> Floor:
    """The two costs every search pays per state it reaches, timed on the states at ``depth``,
    and the model's own work in a search one depth further.

    Breadth first to ``depth`` (canonical states, as the explorer keeps them);
    then, for every operation the alphabet offers in those states, the time of
    ``model.apply`` on the ones that give a different world, and the time of
    the canonical key of that world. The best of ``repeat`` batches each, so
    that another process on the machine inflates the floor as little as it can.

    The model's own work: in every state up to ``depth`` (the states a search to
    ``depth + 1`` expands), ``model.apply`` of each operation the explorer applies
    there (every one it offers, less the mirror images it counts instead:
    :mod:`anonlib.explorer.orbits`), alone and with the transition checks of those that
    change the state (the invariants' ``Checker``, as the explorer calls it); and the
    state checks of one state, which every state the search reaches gets once. None of it
    is the search's: it is what ``anonlib/model.py`` and ``anonlib/invariants.py`` cost.
    """
    from anonlib import model
    from anonlib.explorer import layers
    from anonlib.explorer.alphabet import Alphabet, enabled
    from anonlib.explorer.canon import canonical_key
    from anonlib.explorer.orbits import representative, swappable_tails
    from anonlib.invariants import Checker
    from anonlib.ops import Op
    from anonlib.results import ModelError
    from anonlib.schemes import SCHEMES
    from anonlib.state import World

    sch, alphabet = SCHEMES["mainline"], Alphabet()
    checker = Checker.select(sch)

    def changes(r: model.Step | ModelError, w: World) -> TypeGuard[model.Step]:
        """Does the step change the world? (As the explorer tells it.)"""
        return not isinstance(r, ModelError) and r.world is not w and r.world != w

    *earlier, (_seen, layer) = layers(sch, world, depth)
    work = []
    plan = []  # (state, the operations the explorer applies in it), every depth up to ``depth``
    for w, names in [s for _seen_d, new in earlier for s in new] + layer:
        tails = swappable_tails(w)
        tried: dict[Op, None] = {}  # in the order the explorer applies them
        for _f, op, _after in enabled(w, sch, alphabet, names):
            if tails is not None:
                rep = representative(op, tails)
                if rep is not op and rep in tried:
                    continue  # a mirror image: the explorer counts it, applies nothing
            tried[op] = None
        plan.append((w, tuple(tried)))
    for w, ops in plan[-len(layer):]:
        for op in ops:
            if changes(model.apply(w, op, sch), w):
                work.append((w, op))
    apply = model.apply
    results: list[World] = []

    def steps() -> None:
        results[:] = [apply(w, op, sch).world for w, op in work]  # type: ignore[union-attr]

    def keys() -> None:
        for x in results:
            canonical_key(x)

    def applying() -> None:
        for w, ops in plan:
            for op in ops:
                apply(w, op, sch)

    def applying_checking() -> None:
        for w, ops in plan:
            prior = checker.prepare(w)
            for op in ops:
                r = apply(w, op, sch)
                if changes(r, w):
                    checker.check(r.world, op=op, prior=prior, transition_only=True)

    def state_checks() -> None:
        for w, _names in layer:
            checker.check(w)

    step_s = min(_timed(steps) for _ in range(repeat))
    key_s = min(_timed(keys) for _ in range(repeat))
    apply_s = min(_timed(applying) for _ in range(repeat))
    work_s = min(_timed(applying_checking) for _ in range(repeat))
    check_s = min(_timed(state_checks) for _ in range(repeat))
    return Floor(world, len(layer), len(work), 1e6 * step_s / len(work),
                 1e6 * key_s / len(work), sum(len(ops) for _w, ops in plan), apply_s, work_s,
                 1e6 * check_s / len(layer))


def _timed(fn: Callable[[], None]) -> float:
    gc.collect()
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


#: (world, depth whose states are sampled) for the floor table: a few thousand states each
FLOOR_SAMPLES = (("base:1", 4), ("thp:2", 3), ("thp:4", 3), ("hugetlb:2", 4), ("mthp:4", 3))
_FLOORS: dict[tuple[str, int], Floor] = {}


def floor_of(world: str, depth: int) -> Floor:
    """:func:`floor`, timed once per world and depth in a benchmark run."""
    if (world, depth) not in _FLOORS:
        _FLOORS[world, depth] = floor(world, depth)
    return _FLOORS[world, depth]


def ratio_table(quick: bool) -> list[str]:
    """Per world: the explorer's CPU time per state over the floor's, measured in one run,
    and the model's own work in that search over the floor: the ratio no search that
    applies and checks every transition the explorer does can go below.

    The floor is timed on the states at the sampled depth (the steps out of
    them), then the explorer searches one depth further, in this process, so
    that both see the same machine; its new states are those the floor's
    steps lead to, and the states it expands are those the model's own work
    was timed on (but for states with a violation, which it does not expand).
    """
    out = ["| world | depth | states | transitions per state | applied per state | "
           "explorer CPU s | explorer per state | floor per state (step + key) | ratio | "
           "applying alone, over the floor | the model's own work, over the floor | "
           "explorer per transition | load avg |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for world, sample in FLOOR_SAMPLES:
        sample = max(1, sample - 1) if quick else sample
        f = floor_of(world, sample)
        load = os.getloadavg()[0]
        gc.collect()
        c0 = time.process_time()
        r = explore("mainline", world, depth=sample + 1, stop_at_first=False)
        cpu = time.process_time() - c0
        per, fl = 1e6 * cpu / r.states, f.step_us + f.key_us
        ops = r.transitions + r.refused - r.mirrored  # the operations the explorer applied
        applied = ops / r.states
        # the explorer does not expand a state where it found a violation (a known gap
        # too): where it applied fewer operations than were timed, the work is scaled down
        scale = ops / f.applied
        same = ("" if ops == f.applied else
                f" (timed on {f.applied:,} operations; the explorer, which does not expand "
                f"a state with a violation, applied {ops:,}: scaled to them)")
        apply_us = 1e6 * f.apply_s * scale / r.states
        check_us = 1e6 * (f.work_s - f.apply_s) * scale / r.states + f.check_us
        own = apply_us + check_us
        out.append(f"| {world} | {sample + 1} | {r.states:,} | {r.transitions / r.states:.1f} | "
                   f"{applied:.1f} | {cpu:.1f} | {per:.0f} us | {fl:.0f} us ({f.step_us:.0f} + "
                   f"{f.key_us:.0f}) | {per / fl:.1f} | {apply_us / fl:.1f} ({apply_us:.0f} us) | "
                   f"{own / fl:.1f} ({apply_us:.0f} + {check_us:.0f} us){same} | "
                   f"{1e6 * cpu / r.transitions:.0f} us | {load:.1f} |")
        print(f"  ratio {world}: {per / fl:.2f}, the model's own work {own / fl:.2f}",
              file=sys.stderr)
    return out


def profile(world: str, depth: int) -> str:
    """Share of the run's time per function that matters (cumulative), from cProfile."""
    pr = cProfile.Profile()
    pr.enable()
    explore("mainline", world, depth=depth)
    pr.disable()
    st = pstats.Stats(pr)
    total = max(v[3] for v in st.stats.values())  # type: ignore[attr-defined]
    wanted = {
        ("model.py", "apply"): "model.apply (all of it)",
        ("model.py", "_dispatch"): "  model._dispatch (the transition functions)",
        ("mem.py", "freeze"): "  Mem.freeze (incl. collect_garbage)",
        ("mem.py", "collect_garbage"): "    Mem.collect_garbage",
        ("mem.py", "__init__"): "Mem.__init__ (apply, and the checks' after-state)",
        ("dataclasses.py", "replace"): "dataclasses.replace (all callers)",
        ("mem.py", "entries"): "Mem.entries (all callers)",
        ("search.py", "_violations"): "invariant checks (explorer's loop over INVARIANTS)",
        ("invariants.py", "_raw_flags"): "  invariants._raw_flags (INV-2, 7, 8, 9 each)",
        ("invariants.py", "_inv8"): "  invariants._inv8",
        ("invariants.py", "_carried"): "  invariants._carried (INV-8 and INV-9 each)",
        ("invariants.py", "_inv12"): "  invariants._inv12",
        ("canon.py", "canonical_key"): "canonical_key (explorer)",
        ("alphabet.py", "enabled"): "alphabet.enabled (explorer)",
        ("alphabet.py", "op_entries"): "alphabet.op_entries (coverage, explorer)",
    }
    lines = ["| function | calls | cumulative s | share |", "|---|---:|---:|---:|"]
    found = []
    for (fname, _line, func), (_cc, nc, _tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]  # not in typeshed
        for (suffix, name), label in wanted.items():
            if fname.endswith(suffix) and func == name:
                found.append((list(wanted).index((suffix, name)), label, nc, ct))
    for _i, label, nc, ct in sorted(found):
        lines.append(f"| {label} | {nc:,} | {ct:.2f} | {100 * ct / total:.0f}% |")
    lines.append(f"| total (profiled) | | {total:.2f} | 100% |")
    return "\n".join(lines)


#: (world, depth, operations) for the findings table: each well inside a minute
FINDINGS = (("base:1", 5, "all"), ("thp:2", 3, "all"), ("hugetlb:2", 4, "all"))


FIRST_WORLDS = ("base:1", "thp:4", "hugetlb:2", "mthp:4")
FIRST_TARGET = 10.0  # seconds of CPU, one core


#: Worlds that start where the question starts, for the schemes whose counterexample in the
#: empty standard world is out of the target's reach: (scheme, world, statements first).
FIRST_AFTER = (("mprotect-batch-head", "mthp:4", "P write A[0] P1"),
               ("iouring-unpin-head", "mthp:4", "P write A[0] P1"))


def _first_run(scheme: str, world: str, after: str = "") -> tuple[Any, ...]:
    """One default-depth search (in a forked child); what the table needs."""
    t0 = time.perf_counter()
    r = explore(scheme, world, jobs=1, progress=False, after=after)
    wall = time.perf_counter() - t0
    cex = r.counterexample
    return (r.stopped_at, r.depth_reached, r.states,
            f"{cex.invariant} in {cex.length} ops" if cex is not None else
            (f"model crash in {r.crashes[0].length} ops" if r.crashes else ""),
            ", ".join(f"{k}@{v}" for k, v in r.found().items() if "[" in k),
            wall, r.first_cpu, r.interrupted)


def first_counterexample(budget: float, runs: list[tuple[str, str, str]]) -> list[str]:
    """Per (scheme, world, statements first): the time the default search takes to its first
    counterexample and to the end of that depth, or that it found none in ``budget``."""
    out = ["| scheme | world | stopped after depth | shortest counterexample | states | "
           "CPU s to the first | CPU s to the end of its depth | wall s | peak MB | load avg | "
           f"under {FIRST_TARGET:.0f} s on one core |",
           "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    times: list[tuple[str, float]] = []  # (scheme world, CPU s) of each counterexample found
    firsts: list[tuple[str, float]] = []  # (scheme world, CPU s to the first)
    for scheme, world, after in runs:
        load = os.getloadavg()[0]
        label = world + (f" after `{after}`" if after else "")
        got = in_child(functools.partial(_first_run, scheme, world, after), budget,
                       interrupt=True)
        if got is None:
            out.append(f"| {scheme} | {label} | - | none found within {budget:.0f} s "
                       f"(not a proof: the search had not reached the default depth) | - | - | "
                       f"> {budget:.0f} | > {budget:.0f} | - | {load:.1f} | "
                       "no counterexample to time |")
            print(f"  first {scheme} {label}: nothing within {budget:.0f} s", file=sys.stderr)
            continue
        (stopped, reached, states, cex, gaps, wall, first, cut), cpu, peak = got
        where = (f"{cut} (Ctrl-C at {budget:.0f} s: its depth not searched to the end)"
                 if cut is not None else str(stopped) if stopped is not None else
                 f"{reached} (the last: no stop)" if cex else f"none: clean to {reached}")
        what = cex or "none" + (f" (known gap {gaps})" if gaps else "")
        if cex:
            # the end of the depth: past the budget when the run was cut at it
            times.append((f"{scheme} {label}", cpu if cut is None else float("inf")))
        if cex:
            firsts.append((f"{scheme} {label}", first))
        verdict = ("-" if not cex else
                   "yes" if first < FIRST_TARGET else f"NO ({first:.1f} s to the first)")
        end = f"> {cpu:.2f}" if cut is not None else f"{cpu:.2f}"
        out.append(f"| {scheme} | {label} | {where} | {what} | {states:,} | "
                   f"{'-' if first is None else f'{first:.2f}'} | {end} | {wall:.2f} | "
                   f"{peak:,.0f} | {load:.1f} | {verdict} |")
        print(f"  first {scheme} {label}: {what}, {cpu:.2f} s CPU", file=sys.stderr)
    late = [f"{name} ({cpu:.1f} s)" for name, cpu in firsts if cpu >= FIRST_TARGET]
    slow = [f"{name} ({cpu:.1f} s)" if cpu != float("inf") else f"{name} (cut at the budget)"
            for name, cpu in times if cpu >= FIRST_TARGET]
    worst = max(firsts, key=lambda t: t[1], default=None)
    out += ["", f"Counterexamples found: {len(times)}; announced (found, and shortest) in "
            f"under {FIRST_TARGET:.0f} s of CPU on one core: {len(firsts) - len(late)} of "
            f"{len(firsts)}" + (f"; slowest: {worst[0]}, {worst[1]:.2f} s" if worst else "")
            + (f"; over the target: {', '.join(late)}" if late else "")
            + f". Their depth searched to the end in under {FIRST_TARGET:.0f} s: "
            f"{len(times) - len(slow)} of {len(times)}"
            + (f" (longer: {', '.join(slow)})" if slow else "") + "."]
    return out


def findings() -> list[str]:
    """Per scheme and world: each invariant broken and its shortest trace; the copy table."""
    from anonlib.explorer import copy_counts
    from anonlib.schemes import SCHEMES

    head = "| scheme | " + " | ".join(f"{w} depth {d}" for w, d, _o in FINDINGS) + " |"
    out = [head, "|---|" + "---|" * len(FINDINGS)]
    for scheme in SCHEMES:
        cells = []
        for world, depth, ops in FINDINGS:
            r = explore(scheme, world, depth=depth, ops=ops)
            found = [f"{k} ({v} ops)" for k, v in r.found().items()]
            found += [f"model crash: {c.title} ({c.length} ops)" for c in r.crashes]
            cells.append(", ".join(found) or "none")
            print(f"  findings {scheme} {world}: {cells[-1]}", file=sys.stderr)
        out.append(f"| {scheme} | " + " | ".join(cells) + " |")
    out += ["", "Page copies per workload (`anonlib.explorer.copy_counts()`; in brackets the "
            "invariants broken on the way):", "", copy_counts().markdown()]
    return out


def symmetry(depth: int) -> list[str]:
    """Per scheme: thp:4 searched with and without tail-page symmetry reach the same classes."""
    from anonlib.explorer import reachable
    from anonlib.explorer.canon import key_for
    from anonlib.schemes import SCHEMES

    out = ["| scheme | states (renaming only) | their classes | states (with tail symmetry) "
           "| same classes |", "|---|---:|---:|---:|---|"]
    for name, scheme in SCHEMES.items():
        if scheme.head_only:
            out.append(f"| {name} | | | | not used: tail pages are not alike there |")
            continue
        full = reachable(name, "thp:4", depth, key="names")
        reduced = reachable(name, "thp:4", depth, key="canonical")
        key = key_for("canonical", scheme)  # with the per-MM tracking where it is read
        classes = {key(w) for w in full.values()}
        same = "yes" if classes == set(reduced) else "NO"
        out.append(f"| {name} | {len(full):,} | {len(classes):,} | {len(reduced):,} | {same} |")
        print(f"  symmetry {name}: {same}", file=sys.stderr)
    return out


def floor_table(at_target: dict[str, tuple[float, str]], quick: bool) -> list[str]:
    """Per world: the floor's two costs, and what they come to for the states at depth 6."""
    out = ["Every exhaustive search makes each state it reaches at least once with a model "
           "step and tells it from the states seen before: here one `model.apply` that "
           "changes the state, and one canonical key of the result, timed (CPU, best of 3) "
           "on the operations the alphabet offers in every state of the sampled depth. "
           f"Times the number of states at depth {TARGET_DEPTH} (from the table above, "
           "canonical), that is a lower bound for any search of this model, before any "
           "invariant is checked or any operation that leads to a known state is tried. "
           "A keyless search (raw) would need fewer microseconds per state but has several "
           "times the states (the `raw` rows).", "",
           "| world | states sampled | steps timed | one step | one key | "
           f"states at depth {TARGET_DEPTH} | steps alone | steps and keys | "
           f"vs {TARGET_SECONDS:.0f} s |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for world, full in FLOOR_SAMPLES:
        if world not in at_target:
            continue
        n, how = at_target[world]
        depth = max(1, full - 1) if quick else full
        f = floor_of(world, depth)
        steps, both = n * f.step_us / 1e6, n * (f.step_us + f.key_us) / 1e6
        verdict = (f"{both / TARGET_SECONDS:,.1f} x the target" if both > TARGET_SECONDS
                   else f"{100 * both / TARGET_SECONDS:.0f}% of it")
        out.append(f"| {world} | {f.sample:,} (depth {depth}) | "
                   f"{f.steps:,} | {f.step_us:.1f} us | {f.key_us:.1f} us | {n:,.0f} ({how}) | "
                   f"{steps:,.0f} s | {both:,.0f} s | {verdict} |")
        print(f"  floor {world}: {f.step_us:.1f} + {f.key_us:.1f} us per state", file=sys.stderr)
    return out


#: The issue's time targets on one core (canonical, one job, the full alphabet):
#: (world, depth, seconds).
TARGETS = (("base:1", 6, 30.0), ("hugetlb:2", 6, 30.0), ("thp:4", 5, 300.0))


def targets_table() -> list[str]:
    """Each target run once, in its own child: CPU time, peak memory, bytes per state.

    Also the memory one depth more would need: this run's bytes per state times
    its states times its growth per depth (new states at the last depth over the
    one before). What the search keeps grows with the states: per state a
    fingerprint, a parent and an operation; the frontier's worlds (the states of
    the depth before the last, a fixed share of all at a steady growth); the caches
    are bounded.
    """
    out = ["| world | depth | states | transitions | CPU s | target | wall s | load avg | "
           "peak MB | bytes/state | growth | one depth more needs |",
           "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for world, depth, limit in TARGETS:
        r = run(world, "canonical", 1, depth)
        verdict = (f"met ({limit:.0f} s)" if r.cpu <= limit else
                   f"missed: {r.cpu / limit:.1f} x {limit:.0f} s")
        out.append(f"| {world} | {depth} | {r.states:,} | {r.transitions:,} | {r.cpu:.1f} | "
                   f"{verdict} | {r.wall:.1f} | {r.load:.1f} | {r.peak_mb:,.0f} | "
                   f"{r.bytes_per_state:,.0f} | x{r.growth:.1f} | "
                   f"~{(r.base_mb * 2**20 + r.bytes_per_state * r.states * r.growth) / 2**30:,.1f}"
                   " GiB |")
        print(f"  target {world} depth {depth}: {r.cpu:.1f} s CPU, {r.peak_mb:.0f} MB",
              file=sys.stderr)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small depths (smoke run)")
    ap.add_argument("--budget", type=float, default=240.0,
                    help="seconds a single run may be projected to take (default 240)")
    ap.add_argument("--profile", action="store_true", help="add a cProfile breakdown")
    ap.add_argument("--findings", action="store_true",
                    help="add what each scheme's search finds, and the copy table")
    ap.add_argument("--symmetry", action="store_true",
                    help="add the check that tail-page symmetry loses no state (thp:4)")
    ap.add_argument("--floor", action="store_true",
                    help="add the floor: what any search of the model must spend at depth 6")
    ap.add_argument("--only-findings", action="store_true", help="skip the timing runs")
    ap.add_argument("--targets", action="store_true",
                    help="add the issue's target runs (base:1 and hugetlb:2 to depth 6, "
                         "thp:4 to depth 5), each on its own with its peak memory")
    ap.add_argument("--first", action="store_true",
                    help="only the time to the first counterexample, per scheme and world "
                         "(writes benchmarks/results/first-counterexample.md)")
    ap.add_argument("--first-budget", type=float, default=60.0,
                    help="--first: wall seconds a run may take before it counts as finding "
                         "nothing (default 60)")
    ap.add_argument("--scaling", action="store_true",
                    help="only one worker against two, on an idle machine "
                         "(writes benchmarks/results/scaling.md)")
    ap.add_argument("--out", default=None,
                    help="the results file (default benchmarks/results/explore.md, or "
                         "first-counterexample.md with --first)")
    args = ap.parse_args()
    results = ROOT / "benchmarks" / "results"
    if args.first:
        return first_main(args, Path(args.out or results / "first-counterexample.md"))
    if args.scaling:
        return scaling_main(args, Path(args.out or results / "scaling.md"))
    args.out = args.out or str(results / "explore.md")
    table = ["| world | mode | jobs | depth | states | transitions | wall s | CPU s | "
             "states/s | transitions/s | load avg | found | peak MB | bytes/state |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    proj = [f"| world | mode | jobs | deepest depth run | states at depth {TARGET_DEPTH} | "
            f"time for depth {TARGET_DEPTH} | target ({TARGET_SECONDS:.0f} s) |",
            "|---|---|---:|---:|---:|---|---|"]
    at_target: dict[str, tuple[float, str]] = {}  # world -> states at depth 6, and how known
    for world, full, quick in () if args.only_findings else WORLDS:
        depth = quick if args.quick else full
        for key, jobs in MODES + EXTRA_MODES.get(world, ()):
            rows = sweep(world, key, jobs, depth, args.budget)
            for r in rows[-2:]:
                table.append(f"| {r.world} | {r.mode} | {r.jobs} | {r.depth} | {r.states:,} | "
                             f"{r.transitions:,} | {r.wall:.1f} | {r.cpu:.1f} | {r.rate:,.0f} | "
                             f"{r.trate:,.0f} | {r.load:.1f} | {r.found} | "
                             f"{r.peak_mb:,.0f} | {r.bytes_per_state:,.0f} |")
            states, took, verdict, n = projection(rows, TARGET_DEPTH)
            if (key, jobs) == ("canonical", 1):
                at_target[world] = (n, "measured" if rows[-1].depth >= TARGET_DEPTH else
                                    f"projected from depth {rows[-1].depth}")
            proj.append(f"| {world} | {key} | {jobs} | {rows[-1].depth} | {states} | {took} | "
                        f"{verdict} |")
    out = [
        "# Explorer benchmark",
        "",
        f"`python benchmarks/explore_bench.py{''.join(' ' + a for a in sys.argv[1:])}` on "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}, commit {commit()}. "
        "Scheme mainline, 2 processes "
        "(fork), one GUP reference at a time, two values per writer, the full operation "
        "alphabet. `raw` is the baseline: the same search without symmetry reduction. "
        "The standard worlds are base:1, thp:4 (one THP of four subpages), hugetlb:2 and "
        "mthp:4 (one mTHP of four pages); thp:2 is the smaller THP world chapter 14 explores. "
        f"The first target was each standard world to depth {TARGET_DEPTH} in "
        f"{TARGET_SECONDS:.0f} s on one core (canonical, 1 job); issue 21's are in the "
        "Targets section.",
        "",
        "Wall time depends on what else the machine runs (load average at the start of each "
        "run); CPU time is this run's own cost (main process plus workers). Every run is a "
        "forked child of the benchmark: peak MB is its largest resident set (its own and its "
        "workers'), the loaded interpreter (about 20 MB) included. What was profiled, and each "
        "change's effect: `explore-log.md`.",
        "",
    ]
    if not args.only_findings:
        out += ["## Runs (the two deepest per world and mode)", "", *table, "",
                f"## Depth {TARGET_DEPTH}", "", *proj]
    if args.targets:
        out += ["", "## Targets (one core)", "",
                "Each run on its own (canonical states, one job, `--full`), in a forked child: "
                "its CPU time against the target, and its peak resident set (the loaded "
                "interpreter, about 20 MB, included; bytes per state: the peak above it over "
                "the states).", "", *targets_table()]
    if args.floor and at_target:
        out += ["", f"## The floor: what any search of this model spends at depth {TARGET_DEPTH}",
                "", *floor_table(at_target, args.quick)]
    if args.floor:
        out += ["", "## The explorer against its floor (one run)", "",
                "The floor's two costs per state, timed on the states at the sampled depth, "
                "and then, in the same process, the explorer (one job, `--full`) one depth "
                "further: its CPU time per state over the floor's is the ratio. The explorer "
                "tries every enabled operation in every state (the transitions per state "
                "column) and applies each, except mirror images of one it applied in a state "
                "that swapping tail pages leaves as it is (the applied per state column; "
                "`anonlib/explorer/orbits.py`), where the floor counts one step per state. "
                "The last two columns are the model's own work in that search, per state "
                "(every state it reaches, also those of the last depth, which it does not "
                "expand), timed on its own over the same states: `applying alone` is "
                "`model.apply` of each operation the explorer applies in each state it "
                "expands; `the model's own work` adds the invariant checks it runs (the "
                "transition checks of each operation that changes the state, and the state "
                "checks once per state). Neither is the search's code: they are "
                "`anonlib/model.py` and `anonlib/invariants.py`. A search that applies and "
                "checks every transition cannot have a ratio below the last column, whatever "
                "it does around the model; only a faster model step or faster checks move it.",
                "", *ratio_table(args.quick)]
    if args.profile:
        world, depth = ("base:1", 4) if args.quick else ("base:1", 5)
        out += ["", f"## Where the time goes (cProfile, {world}, depth {depth}, 1 job)", "",
                "Cumulative time per function; profiling roughly doubles every time.", "",
                profile(world, depth)]
    if args.symmetry:
        depth = 2 if args.quick else 3
        out += ["", f"## Tail-page symmetry (thp:4, depth {depth})", "",
                "States one search finds without permuting tail pages, the classes they fall "
                "in, and the states of the search that keeps one per class: equal classes "
                "mean the reduction lost nothing.", "", *symmetry(depth)]
    if args.findings or args.only_findings:
        out += ["", "## What each scheme's search finds", "",
                "Shortest counterexample per invariant (length in operations after the setup); "
                "[hugetlb-vmsplice] is the known kernel gap.", "", *findings()]
    return write_results(Path(args.out), out)


#: (world, depth) for the scaling table: each a few seconds to a minute on one core
SCALING = (("base:1", 5), ("hugetlb:2", 5), ("thp:4", 4))
#: The cores the README's estimate is for.
MANY = 32


def scaling_main(args: argparse.Namespace, dest: Path) -> int:
    """``--scaling``: each world with one worker and with two, run after run on a machine
    that should be otherwise idle; Amdahl's serial share from the two wall times, and
    what it predicts for thp:4 at depth 6 on many cores."""
    load0 = os.getloadavg()[0]
    rows = ["| world | depth | states | 1 job: wall s | 2 jobs: wall s | 2 jobs: CPU s | "
            "speedup | serial share | load avg |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    shares = {}
    for world, depth in SCALING:
        one = run(world, "canonical", 1, depth)
        two = run(world, "canonical", 2, depth)
        assert (one.states, one.transitions) == (two.states, two.transitions)
        speedup = one.wall / two.wall
        share = min(1.0, max(0.0, 2 / speedup - 1))  # Amdahl: 1 / (s + (1 - s) / 2)
        shares[world] = share
        rows.append(f"| {world} | {depth} | {one.states:,} | {one.wall:.1f} | {two.wall:.1f} | "
                    f"{two.cpu:.1f} | {speedup:.2f} | {share:.0%} | {two.load:.1f} |")
        print(f"  scaling {world}: {speedup:.2f}", file=sys.stderr)
    share = shares["thp:4"]
    many = 1 / (share + (1 - share) / MANY)
    bench = (ROOT / "benchmarks" / "results" / "explore.md").read_text()
    target = next((line for line in bench.splitlines() if line.startswith("| thp:4 | 5 |")), "")
    cells = [c.strip() for c in target.split("|")]
    estimate = []
    if target:
        cpu, growth = float(cells[5].replace(",", "")), float(cells[11].lstrip("x"))
        one_core = cpu * growth
        estimate = [
            "", f"thp:4 to depth 6 on one core: about {one_core / 3600:.1f} hours ({cpu:.0f} s "
            f"of CPU to depth 5 in `explore.md`'s targets table, times its {growth:.1f}-fold "
            f"growth per depth); on {MANY} cores, by thp:4's serial share above, about "
            f"{many:.1f} times faster: about {one_core / many / 60:.0f} minutes. The merge, "
            "in the main process, is the serial share: it takes every worker's new states in "
            "order and numbers them, so more workers wait on it."]
    out = [
        "# Explorer benchmark: one worker and two",
        "",
        f"`python benchmarks/explore_bench.py{''.join(' ' + a for a in sys.argv[1:])}` on "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}, commit {commit()}; load "
        f"average {load0:.1f} at the start.",
        "",
        "Each world searched to its depth (canonical states, `--full`) with `--jobs 1` and "
        "then `--jobs 2`, each in a forked child, on a machine with nothing else to do (the "
        "load average column says whether it had). Both give the same states and "
        "transitions (the benchmark checks it). The speedup is the ratio of the wall times; "
        "the serial share `s` is what Amdahl's law `1 / (s + (1 - s) / n)` makes of it for "
        "n = 2 (CPU s counts the main process and its workers).",
        "",
        *rows,
        *estimate,
    ]
    return write_results(dest, out)


def first_main(args: argparse.Namespace, dest: Path) -> int:
    """``--first``: the time-to-counterexample table, on its own."""
    from anonlib.schemes import SCHEMES

    runs = [(scheme, world, "") for scheme in SCHEMES for world in FIRST_WORLDS]
    table = first_counterexample(args.first_budget, runs)
    after = first_counterexample(args.first_budget, list(FIRST_AFTER))
    mutants = [f"{n} ({sch.versions})" for n, sch in SCHEMES.items()
               if "hypothetical" in sch.versions or "regression" in sch.versions
               or "bug" in sch.versions]
    out = [
        "# Explorer benchmark: time to the first counterexample",
        "",
        f"`python benchmarks/explore_bench.py{''.join(' ' + a for a in sys.argv[1:])}` on "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}, commit {commit()}.",
        "",
        "Every scheme of the library (`python -m anonlib schemes`) in each standard world, "
        "with the explorer's defaults: depth 6, 2 processes (fork), one GUP reference at a "
        "time, two values per writer, the full operation alphabet, canonical states, one job "
        "(one core). The search stops at the end of the first depth that has a violation, so "
        "the counterexample is the shortest and the time is the time to find it. Known kernel "
        "gaps are reported but do not stop the search. Each run is a forked process with a "
        f"{args.first_budget:.0f} s wall-clock budget; at the budget it gets Ctrl-C, as a "
        "user would press it, which ends a search that has its first counterexample with "
        "it (its depth is then not searched to the end) and a search that has none without "
        "an answer. CPU time is the run's own. Target: "
        f"every counterexample under {FIRST_TARGET:.0f} s on one core. Besides the kernel "
        f"eras the schemes include these hypotheticals and mutants: {'; '.join(mutants)}.",
        "",
        "`CPU s to the first` is when the search recorded its first violation (all shallower "
        "depths were clean, so it is a shortest counterexample): the explorer's progress line "
        "announces it then, and Ctrl-C from then on prints it, so this is the time the target "
        "is held to. The search then finishes that depth, to report every invariant broken at "
        "that length (`CPU s to the end of its depth`, the run's own CPU time). Peak MB is the "
        "run's largest resident set, the loaded interpreter included.",
        "",
        *table,
        "",
        "## Starting where the question starts",
        "",
        "The same searches from a world where P has already faulted its mapping in (one "
        "statement run before the search, `--after`). Every sequence in these searches is "
        "one of the standard world's that starts with that fault, so a counterexample here "
        "is one there, one operation longer; a clean search here is not a proof for the "
        "standard world (it leaves out the sequences that start otherwise). For the mTHP "
        "mutants the question is what the kernel does to a mapped mTHP, so the search can "
        "start there; the standard world above still says what the empty start costs.",
        "",
        *after,
    ]
    return write_results(dest, out)


if __name__ == "__main__":
    sys.exit(main())

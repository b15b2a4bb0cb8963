"""Every schedule of a race variant, the shortest one that loses the pin, and replay.

:func:`explore` visits every state reachable from the start (states are
deduplicated, so interleavings that lead to the same state are explored
once), counts the schedules that end in each final state, checks every final
state, and returns the shortest bad schedule with its states step by step.
Among equally short bad schedules it picks the one with the fewest switches
between the CPUs, which is the easiest to read. :func:`replay` runs a given
schedule and reports where it leads.

A final state is *bad* when GUP-fast kept its pin and either the page is no
longer exclusive (INV-2: nobody clears PG_anon_exclusive while the folio may
be pinned) or the process no longer maps the page (pin coherence, INV-11:
the process's next access reaches another page than the pinned one).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from .machine import MEMORY_MODELS, Event, Machine, MemoryModel, State, show
from .machine import memory_model as model_record
from .variants import PINNED, Pte, Ref, Variant, variant


@dataclass(frozen=True)
class Frame:
    """One event of a schedule and the state after it (what a stepper shows)."""

    index: int  # 1-based; 0 is the start
    event: str  # "A1", "A1@mem", "B5@early", or "start"
    cpu: str  # "A", "B" or "" for the start
    where: str  # "mm/rmap.c: try_to_unmap_one"
    code: str  # the kernel line, paraphrased
    effect: str  # what happened
    state: str  # the state after, as text

    def line(self) -> str:
        """One line: number, event, CPU, kernel function, effect (no state)."""
        if self.index == 0:
            return " 0. start"
        func = self.where.split(": ", 1)[1]
        return f"{self.index:2}. {self.event:<9} CPU {self.cpu}  {func:<28} {self.effect}"

    def text(self) -> str:
        if self.index == 0:
            return "start\n" + _indent(self.state)
        what = "store reaches memory" if self.event.endswith("@mem") else self.code
        if self.event.endswith("@early"):
            what = "load satisfied early: " + self.code
        return (
            f"{self.index:2}. {self.event:<9} CPU {self.cpu}  {self.where}\n"
            f"      {what}\n"
            f"      -> {self.effect}\n" + _indent(self.state, 6)
        )


@dataclass(frozen=True)
class RaceResult:
    """What :func:`explore` found for one variant under one memory model."""

    variant: str
    summary: str
    memory_model: str
    expected: str  # "safe" or "unsafe"
    verdict: str  # "safe" or "unsafe"
    states: int  # distinct states visited
    final_states: int
    schedules: int  # complete schedules (paths from the start to a final state)
    bad_schedules: int
    schedule: tuple[str, ...]  # the shortest bad schedule, empty when safe
    frames: tuple[Frame, ...]  # the start and the state after each event of `schedule`
    violations: tuple[str, ...]  # what is broken at the end of `schedule`
    outcomes: tuple[tuple[str, int], ...]  # "A: ... / B: ..." -> number of schedules

    @property
    def safe(self) -> bool:
        return self.verdict == "safe"

    @property
    def as_expected(self) -> bool:
        return self.verdict == self.expected

    @property
    def exit_status(self) -> int:
        return 0 if self.safe else 1

    def headline(self) -> str:
        if self.safe:
            return (
                f"{self.variant} under {self.memory_model}: safe: none of the "
                f"{self.schedules} schedules loses the pin"
            )
        return (
            f"{self.variant} under {self.memory_model}: UNSAFE: {self.bad_schedules} of "
            f"{self.schedules} schedules lose the pin; the shortest takes "
            f"{len(self.schedule)} events"
        )

    def text(self, verbose: bool = True) -> str:
        """The canonical text (deterministic; what nbval compares and the CLI prints).

        ``verbose`` prints the kernel line and the whole state after each
        event; otherwise one line per event and the final state.
        """
        lines = [
            self.headline(),
            f"  {self.summary}",
            f"  explored {self.states} states, {self.final_states} final; "
            f"expected {self.expected}" + ("" if self.as_expected else "  ** NOT AS EXPECTED **"),
            "  outcomes (schedules):",
        ]
        lines += [f"    {n:>7}  {o}" for o, n in self.outcomes]
        if not self.safe:
            lines.append("shortest bad schedule: " + ",".join(self.schedule))
            if verbose:
                lines += [f.text() for f in self.frames]
            else:
                lines += [f.line() for f in self.frames[1:]]
                lines.append("final state:")
                lines.append(_indent(self.frames[-1].state))
            lines.append("broken at the end:")
            lines += [f"  {v}" for v in self.violations]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()


@dataclass(frozen=True)
class Replay:
    """What :func:`replay` found: the frames, whether it finished, what is broken."""

    variant: str
    memory_model: str
    schedule: tuple[str, ...]
    frames: tuple[Frame, ...]
    finished: bool
    violations: tuple[str, ...]
    error: str = ""  # set when an event could not fire; `frames` stop before it
    enabled: tuple[str, ...] = ()  # the events that could fire next (when not finished)

    @property
    def exit_status(self) -> int:
        if self.error:
            return 2
        return 1 if self.violations else 0

    def text(self, verbose: bool = True) -> str:
        """The frames (with the state after each, or one line each), then how it ended."""
        lines = [f"replay of {self.variant} under {self.memory_model}: " + ",".join(self.schedule)]
        if verbose:
            lines += [f.text() for f in self.frames]
        else:
            lines += [f.line() for f in self.frames[1:]]
            lines.append("state:")
            lines.append(_indent(self.frames[-1].state))
        if self.error:
            lines.append(f"error: {self.error}")
        if not self.finished:
            lines.append("not finished; events that may fire next: " + ", ".join(self.enabled))
        elif self.violations:
            lines.append("broken at the end:")
            lines += [f"  {v}" for v in self.violations]
        else:
            lines.append("finished: no pin lost")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()


# ---------------------------------------------------------------------------- text


def _indent(text: str, n: int = 2) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


def state_text(machine: Machine, state: State) -> str:
    """The state as a few lines: memory, then each CPU (position, reads, store buffer)."""
    mem = state.mem
    lines = [
        f"memory: pte {show(mem['pte'])}; refcount {show(mem['refcount'])}; "
        f"PG_anon_exclusive {show(mem['flag'])}; write_protect_seq {mem['seq']}"
    ]
    for prog, cpu in zip(machine.programs, state.cpus, strict=True):
        where = f"next {cpu.pc}" if cpu.pc is not None else f"done: {cpu.outcome}"
        parts = [where]
        if cpu.buffer:
            parts.append(
                "store buffer ["
                + ", ".join(
                    f"{e.step}: {e.loc} " + (f"= {show(e.value)}" if e.op is None else "op")
                    for e in cpu.buffer
                )
                + "]"
            )
        if cpu.early:
            parts.append("read early [" + ", ".join(f"{s}={show(v)}" for s, v in cpu.early) + "]")
        lines.append(f"CPU {prog.cpu} {prog.name}: " + "; ".join(parts))
    return "\n".join(lines)


def violations(machine: Machine, state: State) -> tuple[str, ...]:
    """What a final state breaks (empty if nothing); only GUP-fast's kept pin can be lost."""
    gup = state.cpus[1]
    if gup.outcome != PINNED:
        return ()
    mem = state.mem
    pte: Pte = mem["pte"]
    ref: Ref = mem["refcount"]
    out = []
    if not mem["flag"]:
        out.append(
            f"INV-2: page P is pinned (pins {ref.pins}) but PG_anon_exclusive is clear; "
            "a page that may be shared is copied by the next write fault, away from the pin"
        )
    if not pte.present:
        out.append(
            f"pin coherence (INV-11): page P is pinned but the process no longer maps it "
            f"(the PTE is a {pte.text()}); the pin outlived the mapping it was taken through"
        )
    return tuple(out)


def _outcome(machine: Machine, state: State) -> str:
    a, b = state.cpus
    bad = " -> pin lost" if violations(machine, state) else ""
    return f"A {a.outcome}; B {b.outcome}{bad}"


# ---------------------------------------------------------------------------- explore


def _frame(machine: Machine, i: int, event: Event, effect: str, after: State) -> Frame:
    prog = machine.programs[event.cpu]
    step = prog.step(event.step)
    return Frame(i, event.name, prog.cpu, step.where, step.code, effect, state_text(machine, after))


def _start_frame(machine: Machine, state: State) -> Frame:
    return Frame(0, "start", "", "", "", "", state_text(machine, state))


def _resolve(v: str | Variant) -> Variant:
    return v if isinstance(v, Variant) else variant(v)


@lru_cache(maxsize=128)
def _explore(name: str, model: MemoryModel) -> RaceResult:
    var = variant(name)
    machine = Machine(var.programs(), model)
    start = machine.initial(var.memory())

    # Breadth-first: every state, its successors, its distance from the start.
    index: dict[State, int] = {start: 0}
    states: list[State] = [start]
    succ: list[list[tuple[Event, int]]] = [[]]
    dist: list[int] = [0]
    queue = deque([0])
    order: list[int] = []
    while queue:
        i = queue.popleft()
        order.append(i)
        s = states[i]
        out: list[tuple[Event, int]] = []
        events = machine.enabled(s)
        if not events and not s.finished:
            raise RuntimeError(f"{name}/{model.name}: stuck state\n{state_text(machine, s)}")
        for ev in events:
            t, _ = machine.fire(s, ev)
            j = index.get(t)
            if j is None:
                j = index[t] = len(states)
                states.append(t)
                dist.append(dist[i] + 1)
                succ.append([])  # filled when j is dequeued
                queue.append(j)
            out.append((ev, j))
        succ[i] = out

    # Count complete schedules: the graph is acyclic (every event makes progress).
    indeg = [0] * len(states)
    for outs in succ:
        for _, j in outs:
            indeg[j] += 1
    paths = [0] * len(states)
    paths[0] = 1
    ready = deque([0])
    while ready:
        i = ready.popleft()
        for _, j in succ[i]:
            paths[j] += paths[i]
            indeg[j] -= 1
            if indeg[j] == 0:
                ready.append(j)

    finals = [i for i, s in enumerate(states) if s.finished]
    bad = {i for i in finals if violations(machine, states[i])}
    outcome_counts: dict[str, int] = {}
    for i in finals:
        key = _outcome(machine, states[i])
        outcome_counts[key] = outcome_counts.get(key, 0) + paths[i]
    total = sum(paths[i] for i in finals)
    bad_total = sum(paths[i] for i in bad)

    schedule: tuple[str, ...] = ()
    frames: tuple[Frame, ...] = ()
    broken: tuple[str, ...] = ()
    if bad:
        path = _shortest_readable(states, succ, dist, order, bad)
        schedule = tuple(ev.name for ev in path)
        frames_l = [_start_frame(machine, start)]
        s = start
        for k, ev in enumerate(path, 1):
            s, effect = machine.fire(s, ev)
            frames_l.append(_frame(machine, k, ev, effect, s))
        frames = tuple(frames_l)
        broken = violations(machine, s)

    return RaceResult(
        variant=name,
        summary=var.summary,
        memory_model=model.name,
        expected=var.expected.get(model.name, "not given"),
        verdict="unsafe" if bad else "safe",
        states=len(states),
        final_states=len(finals),
        schedules=total,
        bad_schedules=bad_total,
        schedule=schedule,
        frames=frames,
        violations=broken,
        outcomes=tuple(sorted(outcome_counts.items())),
    )


def _shortest_readable(
    states: list[State],
    succ: list[list[tuple[Event, int]]],
    dist: list[int],
    order: list[int],
    bad: set[int],
) -> list[Event]:
    """A shortest path to a bad state, with the fewest CPU switches (ties: first found)."""
    target_dist = min(dist[i] for i in bad)
    # best[(state, last cpu)] = (switches, previous key, event)
    best: dict[tuple[int, int], tuple[int, tuple[int, int] | None, Event | None]] = {
        (0, -1): (0, None, None)
    }
    for i in order:
        if dist[i] >= target_dist:
            continue
        for last in (-1, 0, 1):
            key = (i, last)
            if key not in best:
                continue
            sw = best[key][0]
            for ev, j in succ[i]:
                if dist[j] != dist[i] + 1:
                    continue
                cost = sw + (1 if last not in (-1, ev.cpu) else 0)
                nk = (j, ev.cpu)
                if nk not in best or cost < best[nk][0]:
                    best[nk] = (cost, key, ev)
    ends = sorted(
        (best[(i, c)][0], i, c)
        for i in bad
        if dist[i] == target_dist
        for c in (0, 1)
        if (i, c) in best
    )
    _, i, c = ends[0]
    path: list[Event] = []
    at: tuple[int, int] | None = (i, c)
    while at is not None and best[at][2] is not None:
        _, prev, step = best[at]
        assert step is not None
        path.append(step)
        at = prev
    return path[::-1]


def explore(v: str | Variant, memory_model: str | MemoryModel = "sc") -> RaceResult:
    """Explore every schedule of race variant ``v`` under ``memory_model``.

    ``memory_model`` is a name (sc, tso, weak) or a
    :class:`~anonlib.race.machine.MemoryModel` record.
    """
    return _explore(_resolve(v).name, model_record(memory_model))


def replay(
    v: str | Variant, schedule: str | Sequence[str], memory_model: str | MemoryModel = "sc"
) -> Replay:
    """Run the events of ``schedule`` (names, or one comma-separated string) in order."""
    var = _resolve(v)
    names = (
        tuple(x.strip() for x in schedule.split(",") if x.strip())
        if isinstance(schedule, str)
        else tuple(schedule)
    )
    machine = Machine(var.programs(), memory_model)
    s = machine.initial(var.memory())
    frames = [_start_frame(machine, s)]
    error = ""
    for k, name in enumerate(names, 1):
        events = {ev.name: ev for ev in machine.enabled(s)}
        if name not in events:
            error = f"event {k} ({name}) cannot happen here; possible: " + (
                ", ".join(events) or "none (finished)"
            )
            break
        s, effect = machine.fire(s, events[name])
        frames.append(_frame(machine, k, events[name], effect, s))
    return Replay(
        variant=var.name,
        memory_model=machine.model.name,
        schedule=names,
        frames=tuple(frames),
        finished=s.finished,
        violations=violations(machine, s) if s.finished else (),
        error=error,
        enabled=tuple(ev.name for ev in machine.enabled(s)) if not s.finished else (),
    )


def table(names: Sequence[str] | None = None) -> str:
    """Verdicts of every variant under every memory model, with shortest bad schedule lengths."""
    from .variants import VARIANTS

    rows = []
    width = max(len(n) for n in (names or VARIANTS))
    header = f"{'variant':<{width}}  " + "  ".join(f"{m:<12}" for m in MEMORY_MODELS)
    rows.append(header.rstrip())
    for n in names or VARIANTS:
        cells = []
        for m in MEMORY_MODELS:
            r = explore(n, m)
            cell = "safe" if r.safe else f"UNSAFE ({len(r.schedule)})"
            if not r.as_expected:
                cell += "!"
            cells.append(f"{cell:<12}")
        rows.append(f"{n:<{width}}  " + "  ".join(cells).rstrip())
    return "\n".join(rows)

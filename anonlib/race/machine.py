"""The interleaving machine: two CPUs run their steps against one memory.

A *program* is a small flow chart of :class:`Step` objects, one per line of
kernel code that matters for the race. Each step does at most one access to
shared memory (a load, a store, or an atomic read-modify-write that returns
nothing, like ``atomic_add`` or ``clear_bit``), may carry memory barriers
before or after it, and may test what the CPU has read so far to back off.

A :class:`State` is immutable and hashable: the shared memory, and for each
CPU its position, what it has read, its store buffer and any loads it has
satisfied early. :func:`enabled` lists the events that may happen next and
:func:`fire` performs one. Three memory models decide which events exist.
Each is a :class:`MemoryModel` record (:data:`SC`, :data:`TSO`, :data:`WEAK`)
whose fields are the questions the machine asks: is there a store buffer,
does it hold atomics, do atomics wait for it to empty, which barriers drain
it, in what order do its entries leave, may loads be satisfied early and
past which barriers not. The machine never looks at a model's name; names
are looked up once, by :func:`memory_model`.

``sc``
    Sequential consistency. A store or atomic reaches memory when the step
    runs; loads read memory. Barriers do nothing.

``tso``
    x86-TSO. A plain store waits in the CPU's FIFO store buffer until the
    event ``X@mem`` moves the oldest entry to memory; the CPU's own loads see
    its buffered stores first. ``smp_mb`` waits until the buffer is empty.
    Atomic read-modify-writes are LOCK-prefixed instructions: they wait for
    an empty buffer and act on memory directly, so each is a full barrier,
    and ``smp_mb__after_atomic``, which follows one, does nothing (Linux 6.12
    defines it as empty on x86, arch/x86/include/asm/barrier.h). Taking a
    spinlock is such an instruction too. Loads are not reordered with loads
    and stores leave in order, so ``smp_rmb`` and ``smp_wmb`` are no-ops.

``weak``
    An ARM-like model, defined by four rules:

    1. Stores *and* non-returning atomics go into the store buffer. Entries
       leave in any order, except that entries for the same location leave
       in program order, and an entry cannot leave before one that precedes
       it across ``smp_wmb`` or a release (``spin_unlock``); the full
       barriers of rule 3 order entries by emptying the buffer. An atomic
       is applied to memory's value of the moment it leaves (a "far"
       atomic); until then the CPU cannot read that location.
    2. A load may be satisfied early (event ``X@early``), before earlier
       steps of its CPU have run, along the path that does not back off. It
       may not pass an earlier access to the same location that has not run,
       nor ``smp_rmb``, ``smp_mb``, ``smp_mb__after_atomic`` or an acquire
       (``spin_lock``); ``smp_mb`` stops it only until the buffer is empty.
       When the CPU reaches the load it uses the value read early; if the
       CPU backs off, early values are thrown away.
    3. ``smp_mb`` and ``smp_mb__after_atomic`` wait for an empty buffer
       (``smp_mb`` as under ``tso``).
    4. Memory is multi-copy atomic: a store that leaves a buffer is seen by
       every other CPU at once (ARMv8 is other-multi-copy-atomic; POWER is
       not, and is not modelled). Loads are never moved after later stores
       (no load buffering), which this race does not need.

A schedule is a list of event names: ``A2`` runs step A2 on its CPU,
``A1@mem`` moves A1's store from the store buffer to memory, ``B5@early``
satisfies B5's load ahead of time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..scenario.parser import q, suggest

# Barrier kinds a step may carry (Step.before / Step.after).
MB = "smp_mb"
MB_AFTER_ATOMIC = "smp_mb__after_atomic"
RMB = "smp_rmb"
WMB = "smp_wmb"
LOCK = "spin_lock"  # acquire; on x86 a LOCK-prefixed instruction
UNLOCK = "spin_unlock"  # release
BARRIERS = (MB, MB_AFTER_ATOMIC, RMB, WMB, LOCK, UNLOCK)


@dataclass(frozen=True)
class StoreBuffer:
    """What each CPU's store buffer holds and when its entries leave (event ``X@mem``).

    ``holds_atomics``
        Non-returning atomics wait in the buffer too and are applied to
        memory's value when they leave (weak rule 1); otherwise an atomic
        acts on memory when its step runs.
    ``locked_atomics``
        A step with an atomic waits for an empty buffer before it runs (x86's
        LOCK prefix).
    ``drains``
        The barrier kinds that make the next step wait for an empty buffer;
        while such a barrier is pending and the buffer is not empty, no later
        load is satisfied early either.
    ``reorder``
        ``None``: entries leave oldest first (FIFO). Otherwise entries leave
        in any order, except that an entry never passes an earlier entry for
        the same location, nor one that precedes it across a barrier of these
        kinds (weak rule 1).
    """

    holds_atomics: bool
    locked_atomics: bool
    drains: frozenset[str]
    reorder: frozenset[str] | None


@dataclass(frozen=True)
class MemoryModel:
    """A memory model as the decisions :class:`Machine` asks of it.

    ``name`` and ``help`` are its spelling on the command line and in the
    API; the machine never looks at them. ``store_buffer`` is ``None`` when
    every store and atomic reaches memory as its step runs (no ``X@mem``
    events). ``early_loads`` is ``None`` when a load reads when its step
    runs; otherwise a load further down the no-back-off path may be
    satisfied early (event ``X@early``), but not past a barrier of these
    kinds on the way (weak rule 2).
    """

    name: str
    help: str
    store_buffer: StoreBuffer | None
    early_loads: frozenset[str] | None


SC = MemoryModel(
    "sc",
    "sequential consistency: every access takes effect when its step runs",
    store_buffer=None,
    early_loads=None,
)
TSO = MemoryModel(
    "tso",
    "x86-TSO: FIFO store buffers; atomics and spin_lock are full barriers",
    store_buffer=StoreBuffer(
        holds_atomics=False,
        locked_atomics=True,
        drains=frozenset({MB, LOCK}),  # a spinlock is taken by a LOCK-prefixed instruction
        reorder=None,
    ),
    early_loads=None,
)
WEAK = MemoryModel(
    "weak",
    "ARM-like: stores leave buffers out of order, loads may be satisfied early",
    store_buffer=StoreBuffer(
        holds_atomics=True,
        locked_atomics=False,
        drains=frozenset({MB, MB_AFTER_ATOMIC}),
        reorder=frozenset({WMB, UNLOCK}),
    ),
    early_loads=frozenset({RMB, LOCK, MB, MB_AFTER_ATOMIC}),
)

#: The memory models by name, weakest last.
MODELS: dict[str, MemoryModel] = {m.name: m for m in (SC, TSO, WEAK)}

#: Their names, the spelling of ``-m`` and of the API.
MEMORY_MODELS: tuple[str, ...] = tuple(MODELS)

MEMORY_MODEL_HELP: dict[str, str] = {m.name: m.help for m in MODELS.values()}


def memory_model(model: str | MemoryModel) -> MemoryModel:
    """The record of the memory model called ``model`` (a record is returned as is).

    The one place a model's name is looked up: ValueError naming the
    unknown name, the closest known one and the models.
    """
    if isinstance(model, MemoryModel):
        return model
    try:
        return MODELS[model]
    except KeyError:
        hint = suggest(model, list(MODELS))
        raise ValueError(
            f"unknown memory model {q(model)};{hint} models: {', '.join(MODELS)}"
        ) from None


#: A flow-chart target that ends the program.
END = "END"


@dataclass(frozen=True)
class Load:
    """Read ``loc`` into the register named after the step."""

    loc: str


@dataclass(frozen=True)
class Store:
    """Write ``value`` (or ``value(regs)``) to ``loc``."""

    loc: str
    value: Any


@dataclass(frozen=True)
class Atomic:
    """A non-returning atomic read-modify-write of ``loc`` (atomic_add, clear_bit)."""

    loc: str
    op: Callable[[Any], Any]
    what: str  # e.g. "pins + 1", shown in the step's effect


Access = Load | Store | Atomic
Regs = Mapping[str, Any]


@dataclass(frozen=True)
class Step:
    """One line of kernel code, as one CPU runs it.

    ``id`` names the step in schedules; ``func`` and ``file`` say where the
    kernel does it and ``code`` paraphrases the line. ``when`` (if given)
    says whether the step runs at all on this path; ``backoff`` (if given)
    decides from the registers whether to go to ``bail`` instead of
    ``next``. ``outcome`` (or ``bail_outcome`` after backing off), if given,
    becomes the CPU's result once the step has run.
    """

    id: str
    func: str
    file: str
    code: str
    access: Access | None = None
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    when: Callable[[Regs], bool] | None = None
    backoff: Callable[[Regs], bool] | None = None
    next: str = END
    bail: str = END
    outcome: str | None = None
    bail_outcome: str | None = None

    @property
    def where(self) -> str:
        return f"{self.file}: {self.func}"


@dataclass(frozen=True)
class Program:
    """One CPU's side of the race: its steps by id, the first step, a name.

    ``done`` is the outcome of reaching the end without any step naming one
    (for GUP-fast: the pin is kept).
    """

    cpu: str  # "A" (the clearer or fork) or "B" (GUP-fast)
    name: str  # e.g. "swap-out (try_to_unmap_one)"
    first: str
    steps: Mapping[str, Step] = field(hash=False)
    done: str | None = None  # the outcome of finishing with none set on the way

    def step(self, sid: str) -> Step:
        return self.steps[sid]


@dataclass(frozen=True)
class Entry:
    """A store-buffer entry: which step, where, a value or an atomic op, its barrier epoch."""

    step: str
    loc: str
    value: Any = None
    op: Callable[[Any], Any] | None = None
    epoch: int = 0

    @property
    def is_atomic(self) -> bool:
        return self.op is not None


@dataclass(frozen=True)
class Cpu:
    """One CPU's private state."""

    pc: str | None  # next step, None when finished
    regs: tuple[tuple[str, Any], ...] = ()
    buffer: tuple[Entry, ...] = ()
    epoch: int = 0
    pending: tuple[str, ...] = ()  # barriers after the last step run, not yet passed
    early: tuple[tuple[str, Any], ...] = ()
    outcome: str | None = None

    @property
    def reg(self) -> dict[str, Any]:
        return dict(self.regs)


@dataclass(frozen=True)
class State:
    """Shared memory (sorted (location, value) pairs) and the two CPUs."""

    memory: tuple[tuple[str, Any], ...]
    cpus: tuple[Cpu, Cpu]

    @property
    def mem(self) -> dict[str, Any]:
        return dict(self.memory)

    @property
    def finished(self) -> bool:
        return all(c.pc is None and not c.buffer for c in self.cpus)


@dataclass(frozen=True)
class Event:
    """One schedulable event: run a step, drain a buffer entry, or load early."""

    kind: str  # "step" | "mem" | "early"
    cpu: int
    step: str  # the step id concerned
    index: int = 0  # buffer index for "mem"

    @property
    def name(self) -> str:
        if self.kind == "step":
            return self.step
        return f"{self.step}@{self.kind}"


class Machine:
    """Two programs under one memory model: enumerate and fire events."""

    def __init__(
        self, programs: tuple[Program, Program], model: str | MemoryModel
    ) -> None:
        self.programs = programs
        self.model = memory_model(model)

    # ---- helpers -------------------------------------------------------------------

    def _advance(self, prog: Program, sid: str, regs: Regs) -> str | None:
        """Skip steps whose ``when`` is false; None at the end of the program."""
        while sid != END:
            s = prog.step(sid)
            if s.when is None or s.when(regs):
                return sid
            sid = s.next
        return None

    def initial(self, memory: Mapping[str, Any]) -> State:
        a, b = (Cpu(pc=self._advance(p, p.first, {})) for p in self.programs)
        return State(tuple(sorted(memory.items())), (a, b))

    @staticmethod
    def _forward(cpu: Cpu, loc: str, mem: Mapping[str, Any]) -> tuple[bool, Any]:
        """What ``cpu`` reads at ``loc``: (blocked by a pending atomic, value)."""
        for e in reversed(cpu.buffer):
            if e.loc == loc:
                if e.is_atomic:
                    return True, None
                return False, e.value
        return False, mem[loc]

    def _can_run(self, cpu: Cpu, step: Step, mem: Mapping[str, Any]) -> bool:
        sb = self.model.store_buffer
        if sb is None or not cpu.buffer:
            return True  # nothing to wait for, and no pending atomic to read through
        barriers = set(cpu.pending) | set(step.before)
        if barriers & sb.drains:
            return False
        if sb.locked_atomics and isinstance(step.access, Atomic):
            return False
        if isinstance(step.access, Load) and step.id not in dict(cpu.early):
            blocked, _ = self._forward(cpu, step.access.loc, mem)
            if blocked:
                return False
        return True

    def _drainable(self, cpu: Cpu) -> list[int]:
        sb = self.model.store_buffer
        if sb is None or not cpu.buffer:
            return []
        if sb.reorder is None:
            return [0]
        out = []
        for i, e in enumerate(cpu.buffer):
            earlier = cpu.buffer[:i]
            if any(x.loc == e.loc or x.epoch < e.epoch for x in earlier):
                continue
            out.append(i)
        return out

    def _early_candidates(self, k: int, cpu: Cpu, mem: Mapping[str, Any]) -> list[str]:
        """Loads further down the no-back-off path that may be satisfied now (``early_loads``)."""
        stops = self.model.early_loads
        if stops is None or cpu.pc is None:
            return []
        sb = self.model.store_buffer
        if sb is not None and set(cpu.pending) & sb.drains and cpu.buffer:
            return []
        prog = self.programs[k]
        regs = cpu.reg
        done = dict(cpu.early)
        blocked: set[str] = set()
        out: list[str] = []
        sid: str = cpu.pc
        first = True
        while sid != END:
            s = prog.step(sid)
            if s.when is not None:
                try:
                    runs = s.when(regs)
                except KeyError:  # depends on a value not read yet: stop speculating
                    break
                if not runs:
                    sid = s.next
                    continue
            if set(s.before) & stops:
                break  # loads after this barrier wait for it (and pc's own load is not early)
            a = s.access
            if isinstance(a, Load):
                if (
                    not first
                    and a.loc not in blocked
                    and s.id not in done
                    and not self._forward(cpu, a.loc, mem)[0]
                ):
                    out.append(s.id)
                if s.id not in done:
                    blocked.add(a.loc)
            elif isinstance(a, (Store, Atomic)):
                blocked.add(a.loc)
            if set(s.after) & stops:
                break
            first = False
            sid = s.next
        return out

    # ---- the two public operations -------------------------------------------------

    def enabled(self, state: State) -> list[Event]:
        """Every event that may happen next, in a fixed order (A before B; step, mem, early)."""
        mem = state.mem
        events: list[Event] = []
        for k, cpu in enumerate(state.cpus):
            if cpu.pc is not None:
                step = self.programs[k].step(cpu.pc)
                if self._can_run(cpu, step, mem):
                    events.append(Event("step", k, step.id))
            for i in self._drainable(cpu):
                events.append(Event("mem", k, cpu.buffer[i].step, i))
            for sid in self._early_candidates(k, cpu, mem):
                events.append(Event("early", k, sid))
        return events

    def fire(self, state: State, event: Event) -> tuple[State, str]:
        """Perform ``event``; returns the next state and a one-line account of the effect."""
        mem = state.mem
        k = event.cpu
        cpu = state.cpus[k]
        prog = self.programs[k]
        if event.kind == "mem":
            e = cpu.buffer[event.index]
            old = mem[e.loc]
            mem[e.loc] = e.op(old) if e.op is not None else e.value
            buf = cpu.buffer[: event.index] + cpu.buffer[event.index + 1 :]
            cpu = replace(cpu, buffer=buf)
            effect = f"{e.loc} = {show(mem[e.loc])} reaches memory"
        elif event.kind == "early":
            step = prog.step(event.step)
            assert isinstance(step.access, Load)
            _, value = self._forward(cpu, step.access.loc, mem)
            cpu = replace(cpu, early=cpu.early + ((step.id, value),))
            effect = f"reads {step.access.loc} = {show(value)} early"
        else:
            cpu, effect = self._run(k, cpu, prog.step(event.step), mem)
        cpus = list(state.cpus)
        cpus[k] = cpu
        return State(tuple(sorted(mem.items())), (cpus[0], cpus[1])), effect

    def _run(self, k: int, cpu: Cpu, step: Step, mem: dict[str, Any]) -> tuple[Cpu, str]:
        prog = self.programs[k]
        sb = self.model.store_buffer
        barriers = set(cpu.pending) | set(step.before)
        epoch = cpu.epoch
        if sb is not None and sb.reorder is not None and barriers & sb.reorder:
            epoch += 1  # entries of a later epoch never leave before earlier ones
        regs = cpu.reg
        early = dict(cpu.early)
        buffer = cpu.buffer
        a = step.access
        effect = "checks what it has read" if step.backoff is not None else "no shared access"
        if isinstance(a, Load):
            if step.id in early:
                value = early.pop(step.id)
                effect = f"uses {a.loc} = {show(value)}, read early"
            else:
                _, value = self._forward(cpu, a.loc, mem)
                effect = f"reads {a.loc} = {show(value)}"
            regs[step.id] = value
        elif isinstance(a, Store):
            value = a.value(regs) if callable(a.value) else a.value
            if sb is None:
                mem[a.loc] = value
                effect = f"{a.loc} = {show(value)}"
            else:
                buffer = buffer + (Entry(step.id, a.loc, value=value, epoch=epoch),)
                effect = f"{a.loc} = {show(value)} (in the store buffer)"
        elif isinstance(a, Atomic):
            if sb is not None and sb.holds_atomics:
                buffer = buffer + (Entry(step.id, a.loc, op=a.op, epoch=epoch),)
                effect = f"{a.loc}: {a.what} (in the store buffer)"
            else:
                mem[a.loc] = a.op(mem[a.loc])
                effect = f"{a.loc}: {a.what} = {show(mem[a.loc])}"
        if step.backoff is not None and step.backoff(regs):
            target = step.bail
            outcome = step.bail_outcome or cpu.outcome
            early = {}  # speculation down the other path is discarded
            effect += "; backs off"
        else:
            if step.backoff is not None:
                effect += "; goes on"
            target = step.next
            outcome = step.outcome or cpu.outcome
        pc = self._advance(prog, target, regs)
        if pc is None and outcome is None:
            outcome = prog.done
        cpu = Cpu(
            pc=pc,
            regs=tuple(sorted(regs.items())),
            buffer=buffer,
            epoch=epoch,
            pending=step.after if pc is not None else (),
            early=tuple(sorted(early.items())),
            outcome=outcome,
        )
        return cpu, effect


def show(value: Any) -> str:
    """The text of a memory value: its ``text()`` if it has one, else ``str``."""
    text = getattr(value, "text", None)
    if callable(text):
        return str(text())
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)

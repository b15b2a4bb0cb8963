"""Exhaustive bounded exploration: every operation sequence from a small world, every invariant.

``python -m anonlib explore`` and :func:`explore` search breadth first
(:func:`anonlib.explorer.engine.breadth_first`) from one process ``P`` with
the mappings of ``--pages``: every enabled operation
(:mod:`anonlib.explorer.alphabet`) in every reachable state, up to ``--depth``
operations, with states deduplicated up to renaming
(:mod:`anonlib.explorer.canon`). Every transition is checked against every
invariant (:func:`anonlib.invariants.check`), state and transition checks
alike, so a clean run is a proof for that bounded world: no sequence of at
most ``depth`` operations, with at most ``processes`` processes and
``handles`` references at a time, breaks an invariant under the scheme.

Like TLC, the search reports the *shortest* counterexample, as a scenario
that ``python -m anonlib run`` replays to the same violation. A state that
violates an invariant is not expanded further, so every counterexample
fails at its last statement only.

Known gaps (:data:`~.world.KNOWN_GAPS`) are violations the real kernel has
knowingly; they are reported in their own section with their own
counterexample, never hidden, and do not make the run fail (unless
``known_gaps=False``). The search does not go past them either. An
exception raised by the model is reported the same way, with the sequence
that raised it, and makes the run fail.

States are remembered by a 64-bit fingerprint (Python's ``hash``) of their
canonical form, as TLC does: two different states could share one, with a
probability the summary states (about n^2 / 2^65 for n states).

Two checks are skipped because they cannot fail, not to save work silently:
a ``skipped`` operation returns the very same World (and some others an
equal one), and every transition check compares before and after (a test
holds them to that); a transition into a state seen before needs only the
transition checks, because state checks give the same verdict on states
equal up to renaming. A target reached for the first time gets every check;
a transition into one seen before, the transition checks alone: both by one
:class:`anonlib.invariants.Checker` (``_violations``), against the
before-state it prepared once for every operation tried from that state.

By default the search stops at the end of the first depth at which an
invariant is violated or the model crashes: every violation at that depth
is recorded, so the counterexamples are still the shortest, but a bug two
operations deep no longer costs a search to the full depth. Known gaps do
not stop it. ``stop_at_first=False`` (``--full``) searches to ``depth``
whatever it finds; the result says where and why a search stopped
(:attr:`~.results.ExploreResult.stopped_at`). The first counterexample is a
shortest one the moment it is found (every shallower depth was clean): the
progress line says so at once, and Ctrl-C from then on ends the search with
what it has, saying which depth was cut short
(:attr:`~.results.ExploreResult.interrupted`); before that, Ctrl-C stops the
search like any command.

Mirror images (:mod:`.orbits`): where the key permutes tail pages, a state
that swapping two tails leaves exactly as it is gets one operation applied per
orbit; the others are counted as the same kind of transition, with their own
coverage columns, and lead to a target with the same key and verdicts. A test
holds the search with it to the search without it, count for count.

Memory: the search keeps, per state, its fingerprint, its parent's number
and the operation that reached it (one shared object per operation), and
the worlds of the frontier only; the states of the last depth are counted
and checked but their worlds are not kept, since nothing expands them (they
are most of the states: the search grows about tenfold per depth).

With ``jobs`` > 1, each depth's states are expanded by forked workers that
share a snapshot of the states seen so far; the merge takes their results
in order, so the result is the same as with one job (a test holds it to that),
and the search stops after the same depth: the stop is decided in the merge,
between depths, once every worker has finished the depth.
"""

from __future__ import annotations

import gc
import multiprocessing
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .. import model
from ..invariants import BY_ID, INVARIANTS, CheckedMem, Checker, Violation
from ..ops import Op
from ..results import ModelError
from ..scenario.parser import scheme_named
from ..schemes import Scheme
from ..state import World
from .alphabet import Alphabet, Names, enabled, entry_labels, op_entries, op_label, parse_ops
from .canon import Key, key_for, permutes_tails
from .engine import Arcs, breadth_first
from .orbits import representative, swappable_tails
from .results import Counterexample, ExploreResult
from .world import KNOWN_GAPS, KnownGap, WorldSpec, gap_of

__all__ = ["explore"]


# ---------------------------------------------------------------------- one state's successors
@dataclass(frozen=True)
class _Ctx:
    scheme: Scheme
    alphabet: Alphabet
    checker: Checker  # the invariants checked (state and transition checks), in order
    key: Callable[[World], Key]
    gaps: tuple[KnownGap, ...]
    coverage: bool = True
    #: Try one operation per orbit of the tail pages a state may swap (:mod:`.orbits`):
    #: only where the key permutes tail pages.
    orbits: bool = False
    #: Fingerprints of worlds already keyed, by their raw content (no ghost counters): the
    #: same world is reached along many paths, and a dict lookup is ten times cheaper
    #: than the canonical form. Emptied when it reaches _FPS_MAX entries: it keeps the
    #: worlds it names alive (about 1.2 kB each in thp:4), and most of its hits are
    #: siblings' (thp:4 to depth 4: the same time with 100,000 entries as with 1,000,000,
    #: 14% more with none; benchmarks/results/explore-log.md).
    fps: dict[tuple[object, ...], int] = field(default_factory=dict)
    #: The coverage row of each operation tried so far: the same few hundred operations
    #: come back in every state, and a lookup is cheaper than working the label out.
    rows: dict[Op, str] = field(default_factory=dict)


_FPS_MAX = 200_000
#: Mirror images of an operation counted, not applied (:mod:`.orbits`); False applies every
#: operation (the test comparing both, and the benchmark's log of the change, set it).
ORBITS = True


class Step(NamedTuple):
    """A transition :func:`_expand` hands to the search: to a new target, or one that breaks
    an invariant (or both)."""

    op: Op
    names: Names  # the fresh-name counters after ``op``
    fingerprint: int  # of the target's canonical form
    new: bool  # the target is new to the expanding process
    world: World | None  # the target if it is new and will be expanded, else None
    violations: tuple[Violation, ...]
    gaps: tuple[str, ...]  # for each violation, the known gap it is, or ""


class Crash(NamedTuple):
    """An operation the model raised an exception on (a bug in anonlib)."""

    op: Op
    error: str  # the exception's type and message


#: What :func:`_expand` returns for one state: only the transitions the search needs.
_Rec = Step | Crash


@dataclass
class _Counts:
    transitions: int = 0
    skipped: int = 0
    refused: int = 0
    mirrored: int = 0  # operations counted from a mirror image's outcome, not applied

    def add(self, other: _Counts) -> None:
        self.transitions += other.transitions
        self.skipped += other.skipped
        self.refused += other.refused
        self.mirrored += other.mirrored


def _violations(prior: CheckedMem, world: World, op: Op, ctx: _Ctx, full: bool
                ) -> list[Violation]:
    """The checked invariants the transition from ``prior`` by ``op`` to ``world`` breaks.

    ``full`` (a target reached for the first time): state and transition
    checks alike. Else the transition checks alone (the target's state checks
    gave their verdict when it was first reached, see the module doc).
    ``prior`` is the before-state ``ctx.checker`` prepared once for all the
    operations tried in that state. Violations come in the checker's order.
    """
    return ctx.checker.check(world, op=op, prior=prior, transition_only=not full)


def _expand(world: World, names: Names, ctx: _Ctx, seen: Any, local: set[int] | None,
            cov: Counter[tuple[str, str, bool]], counts: _Counts, last: bool = False
            ) -> list[_Rec]:
    """Apply every enabled operation to one state; count, check, and keep what matters.

    A transition is counted if the model carries the operation out (a
    refused one is not a transition). ``skipped`` ones, and others that give
    back an equal World, are self-loops: no check can fail on them (see the
    module doc). A target whose fingerprint is neither in ``seen`` nor in
    ``local`` (this worker's finds) gets every check and is returned with its
    world, or without it at the ``last`` depth (nothing will expand it); any
    other gets the transition checks, and is returned only if one fails.
    """
    out: list[_Rec] = []
    prior = ctx.checker.prepare(world)
    labels = entry_labels(world) if ctx.coverage else None
    tails = swappable_tails(world) if ctx.orbits else None
    kinds: dict[Op, int] = {}  # with ``tails``: what each operation tried turned out to be
    for _family, op, after in enabled(world, ctx.scheme, ctx.alphabet, names):
        if tails is not None:
            rep = representative(op, tails)
            kind = kinds.get(rep, _UNTRIED) if rep is not op else _UNTRIED
            if kind != _UNTRIED:
                # a mirror image of an operation tried before: the same kind of transition
                # to a state with the same key, with the same verdicts (module doc)
                counts.mirrored += 1
                if kind == _REFUSED:
                    counts.refused += 1
                elif kind != _CRASHED:
                    counts.transitions += 1
                    if ctx.coverage:
                        _cover(ctx, cov, world, op, labels, kind == _SKIPPED)
                    if kind == _SKIPPED:
                        counts.skipped += 1
                continue
        try:
            r = model.apply(world, op, ctx.scheme)
        except Exception as exc:  # noqa: BLE001 - a model bug: report the sequence, go on
            if tails is not None:
                kinds[op] = _CRASHED
            out.append(Crash(op, f"{type(exc).__name__}: {exc}"))
            continue
        if isinstance(r, ModelError):
            if tails is not None:
                kinds[op] = _REFUSED
            counts.refused += 1
            continue
        counts.transitions += 1
        is_skip = r.world is world
        if tails is not None:
            kinds[op] = _SKIPPED if is_skip else _CARRIED
        if ctx.coverage:
            _cover(ctx, cov, world, op, labels, is_skip)
        if is_skip:
            counts.skipped += 1
            continue
        if r.world == world:
            continue
        w = r.world
        raw = (w.procs, w.folios, w.handles, w.slots)
        fp = ctx.fps.get(raw)
        if fp is None:
            if len(ctx.fps) >= _FPS_MAX:
                ctx.fps.clear()
            fp = ctx.fps[raw] = hash(ctx.key(w))
        new = fp not in seen and (local is None or fp not in local)
        viol = _violations(prior, w, op, ctx, new)
        if new or viol:
            if new and local is not None:
                local.add(fp)
            gaps = tuple(gap_of(w, ctx.scheme, v, ctx.gaps) for v in viol)
            out.append(Step(op, after, fp, new, w if new and not last else None,
                            tuple(viol), gaps))
    return out


#: What an operation tried in a state turned out to be (for its mirror images).
_UNTRIED, _REFUSED, _CRASHED, _SKIPPED, _CARRIED = range(5)


def _cover(ctx: _Ctx, cov: Counter[tuple[str, str, bool]], world: World, op: Op,
           labels: dict[tuple[str, str, int], str] | None, is_skip: bool) -> None:
    """Count one transition in the coverage table: its row, each entry kind it acts on."""
    row = ctx.rows.get(op)
    if row is None:
        row = ctx.rows[op] = op_label(op)
    for col in op_entries(world, op, labels):
        cov[(row, col, is_skip)] += 1


_WORKER: dict[str, Any] = {}
#: Workers are forked (they inherit the frontier and the seen set without pickling);
#: where fork is missing (Windows), ``jobs`` is ignored.
_CAN_FORK = "fork" in multiprocessing.get_all_start_methods()


def _quiet_on_ctrl_c() -> None:
    """In a worker: leave Ctrl-C to the main process, which stops the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_chunk(bounds: tuple[int, int]
                  ) -> tuple[list[list[_Rec]], _Counts, Counter[tuple[str, str, bool]]]:
    """Expand frontier[lo:hi] in a forked worker against the depth's snapshot of ``seen``."""
    frontier, ctx, seen, last = (_WORKER["frontier"], _WORKER["ctx"], _WORKER["seen"],
                                 _WORKER["last"])
    local: set[int] = set()
    cov: Counter[tuple[str, str, bool]] = Counter()
    counts = _Counts()
    out = []
    for i in range(*bounds):
        _sid, world, names = frontier[i]
        out.append(_expand(world, names, ctx, seen, local, cov, counts, last))
    return out, counts, cov


class _Progress:
    """A one-line progress display on stderr, shown once a run takes longer than a second."""

    def __init__(self, enabled: bool, total_depth: int) -> None:
        self.enabled = enabled
        self.start = time.perf_counter()
        self.last = 0.0
        self.total = total_depth
        self.shown = False

    def update(self, depth: int, done: int, frontier: int, states: int, transitions: int
               ) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.start < 1.0 or now - self.last < 0.2:
            return
        self.last = now
        frac = done / frontier if frontier else 1.0
        bar = "#" * int(20 * frac)
        rate = states / (now - self.start)
        sys.stderr.write(f"\rdepth {depth}/{self.total} [{bar:<20}] {done}/{frontier}  "
                         f"states {states}  transitions {transitions}  "
                         f"{rate:,.0f} states/s ")
        sys.stderr.flush()
        self.shown = True

    def found(self, what: str, length: int, seconds: float, finishing: bool) -> None:
        """Say at once that the first counterexample is in hand (it is a shortest one: every
        shallower depth was clean), and what the search does until it prints it."""
        if not self.enabled:
            return
        rest = (f"; finishing depth {length} to report every violation of that length "
                "(Ctrl-C prints what is found so far)" if finishing else "")
        sys.stderr.write("\r" + " " * 100 + f"\rfound {what} in {length} operation"
                         f"{'s' if length != 1 else ''} after {seconds:.1f} s{rest}\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r" + " " * 100 + "\r")
            sys.stderr.flush()


def explore(scheme: str | Scheme = "mainline", pages: str | WorldSpec = "base:1",
            processes: int = 2, depth: int = 6, ops: str | Iterable[str] = "all",
            invariants: Sequence[str] | None = None, jobs: int = 1, handles: int = 1,
            values: int = 2, known_gaps: bool = True, progress: bool | None = False,
            key: str = "canonical", coverage: bool = True, after: str = "",
            stop_at_first: bool = True) -> ExploreResult:
    """Search every operation sequence of at most ``depth`` operations; check every invariant.

    ``pages``: the mappings of the first process (``"base:1"``, ``"thp:2"``,
    ``"hugetlb:2"``, ``"base:1,thp:2"``). ``processes``: how many processes
    may live at once (fork creates them). ``handles``: GUP references at
    once. ``values``: distinct values each writer uses. ``ops``: operation
    families (``"all"``, ``"all,-poison"``, ``"write,read,fork,gup"``).
    ``invariants``: ids to check (default: all). ``jobs``: worker processes
    (each depth's states are expanded in parallel). ``known_gaps=False``
    counts known kernel gaps as violations. ``progress``: a progress line on
    stderr (None: only when stderr is a terminal). ``key``: ``canonical``
    (symmetry reduction: renaming, and THP tail pages in any order where the
    scheme allows), ``names`` (renaming only) or ``raw`` (plain state
    equality, the baseline).
    ``after``: statements to run before the search starts (``"P write A[0] P1"``;
    separate several with ``;``).
    ``stop_at_first``: stop at the end of the first depth with a violation or a
    model crash (the default); False searches to ``depth`` (``--full``).
    """
    from .options import check_api

    check_api(scheme, pages, processes, depth, ops, invariants, jobs, handles, values, after,
              stop_at_first)
    sch = scheme_named(scheme)
    spec = WorldSpec.parse(pages, after) if isinstance(pages, str) else pages
    fams = parse_ops(ops) if isinstance(ops, str) else frozenset(ops)
    alphabet = Alphabet(fams, processes, handles, values)
    ids = tuple(i.id for i in INVARIANTS) if invariants is None else tuple(invariants)
    for i in ids:
        if i not in BY_ID:
            raise ValueError(f"unknown invariant {i!r}; known: {', '.join(BY_ID)}")
    ids = tuple(i for i in ids if BY_ID[i].applies(sch)) if invariants is None else ids
    checked = tuple(BY_ID[i] for i in dict.fromkeys(ids) if BY_ID[i].applies(sch))
    keyfn = key_for(key, sch)
    ctx = _Ctx(sch, alphabet, Checker(sch, checked), keyfn,
               KNOWN_GAPS if known_gaps else (), coverage, orbits=ORBITS and permutes_tails(keyfn))
    res = ExploreResult(sch.name, spec, alphabet, ids, depth, key=key, jobs=jobs,
                        known_gaps_allowed=known_gaps, stop_at_first=stop_at_first)
    show = sys.stderr.isatty() if progress is None else progress
    t0 = time.perf_counter()
    # The search allocates millions of acyclic tuples and frozen dataclasses; the cyclic
    # garbage collector finds nothing among them and its full passes cost a third of the time.
    was = gc.isenabled()
    gc.disable()
    try:
        _search(res, ctx, spec, depth, jobs, _Progress(show, depth))
    finally:
        if was:
            gc.enable()
    res.seconds = time.perf_counter() - t0
    return res



# ---------------------------------------------------------------------- the search
#: A node of the search: the state's number, its world, its fresh-name counters.
_Node = tuple[int, World, Names]


def _search(res: ExploreResult, ctx: _Ctx, spec: WorldSpec, depth: int, jobs: int,
            prog: _Progress) -> None:
    """:func:`~.engine.breadth_first` over fingerprints, keeping the shortest counterexamples.

    A target with a violation is numbered but not expanded; a transition
    into a state seen before is noted only if its transition checks fail.
    With ``res.stop_at_first``, no depth is searched after one that recorded
    a violation or a crash (known gaps aside).
    """
    t0, c0 = time.perf_counter(), time.process_time()
    w0 = spec.initial(ctx.scheme)
    seen: dict[int, int] = {hash(ctx.key(w0)): 0}  # fingerprint -> state number
    parent: list[int] = [-1]
    via: list[Op | None] = [None]
    res.per_depth.append((1, 0))
    found: dict[str, Counterexample] = {}
    gaps: dict[str, Counterexample] = {}
    crashes: dict[str, Counterexample] = {}
    cmd = res.command(stop=True)  # a counterexample is found the same with or without --full
    counts = _Counts()  # this depth's
    level = 0  # the depth being searched
    beyond = 0  # new states of the last depth, whose worlds are not kept (nothing expands them)
    interned: dict[Op, Op] = {}  # one object per operation for ``via``: a few hundred in all

    def path(sid: int) -> list[Op]:
        out: list[Op] = []
        while sid > 0:
            op = via[sid]
            assert op is not None
            out.append(op)
            sid = parent[sid]
        return out[::-1]

    def first(what: str, length: int) -> None:
        """Note when the first counterexample was found (called once), and say so on the
        progress line."""
        res.first_seconds = time.perf_counter() - t0
        res.first_cpu = time.process_time() - c0
        prog.found(what, length, res.first_seconds, res.stop_at_first and length < depth)

    def record(sid: int, step: Step) -> None:
        """Note the violations of a transition (the first, shortest, of each kind)."""
        ops = None
        ids = tuple(v.invariant.id for v in step.violations)
        for v, g in zip(step.violations, step.gaps, strict=True):
            table = gaps if g else found
            name = v.invariant.id + g
            if name in table:
                continue
            ops = ops or tuple(path(sid) + [step.op])
            gap = next(x for x in KNOWN_GAPS if x.id == g) if g else None
            table[name] = Counterexample(v.invariant.id, v.invariant.title, ctx.scheme.name,
                                         spec, ops, v.offenders,
                                         tuple(i for i in ids if i != v.invariant.id), gap, cmd)
        # announced once it is recorded, so that a Ctrl-C from then on keeps it
        if res.first_seconds is None and not all(step.gaps):
            first(next(v.invariant.id for v, g in zip(step.violations, step.gaps, strict=True)
                       if not g), len(path(sid)) + 1)

    def crash(sid: int, c: Crash) -> None:
        if c.error not in crashes:
            crashes[c.error] = Counterexample("crash", c.error, ctx.scheme.name, spec,
                                              tuple(path(sid) + [c.op]), (), command=cmd)
        if res.first_seconds is None:
            first("a model crash", len(path(sid)) + 1)

    def expand(frontier: list[_Node]) -> Iterator[tuple[_Node, Arcs[int, _Rec]]]:
        nonlocal counts, level
        counts = _Counts()
        level += 1
        last = level == depth
        results: Iterable[tuple[_Node, list[_Rec]]]
        if jobs > 1 and len(frontier) >= 4 * jobs and _CAN_FORK:
            results = _parallel(frontier, ctx, seen, jobs, res, counts, last)
        else:
            results = _serial(frontier, ctx, seen, res, counts, last)
        for done, (node, recs) in enumerate(results, 1):
            # a Step that is not new went to a target the expanding process had seen
            yield node, [(r.fingerprint if type(r) is Step and r.new else None, r)
                         for r in recs]
            prog.update(len(res.per_depth), done, len(frontier), len(seen),
                        res.transitions + counts.transitions)

    def arrive(node: _Node, rec: _Rec, number: int | None) -> _Node | None:
        nonlocal beyond
        sid = node[0]
        if type(rec) is Crash:
            crash(sid, rec)
            return None
        assert type(rec) is Step
        if number is not None:
            parent.append(sid)
            via.append(interned.setdefault(rec.op, rec.op))
            if rec.violations:
                record(sid, rec)
                res.not_expanded += 1
                return None
            if rec.world is None:  # the last depth: counted, never expanded
                beyond += 1
                return None
            return (number, rec.world, rec.names)
        if rec.violations:
            # transition checks failed (or, from a worker whose snapshot did not have the
            # target yet, its state checks, already recorded when found)
            record(sid, rec)
        return None

    frontier: list[_Node] = [(0, w0, spec.names())]
    try:
        for layer in breadth_first(frontier[0], seen, depth, expand, arrive):
            res.transitions += counts.transitions
            res.skipped += counts.skipped
            res.refused += counts.refused
            res.mirrored += counts.mirrored
            res.per_depth.append((layer.new, counts.transitions))
            if layer.new:
                res.depth_reached = layer.depth
            frontier = layer.frontier
            if res.stop_at_first and (found or crashes) and frontier and layer.depth < depth:
                res.stopped_at = layer.depth  # the rest would only find longer counterexamples
                break
    except KeyboardInterrupt:
        if not (found or crashes):
            raise
        # Ctrl-C once a counterexample is in hand: report it (shortest: every shallower
        # depth was searched to its end); the depth it was found at is incomplete
        res.interrupted = level
        res.transitions += counts.transitions
        res.skipped += counts.skipped
        res.refused += counts.refused
        res.mirrored += counts.mirrored
        frontier = []
    res.exhausted = not frontier and not beyond and res.interrupted is None
    prog.close()
    res.states = len(parent)
    res.violations = sorted(found.values(), key=lambda c: (c.length, c.invariant))
    res.known = sorted(gaps.values(), key=lambda c: (c.length, c.invariant))
    res.crashes = sorted(crashes.values(), key=lambda c: (c.length, c.title))
    if not res.known_gaps_allowed:
        res.known = []


def _serial(frontier: list[_Node], ctx: _Ctx, seen: dict[int, int],
            res: ExploreResult, counts: _Counts, last: bool
            ) -> Iterable[tuple[_Node, list[_Rec]]]:
    for node in frontier:
        _sid, world, names = node
        # a fresh ``local`` per state: a target two of its operations reach gets its state
        # checks once (``seen`` learns of it only after the state's transitions are merged)
        yield node, _expand(world, names, ctx, seen, set(), res.coverage, counts, last)


def _parallel(frontier: list[_Node], ctx: _Ctx, seen: dict[int, int],
              jobs: int, res: ExploreResult, counts: _Counts, last: bool
              ) -> Iterable[tuple[_Node, list[_Rec]]]:
    """Expand one depth with ``jobs`` forked workers sharing this depth's snapshot of ``seen``.

    The workers inherit the frontier and ``seen`` through fork (nothing is
    pickled on the way in) and send back only what the merge needs: targets
    new to their snapshot, with their worlds (at the ``last`` depth without:
    nothing will expand them), and failed checks. The merge takes the chunks
    in frontier order, so the result is the serial one.
    """
    _WORKER.update(frontier=frontier, ctx=ctx, seen=seen, last=last)
    n = len(frontier)
    size = max(1, -(-n // (jobs * 16)))
    bounds = [(lo, min(lo + size, n)) for lo in range(0, n, size)]
    try:
        with multiprocessing.get_context("fork").Pool(jobs, _quiet_on_ctrl_c) as pool:
            for (lo, _hi), (recs, c, cov) in zip(bounds, pool.imap(_worker_chunk, bounds),
                                                 strict=True):
                counts.add(c)
                res.coverage.update(cov)
                for j, rec in enumerate(recs):
                    yield frontier[lo + j], rec
    finally:
        _WORKER.clear()

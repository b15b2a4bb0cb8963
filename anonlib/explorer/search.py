"""Exhaustive bounded exploration: every operation sequence from a small world, every invariant.

``python -m anonlib explore`` and :func:`explore` search breadth first from
one process ``P`` with the mappings of ``--pages``: every enabled operation
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

Known gaps (:data:`KNOWN_GAPS`) are violations the real kernel has
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
equal up to renaming.

With ``jobs`` > 1, each depth's states are expanded by forked workers that
share a snapshot of the states seen so far; the merge takes their results
in order, so the result is the same as with one job (a test holds it to that).
"""

from __future__ import annotations

import gc
import html
import multiprocessing
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import model
from ..invariants import BY_ID, INVARIANTS, Invariant, Violation, check
from ..mem import Mem
from ..ops import MapKind, Mmap, Op, Spawn, to_text
from ..results import ModelError
from ..schemes import SCHEMES, Scheme
from ..state import Config, FolioKind, World
from .alphabet import (
    ENTRY_LABELS,
    FAMILIES,
    HANDLE_NAMES,
    PROC_NAMES,
    Alphabet,
    Names,
    enabled,
    entry_labels,
    op_entries,
    op_label,
    parse_ops,
)
from .canon import KEYS, Key, key_for, pair_key

__all__ = [
    "KNOWN_GAPS",
    "Counterexample",
    "Difference",
    "ExploreResult",
    "SchemeComparison",
    "KnownGap",
    "WorldSpec",
    "compare_schemes",
    "explore",
    "layers",
    "reachable",
]

# ---------------------------------------------------------------------- the world
@dataclass(frozen=True)
class WorldSpec:
    """The explored world's setup: one process ``P`` and its mappings ``A``, ``B``, ...

    ``--pages`` text: comma-separated ``base:N``, ``thp[:N]`` (``thp_pages``),
    ``hugetlb[:N]`` (``hugetlb_pages``); e.g. ``base:1``, ``thp:2``, ``base:1,hugetlb:2``.
    ``after``: scenario statements run after the mappings, before the search
    starts (``P write A[0] P1``, to start from a written page, say).
    """

    mappings: tuple[tuple[MapKind, int], ...]
    config: Config = Config()
    after: tuple[Op, ...] = ()

    @classmethod
    def parse(cls, spec: str, after: str = "") -> WorldSpec:
        maps: list[tuple[MapKind, int]] = []
        thp = hugetlb = None
        for item in (s.strip() for s in spec.split(",") if s.strip()):
            kind, _, num = item.partition(":")
            if kind not in ("base", "thp", "hugetlb") or (num and not num.isdigit()):
                raise ValueError(f"bad page spec {item!r}: use base:N, thp[:N] or hugetlb[:N]")
            n = int(num) if num else None
            if kind == "base":
                if not n:
                    raise ValueError(f"bad page spec {item!r}: base needs a page count, base:1")
                maps.append((MapKind.BASE, n))
                continue
            if n is not None and (n < 2 or n & (n - 1)):
                raise ValueError(f"bad page spec {item!r}: the size is a power of two >= 2")
            if kind == "thp":
                if thp is not None and n is not None and n != thp:
                    raise ValueError("every thp mapping has the same size (config thp_pages)")
                thp = n if n is not None else thp
                maps.append((MapKind.THP, 0))
            else:
                if hugetlb is not None and n is not None and n != hugetlb:
                    raise ValueError("every hugetlb mapping has the same size (hugetlb_pages)")
                hugetlb = n if n is not None else hugetlb
                maps.append((MapKind.HUGETLB, 0))
        if not maps:
            raise ValueError("no mappings: give --pages, e.g. base:1")
        if len(maps) > 26:
            raise ValueError("at most 26 mappings")
        default = Config()
        config = Config(thp_pages=thp or default.thp_pages,
                        hugetlb_pages=hugetlb or default.hugetlb_pages)
        ws = cls(tuple(maps), config)
        if after.strip():
            ws = cls(ws.mappings, config, ws._parse_after(after))
        return ws

    def _parse_after(self, text: str) -> tuple[Op, ...]:
        from ..scenario import ScenarioError, parse
        from ..scenario.parser import split_statements
        from ..scenario.source import clip

        lines = split_statements(text)
        head = self.header() + [to_text(op) for op in self.setup()]
        sc = parse("\n".join(head + lines), "<after>")
        if isinstance(sc, ScenarioError):
            where = sc.line - len(head)
            if 1 <= where <= len(lines):
                raise ValueError(f"--after: statement {where} ({clip(lines[where - 1], 80)}), "
                                 f"column {sc.column}: {sc.message}")
            raise ValueError(f"--after: {sc.message}")
        ops = [st.action for st in sc.statements if st.is_op]
        if len(ops) != len(sc.statements):
            raise ValueError("--after takes operations only (no expect or show)")
        return tuple(ops[len(self.setup()):])  # type: ignore[arg-type]

    def text(self) -> str:
        out = []
        for kind, n in self.mappings:
            if kind is MapKind.BASE:
                out.append(f"base:{n}")
            elif kind is MapKind.THP:
                out.append(f"thp:{self.config.thp_pages}")
            else:
                out.append(f"hugetlb:{self.config.hugetlb_pages}")
        return ",".join(out)

    def after_text(self) -> str:
        return "; ".join(to_text(op) for op in self.after)

    def setup(self) -> list[Op]:
        """The mmap statements (without ``after``)."""
        ops: list[Op] = [Spawn("P")]
        for i, (kind, n) in enumerate(self.mappings):
            ops.append(Mmap("P", chr(ord("A") + i), kind, n))
        return ops

    def header(self) -> list[str]:
        """The scenario's ``config`` line, if the sizes differ from the defaults."""
        c, d = self.config, Config()
        words = []
        if c.thp_pages != d.thp_pages:
            words.append(f"thp_pages={c.thp_pages}")
        if c.hugetlb_pages != d.hugetlb_pages:
            words.append(f"hugetlb_pages={c.hugetlb_pages}")
        if c.swap_slots != d.swap_slots:
            words.append(f"swap_slots={c.swap_slots}")
        return [f"config {' '.join(words)}"] if words else []

    def statements(self) -> list[str]:
        """Header, mmaps and ``after``, as scenario lines."""
        return self.header() + [to_text(op) for op in self.setup() + list(self.after)]

    def names(self) -> Names:
        """Fresh-name counters past every name the setup uses."""
        procs, handles = 1, 0
        for op in self.after:
            for name in _names_in(op):
                if name in PROC_NAMES:
                    procs = max(procs, PROC_NAMES.index(name) + 1)
                if name in HANDLE_NAMES:
                    handles = max(handles, HANDLE_NAMES.index(name) + 1)
        return Names(procs, handles)

    def initial(self, scheme: Scheme) -> World:
        """The world the search starts from; ValueError if ``after`` fails or breaks a rule."""
        w = model.initial_world(self.config)
        for op in self.setup() + list(self.after):
            r = model.apply(w, op, scheme)
            if isinstance(r, ModelError):
                raise ValueError(f"setup statement '{to_text(op)}' failed under {scheme.name}: "
                                 f"{r.message}")
            w = r.world
        bad = check(w, scheme)
        if bad:
            raise ValueError(f"the setup already violates {bad[0].invariant.id} under "
                             f"{scheme.name}")
        return w


def _names_in(op: Op) -> list[str]:
    out = []
    for attr in ("proc", "parent", "child", "handle"):
        v = getattr(op, attr, None)
        if isinstance(v, str):
            out.append(v)
    page = getattr(op, "page", None)
    if page is not None:
        out.append(page.proc)
    return out


# ---------------------------------------------------------------------- known gaps
@dataclass(frozen=True)
class KnownGap:
    """A violation the kernel has knowingly: labelled in reports, never hidden."""

    id: str
    invariant: str
    title: str
    source: str
    matches: Callable[[World, Scheme, Violation], bool]


def _hugetlb_foll_get_leak(world: World, scheme: Scheme, v: Violation) -> bool:
    """Every INV-12 offender is a FOLL_GET reference on a hugetlb page (hugetlb_wp's map count)."""
    handles = {h.name: h for h in world.handles}
    for offender in v.offenders:
        h = handles.get(offender.split(" ", 1)[0])
        if h is None or h.pin:
            return False
        f = world.folio(h.folio)
        if f is None or f.kind is not FolioKind.HUGETLB:
            return False
    return bool(v.offenders)


KNOWN_GAPS: tuple[KnownGap, ...] = (
    KnownGap(
        "hugetlb-vmsplice",
        "INV-12",
        "hugetlb_wp reuses a hugetlb page its map count says is unshared, although a FOLL_GET "
        "reference (vmsplice) from another process holds it: the reference sees the write",
        "mm/hugetlb.c: hugetlb_wp; tools/testing/selftests/mm/cow.c marks the hugetlb vmsplice "
        "cases XFAIL (6.10)",
        _hugetlb_foll_get_leak,
    ),
)


# ---------------------------------------------------------------------- results
@dataclass(frozen=True)
class Counterexample:
    """The shortest operation sequence found that breaks one invariant."""

    invariant: str
    title: str
    scheme: str
    spec: WorldSpec
    ops: tuple[Op, ...]
    offenders: tuple[str, ...]
    others: tuple[str, ...] = ()  # other invariants broken by the same last operation
    known_gap: KnownGap | None = None
    command: str = ""

    @property
    def length(self) -> int:
        """Operations after the setup (the search depth at which it was found)."""
        return len(self.ops)

    def scenario(self) -> str:
        """A runnable scenario: ``python -m anonlib run`` fails at its last operation."""
        lines = []
        if self.invariant == "crash":
            lines.append(f"# The model raised {self.title} at the last operation: a bug in "
                         f"anonlib, found {self.length} operations after the setup.")
        else:
            if self.known_gap is not None:
                lines.append(f"# Known kernel gap '{self.known_gap.id}': "
                             f"{self.known_gap.title}")
                lines.append(f"# ({self.known_gap.source})")
            lines.append(f"# {self.invariant} ({self.title}) is violated by the last "
                         f"operation, {self.length} operations after the setup.")
        if self.others:
            lines.append(f"# The same operation also violates: {', '.join(self.others)}.")
        for o in self.offenders:
            lines.append(f"#   {o}")
        if self.command:
            lines.append(f"# Found by: {self.command}")
        lines.append(f"scheme {self.scheme}")
        lines += self.spec.statements()
        what = "the model fails" if self.invariant == "crash" else f"{self.invariant} violated"
        for i, op in enumerate(self.ops):
            text = to_text(op)
            if i == len(self.ops) - 1:
                text += f"   # <- {what} here"
            lines.append(text)
        lines.append("expect invariants")
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.scenario()


@dataclass
class ExploreResult:
    """What one exploration found and covered; ``str()`` is deterministic (no timings)."""

    scheme: str
    spec: WorldSpec
    alphabet: Alphabet
    invariants: tuple[str, ...]
    depth_limit: int
    key: str = "canonical"
    states: int = 0
    transitions: int = 0
    skipped: int = 0
    refused: int = 0
    depth_reached: int = 0
    exhausted: bool = False
    per_depth: list[tuple[int, int]] = field(default_factory=list)  # (new states, transitions)
    coverage: Counter = field(default_factory=Counter)  # (row, column, skipped) -> count
    violations: list[Counterexample] = field(default_factory=list)
    known: list[Counterexample] = field(default_factory=list)
    not_expanded: int = 0  # states past a violation (or a known gap), left unexplored
    crashes: list[Counterexample] = field(default_factory=list)  # the model raised
    seconds: float = 0.0
    jobs: int = 1
    known_gaps_allowed: bool = True

    # ------------------------------------------------------------ verdict
    @property
    def ok(self) -> bool:
        return not self.violations and not self.crashes

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    @property
    def counterexample(self) -> Counterexample | None:
        """The shortest counterexample (the first found), or None."""
        return min(self.violations, key=lambda c: c.length) if self.violations else None

    def found(self) -> dict[str, int]:
        """Invariant id -> length of its shortest counterexample (violations and known gaps)."""
        return {c.invariant + (f" [{c.known_gap.id}]" if c.known_gap else ""): c.length
                for c in self.violations + self.known}

    @property
    def rate(self) -> float:
        return self.states / self.seconds if self.seconds else 0.0

    def command(self) -> str:
        a = self.alphabet
        words = ["python -m anonlib explore", f"--scheme {self.scheme}",
                 f"--pages {self.spec.text()}", f"--processes {a.processes}",
                 f"--depth {self.depth_limit}"]
        if a.handles != Alphabet().handles:
            words.append(f"--handles {a.handles}")
        if a.values != Alphabet().values:
            words.append(f"--values {a.values}")
        if a.families != Alphabet().families:
            words.append(f"--ops {','.join(sorted(a.families))}")
        if self.invariants != tuple(i.id for i in INVARIANTS if i.applies(SCHEMES[self.scheme])):
            words.append(f"--invariants {','.join(self.invariants)}")
        if self.spec.after:
            words.append(f"--after '{self.spec.after_text()}'")
        return " ".join(words)

    # ------------------------------------------------------------ text
    def summary_lines(self) -> list[str]:
        a = self.alphabet
        reach = (f"every reachable state (the search ran out of new states at depth "
                 f"{self.depth_reached})" if self.exhausted else
                 f"every state reachable in at most {self.depth_limit} operations")
        lines = [
            f"explore: scheme {self.scheme}, world {self.spec.text()} "
            f"(process P, up to {a.processes} processes, {a.handles} reference"
            f"{'s' if a.handles != 1 else ''} at a time, {a.values} values per writer)",
        ]
        if self.spec.after:
            lines.append(f"starting after: {self.spec.after_text()}")
        if a.families != Alphabet().families:
            lines.append(f"operations: {', '.join(f for f in FAMILIES if f in a.families)}")
        lines += [
            f"searched {reach}",
            f"states: {self.states}   transitions: {self.transitions} "
            f"(skipped: {self.skipped})   refused operations: {self.refused}   "
            f"depth reached: {self.depth_reached}",
            "new states per depth: " + " ".join(str(n) for n, _t in self.per_depth),
            f"invariants checked: {', '.join(self.invariants)}",
            f"chance that two states shared a 64-bit fingerprint: below "
            f"{max(self.states, 1) ** 2 / 2 ** 65:.0e}",
        ]
        if self.not_expanded:
            lines.append(f"states not expanded (past a violation or known gap): "
                         f"{self.not_expanded}")
        if self.violations:
            lines.append("VIOLATED:")
            for c in sorted(self.violations, key=lambda c: (c.length, c.invariant)):
                lines.append(f"  {c.invariant} ({c.title}): shortest trace {c.length} operations")
        else:
            lines.append("no invariant violated" + (" (apart from the known gaps below)"
                                                    if self.known else ""))
        for c in self.known:
            assert c.known_gap is not None
            lines.append(f"KNOWN GAP {c.known_gap.id}: {c.invariant} ({c.title}), shortest "
                         f"trace {c.length} operations; {c.known_gap.source}")
        for c in self.crashes:
            lines.append(f"MODEL CRASH after {c.length} operations: {c.title}")
        return lines

    def coverage_table(self) -> str:
        """Rows: operations; columns: the entry kind acted on. x: done, s: only skipped."""
        rows = sorted({r for r, _c, _s in self.coverage}, key=_row_order)
        cols = [c for c in ENTRY_LABELS if any(k[1] == c for k in self.coverage)]
        width = max((len(r) for r in rows), default=10)
        head = " " * width + "  " + " ".join(f"{c:>{max(len(c), 1)}}" for c in cols)
        lines = [head]
        for r in rows:
            cells = []
            for c in cols:
                mark = "x" if self.coverage.get((r, c, False)) else (
                    "s" if self.coverage.get((r, c, True)) else ".")
                cells.append(f"{mark:>{len(c)}}")
            lines.append(f"{r:<{width}}  " + " ".join(cells))
        lines.append("x: covered by a transition that went through; s: only by skipped ones; "
                     ".: never")
        return "\n".join(lines)

    def __str__(self) -> str:
        parts = ["\n".join(self.summary_lines()),
                 "coverage (operation x entry kind):\n" + self.coverage_table()]
        for c in sorted(self.violations, key=lambda c: (c.length, c.invariant)):
            parts.append(f"shortest counterexample for {c.invariant}:\n{c.scenario().rstrip()}")
        for c in self.known:
            parts.append(f"known gap {c.known_gap.id if c.known_gap else ''}:\n"
                         f"{c.scenario().rstrip()}")
        for c in self.crashes:
            parts.append(f"model crash:\n{c.scenario().rstrip()}")
        return "\n\n".join(parts)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_html_(self) -> str:
        esc = html.escape
        color = "#1a7f37" if self.ok else "#b42318"
        verdict = ("no invariant violated" if self.ok else
                   "invariant violated" if self.violations else "the model crashed")
        out = [f'<div class="anonlib-explore"><p><b style="color:{color}">{verdict}</b></p>',
               "<pre>" + esc("\n".join(self.summary_lines())) + "</pre>",
               "<details><summary>coverage (operation &times; entry kind)</summary><pre>"
               + esc(self.coverage_table()) + "</pre></details>"]
        for c in sorted(self.violations, key=lambda c: (c.length, c.invariant)):
            out.append(f"<p>shortest counterexample for <b>{esc(c.invariant)}</b> "
                       f"({c.length} operations):</p><pre>{esc(c.scenario())}</pre>")
        for c in self.known:
            out.append(f"<p>known gap <b>{esc(c.known_gap.id if c.known_gap else '')}</b>:</p>"
                       f"<pre>{esc(c.scenario())}</pre>")
        for c in self.crashes:
            out.append(f"<p>model crash: <b>{esc(c.title)}</b></p><pre>{esc(c.scenario())}</pre>")
        out.append("</div>")
        return "\n".join(out)

    def plot(self, ax: Any = None) -> Any:
        """New states per depth (log scale); returns the matplotlib Figure."""
        from matplotlib.figure import Figure

        fig = ax.figure if ax is not None else Figure(figsize=(5, 3))
        ax = ax if ax is not None else fig.add_subplot()
        depths = list(range(len(self.per_depth)))
        ax.bar(depths, [n for n, _t in self.per_depth], color="#4c72b0")
        ax.set_yscale("log")
        ax.set_xlabel("depth (operations after setup)")
        ax.set_ylabel("new states")
        ax.set_title(f"{self.scheme}, {self.spec.text()}: {self.states} states")
        fig.tight_layout()
        return fig


_ROWS = ["write", "read", "fork", "pin", "get", "H read", "H write", "unpin", "put", "mprotect",
         "madvise", "clear-softdirty", "munmap", "exit", "kernel"]


def _row_order(row: str) -> tuple[int, str]:
    for i, prefix in enumerate(_ROWS):
        if row.startswith(prefix):
            return (i, row)
    return (len(_ROWS), row)


# ---------------------------------------------------------------------- the search
@dataclass(frozen=True)
class _Ctx:
    scheme: Scheme
    alphabet: Alphabet
    state_invs: tuple[Invariant, ...]  # every invariant checked (state and transition checks)
    step_invs: tuple[Invariant, ...]  # those with a transition check
    key: Callable[[World], Key]
    gaps: tuple[KnownGap, ...]
    coverage: bool = True
    #: Fingerprints of worlds already keyed, by their raw content (no ghost counters): the
    #: same world is reached along many paths, and a dict lookup is ten times cheaper
    #: than the canonical form. Emptied when it reaches _FPS_MAX entries: it keeps the
    #: worlds it names alive (thp:2 to depth 5: about 0.3 GB more, 10% less time).
    fps: dict[tuple, int] = field(default_factory=dict)


_FPS_MAX = 1_000_000


# A transition record from _expand, kept only when the main loop needs it: a target not
# seen before (fingerprint, op, names, world, violations, gap ids), a transition that breaks
# an invariant (world None), or a crash (fingerprint None, the exception in gap ids).
_Rec = tuple[int | None, Op, Names, World | None, tuple[Violation, ...], tuple[str, ...]]


@dataclass
class _Counts:
    transitions: int = 0
    skipped: int = 0
    refused: int = 0

    def add(self, other: _Counts) -> None:
        self.transitions += other.transitions
        self.skipped += other.skipped
        self.refused += other.refused


def _violations(prior: Mem, world: World, op: Op, ctx: _Ctx, full: bool) -> list[Violation]:
    """:func:`anonlib.invariants.check` with the before-state's Mem built once per state.

    ``full``: state and transition checks; else the transition checks only
    (the target state was checked when first reached). A test holds this to
    ``invariants.check``.
    """
    after = Mem(world, ctx.scheme)
    out = []
    for inv in ctx.state_invs if full else ctx.step_invs:
        offenders: list[str] = []
        if inv.state_check is not None:
            offenders += inv.state_check(after)
        if inv.step_check is not None:
            offenders += inv.step_check(prior, after, op)
        if offenders:
            out.append(Violation(inv, tuple(offenders)))
    return out


def _expand(world: World, names: Names, ctx: _Ctx, seen: Any, local: set | None,
            cov: Counter, counts: _Counts) -> list[_Rec]:
    """Apply every enabled operation to one state; count, check, and keep what matters.

    A transition is counted if the model carries the operation out (a
    refused one is not a transition). ``skipped`` ones, and others that give
    back an equal World, are self-loops: no check can fail on them (see the
    module doc). A target whose fingerprint is neither in ``seen`` nor in
    ``local`` (this worker's finds) gets every check and is returned with its
    world; any other gets the transition checks, and is returned only if one fails.
    """
    out: list[_Rec] = []
    prior = Mem(world, ctx.scheme)
    labels = entry_labels(world) if ctx.coverage else None
    for _family, op, after in enabled(world, ctx.scheme, ctx.alphabet, names):
        try:
            r = model.apply(world, op, ctx.scheme)
        except Exception as exc:  # noqa: BLE001 - a model bug: report the sequence, go on
            out.append((None, op, after, None, (), (f"{type(exc).__name__}: {exc}",)))
            continue
        if isinstance(r, ModelError):
            counts.refused += 1
            continue
        counts.transitions += 1
        is_skip = r.world is world
        if ctx.coverage:
            row = op_label(op)
            for col in op_entries(world, op, labels):
                cov[(row, col, is_skip)] += 1
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
        viol = _violations(prior, r.world, op, ctx, new)
        if new or viol:
            if new and local is not None:
                local.add(fp)
            gaps = tuple(_gap_of(r.world, ctx, v) for v in viol)
            out.append((fp, op, after, r.world if new else None, tuple(viol), gaps))
    return out


def _gap_of(world: World, ctx: _Ctx, v: Violation) -> str:
    for g in ctx.gaps:
        if g.invariant == v.invariant.id and g.matches(world, ctx.scheme, v):
            return g.id
    return ""


_WORKER: dict[str, Any] = {}
#: Workers are forked (they inherit the frontier and the seen set without pickling);
#: where fork is missing (Windows), ``jobs`` is ignored.
_CAN_FORK = "fork" in multiprocessing.get_all_start_methods()


def _worker_chunk(bounds: tuple[int, int]) -> tuple[list[list[_Rec]], _Counts, Counter]:
    """Expand frontier[lo:hi] in a forked worker against the depth's snapshot of ``seen``."""
    frontier, ctx, seen = _WORKER["frontier"], _WORKER["ctx"], _WORKER["seen"]
    local: set[int] = set()
    cov: Counter = Counter()
    counts = _Counts()
    out = []
    for i in range(*bounds):
        _sid, world, names = frontier[i]
        out.append(_expand(world, names, ctx, seen, local, cov, counts))
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

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\r" + " " * 100 + "\r")
            sys.stderr.flush()


def explore(scheme: str | Scheme = "mainline", pages: str | WorldSpec = "base:1",
            processes: int = 2, depth: int = 6, ops: str | Iterable[str] = "all",
            invariants: Sequence[str] | None = None, jobs: int = 1, handles: int = 1,
            values: int = 2, known_gaps: bool = True, progress: bool | None = False,
            key: str = "canonical", coverage: bool = True, after: str = "") -> ExploreResult:
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
    """
    from .options import check_api

    check_api(scheme, pages, processes, depth, ops, invariants, jobs, handles, values, after)
    sch = SCHEMES[scheme] if isinstance(scheme, str) else scheme
    spec = WorldSpec.parse(pages, after) if isinstance(pages, str) else pages
    fams = parse_ops(ops) if isinstance(ops, str) else frozenset(ops)
    alphabet = Alphabet(fams, processes, handles, values)
    ids = tuple(i.id for i in INVARIANTS) if invariants is None else tuple(invariants)
    for i in ids:
        if i not in BY_ID:
            raise ValueError(f"unknown invariant {i!r}; known: {', '.join(BY_ID)}")
    ids = tuple(i for i in ids if BY_ID[i].applies(sch)) if invariants is None else ids
    checked = tuple(BY_ID[i] for i in ids if BY_ID[i].applies(sch))
    ctx = _Ctx(sch, alphabet, checked, tuple(i for i in checked if i.step_check is not None),
               key_for(key, sch), KNOWN_GAPS if known_gaps else (), coverage)
    res = ExploreResult(sch.name, spec, alphabet, ids, depth, key=key, jobs=jobs,
                        known_gaps_allowed=known_gaps)
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


def _search(res: ExploreResult, ctx: _Ctx, spec: WorldSpec, depth: int, jobs: int,
            prog: _Progress) -> None:
    w0 = spec.initial(ctx.scheme)
    seen: dict[int, int] = {hash(ctx.key(w0)): 0}  # fingerprint -> state number
    parent: list[int] = [-1]
    via: list[Op | None] = [None]
    frontier: list[tuple[int, World, Names]] = [(0, w0, spec.names())]
    res.per_depth.append((1, 0))
    found: dict[str, Counterexample] = {}
    gaps: dict[str, Counterexample] = {}
    crashes: dict[str, Counterexample] = {}
    cmd = res.command()

    def path(sid: int) -> list[Op]:
        out: list[Op] = []
        while sid > 0:
            op = via[sid]
            assert op is not None
            out.append(op)
            sid = parent[sid]
        return out[::-1]

    def record(sid: int, op: Op, viol: tuple[Violation, ...], gap_ids: tuple[str, ...]) -> bool:
        """Note the violations of a transition; True if the target must not be expanded."""
        ops = None
        ids = tuple(v.invariant.id for v in viol)
        for v, g in zip(viol, gap_ids, strict=True):
            table = gaps if g else found
            name = v.invariant.id + g
            if name in table:
                continue
            ops = ops or tuple(path(sid) + [op])
            gap = next(x for x in KNOWN_GAPS if x.id == g) if g else None
            table[name] = Counterexample(v.invariant.id, v.invariant.title, ctx.scheme.name,
                                         spec, ops, v.offenders,
                                         tuple(i for i in ids if i != v.invariant.id), gap, cmd)
        return True

    def crash(sid: int, op: Op, what: str) -> None:
        if what not in crashes:
            crashes[what] = Counterexample("crash", what, ctx.scheme.name, spec,
                                           tuple(path(sid) + [op]), (), command=cmd)

    for d in range(1, depth + 1):
        if not frontier:
            res.exhausted = True
            break
        nxt: list[tuple[int, World, Names]] = []
        new_states = 0
        counts = _Counts()
        results: Iterable[tuple[int, list[_Rec]]]
        if jobs > 1 and len(frontier) >= 4 * jobs and _CAN_FORK:
            results = _parallel(frontier, ctx, seen, jobs, res, counts)
        else:
            results = _serial(frontier, ctx, seen, res, counts)
        done = 0
        for sid, recs in results:
            done += 1
            for fp, op, names, world, viol, gap_ids in recs:
                if fp is None:  # the model raised an exception
                    crash(sid, op, gap_ids[0])
                    continue
                tid = seen.get(fp) if world is not None else -1
                if tid is None:
                    tid = len(parent)
                    seen[fp] = tid
                    parent.append(sid)
                    via.append(op)
                    new_states += 1
                    if viol:
                        record(sid, op, viol, gap_ids)
                        res.not_expanded += 1
                    else:
                        nxt.append((tid, world, names))  # type: ignore[arg-type]
                elif viol:
                    # transition checks failed (or, from a worker whose snapshot did not
                    # have the target yet, its state checks, already recorded when found)
                    record(sid, op, viol, gap_ids)
            prog.update(d, done, len(frontier), len(parent),
                        res.transitions + counts.transitions)
        res.transitions += counts.transitions
        res.skipped += counts.skipped
        res.refused += counts.refused
        res.per_depth.append((new_states, counts.transitions))
        if new_states:
            res.depth_reached = d
        frontier = nxt
    else:
        if not frontier:
            res.exhausted = True
    prog.close()
    res.states = len(parent)
    res.violations = sorted(found.values(), key=lambda c: (c.length, c.invariant))
    res.known = sorted(gaps.values(), key=lambda c: (c.length, c.invariant))
    res.crashes = sorted(crashes.values(), key=lambda c: (c.length, c.title))
    if not res.known_gaps_allowed:
        res.known = []


def _serial(frontier: list[tuple[int, World, Names]], ctx: _Ctx, seen: dict[int, int],
            res: ExploreResult, counts: _Counts) -> Iterable[tuple[int, list[_Rec]]]:
    for sid, world, names in frontier:
        yield sid, _expand(world, names, ctx, seen, None, res.coverage, counts)


def _parallel(frontier: list[tuple[int, World, Names]], ctx: _Ctx, seen: dict[int, int],
              jobs: int, res: ExploreResult, counts: _Counts
              ) -> Iterable[tuple[int, list[_Rec]]]:
    """Expand one depth with ``jobs`` forked workers sharing this depth's snapshot of ``seen``.

    The workers inherit the frontier and ``seen`` through fork (nothing is
    pickled on the way in) and send back only what the merge needs: targets
    new to their snapshot, with their worlds, and failed checks. The merge
    takes the chunks in frontier order, so the result is the serial one.
    """
    _WORKER.update(frontier=frontier, ctx=ctx, seen=seen)
    n = len(frontier)
    size = max(1, -(-n // (jobs * 16)))
    bounds = [(lo, min(lo + size, n)) for lo in range(0, n, size)]
    try:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            for (lo, _hi), (recs, c, cov) in zip(bounds, pool.imap(_worker_chunk, bounds),
                                                 strict=True):
                counts.add(c)
                res.coverage.update(cov)
                for j, rec in enumerate(recs):
                    yield frontier[lo + j][0], rec
    finally:
        _WORKER.clear()


# ---------------------------------------------------------------------- comparing schemes
@dataclass(frozen=True)
class Difference:
    """The shortest operation sequence after which two schemes differ observably."""

    what: str  # "outcome" or "copies"
    schemes: tuple[str, str]
    spec: WorldSpec
    ops: tuple[Op, ...]
    outcomes: tuple[str, str]  # the last operation's outcome (or the copy counts) under each
    copies: tuple[int, int]

    def __str__(self) -> str:
        a, b = self.schemes
        lines = [f"# {self.what} differs after {len(self.ops)} operations: "
                 f"{a}: {self.outcomes[0]}, {b}: {self.outcomes[1]} "
                 f"(page copies so far: {a} {self.copies[0]}, {b} {self.copies[1]})"]
        lines += self.spec.statements()
        lines += [to_text(op) for op in self.ops]
        return "\n".join(lines)


@dataclass
class SchemeComparison:
    """Two schemes driven by the same operation sequences (:func:`compare_schemes`)."""

    schemes: tuple[str, str]
    spec: WorldSpec
    depth: int
    outcome: Difference | None = None
    copies: Difference | None = None
    pairs: int = 0  # distinct pairs of states reached
    transitions: int = 0  # (pair, operation) transitions tried under both
    copied: tuple[int, int] = (0, 0)  # pages copied over all those transitions, per scheme
    more: tuple[int, int] = (0, 0)  # transitions where the one copies more than the other

    def __str__(self) -> str:
        a, b = self.schemes
        lines = [f"compare: {a} vs {b}, world {self.spec.text()}, every sequence of at most "
                 f"{self.depth} operations ({self.pairs} state pairs, {self.transitions} "
                 "transitions)",
                 f"pages copied over all transitions: {a} {self.copied[0]}, {b} {self.copied[1]}"
                 f"; transitions where {a} copies more: {self.more[0]}, {b}: {self.more[1]}"]
        for what, d in (("outcome", self.outcome), ("copies", self.copies)):
            lines.append("")
            lines.append(f"# {what}: no difference" if d is None else str(d))
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


def layers(scheme: str | Scheme, pages: str, depth: int, key: str = "canonical"
           ) -> Iterator[tuple[dict[Key, World], list[tuple[World, Names]]]]:
    """The plain breadth-first search, one depth at a time: for depth 0 (the start) and
    after each depth, the states seen so far (one per ``key`` class) and the new ones,
    with their fresh-name counters.

    No invariants, no coverage, one process; the key named as in :data:`~.canon.KEYS`
    is taken as is. :func:`reachable` keeps the first, the explorer benchmark's floor
    samples the second.
    """
    sch = SCHEMES[scheme] if isinstance(scheme, str) else scheme
    keyfn = KEYS[key]
    spec = WorldSpec.parse(pages)
    w0 = spec.initial(sch)
    seen = {keyfn(w0): w0}
    layer = [(w0, spec.names())]
    alphabet = Alphabet()
    yield seen, layer
    for _ in range(depth):
        nxt = []
        for world, names in layer:
            for _f, op, after in enabled(world, sch, alphabet, names):
                r = model.apply(world, op, sch)
                if isinstance(r, ModelError):
                    continue
                k = keyfn(r.world)
                if k not in seen:
                    seen[k] = r.world
                    nxt.append((r.world, after))
        layer = nxt
        yield seen, layer


def reachable(scheme: str | Scheme, pages: str, depth: int, key: str = "canonical"
              ) -> dict[Key, World]:
    """Every state within ``depth`` operations of the world ``pages``, one per ``key`` class.

    The plain breadth-first search of :func:`layers`. The symmetry checks
    compare two of these: a search that keeps one state per class must reach
    every class the finer one reaches.
    """
    *_earlier, (seen, _layer) = layers(scheme, pages, depth, key)
    return seen


def compare_schemes(a: str, b: str, pages: str = "base:1", processes: int = 2, depth: int = 6,
                    ops: str = "all", handles: int = 1, values: int = 2, after: str = ""
                    ) -> SchemeComparison:
    """Drive two schemes with the same operation sequences; find where they differ.

    Breadth first over pairs of worlds, every sequence of at most ``depth``
    operations (pairs equal up to renaming are expanded once). Reports the
    shortest sequence after which an outcome differs (a read or reference
    read returns another value, a GUP fails in one, the kernel backs off in
    one...), the shortest after which the two have copied a different number
    of pages, and the pages each copied over all transitions. Invariants are
    not checked here (:func:`explore` does that). An operation refused under
    either scheme is not tried.
    """
    from .options import check_api, check_scheme

    check_scheme("b", b)
    check_api(a, pages, processes, depth, ops, None, 1, handles, values, after)
    sa, sb = SCHEMES[a], SCHEMES[b]
    spec = WorldSpec.parse(pages, after)
    alphabet = Alphabet(parse_ops(ops), processes, handles, values)
    wa, wb = spec.initial(sa), spec.initial(sb)
    res = SchemeComparison((a, b), spec, depth)
    seen = {pair_key(wa, wb)}
    layer: list[tuple[World, World, Names, tuple[Op, ...]]] = [(wa, wb, spec.names(), ())]
    ca = cb = more_a = more_b = 0
    was = gc.isenabled()
    gc.disable()
    try:
        for _d in range(depth):
            nxt = []
            for xa, xb, names, path in layer:
                for _f, op, after_names in enabled(xa, sa, alphabet, names):
                    ra, rb = model.apply(xa, op, sa), model.apply(xb, op, sb)
                    if isinstance(ra, ModelError) or isinstance(rb, ModelError):
                        continue
                    res.transitions += 1
                    da, db = ra.world.copies - xa.copies, rb.world.copies - xb.copies
                    ca, cb = ca + da, cb + db
                    more_a += da > db
                    more_b += db > da
                    ops_ = path + (op,)
                    copies = (ra.world.copies, rb.world.copies)
                    if res.outcome is None and ra.outcome.word != rb.outcome.word:
                        res.outcome = Difference("outcome", (a, b), spec, ops_,
                                                 (str(ra.outcome), str(rb.outcome)), copies)
                    if res.copies is None and copies[0] != copies[1]:
                        res.copies = Difference("copies", (a, b), spec, ops_,
                                                (str(copies[0]), str(copies[1])), copies)
                    k = pair_key(ra.world, rb.world)
                    if k not in seen:
                        seen.add(k)
                        nxt.append((ra.world, rb.world, after_names, ops_))
            layer = nxt
    finally:
        if was:
            gc.enable()
    res.pairs = len(seen)
    res.copied = (ca, cb)
    res.more = (more_a, more_b)
    return res

"""What a search found, and its views: text (deterministic, no timings), HTML, a plot.

:class:`ExploreResult` is one exploration (counts, coverage, and a
:class:`Counterexample` for each invariant broken, each a runnable scenario);
:class:`SchemeComparison` is one comparison of two schemes, with the
:class:`Difference` records of the shortest sequences that tell them apart.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..invariants import INVARIANTS, Offender
from ..ops import Op, to_text
from ..scenario.parser import scheme_named
from ..views.markup import esc
from .alphabet import ENTRY_LABELS, FAMILIES, Alphabet
from .world import KnownGap, WorldSpec

__all__ = ["Counterexample", "Difference", "ExploreResult", "SchemeComparison"]


@dataclass(frozen=True)
class Counterexample:
    """The shortest operation sequence found that breaks one invariant."""

    invariant: str
    title: str
    scheme: str
    spec: WorldSpec
    ops: tuple[Op, ...]
    offenders: tuple[Offender, ...]  # what breaks it (none for a crash)
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
    #: (row, column, skipped) -> count
    coverage: Counter[tuple[str, str, bool]] = field(default_factory=Counter)
    violations: list[Counterexample] = field(default_factory=list)
    known: list[Counterexample] = field(default_factory=list)
    not_expanded: int = 0  # states past a violation (or a known gap), left unexplored
    #: operations counted (as transitions or refused) from a mirror image's outcome rather
    #: than applied (:mod:`.orbits`); not in ``str()``, which a search without it repeats
    mirrored: int = 0
    crashes: list[Counterexample] = field(default_factory=list)  # the model raised
    seconds: float = 0.0
    jobs: int = 1
    known_gaps_allowed: bool = True
    stop_at_first: bool = True  # stop after the first depth with a violation (not --full)
    #: The depth after which the search stopped because it had found a violation (or a
    #: model crash), short of ``depth_limit``; None if it was not cut short that way.
    stopped_at: int | None = None
    #: Wall and CPU seconds (this process's) from the start of the search until its first
    #: violation or model crash was recorded (known gaps aside): the time to the first,
    #: shortest, counterexample. The search goes on to the end of that depth (or further
    #: with ``--full``), so ``seconds`` may be longer. None: nothing found. Not in ``str()``.
    first_seconds: float | None = None
    first_cpu: float | None = None
    #: The depth that was being searched when Ctrl-C stopped the search after its first
    #: counterexample (which is then still a shortest one); None if not interrupted.
    interrupted: int | None = None

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

    def stop_reason(self) -> str:
        """Where and why the search stopped short of ``depth_limit`` (if it did)."""
        if self.interrupted is not None:
            return (f"interrupted (Ctrl-C) during depth {self.interrupted}, after its first "
                    f"violation: every shallower depth was searched, so the counterexamples "
                    f"are shortest, but depth {self.interrupted} was not searched to its end "
                    f"(its counts are partial; other violations of that length may be missing)")
        if self.stopped_at is None:
            return f"searched to depth {self.depth_reached} of {self.depth_limit}"
        why = " and ".join(w for w, has in (("violations found", self.violations),
                                             ("the model crashed", self.crashes)) if has)
        return (f"stopped after depth {self.stopped_at}: {why}; --full (stop_at_first=False) "
                f"searches to depth {self.depth_limit}")

    @property
    def rate(self) -> float:
        return self.states / self.seconds if self.seconds else 0.0

    def command(self, stop: bool = False) -> str:
        """The command line that repeats this search; with ``stop``, the one that finds its
        shortest counterexamples (the same without ``--full``, and sooner)."""
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
        applying = tuple(i.id for i in INVARIANTS if i.applies(scheme_named(self.scheme)))
        if self.invariants != applying:
            words.append(f"--invariants {','.join(self.invariants)}")
        if self.spec.after:
            words.append(f"--after '{self.spec.after_text()}'")
        if not self.stop_at_first and not stop:
            words.append("--full")
        return " ".join(words)

    # ------------------------------------------------------------ text
    def summary_lines(self) -> list[str]:
        a = self.alphabet
        if self.exhausted:
            reach = (f"every reachable state (the search ran out of new states at depth "
                     f"{self.depth_reached})")
        else:
            done = (self.interrupted - 1 if self.interrupted is not None else
                    self.stopped_at if self.stopped_at is not None else self.depth_limit)
            reach = f"every state reachable in at most {done} operations"
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
            *([self.stop_reason()] if (self.stopped_at, self.interrupted) != (None, None)
              else []),
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

"""Two pictures and a key for the GUP-fast race chapter, drawn from the race model's own steps.

:func:`ladder_figure` draws the two barrier pairings of the chapter as
two-CPU ladder diagrams: *store buffering* (swap-out clears the PTE and then
checks for pins; GUP-fast pins and then re-reads the PTE) and *message
passing* (KSM clears the flag and then reinstalls the PTE; GUP-fast re-reads
the PTE and then the flag). Every rung (the step id, the kernel function,
whether it reads or writes which location) and every barrier between rungs
comes from the :class:`~anonlib.race.machine.Step` objects of the variants,
so the picture changes when a variant's steps or barriers do.

:func:`step_legend` is the key to the step codes (``A1``, ``B4x``,
``A1@mem``...) that the schedules print, taken from the same steps.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .machine import Atomic, Load, Step, Store
from .variants import VARIANTS, Variant


@dataclass(frozen=True)
class Rung:
    """One access of one CPU in a ladder: the step and what it does to which location."""

    cpu: str
    step: Step

    @property
    def kind(self) -> str:
        a = self.step.access
        if isinstance(a, Store):
            return "write"
        if isinstance(a, Atomic):
            return "atomic write"
        if isinstance(a, Load):
            return "read"
        return "no access"

    @property
    def loc(self) -> str:
        a = self.step.access
        return a.loc if isinstance(a, Load | Store | Atomic) else ""

    @property
    def writes(self) -> bool:
        return self.kind in ("write", "atomic write")


@dataclass(frozen=True)
class Pattern:
    """A two-CPU pattern: which variant, the two rungs of each CPU, and what the barriers forbid."""

    title: str
    variant: str
    a: tuple[str, str]
    b: tuple[str, str]
    forbidden: str

    def rungs(self) -> tuple[list[Rung], list[Rung]]:
        v: Variant = VARIANTS[self.variant]
        pa, pb = v.programs()
        return ([Rung("A", pa.step(s)) for s in self.a], [Rung("B", pb.step(s)) for s in self.b])


#: The chapter's two pairings, as the kernel orders them (variants ``swapout`` and ``ksm-aba``).
PATTERNS: tuple[Pattern, ...] = (
    Pattern("store buffering (pairing 1: swap-out vs GUP-fast)", "swapout", ("A1", "A2"),
            ("B3", "B4"), "A2 misses B3's pin and B4 misses A1's clear"),
    Pattern("message passing (pairing 2: KSM vs GUP-fast)", "ksm-aba", ("A3", "A4"),
            ("B4", "B5"), "B4 sees A4's PTE but B5 misses A3's clear"),
)


def barriers_between(first: Step, second: Step) -> tuple[str, ...]:
    """The barriers a CPU runs between two of its steps: after the first, before the second."""
    return first.after + second.before


def communications(p: Pattern) -> list[tuple[Rung, Rung]]:
    """(write, read) pairs across the CPUs on the same location: the ladder's diagonal arrows."""
    a, b = p.rungs()
    out = []
    for w_side, r_side in ((a, b), (b, a)):
        for w in w_side:
            for r in r_side:
                if w.writes and r.kind == "read" and w.loc == r.loc:
                    out.append((w, r))
    return out


def ladder_figure(patterns: Sequence[Pattern] = PATTERNS) -> Any:
    """Draw each pattern as a ladder: CPU A and CPU B as vertical time lines, one panel each.

    The panels are stacked, 8 in wide and 3.7 in high each.

    A rung is a box naming the step, its kernel function and its access; an
    orange bar between a CPU's two rungs names the barrier the model puts there;
    a dashed arrow goes from a write to the other CPU's read of the same
    location. Under each panel: the outcome the barriers forbid. Returns a
    matplotlib Figure, the same for the same steps.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    n = len(patterns)
    fig = Figure(figsize=(8, 3.7 * n), dpi=100)
    for i, p in enumerate(patterns):  # one panel under the other, so the text stays legible
        ax = fig.add_axes((0.01, 1 - (i + 1) / n + 0.01, 0.98, 1 / n - 0.02))
        ax.set_xlim(-0.2, 4.2)
        ax.set_ylim(-0.6, 4.6)
        ax.set_axis_off()
        ax.text(2.0, 4.25, p.title, ha="center", fontsize=10.5, fontweight="bold")
        a, b = p.rungs()
        names = VARIANTS[p.variant].programs()
        for x, rungs, prog in ((0.9, a, names[0]), (3.1, b, names[1])):
            ax.text(x, 3.85, f"CPU {prog.cpu}: {prog.name}", ha="center", fontsize=8.5)
            ax.plot([x, x], [0.35, 3.65], color="#777777", linewidth=1.0)
            ax.annotate("", (x, 0.3), (x, 0.6), arrowprops={"arrowstyle": "-|>",
                                                           "color": "#777777"})
            for k, r in enumerate(rungs):
                y = 3.1 - 2.0 * k
                ax.add_patch(FancyBboxPatch((x - 0.85, y - 0.3), 1.7, 0.6,
                                            boxstyle="round,pad=0,rounding_size=0.08",
                                            facecolor="#e8f1f8" if r.writes else "#ffffff",
                                            edgecolor="#0072B2", linewidth=1.0, zorder=3,
                                            gid=f"rung:{p.variant}:{r.step.id}"))
                what = f"{r.kind} {r.loc}" if r.loc else r.kind
                ax.text(x, y + 0.1, f"{r.step.id}  {what}", ha="center", va="center",
                        fontsize=9.5, fontweight="bold", zorder=4)
                ax.text(x, y - 0.14, r.step.func, ha="center", va="center", fontsize=8,
                        family="monospace", zorder=4)
            bar = barriers_between(rungs[0].step, rungs[1].step)
            ymid = 2.1
            if bar:
                ax.plot([x - 0.6, x + 0.6], [ymid, ymid], color="#D55E00", linewidth=2.2,
                        gid=f"barrier:{p.variant}:{prog.cpu}")
                ax.text(x, ymid - 0.2, " + ".join(bar), ha="center", va="center",
                        fontsize=8.5, color="#D55E00", family="monospace")
            else:
                ax.text(x, ymid, "(no barrier)", ha="center", va="center", fontsize=8.5,
                        color="#555555")
        ys = {("A", r.step.id): 3.1 - 2.0 * k for k, r in enumerate(a)}
        ys.update({("B", r.step.id): 3.1 - 2.0 * k for k, r in enumerate(b)})
        for w, r in communications(p):
            x0, x1 = (1.75, 2.25) if w.cpu == "A" else (2.25, 1.75)
            start = (x0, ys[(w.cpu, w.step.id)])
            end = (x1, ys[(r.cpu, r.step.id)])
            ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=9,
                                         color="#009E73", linestyle="--", linewidth=1.1,
                                         gid=f"comm:{w.step.id}->{r.step.id}"))
            # the location's name a quarter of the way along from CPU A's side, clear of
            # the crossing and of the other arrow's name
            t = 0.25 if w.cpu == "A" else 0.75
            ax.text(start[0] + (end[0] - start[0]) * t, start[1] + (end[1] - start[1]) * t,
                    w.loc, ha="center", va="center", fontsize=8.5, color="#009E73",
                    bbox={"boxstyle": "round,pad=0.1", "facecolor": "white",
                          "edgecolor": "none"})
        ax.text(2.0, -0.35, textwrap.fill(f"forbidden: {p.forbidden}", 80), ha="center",
                va="center", fontsize=9)
    return fig


#: What the suffixes of an event name mean (the names come from machine.Event.name), by example.
SUFFIXES = (
    ("B4x", "x: the back-off branch of a step (B4 found a change: drop the pin)"),
    ("A1@mem", "@mem: a store that waited in its CPU's store buffer reaches memory (tso, weak)"),
    ("B5@early", "@early: a load is satisfied before the steps ahead of it (weak only)"),
)


def step_legend(variants: Sequence[str], width: int = 100) -> str:
    """The key to the step codes of these variants: code, CPU, kernel function, the line it runs.

    Each code once, in the order the variants define them; a code whose line
    differs between the variants (``A1`` is ``try_to_unmap_one`` in swap-out,
    ``write_protect_page`` in KSM) is listed once per line it stands for.
    """
    seen: set[tuple[str, str, str]] = set()
    lines = []
    for name in variants:
        for prog in VARIANTS[name].programs():
            for sid, s in prog.steps.items():
                key = (sid, s.func, s.code)
                if key in seen:
                    continue
                seen.add(key)
                head = f"{sid:<4} CPU {prog.cpu}  {s.func}: "
                lines.append(textwrap.fill(s.code, width, initial_indent=head,
                                           subsequent_indent=" " * 10))
    lines += [f"{example:<10}{what}" for example, what in SUFFIXES]
    return "\n".join(lines)

"""Page copies per kernel era on the same workloads: what each rule set costs.

:func:`copy_counts` runs each workload (a scenario) under each scheme and
reads the ghost counter ``World.copies`` at the end: every page copied by a
COW fault, an unshare fault, or fork's early COW (a THP or hugetlb copy counts
each of its pages). Unlike ``python -m anonlib run``, a workload does not stop
at a broken invariant: the point is to see what the rules cost and what they
break, so the invariants broken along the way are listed next to the count.

The workloads are small, named cases in the spirit of the kernel's
``tools/testing/selftests/mm/cow.c``; :data:`WORKLOADS` says what each shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import model
from ..invariants import check
from ..results import ModelError
from ..scenario import ScenarioError, parse
from ..scenario.parser import scheme_named
from ..schemes import SCHEMES, Scheme
from ..views.markup import esc


@dataclass(frozen=True)
class Workload:
    """A named scenario and the question it answers."""

    name: str
    question: str
    text: str


#: cow.c's partially shared THP: P fills a THP, then forks only its first subpage to Q.
_PARTIAL_THP = """config thp_pages=4
spawn P
P mmap A thp
P write A[0] a
P write A[1] a
P write A[2] a
P write A[3] a
P madvise A[1] dontfork
P madvise A[2] dontfork
P madvise A[3] dontfork
P fork Q
"""

#: A 4-page mTHP, every page written by P.
_MTHP = """spawn P
P mmap A mthp
P write A[0] a
P write A[1] a
P write A[2] a
P write A[3] a
"""

#: A fork child that exits at once, then P writes each of the four pages.
_FORK_EXIT_WRITE_ALL = "P fork Q\nQ exit\n" + "".join(f"P write A[{i}] b\n" for i in range(4))

WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "fork-cow", "one page, both sides write after fork",
        """spawn P
P mmap A 1
P write A[0] a
P fork Q
Q write A[0] b
P write A[0] c
"""),
    Workload(
        "ro-pin-shared", "R/O pin of a page shared with a fork child, then a write (cow.c A9)",
        """spawn P
P mmap A 1
P write A[0] a
P fork Q
P pin A[0] ro longterm as H
P write A[0] b
"""),
    Workload(
        "ro-pin-mprotect", "R/O pin of a page only P maps, write-protected by mprotect, then "
        "a write (cow.c A13)",
        """spawn P
P mmap A 1
P write A[0] a
P mprotect A ro
P pin A[0] ro longterm as H
P mprotect A rw
P write A[0] b
"""),
    Workload(
        "swap-write", "write to a page after swap-out (reuse needs the swap bit or a refcount)",
        """spawn P
P mmap A 1
P write A[0] a
kernel swapout P A[0]
P write A[0] b
"""),
    Workload(
        "swap-foll-get", "O_DIRECT-like FOLL_GET reference across swap-out, then a write and "
        "the device's write (history B4, sequence B)",
        """spawn P
P mmap A 1
P write A[0] a
P get A[0] rw as H
kernel swapout P A[0]
P write A[0] b
H write dma
P read A[0]
"""),
    Workload(
        "thp-fork-cow", "a PMD-mapped THP, both sides write one subpage after fork",
        """config thp_pages=4
spawn P
P mmap A thp
P write A[0] a
P fork Q
Q write A[1] b
P write A[2] c
"""),
    Workload(
        "thp-partial-fork", "partially shared THP (cow.c): only subpage 0 is forked; P then "
        "write-protects its PTEs (soft-dirty) and writes every subpage",
        _PARTIAL_THP + """P clear-softdirty
P write A[1] b
P write A[2] b
P write A[3] b
"""),
    Workload(
        "thp-partial-ro-pin", "partially shared THP, then R/O pins of the subpages only P maps",
        _PARTIAL_THP + """P pin A[1] ro as H
unpin H
P pin A[2] ro as J
unpin J
P pin A[3] ro as K
unpin K
"""),
    Workload(
        "thp-fork-exit", "a PMD-mapped THP shared with a fork child that exits, then P writes "
        "every subpage (do_huge_pmd_wp_page reuses the THP: nothing else refers to it)",
        """config thp_pages=4
spawn P
P mmap A thp
P write A[0] a
""" + _FORK_EXIT_WRITE_ALL),
    Workload(
        "mthp-fork-cow", "a 4-page mTHP, both sides write one page after fork (one page "
        "copied each, never the folio)",
        _MTHP + """P fork Q
Q write A[1] b
P write A[2] c
"""),
    Workload(
        "mthp-fork-exit", "a 4-page mTHP shared with a fork child that exits, then P writes "
        "every page (6.12 reuses a page of a large folio only if it is exclusive)",
        _MTHP + _FORK_EXIT_WRITE_ALL),
    Workload(
        "hugetlb-fork-cow", "a hugetlb page, the fork child writes (hugetlb_wp copies the "
        "whole huge page), then the parent writes (mapped once again: reused)",
        """config hugetlb_pages=4
spawn P
P mmap A hugetlb
P write A[0] a
P fork Q
Q write A[1] b
P write A[2] c
"""),
    Workload(
        "thp-split-ro-pin", "a PTE-mapped THP (PMD split, nothing shared), R/O pin of a subpage",
        """config thp_pages=4
spawn P
P mmap A thp
P write A[0] a
kernel split-pmd P A
P pin A[1] ro as H
"""),
)


@dataclass(frozen=True)
class Cell:
    """One workload under one scheme."""

    copies: int | None  # None: the workload is not valid under this scheme
    broken: tuple[str, ...] = ()  # invariants broken along the way
    reads: tuple[str, ...] = ()  # outcomes of the reads, in order
    error: str = ""


@dataclass
class CopyTable:
    """Page copies per workload (rows) and scheme (columns); ``str()`` is deterministic."""

    schemes: tuple[str, ...]
    workloads: tuple[Workload, ...]
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)

    def copies(self, workload: str, scheme: str) -> int | None:
        return self.cells[(workload, scheme)].copies

    def total(self, scheme: str) -> int:
        return sum(c.copies or 0 for (_w, s), c in self.cells.items() if s == scheme)

    def _cell(self, c: Cell) -> str:
        if c.copies is None:
            return "n/a"
        return str(c.copies) + (f" ({','.join(c.broken)})" if c.broken else "")

    def rows(self) -> list[list[str]]:
        out = [["workload"] + list(self.schemes)]
        for w in self.workloads:
            out.append([w.name] + [self._cell(self.cells[(w.name, s)]) for s in self.schemes])
        out.append(["total"] + [str(self.total(s)) for s in self.schemes])
        return out

    def __str__(self) -> str:
        rows = self.rows()
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(x.ljust(widths[i]) if i == 0 else x.rjust(widths[i])
                           for i, x in enumerate(r)).rstrip() for r in rows]
        lines.append("page copies at the end of each workload; (INV-n): invariants broken "
                     "on the way")
        differ = [w for w in self.workloads
                  if len({self.cells[(w.name, s)].reads for s in self.schemes}) > 1]
        for w in differ:
            lines.append(f"reads differ in {w.name}: " + "; ".join(
                f"{s} {' '.join(self.cells[(w.name, s)].reads) or '-'}" for s in self.schemes))
        return "\n".join(lines)

    def markdown(self) -> str:
        rows = self.rows()
        out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        return "\n".join(out)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # p: IPython's PrettyPrinter
        p.text(str(self))

    def _repr_html_(self) -> str:
        rows = self.rows()
        head = "".join(f"<th>{esc(x)}</th>" for x in rows[0])
        body = "".join("<tr>" + "".join(f"<td>{esc(x)}</td>" for x in r) + "</tr>"
                       for r in rows[1:])
        return (f"<table class='anonlib-copies'><thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>")


def run_workload(text: str, scheme: str | Scheme) -> Cell:
    """Run one workload under one scheme to the end, noting broken invariants and reads."""
    sc = parse(text, "<workload>")
    if isinstance(sc, ScenarioError):
        raise ValueError(str(sc))
    sch = scheme_named(scheme)
    world = model.initial_world(sc.config)
    broken: list[str] = []
    reads: list[str] = []
    for st in sc.statements:
        op = st.op
        if op is None:
            continue
        r = model.apply(world, op, sch)
        if isinstance(r, ModelError):
            return Cell(None, error=f"{st.text}: {r.message}")
        if type(st.action).__name__ in ("Read", "HandleRead"):
            reads.append(r.outcome.word)
        for v in check(r.world, sch, world, op):
            if v.invariant.id not in broken:
                broken.append(v.invariant.id)
        world = r.world
    return Cell(world.copies, tuple(broken), tuple(reads))


def copy_counts(workloads: Iterable[Workload] | Mapping[str, str] = WORKLOADS,
                schemes: Sequence[str | Scheme] | None = None) -> CopyTable:
    """Page copies each scheme makes on each workload (default: :data:`WORKLOADS`, every scheme).

    ``workloads`` may also be a mapping of name to scenario text; a scheme may be
    given by name or as a :class:`~anonlib.schemes.Scheme` (one built with
    ``replace()`` in a notebook cell), whose column is headed by its name.
    """
    if isinstance(workloads, Mapping):
        wl = tuple(Workload(n, "", t) for n, t in workloads.items())
    else:
        wl = tuple(workloads)
    chosen = [scheme_named(s) for s in (schemes if schemes is not None else tuple(SCHEMES))]
    table = CopyTable(tuple(s.name for s in chosen), wl)
    for w in wl:
        for sch in chosen:
            table.cells[(w.name, sch.name)] = run_workload(w.text, sch)
    return table

"""A small kit for the model's unit tests: build operations tersely and run them.

    P, Q = Proc("P"), Proc("Q")
    r = run(P.spawn(), P.mmap("A"), P.write("A", 0, "1"), P.fork(Q))
    assert r.words(P["A", 0]) == ("present", "readonly", "shared", "unpinned")

``run`` applies the operations one by one under a scheme and fails the test
if any of them is refused with a ModelError (an operation the kernel would
not even attempt is a bug in the test, not a result). By default it also
checks every invariant after every step and fails on a violation; a test
that expects violations (an old kernel era, the hugetlb gap) passes
``check=False`` and looks at ``r.violations``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from anonlib import invariants
from anonlib.model import PageState, Step, apply, initial_world, page_state
from anonlib.ops import (
    Advice,
    ClearSoftDirty,
    Exit,
    Fork,
    Gup,
    HandleRead,
    HandleWrite,
    Kernel,
    KernelAction,
    Ksm,
    Madvise,
    MapKind,
    Mmap,
    Mprotect,
    Munmap,
    Op,
    PageRef,
    Read,
    Release,
    Spawn,
    Write,
)
from anonlib.results import ModelError, Outcome
from anonlib.schemes import SCHEMES, Scheme
from anonlib.state import Config, Folio, FolioKind, Page, World


class Proc:
    """Operation builders for one process: ``P.write("A", 0, "x")``, ``P["A", 0]``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getitem__(self, key: tuple[str, int]) -> PageRef:
        mapping, index = key
        return PageRef(self.name, mapping, index)

    def spawn(self) -> Spawn:
        return Spawn(self.name)

    def mmap(self, mapping: str, npages: int = 1) -> Mmap:
        return Mmap(self.name, mapping, MapKind.BASE, npages)

    def thp(self, mapping: str) -> Mmap:
        return Mmap(self.name, mapping, MapKind.THP)

    def hugetlb(self, mapping: str) -> Mmap:
        return Mmap(self.name, mapping, MapKind.HUGETLB)

    def write(self, mapping: str, index: int, value: str) -> Write:
        return Write(self[mapping, index], value)

    def read(self, mapping: str, index: int) -> Read:
        return Read(self[mapping, index])

    def fork(self, child: Proc | str) -> Fork:
        return Fork(self.name, child if isinstance(child, str) else child.name)

    def pin(self, mapping: str, index: int, handle: str, *, rw: bool = False,
            longterm: bool = False, fast: bool = False) -> Gup:
        return Gup(self[mapping, index], handle, True, rw, longterm, fast)

    def get(self, mapping: str, index: int, handle: str, *, rw: bool = False,
            longterm: bool = False, fast: bool = False) -> Gup:
        return Gup(self[mapping, index], handle, False, rw, longterm, fast)

    def mprotect(self, mapping: str, rw: bool) -> Mprotect:
        return Mprotect(self.name, mapping, rw)

    def madvise(self, mapping: str, index: int | None, advice: Advice) -> Madvise:
        return Madvise(self.name, mapping, index, advice)

    def clear_softdirty(self) -> ClearSoftDirty:
        return ClearSoftDirty(self.name)

    def munmap(self, mapping: str) -> Munmap:
        return Munmap(self.name, mapping)

    def exit(self) -> Exit:
        return Exit(self.name)


P, Q, R = Proc("P"), Proc("Q"), Proc("R")


def kernel(action: str, ref: PageRef) -> Kernel:
    """``kernel swapout P A[0]`` is ``kernel("swapout", P["A", 0])``."""
    return Kernel(KernelAction(action), ref)


def ksm(first: PageRef, second: PageRef) -> Ksm:
    return Ksm(first, second)


def unpin(handle: str) -> Release:
    return Release(handle, True)


def put(handle: str) -> Release:
    return Release(handle, False)


def hwrite(handle: str, value: str) -> HandleWrite:
    return HandleWrite(handle, value)


def hread(handle: str) -> HandleRead:
    return HandleRead(handle)


@dataclass
class Run:
    """The result of applying operations: every world, outcome and invariant violation."""

    scheme: Scheme
    check: bool
    worlds: list[World]
    outcomes: list[Outcome] = field(default_factory=list)
    violations: list[tuple[int, Op, list[invariants.Violation]]] = field(default_factory=list)

    @property
    def world(self) -> World:
        return self.worlds[-1]

    @property
    def last(self) -> Outcome:
        return self.outcomes[-1]

    def then(self, *ops: Op) -> Run:
        """Apply more operations to this run (in place) and return it."""
        for op in ops:
            before = self.world
            result = apply(before, op, self.scheme)
            assert not isinstance(result, ModelError), f"{op} refused: {result}"
            assert isinstance(result, Step)
            found = invariants.check(result.world, self.scheme, before, op)
            if found:
                self.violations.append((len(self.outcomes), op, found))
                assert not self.check, f"after {op}:\n" + "\n".join(map(str, found))
            self.worlds.append(result.world)
            self.outcomes.append(result.outcome)
        return self

    def try_(self, op: Op) -> Step | ModelError:
        """Apply one operation without recording it (for refused operations)."""
        return apply(self.world, op, self.scheme)

    # ------------------------------------------------------------ queries
    def state(self, ref: PageRef) -> PageState:
        st = page_state(self.world, self.scheme, ref)
        assert isinstance(st, PageState), str(st)
        return st

    def words(self, ref: PageRef) -> tuple[str, ...]:
        return self.state(ref).words()

    def folio(self, ref: PageRef) -> Folio:
        """The folio behind a present (or other page-naming) entry."""
        phys = self.state(ref).page
        assert phys is not None, f"{ref} maps no page"
        f = self.world.folio(phys[0])
        assert f is not None, f"{ref} maps the zero page"
        return f

    def page(self, ref: PageRef) -> Page:
        phys = self.state(ref).page
        assert phys is not None
        return self.folio(ref).pages[phys[1]]

    def is_zero_page(self, ref: PageRef) -> bool:
        phys = self.state(ref).page
        return phys is not None and phys[0] == 0

    def kind(self, ref: PageRef) -> FolioKind:
        return self.folio(ref).kind

    def violated(self) -> set[str]:
        """Ids of every invariant violated at some step."""
        return {v.invariant.id for _i, _op, found in self.violations for v in found}


def run(*ops: Op, scheme: str | Scheme = "mainline", config: Config | None = None,
        check: bool = True) -> Run:
    """Apply ``ops`` from an empty world; see the module docstring."""
    sch = SCHEMES[scheme] if isinstance(scheme, str) else scheme
    return Run(sch, check, [initial_world(config)]).then(*ops)


# Common starting points ------------------------------------------------------

def base(value: str = "1", npages: int = 1, proc: Proc = P) -> list[Op]:
    """``proc`` maps A (npages small pages) and writes ``value`` into each: all exclusive."""
    ops: list[Op] = [proc.spawn(), proc.mmap("A", npages)]
    ops += [proc.write("A", i, value) for i in range(npages)]
    return ops


def thp(value: str = "1", proc: Proc = P, pages: int = 1) -> list[Op]:
    """``proc`` maps a THP range T and writes ``value`` into its first ``pages`` subpages: a
    PMD-mapped, exclusive THP (the others stay zero-filled)."""
    return [proc.spawn(), proc.thp("T"), *(proc.write("T", i, value) for i in range(pages))]


def hugetlb(value: str = "1", proc: Proc = P) -> list[Op]:
    """``proc`` maps a hugetlb page H and writes page 0: exclusive head."""
    return [proc.spawn(), proc.hugetlb("H"), proc.write("H", 0, value)]


__all__ = [
    "P", "Q", "R", "Advice", "Config", "FolioKind", "KernelAction", "Proc", "Run",
    "base", "hread", "hugetlb", "hwrite", "kernel", "ksm", "put", "run", "thp", "unpin",
]

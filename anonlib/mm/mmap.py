"""Creating and destroying address spaces and mappings (mm/mmap.c, kernel/exit.c)."""

from __future__ import annotations

from ..mem import Mem
from ..ops import MapKind
from ..results import ErrorKind, OpFailed
from ..state import ZERO_VALUE, Process, Vma, replace
from .memory import zap_pte_range


def spawn(m: Mem, name: str) -> None:
    """A new process with an empty address space (an exec'd program, for the model)."""
    if name in m.procs:
        raise OpFailed(f"process {name!r} already exists", ErrorKind.INVALID)
    m.procs[name] = Process(name)


def do_mmap(m: Mem, proc: str, name: str, kind: MapKind, npages: int) -> None:
    """A private anonymous mapping, readable and writable, nothing populated yet.

    mm/mmap.c: do_mmap -> mmap_region (6.12). A ``thp`` mapping is PMD-aligned and
    THP-enabled (MADV_HUGEPAGE); a ``hugetlb`` one is MAP_HUGETLB of one huge page.
    """
    p = m.proc(proc)
    if p.vma(name) is not None:
        raise OpFailed(f"process {proc} already has a mapping {name!r}", ErrorKind.INVALID)
    n = m.config.pages_for(kind, npages)
    if n < 1:
        raise OpFailed(f"mapping {name!r} needs at least one page", ErrorKind.INVALID)
    ptes = () if kind is MapKind.HUGETLB else tuple(None for _ in range(n))
    v = Vma(name, kind, n, ptes=ptes, shadow=tuple(frozenset({ZERO_VALUE}) for _ in range(n)))
    m.procs[proc] = replace(p, vmas=p.vmas + (v,))


def do_munmap(m: Mem, proc: str, name: str) -> None:
    """Unmap a whole mapping: zap its entries and remove it.

    mm/mmap.c: do_vmi_munmap -> unmap_region -> unmap_vmas (6.12).
    """
    v = m.vma(proc, name)
    zap_pte_range(m, proc, name, range(v.npages))
    p = m.proc(proc)
    m.procs[proc] = replace(p, vmas=tuple(x for x in p.vmas if x.name != name))
    m.forget_address(proc, name, None)


def exit_mmap(m: Mem, proc: str) -> None:
    """The process exits: every mapping is zapped and the references it held are dropped.

    kernel/exit.c: do_exit -> exit_mm -> mmput -> exit_mmap (mm/mmap.c) (6.12). The
    model drops the process's GUP references with it (its pipes and buffers close).
    """
    for v in m.proc(proc).vmas:
        do_munmap(m, proc, v.name)
    for h in [h for h in m.handles.values() if h.owner == proc]:
        del m.handles[h.name]
    del m.procs[proc]

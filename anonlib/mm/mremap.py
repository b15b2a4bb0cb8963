"""Moving part of a mapping (mm/mremap.c)."""

from __future__ import annotations

from ..mem import Mem
from ..ops import MapKind
from ..results import Outcome
from ..state import Entry, EntryKind, Vma, replace
from .huge_memory import split_huge_pmd


def move_vma(m: Mem, proc: str, vma: str, index: int, new: str) -> Outcome | None:
    """mremap(MREMAP_MAYMOVE | MREMAP_FIXED) of pages ``index`` to the end of ``vma`` to a
    new mapping ``new`` at an address nothing else uses; None on success, else the error.

    mm/mremap.c: mremap_to -> move_vma -> move_page_tables (6.12). The range is split
    off its VMA first (a THP's PMD is split there, every subpage inheriting the head's
    flag, __split_huge_pmd_locked), then each PTE moves to the new VMA as it is:
    the page, its PG_anon_exclusive, its map count and any pin stay; swap,
    migration and other entries move too. move_ptes marks every moved present or
    swap PTE soft-dirty (move_soft_dirty_pte). The new mapping is a plain one: it is
    not aligned for a PMD or an mTHP, so its faults allocate small folios. The range
    must lie in one VMA (vma_to_resize: EFAULT otherwise: the edge of an
    MADV_DONTFORK range, or a page a fork child does not have) and a hugetlb range
    must be whole huge pages (EINVAL). A GUP reference taken at a moved address now
    names the new one.
    """
    v = m.vma(proc, vma)
    if v.kind is MapKind.HUGETLB:
        return Outcome("EINVAL", "a hugetlb mapping moves in whole huge pages only")
    moving = range(index, v.npages)
    if any(i in v.holes for i in moving) or len({i in v.dontfork for i in moving}) != 1:
        return Outcome("EFAULT", "the range to move is not one VMA")
    if v.huge is not None:
        split_huge_pmd(m, proc, vma)  # the VMA split at a non-PMD-aligned address
        v = m.vma(proc, vma)

    def moved(e: Entry | None) -> Entry | None:
        if e is not None and e.kind in (EntryKind.PRESENT, EntryKind.SWAP):
            return replace(e, soft_dirty=True)
        return e

    keeps_kind = v.kind is MapKind.MTHP  # its start, and so its alignment, stays
    head = replace(
        v, kind=v.kind if keeps_kind else MapKind.BASE, npages=index, ptes=v.ptes[:index],
        shadow=v.shadow[:index], dontfork=frozenset(i for i in v.dontfork if i < index),
        holes=frozenset(i for i in v.holes if i < index))
    tail = Vma(new, MapKind.BASE, v.npages - index, writable=v.writable,
               softdirty_tracking=v.softdirty_tracking,
               dontfork=frozenset(i - index for i in v.dontfork if i >= index),
               ptes=tuple(moved(e) for e in v.ptes[index:]), shadow=v.shadow[index:])
    m.split_vma(proc, head, tail)
    for h in list(m.handles.values()):
        if h.owner == proc and h.mapping == vma and h.index >= index:
            m.handles[h.name] = replace(h, mapping=new, index=h.index - index)
    return None

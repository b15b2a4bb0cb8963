"""madvise(): MADV_DONTNEED, MADV_DONTFORK / MADV_DOFORK, MADV_COLLAPSE (mm/madvise.c,
mm/khugepaged.c)."""

from __future__ import annotations

from ..mem import Loc, Mem
from ..ops import Advice, MapKind
from ..results import Outcome
from ..state import ZERO_FOLIO, ZERO_VALUE, Entry, EntryKind, FolioKind, replace
from .anon_rmap import folio_add_new_anon_rmap
from .huge_memory import split_huge_pmd
from .internal import folio_expected_ref_count
from .memory import zap_pte_range


def madvise(m: Mem, proc: str, vma: str, index: int | None, advice: Advice) -> Outcome:
    """Dispatch one madvise() call on a page (or, index None, the whole mapping).

    mm/madvise.c: do_madvise -> madvise_vma_behavior (6.12). Advice on part of a
    PMD-mapped THP splits the VMA and so the PMD; on part of a hugetlb page it
    is EINVAL, except MADV_DONTNEED from the start of the huge page, which
    rounds down to nothing and succeeds (mm/madvise.c:
    madvise_dontneed_free_valid_vma).
    """
    v = m.vma(proc, vma)
    pages = list(range(v.npages)) if index is None else [index]
    partial = len(pages) != v.npages
    if advice is Advice.COLLAPSE:
        return madvise_collapse(m, proc, vma)
    if partial and v.kind is MapKind.HUGETLB:
        if advice is Advice.DONTNEED and index == 0:
            # madvise_dontneed_free_valid_vma rounds the end down to the huge page
            return Outcome("ok", "the range rounds down to no whole huge page")
        return Outcome("EINVAL", "the range does not start or end on a huge page boundary")
    if advice is Advice.DONTNEED:
        zap_pte_range(m, proc, vma, pages)
        return Outcome("ok")
    if partial:
        split_huge_pmd(m, proc, vma)  # vma_adjust_trans_huge on the VMA split
    v = m.vma(proc, vma)
    if advice is Advice.DONTFORK:
        m.set_vma(proc, replace(v, dontfork=v.dontfork | set(pages)))
    else:
        m.set_vma(proc, replace(v, dontfork=v.dontfork - set(pages)))
    return Outcome("ok")


def madvise_collapse(m: Mem, proc: str, vma: str) -> Outcome:
    """MADV_COLLAPSE: copy a PTE-mapped range into a fresh THP mapped by a PMD.

    mm/khugepaged.c: madvise_collapse -> hpage_collapse_scan_pmd, collapse_huge_page
    (6.12). Anonymous collapse always copies; it needs at least one writable
    PTE (else SCAN_PAGE_RO: EINVAL) and no page with references beyond its
    mappings and the swap cache (SCAN_PAGE_COUNT: EAGAIN). Other processes keep
    their own mappings of the old pages. The model does not collapse ranges
    with swap or other non-present entries (EAGAIN).
    """
    v = m.vma(proc, vma)
    if v.kind is not MapKind.THP or v.holes or len(v.dontfork) not in (0, v.npages):
        return Outcome("EINVAL", "the range is not a whole THP-enabled range")
    if v.huge is not None:
        return Outcome("ok", "already PMD-mapped")
    if not any(e is not None and e.writable for e in v.ptes):
        return Outcome("EINVAL", "no writable PTE in the range (SCAN_PAGE_RO)")
    data = []
    for i, e in enumerate(v.ptes):
        if e is None:
            data.append(ZERO_VALUE)
            continue
        if e.kind is not EntryKind.PRESENT:
            return Outcome("EAGAIN", f"page {i} is not present ({e.kind.value} entry)")
        if e.folio != ZERO_FOLIO:
            f = m.folio(e.folio)
            if f.kind is FolioKind.KSM:
                return Outcome("EAGAIN", f"page {i} is a KSM page")
            if m.refcount(f.id) != folio_expected_ref_count(m, f.id):  # is_refcount_suitable
                return Outcome("EAGAIN", f"page {i} has references beyond its mappings "
                                         "(SCAN_PAGE_COUNT)")
        data.append(m.data(e.folio, e.page))
    f = m.new_folio(FolioKind.THP, tuple(data))
    folio_add_new_anon_rmap(m, f.id, huge=True)
    m.set_vma(proc, replace(v, ptes=tuple(None for _ in v.ptes)))
    m.set(Loc(proc, vma, True, 0), Entry(EntryKind.PRESENT, f.id, 0, writable=v.writable,
                                         soft_dirty=True))
    return Outcome("ok")

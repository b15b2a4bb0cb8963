"""Reverse-map helpers that set and clear PG_anon_exclusive (include/linux/rmap.h, mm/rmap.c)."""

from __future__ import annotations

from ..mem import Mem
from ..ops import MapKind


def folio_add_new_anon_rmap(m: Mem, fid: int, huge: bool = False) -> None:
    """Map a fresh folio for the first time, exclusive (RMAP_EXCLUSIVE): every page, or the head.

    mm/rmap.c: folio_add_new_anon_rmap (6.12).
    """
    n = len(m.folio(fid).pages)
    m.set_exclusive(fid, range(n), huge=huge)


def folio_try_dup_anon_rmap(m: Mem, fid: int, index: int, huge: bool, src_has_pinned: bool
                            ) -> bool:
    """fork's side: share the page with the child, or refuse (-EBUSY) if it may be pinned.

    include/linux/rmap.h: folio_try_dup_anon_rmap_pte / _pmd, hugetlb_try_dup_anon_rmap (6.12).
    Returns False where the kernel returns -EBUSY: the page is exclusive and
    the folio may be pinned (only asked when the mm has MMF_HAS_PINNED).
    On success the flag is cleared: the page is now (maybe) shared.
    """
    if m.exclusive(fid, index, huge) and src_has_pinned and m.maybe_pinned(fid):
        return False
    m.clear_exclusive(fid, index, huge)
    return True


def folio_try_share_anon_rmap(m: Mem, fid: int, index: int, huge: bool = False) -> bool:
    """Unmap side (swap-out, migration, KSM, device collection): clear the flag unless maybe pinned.

    include/linux/rmap.h: folio_try_share_anon_rmap_pte / _pmd, hugetlb_try_share_anon_rmap
    (6.12). The caller has already cleared (or made non-present) the entry;
    here the helper is one atomic step; its barriers against GUP-fast are
    modelled step by step in :mod:`anonlib.race`. Returns False (-EBUSY) when
    the folio may be pinned.
    """
    if m.maybe_pinned(fid):
        return False
    m.clear_exclusive(fid, index, huge)
    return True


def make_device_exclusive(m: Mem, proc: str, vma: str, index: int) -> None:
    """Give a device exclusive access to a page: GUP it for write, then swap in a device entry.

    mm/rmap.c: make_device_exclusive_range (6.12) / make_device_exclusive (6.15): a
    FOLL_GET | FOLL_WRITE | FOLL_SPLIT_PMD lookup first (so the PTE is present,
    writable, and the page exclusive), then the PTE becomes a device-exclusive
    entry. The page stays mapped and keeps PG_anon_exclusive.
    Which PTEs are converted follows 6.15: exactly the requested one, of any
    subpage. 6.12 skips a tail page of a large folio altogether and, for a
    small folio or a head page, converts through an rmap walk
    (folio_make_device_exclusive -> page_make_device_exclusive_one) every PTE
    that maps the folio, in any mm, each writable or readable as it was
    (listed in the simplifications of :mod:`anonlib.model`).
    """
    from ..results import BackOff
    from ..state import Entry, EntryKind, FolioKind
    from .huge_memory import split_huge_pmd
    from .memory import handle_mm_fault

    v = m.vma(proc, vma)
    if v.kind is MapKind.HUGETLB:
        raise BackOff("hugetlb pages cannot be made device-exclusive")
    if not v.writable or index in v.holes:
        raise BackOff("the mapping is not writable (the FOLL_WRITE lookup fails)")
    split_huge_pmd(m, proc, vma)  # FOLL_SPLIT_PMD: follow_pmd_mask splits a present PMD
    if handle_mm_fault(m, proc, vma, index, write=True):
        raise BackOff("the write fault failed")
    split_huge_pmd(m, proc, vma)  # ... and the one a fault in an empty range just installed
    loc, e, _page = m.page_at(proc, vma, index)
    assert e is not None and e.kind is EntryKind.PRESENT and e.writable
    if m.folio(e.folio).kind is not FolioKind.SMALL and not m.folio(e.folio).large:
        raise BackOff("not an anonymous page")
    m.set(loc, Entry(EntryKind.DEVICE_EXCLUSIVE, e.folio, e.page, writable=True,
                     soft_dirty=e.soft_dirty))

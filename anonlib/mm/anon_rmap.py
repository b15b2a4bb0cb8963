"""The anonymous rmap helpers that set and clear PG_anon_exclusive (include/linux/rmap.h).

These are the helpers every fault, fork and unmap path calls: the inline
folio_try_dup_anon_rmap_* and folio_try_share_anon_rmap_* of
include/linux/rmap.h, and folio_add_new_anon_rmap, which rmap.h declares and
mm/rmap.c defines (6.12). They only change the flag, so they sit at the bottom
of :mod:`anonlib.mm`'s layers; the mm/rmap.c function that faults pages in
(make_device_exclusive_range) is in :mod:`.rmap`, above the fault handlers.
"""

from __future__ import annotations

from ..mem import Mem
from ..results import BackOff
from ..schemes import DeviceExclusive
from ..state import EntryKind, replace


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


def folio_remove_rmap(m: Mem, fid: int, pages: tuple[int, ...] | list[int] | range) -> None:
    """The entries of ``pages`` were just unmapped as one batch: mark the folio partially
    mapped if one of them lost its last mapping while another page stays mapped.

    mm/rmap.c: __folio_remove_rmap -> deferred_split_folio(folio, true) (6.12; the
    partially-mapped bit is 8422acdc97ed). Only for large anonymous folios of more than two
    pages, and never for a folio in the swap cache; the bit stays until the folio
    is split or freed. The caller removes the entries first and passes one batch
    (zap_present_ptes unmaps a run of PTEs of one folio at once, so zapping a whole
    folio never marks it; try_to_migrate_one goes one PTE at a time). Only under a
    scheme whose reclaim or migration reads the mark (``Scheme.tracks_partially_mapped``).
    """
    f = m.folio(fid)
    if not m.scheme.tracks_partially_mapped:
        return  # a kernel before the mark (lts-6.1): nothing reads it
    if f.partially_mapped or len(f.pages) <= 2 or f.swapcache is not None:
        return
    if not any(m.mapcount(fid, i) == 0 for i in pages) or not m.folio_mapcount(fid):
        return
    m.set_folio(replace(f, partially_mapped=True))


def back_off_from_device_exclusive(m: Mem, fid: int, who: str) -> None:
    """Reclaim, migration and KSM leave a folio with a device-exclusive entry alone (6.12).

    Scheme point ``device_exclusive_walk``. Under RMAP_WALK (5.14 to 6.14) the
    rmap walkers are handed device-exclusive entries by page_vma_mapped_walk
    (mm/page_vma_mapped.c: map_pte and check_pte accept them) but were written
    for present PTEs: in 6.12 mm/rmap.c: try_to_migrate_one takes the entry's
    page from pte_pfn, which is meaningless for a swap-type PTE, and the folio's
    references exceed its map count, since the entries hold no map count. The
    6.15 series ("mm: device-exclusive memory access fixes + cleanups") says
    the old handling was broken and made swap-out and migration of such folios
    work. The model does not pretend to know what 6.12 does there: it backs off.
    Under FOLIO_WALK the callers decide as before (reclaim and migration still
    refuse a folio mapped by any non-present entry).
    """
    if m.scheme.device_exclusive_walk is not DeviceExclusive.RMAP_WALK:
        return
    if m.mappings_of(fid, (EntryKind.DEVICE_EXCLUSIVE,)):
        raise BackOff(f"{who}: the folio has a device-exclusive entry, which the 6.12 rmap "
                      "walk does not handle (no map count, pte_pfn of a swap PTE)")

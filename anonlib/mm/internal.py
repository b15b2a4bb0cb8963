"""Helpers the kernel's headers give every mm file (include/linux/mm.h, mm/internal.h).

Two rules that several files apply, each written once here:

* :func:`folio_expected_ref_count`: the references a folio's mappings and
  the swap cache account for, so that a caller can tell whether anyone else
  (a GUP reference, a pin) holds it.
* :func:`copy_anon_folio`: a COW copy, made exclusive and counted in
  ``World.copies``, so that no copying path can leave a copy uncounted.
"""

from __future__ import annotations

from ..mem import Mem
from ..state import Folio, FolioKind
from .anon_rmap import folio_add_new_anon_rmap


def folio_expected_ref_count(m: Mem, fid: int) -> int:
    """The references a folio's page table mappings and the swap cache hold.

    include/linux/mm.h: folio_expected_ref_count (the 6.12 stable series the
    model follows, as in the 6.12.118 source): one reference per page while the
    folio is in the swap cache, plus folio_mapcount. An anonymous folio has no
    page cache or PG_private references. The caller adds the references it
    holds itself (migration's isolation, KSM's lookup), as in the kernel; a
    folio_ref_count above the sum means someone else (GUP) holds it. v6.12 as
    released had no such function: mm/migrate.c: folio_expected_refs counted
    the isolation reference plus one per page of the swap cache (the folio is
    unmapped by then), and the other callers write the sum out themselves, in
    the stable series too: mm/ksm.c: write_protect_page, mm/khugepaged.c:
    is_refcount_suitable, mm/migrate_device.c: migrate_vma_check_page,
    mm/huge_memory.c: can_split_folio, mm/vmscan.c: __remove_mapping. The
    model calls this one function from all of them.
    """
    f = m.folio(fid)
    swapcache = len(f.pages) if f.swapcache is not None else 0
    return swapcache + m.folio_mapcount(fid)


def copy_anon_folio(m: Mem, kind: FolioKind, data: tuple[str, ...], huge: bool = False
                    ) -> Folio:
    """Allocate a folio of ``kind`` holding ``data``, exclusive and not yet mapped; count it.

    The steps every anonymous COW copy shares (6.12): allocate (folio_prealloc,
    alloc_hugetlb_folio), copy the contents (mm/memory.c: __wp_page_copy_user,
    copy_user_highpage in copy_present_page, copy_user_large_folio for
    hugetlb), then folio_add_new_anon_rmap / hugetlb_add_new_anon_rmap, which
    makes every page (or the head, ``huge``) exclusive. Callers:
    mm/memory.c: wp_page_copy and copy_present_page, mm/hugetlb.c: hugetlb_wp
    and copy_hugetlb_page_range. The caller maps the copy. ``World.copies``
    (the model's ghost count of page copies) grows by one per page.
    """
    f = m.new_folio(kind, data)
    folio_add_new_anon_rmap(m, f.id, huge=huge)
    m.copies += len(data)
    return f

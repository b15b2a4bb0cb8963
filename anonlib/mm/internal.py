"""Helpers the kernel's headers give every mm file (include/linux/mm.h, mm/internal.h).

Two rules that several files apply, each written once here:

* :func:`folio_expected_ref_count`: the references a folio's mappings and
  the swap cache account for, so that a caller can tell whether anyone else
  (a GUP reference, a pin) holds it.
* :func:`can_change_pte_writable`: whether a PTE may be made writable without
  a write fault (mprotect, and 6.15's restore of a device-exclusive entry).
* :func:`copy_anon_folio`: a COW copy, made exclusive and counted in
  ``World.copies``, so that no copying path can leave a copy uncounted.
* :func:`can_reuse_anon_page`: whether a fault may keep a page instead of
  copying it, under every :class:`~anonlib.schemes.Reuse` rule, for all four
  faults that decide it (do_wp_page, do_swap_page, do_huge_pmd_wp_page,
  hugetlb_wp).
"""

from __future__ import annotations

from typing import NamedTuple, assert_never

from ..mem import LARGE_ANON, Loc, Mem
from ..schemes import LargeReuse, Reuse
from ..state import ZERO_FOLIO, Entry, EntryKind, Folio, FolioKind, Vma, replace
from .anon_rmap import folio_add_new_anon_rmap
from .swapfile import folio_free_swap, reuse_swap_page


class SwapIn(NamedTuple):
    """What do_swap_page knows when it decides: the fault's kind and the swap PTE's bit."""

    #: a write fault (FAULT_FLAG_WRITE)
    write: bool
    #: the swap PTE's exclusive bit, as the scheme reads it (``swp_exclusive``)
    exclusive: bool


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


def can_change_pte_writable(m: Mem, v: Vma, loc: Loc, e: Entry) -> bool:
    """May mprotect make this private PTE (or PMD) writable without a write fault?

    mm/mprotect.c: can_change_pte_writable / can_change_pmd_writable (6.12): only an
    exclusive anonymous page, and not while soft-dirty tracking needs the write
    fault. Scheme point ``mprotect_upgrade``: 6.2's rule (d84887739d5c), clean or dirty;
    6.0-6.1 (64fe24a3e05e) also required a dirty PTE, which the model does not track.
    A PMD (``loc.huge``) only where the scheme's ``mprotect_upgrade_pmd`` says so (6.2+,
    c27f479ef542; 6.1's change_huge_pmd never makes one writable).
    It lives in mm/mprotect.c; here, with the rules several files share, because
    6.15's restore_exclusive_pte (mm/memory.c, 9a914592140e) asks it too
    (scheme point ``device_exclusive_walk``, :func:`.memory.remove_device_exclusive_entry`).
    """
    if not m.scheme.mprotect_upgrade or e.kind is not EntryKind.PRESENT:
        return False
    if loc.huge and not m.scheme.mprotect_upgrade_pmd:
        return False
    if v.softdirty_tracking and not e.soft_dirty:
        return False
    if e.folio == ZERO_FOLIO or m.folio(e.folio).kind is FolioKind.KSM:
        return False
    return m.exclusive(e.folio, e.page, loc.huge)


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


def wp_can_reuse_anon_folio(m: Mem, fid: int) -> bool:
    """May an anonymous folio whose faulting page is not exclusive be reused?

    mm/memory.c: wp_can_reuse_anon_folio (6.12). A small folio: give up early
    when the refcount shows other users (more than ours plus the swap
    cache's), then drop the swap cache copy if no swap entry refers to it,
    then require refcount == 1. (The model has no per-CPU LRU batches, so the
    draining step has nothing to do.) A large folio: the scheme point
    ``large_reuse``; as a small one up to 6.8 (REFCOUNT: 6.1's do_wp_page has no
    large-folio case, so only a folio whose one reference is the faulting PTE
    passes), never from 6.9 to 6.14, by the per-MM tracking from 6.15
    (:func:`wp_can_reuse_large_anon_folio`).
    """
    f = m.folio(fid)
    if f.large and m.scheme.large_reuse is not LargeReuse.REFCOUNT:
        if m.scheme.large_reuse is LargeReuse.NEVER:
            return False
        return wp_can_reuse_large_anon_folio(m, fid)
    in_swapcache = f.swapcache is not None
    if m.refcount(fid) > 1 + int(in_swapcache):
        return False
    if in_swapcache:
        folio_free_swap(m, fid)
    return m.refcount(fid) == 1


def wp_can_reuse_large_anon_folio(m: Mem, fid: int) -> bool:
    """6.15's reuse test for a PTE-mapped large folio (``large_reuse=MM_SLOTS``).

    mm/memory.c: __wp_can_reuse_large_anon_folio (6.15, 1da190f4d0a6), in its
    order: the folio is mapped more than once in all (a folio mapped by the
    faulting PTE alone is copied, so that it can be freed); the per-MM "maybe
    mapped shared" bit is clear (with the faulting PTE in this process, every
    mapping is then in it); the swap cache copy, if any, is dropped when no
    swap entry refers to it; and every reference is a mapping
    (folio_large_mapcount == folio_ref_count: a GUP reference, a pin, the swap
    cache or migration's isolation on any page says no). The kernel checks the
    last two again under the folio's mapcount lock; the model has no
    concurrency. The caller (do_wp_page, write or unshare fault) marks the
    faulting page only.
    """
    f = m.folio(fid)
    if f.kind not in LARGE_ANON:
        return False  # hugetlb never gets here: hugetlb_wp decides
    mapcount = m.folio_mapcount(fid)
    if mapcount <= 1 or f.maybe_mapped_shared:
        return False
    if f.swapcache is not None:
        folio_free_swap(m, fid)
    return m.folio_mapcount(fid) == m.refcount(fid)


def can_reuse_anon_page(m: Mem, rule: Reuse, fid: int, page: int, *, huge: bool = False,
                        swapin: SwapIn | None = None) -> bool:
    """The COW reuse decision of every fault: may this mapping keep the page as its own?

    Called by mm/memory.c: do_wp_page and do_swap_page, mm/huge_memory.c:
    do_huge_pmd_wp_page and mm/hugetlb.c: hugetlb_wp, each with its scheme
    field (``wp_reuse``, ``swapin_reuse``, ``pmd_reuse``, ``hugetlb_reuse``);
    KSM pages are the scheme's ``ksm_reuse`` decision. ``huge``: the page is
    mapped by a PMD or a hugetlb entry (the flag on its head). ``swapin``: the
    fault is do_swap_page's, after swap_free and should_try_to_free_swap (the
    page is not mapped yet). A yes means the caller maps the page exclusive
    and marks it so (SetPageAnonExclusive is the fault handler's, as in the
    kernel; a no-op where the scheme has no flag).

    * ``ANON_EXCLUSIVE`` (5.18/5.19 on): the flag, for swap-in the swap PTE's
      bit; else, for a small folio, wp_can_reuse_anon_folio; for a PMD,
      drop an unneeded swap cache copy and require refcount == 1
      (do_huge_pmd_wp_page, 6.12); at swap-in, no reference besides ours
      (do_swap_page, 6.12: folio_ref_count == 1 with the fault's own).
    * ``PAGE_COUNT`` (do_wp_page, 5.9 to 5.17: 09854ba94c6a): refcount == 1
      (page_count of a subpage is its folio's); at swap-in, on a write fault,
      no reference besides ours (no kernel did this at swap-in).
    * ``MAPCOUNT`` (up to 5.17; hugetlb_wp still, 6.12): reuse_swap_page;
      at swap-in only on a write fault, counting the swap PTE the fault came
      from (5.17's do_swap_page asked before swap_free).
    """
    f = m.folio(fid)
    if f.kind is FolioKind.KSM:
        # up to 5.8 only (reuse_ksm_page): a write fault takes back a KSM page mapped once
        if swapin is not None or not m.scheme.ksm_reuse or m.refcount(fid) != 1:
            return False
        m.set_folio(replace(f, kind=FolioKind.SMALL))
        return True
    match rule:
        case Reuse.ANON_EXCLUSIVE:
            if swapin is not None:
                reuse = swapin.exclusive or m.refcount(fid) == 0
            elif m.exclusive(fid, page, huge):
                return True
            elif huge:
                if not m.folio_swapped(fid):
                    folio_free_swap(m, fid)
                reuse = m.refcount(fid) == 1
            else:
                reuse = wp_can_reuse_anon_folio(m, fid)
        case Reuse.PAGE_COUNT:
            if swapin is not None:
                reuse = swapin.write and m.refcount(fid) == 0
            else:
                reuse = m.refcount(fid) == 1
        case Reuse.MAPCOUNT:
            if swapin is not None:
                reuse = swapin.write and reuse_swap_page(m, fid, page, own_swap_pte=True)
            else:
                reuse = reuse_swap_page(m, fid, page)
        case _:
            assert_never(rule)
    return reuse

"""Page faults, COW and zapping (mm/memory.c).

The entry points are :func:`handle_mm_fault`, which takes exactly the
faults a CPU access would take (retrying as the hardware does), and
:func:`zap_pte_range` for unmapping. PMD and hugetlb entries are handed to
:mod:`.huge_memory` and :mod:`.hugetlb`.
"""

from __future__ import annotations

from ..mem import Loc, Mem
from ..ops import MapKind
from ..schemes import DeviceExclusive
from ..state import ZERO_FOLIO, ZERO_VALUE, Entry, EntryKind, FolioKind, replace
from . import huge_memory, hugetlb, migrate, migrate_device
from .anon_rmap import folio_add_new_anon_rmap, folio_remove_rmap
from .internal import SwapIn, can_change_pte_writable, can_reuse_anon_page, copy_anon_folio
from .swapfile import folio_free_swap, free_swap_and_cache

SIGSEGV = "SIGSEGV"
SIGBUS = "SIGBUS"

#: More retries than any fault sequence needs; guards the model against a loop.
MAX_RETRIES = 8


def handle_mm_fault(m: Mem, proc: str, vma: str, index: int, write: bool,
                    unshare: bool = False) -> str | None:
    """Resolve an access to vma[index] as the kernel would; return a signal name or None.

    mm/memory.c: handle_mm_fault -> __handle_mm_fault -> handle_pte_fault (6.12), including
    the retry a CPU makes after each fault. ``unshare`` is FAULT_FLAG_UNSHARE (GUP only).
    """
    v = m.vma(proc, vma)
    if index in v.holes:
        return SIGSEGV
    if write and not v.writable:
        return SIGSEGV
    for _ in range(MAX_RETRIES):
        loc, e, page = m.page_at(proc, vma, index)
        if e is None:
            do_anonymous_page(m, loc, index, write)
            continue
        if e.kind is EntryKind.PRESENT:
            if write and not e.writable:
                wp_fault(m, loc, page, unshare=False)
                continue
            if unshare and must_unshare_for_fault(m, loc, e, page):
                wp_fault(m, loc, page, unshare=True)
                continue
            return None
        if e.kind is EntryKind.SWAP:
            sig = do_swap_page(m, loc, write)
            if sig:
                return sig
            continue
        if e.kind is EntryKind.MIGRATION:
            migrate.migration_entry_wait(m, e.folio)
            continue
        if e.kind is EntryKind.DEVICE_PRIVATE:
            migrate_device.migrate_to_ram(m, e.folio)
            continue
        if e.kind is EntryKind.DEVICE_EXCLUSIVE:
            remove_device_exclusive_entry(m, loc)
            continue
        if e.kind is EntryKind.HWPOISON:
            return SIGBUS
    raise AssertionError(f"fault on {proc} {vma}[{index}] did not settle")  # pragma: no cover


def must_unshare_for_fault(m: Mem, loc: Loc, e: Entry, page: int) -> bool:
    """An unshare fault has work to do: the page is not (provably) exclusive.

    mm/memory.c: do_wp_page, the FAULT_FLAG_UNSHARE branch (6.12): an already
    exclusive anonymous page needs nothing.
    """
    if e.folio == ZERO_FOLIO:
        return True
    f = m.folio(e.folio)
    return f.kind is FolioKind.KSM or not m.exclusive(e.folio, page, loc.huge)


def wp_fault(m: Mem, loc: Loc, page: int, unshare: bool) -> None:
    """Route a write (or unshare) fault on a read-only present entry to its handler."""
    v = m.vma(loc.proc, loc.vma)
    if v.kind is MapKind.HUGETLB:
        hugetlb.hugetlb_wp(m, loc, page, unshare)
    elif loc.huge:
        huge_memory.do_huge_pmd_wp_page(m, loc, page, unshare)
    else:
        do_wp_page(m, loc, unshare)


def do_anonymous_page(m: Mem, loc: Loc, index: int, write: bool) -> None:
    """First touch of anonymous memory: zero page on read, a fresh exclusive folio on write.

    mm/memory.c: do_anonymous_page (6.12); THP and hugetlb ranges go to
    do_huge_pmd_anonymous_page (mm/huge_memory.c) and hugetlb_no_page (mm/hugetlb.c).
    In an ``mthp`` mapping a write fault may allocate a large folio
    (:func:`alloc_anon_folio`), mapped by one PTE per page, every page exclusive
    (folio_add_new_anon_rmap with RMAP_EXCLUSIVE).
    """
    v = m.vma(loc.proc, loc.vma)
    if v.kind is MapKind.HUGETLB:
        hugetlb.hugetlb_no_page(m, loc, write)
        return
    if v.kind is MapKind.THP and huge_memory.pmd_fault_possible(v):
        huge_memory.do_huge_pmd_anonymous_page(m, loc.proc, v, write)
        return
    if not write:
        m.set(loc, Entry(EntryKind.PRESENT, ZERO_FOLIO))
        return
    start, nr = alloc_anon_folio(m, loc, index)
    kind = FolioKind.MTHP if nr > 1 else FolioKind.SMALL
    f = m.new_folio(kind, (ZERO_VALUE,) * nr)
    folio_add_new_anon_rmap(m, f.id)
    for i in range(nr):
        m.set(Loc(loc.proc, loc.vma, False, start + i),
              Entry(EntryKind.PRESENT, f.id, i, writable=v.writable, soft_dirty=True))


def alloc_anon_folio(m: Mem, loc: Loc, index: int) -> tuple[int, int]:
    """The size of the folio a write fault allocates, and its first page: (start, pages).

    mm/memory.c: alloc_anon_folio (6.12, mTHP since 6.8): in an ``mthp`` mapping,
    the largest enabled size (``config mthp_pages``: the sizes whose
    hugepages-<size>kB/enabled is ``madvise``; the mapping has VM_HUGEPAGE) whose
    naturally aligned block around the faulting page lies inside the VMA
    (thp_vma_suitable_orders) and has only empty PTEs (pte_range_none; a
    zero-page PTE is not empty); else the next smaller size; else one page.
    The model's ``mthp`` mapping starts at an address aligned to its largest
    size, so the block is aligned in page indexes. A block that takes in a page
    a fork child does not have, or crosses the edge of an MADV_DONTFORK range
    (which split the kernel's VMA there), does not fit the VMA either.
    """
    v = m.vma(loc.proc, loc.vma)
    if v.kind is MapKind.MTHP:
        for size in m.config.mthp_pages:
            start = index - index % size
            block = range(start, start + size)
            if (block.stop <= v.npages and not any(i in v.holes for i in block)
                    and len({i in v.dontfork for i in block}) == 1
                    and all(v.ptes[i] is None for i in block)):
                return start, size
    return index, 1


def do_wp_page(m: Mem, loc: Loc, unshare: bool) -> None:
    """Write or unshare fault on a read-only PTE: reuse the page or copy it.

    mm/memory.c: do_wp_page (6.12). The reuse rule is the scheme's
    ``wp_reuse`` decision point: PG_anon_exclusive (5.19+), page_count (5.9-5.17)
    or the map count (up to 5.8); a KSM page is ``ksm_reuse``'s
    (:func:`~anonlib.mm.internal.can_reuse_anon_page` decides both).
    """
    e = m.get(loc)
    assert e is not None and e.kind is EntryKind.PRESENT
    if e.folio == ZERO_FOLIO:
        wp_page_copy(m, loc, unshare)
        return
    if can_reuse_anon_page(m, m.scheme.wp_reuse, e.folio, e.page):
        m.set_exclusive(e.folio, (e.page,))
        wp_page_reuse(m, loc, unshare)
    else:
        wp_page_copy(m, loc, unshare)


def wp_page_reuse(m: Mem, loc: Loc, unshare: bool) -> None:
    """Reuse the mapped page: make the PTE writable (or, for unshare, leave it read-only).

    mm/memory.c: wp_page_reuse (6.12).
    """
    if unshare:
        return
    e = m.get(loc)
    assert e is not None
    m.set(loc, replace(e, writable=True, soft_dirty=True))


def wp_page_copy(m: Mem, loc: Loc, unshare: bool) -> None:
    """COW: copy the page into a fresh exclusive small folio and map that instead.

    mm/memory.c: wp_page_copy (6.12). An unshare fault maps the copy
    read-only and keeps the soft-dirty bit. The old page keeps its flag; if it
    was that page's last mapping, a large folio may become partially mapped
    (folio_remove_rmap_pte).
    """
    e = m.get(loc)
    assert e is not None
    f = copy_anon_folio(m, FolioKind.SMALL, (m.data(e.folio, e.page),))
    if unshare:
        m.set(loc, Entry(EntryKind.PRESENT, f.id, 0, writable=False, soft_dirty=e.soft_dirty))
    else:
        m.set(loc, Entry(EntryKind.PRESENT, f.id, 0, writable=True, soft_dirty=True))
    if e.folio != ZERO_FOLIO:
        folio_remove_rmap(m, e.folio, (e.page,))




def do_swap_page(m: Mem, loc: Loc, write: bool) -> str | None:
    """Fault on a swap PTE: find the folio in the swap cache or read it in, and map it.

    mm/memory.c: do_swap_page (6.12). Whether the page is mapped exclusive (and
    writable) is the scheme's ``swapin_reuse`` decision point: since 5.18, if the
    swap PTE's exclusive bit says so (scheme ``swp_exclusive``) or if, after the
    swap cache copy was dropped, ours is the only reference; up to 5.17, on a
    write fault, reuse_swap_page. The model's swap device is not
    SWP_SYNCHRONOUS_IO, so a page read back always passes through the swap
    cache, and a large folio is mapped one page at a time. A poisoned page
    found in the swap cache (memory failure keeps a dirty one there) is not
    mapped: VM_FAULT_HWPOISON, returned as SIGBUS.
    """
    e = m.get(loc)
    assert e is not None and e.kind is EntryKind.SWAP
    v = m.vma(loc.proc, loc.vma)
    slot = e.slot
    f = m.swapcache_folio(slot)
    if f is not None and f.swapcache is not None and f.pages[f.swapcache.index(slot)].hwpoison:
        return SIGBUS
    if f is None:
        f = m.new_folio(FolioKind.SMALL, (m.slots[slot].data,))
        f = replace(f, swapcache=(slot,))
        m.set_folio(f)
    assert f.swapcache is not None
    page = f.swapcache.index(slot)
    scheme = m.scheme
    exclusive = e.exclusive and scheme.swp_exclusive
    m.set(loc, None)  # swap_free(): our swap reference is gone
    if should_try_to_free_swap(m, f.id, write):
        folio_free_swap(m, f.id)
    if can_reuse_anon_page(m, scheme.swapin_reuse, f.id, page, swapin=SwapIn(write, exclusive)):
        needs_wp = v.softdirty_tracking and not e.soft_dirty
        writable = v.writable and not needs_wp and (write or scheme.swapin_writable_on_read)
        m.set(loc, Entry(EntryKind.PRESENT, f.id, page, writable=writable,
                         soft_dirty=e.soft_dirty or (writable and write)))
        m.set_exclusive(f.id, (page,))
    else:
        m.set(loc, Entry(EntryKind.PRESENT, f.id, page, writable=False,
                         soft_dirty=e.soft_dirty))
    return None


def should_try_to_free_swap(m: Mem, fid: int, write: bool) -> bool:
    """Whether do_swap_page drops the swap cache copy of the folio it just mapped.

    mm/memory.c: should_try_to_free_swap (6.12) says yes for a folio in the swap
    cache in two cases. First, on any fault, when swap is filling up
    (``mem_cgroup_swap_full``: over half of all swap in use, or half of a memory
    cgroup's swap limit), when the mapping is VM_LOCKED or when the folio is
    mlocked. Second, on a write fault to
    a non-KSM folio when ``folio_ref_count == 1 + nr_pages`` (our lookup reference
    plus the swap cache's): no mapping and no GUP reference. The model has no
    memory cgroups, no swap size limit and no mlock, so only the second case can
    arise here.
    """
    f = m.folio(fid)
    if f.swapcache is None or not write or f.kind is FolioKind.KSM:
        return False
    return m.refcount(fid) == len(f.pages)


def remove_device_exclusive_entry(m: Mem, loc: Loc) -> None:
    """A CPU access to a device-exclusive entry revokes device access and restores the PTE.

    mm/memory.c: remove_device_exclusive_entry -> restore_exclusive_pte; fork restores the
    parent's PTE the same way first (copy_nonpresent_pte -> try_restore_exclusive_pte).
    The page stays as exclusive or shared as it was, and the PTE maps it again
    (in 6.12 folio_add_anon_rmap_pte with RMAP_NONE gives the map count back).
    Whether the PTE is writable is the scheme's ``device_exclusive_walk``:

    * RMAP_WALK (6.12): only a writable entry, and only if the mapping has
      VM_WRITE (maybe_mkwrite); it is marked dirty then (pte_mkdirty, soft-dirty
      too on x86), whether or not VM_WRITE is set. A readable entry gives a
      read-only PTE, so the next write faults (and reuses an exclusive page).
    * FOLIO_WALK (6.15, 9a914592140e): VM_WRITE and can_change_pte_writable,
      mprotect's test: an exclusive page, and no soft-dirty tracking that needs
      the write fault.
    """
    e = m.get(loc)
    assert e is not None and e.kind is EntryKind.DEVICE_EXCLUSIVE
    v = m.vma(loc.proc, loc.vma)
    if m.scheme.device_exclusive_walk is DeviceExclusive.RMAP_WALK:
        writable = e.writable and v.writable
        soft_dirty = e.soft_dirty or e.writable
    else:
        restored = Entry(EntryKind.PRESENT, e.folio, e.page, soft_dirty=e.soft_dirty)
        writable = v.writable and can_change_pte_writable(m, v, loc, restored)
        soft_dirty = e.soft_dirty or writable
    m.set(loc, Entry(EntryKind.PRESENT, e.folio, e.page, writable=writable,
                     soft_dirty=soft_dirty))


def zap_pte_range(m: Mem, proc: str, vma: str, indexes: range | list[int]) -> None:
    """Unmap pages (MADV_DONTNEED, munmap, exit); the flag on a zapped page is left alone.

    mm/memory.c: zap_pte_range -> zap_present_ptes / zap_nonpresent_ptes (6.12). A swap
    entry drops its swap count; when the last one goes, the swap cache copy of an
    unmapped folio goes too (free_swap_and_cache, mm/swapfile.c). A PMD that covers
    only part of the range is split first (__split_huge_pmd). The kernel zaps a
    run of PTEs that map consecutive pages of one large folio as one batch
    (folio_pte_batch, folio_remove_rmap_ptes); the model takes all of a folio's
    pages in the range as one batch, which gives the same partially-mapped
    verdict in every state the model reaches (a page of a large folio that is
    not partially mapped is always mapped somewhere) and does not depend on the
    order of the pages, which keeps the explorer's tail symmetry sound.
    A device-exclusive entry drops its reference; its map count too only under
    ``device_exclusive_walk`` = FOLIO_WALK (6.15): in 6.12 zap_nonpresent_ptes calls
    folio_remove_rmap_pte for a device-private entry only, as a device-exclusive one
    has no map count.
    """
    v = m.vma(proc, vma)
    idx = list(indexes)
    if v.huge is not None:
        if v.kind is MapKind.HUGETLB or set(idx) == set(range(v.npages)):
            m.set(Loc(proc, vma, True, 0), None)
        else:
            huge_memory.split_huge_pmd(m, proc, vma)
    v = m.vma(proc, vma)
    zapped: dict[int, list[int]] = {}  # folio -> its pages this zap unmapped
    for i in idx:
        if v.kind is MapKind.HUGETLB:
            break
        e = v.ptes[i]
        if e is None:
            continue
        m.set(Loc(proc, vma, False, i), None)
        if e.kind is EntryKind.SWAP:
            free_swap_and_cache(m, e.slot)
        elif e.kind is EntryKind.PRESENT and e.folio != ZERO_FOLIO:
            zapped.setdefault(e.folio, []).append(e.page)
        elif (e.kind is EntryKind.DEVICE_EXCLUSIVE
              and m.scheme.device_exclusive_walk is DeviceExclusive.FOLIO_WALK):
            zapped.setdefault(e.folio, []).append(e.page)  # 6.15: the entry had a map count
        v = m.vma(proc, vma)
    for fid, pages in zapped.items():
        folio_remove_rmap(m, fid, pages)
    shadow = tuple(frozenset({ZERO_VALUE}) if i in idx else s for i, s in enumerate(v.shadow))
    m.set_vma(proc, replace(m.vma(proc, vma), shadow=shadow))
    for i in idx:
        m.forget_address(proc, vma, i)


"""mprotect() and soft-dirty clearing: write permission and the flag (mm/mprotect.c,
fs/proc/task_mmu.c)."""

from __future__ import annotations

from ..mem import Loc, Mem
from ..ops import MapKind
from ..schemes import DeviceExclusive, MprotectBatch
from ..state import ZERO_FOLIO, EntryKind, Vma, replace
from .internal import can_change_pte_writable


def change_protection(m: Mem, proc: str, vma: str, write: bool) -> None:
    """mprotect() of a whole mapping to read-only or read/write.

    mm/mprotect.c: mprotect_fixup (6.12): a call that leaves the VMA's flags as
    they are returns at once, without walking the page table; otherwise the
    VMA takes the new protection and change_protection walks its entries
    (:func:`change_pte_range`).
    """
    v = m.vma(proc, vma)
    if v.writable == write:
        return
    m.set_vma(proc, replace(v, writable=write))
    change_pte_range(m, proc, vma, write)


def change_pte_range(m: Mem, proc: str, vma: str, write: bool) -> None:
    """Apply a changed protection to every entry of a mapping.

    mm/mprotect.c: change_protection -> change_pte_range / change_huge_pmd (6.12).
    Removing write makes present entries read-only. Every protection change,
    whether it removes write or not, demotes a writable migration entry to
    readable_exclusive (anonymous folio; a PMD migration entry too) and a
    writable device-private entry to readable, dropping its soft-dirty bit as
    the kernel does: change_pte_range does not work out the new protection of
    a non-present entry, it takes write away and leaves the decision to the
    next fault. (A change that keeps write, such as adding PROT_EXEC, is not
    in the scenario language, whose mprotect only toggles write; this
    function is also tested on its own.) The flag is untouched. Adding write
    upgrades only what can_change_pte_writable allows; hugetlb entries are
    never upgraded. Device-exclusive entries are the scheme's
    ``device_exclusive_walk``: 6.12 (RMAP_WALK) demotes a writable one to readable
    on every change, keeping its soft-dirty bit, so a later CPU access restores
    a read-only PTE; 6.15 (FOLIO_WALK, c25465eb7630) has one entry type and
    leaves it alone.
    """
    v = m.vma(proc, vma)
    locs = [Loc(proc, vma, True, 0)] if v.huge is not None else [
        Loc(proc, vma, False, i) for i in range(len(v.ptes))]
    asks = (_batch_pages(v) if write and v.huge is None
            and m.scheme.mprotect_batch is MprotectBatch.FOLIO_HEAD else {})
    for loc in locs:
        e = m.get(loc)
        if e is None:
            continue
        if e.kind is EntryKind.MIGRATION and e.writable:
            m.set(loc, replace(e, writable=False))
        elif e.kind is EntryKind.DEVICE_PRIVATE and e.writable:
            m.set(loc, replace(e, writable=False, soft_dirty=False))
        elif (e.kind is EntryKind.DEVICE_EXCLUSIVE and e.writable
              and m.scheme.device_exclusive_walk is DeviceExclusive.RMAP_WALK):
            m.set(loc, replace(e, writable=False))  # 6.12: readable entry, soft-dirty kept
        elif not write:
            if e.kind is EntryKind.PRESENT:
                m.set(loc, replace(e, writable=False))
        elif (e.kind is EntryKind.PRESENT and not e.writable and v.kind is not MapKind.HUGETLB
              and can_change_pte_writable(m, v, loc, replace(e, page=asks.get(loc.index,
                                                                              e.page)))):
            m.set(loc, replace(e, writable=True))


def _batch_pages(v: Vma) -> dict[int, int]:
    """Under the mutant ``mprotect-batch-head``: for each PTE in a run of a large folio, the
    page whose flag cac1db8c3aad's batching asked about.

    mm/mprotect.c: change_pte_range -> mprotect_folio_pte_batch and
    commit_anon_folio_batch (6.17-rc1): a run is the present PTEs that follow one
    another in one VMA and map consecutive pages of one folio with the same write
    and soft-dirty bits; it was committed testing folio_page(folio, 0) + i for its
    i-th PTE, the folio's first pages, instead of the pages the run maps (fixed by
    cf1b80dc31a1, 6.17-rc2). A run does not cross the edge of an MADV_DONTFORK
    range (a VMA boundary in the kernel) or a page a fork child lacks.
    """
    asks: dict[int, int] = {}
    start: int | None = None
    for i, e in enumerate(v.ptes):
        prev = v.ptes[i - 1] if i else None
        joins = (start is not None and e is not None and prev is not None
                 and e.kind is EntryKind.PRESENT and e.folio == prev.folio
                 and e.page == prev.page + 1 and e.writable == prev.writable
                 and e.soft_dirty == prev.soft_dirty and i not in v.holes
                 and (i in v.dontfork) == (i - 1 in v.dontfork))
        if not joins:
            start = (i if e is not None and e.kind is EntryKind.PRESENT
                     and e.folio != ZERO_FOLIO and i not in v.holes else None)
        if start is not None:
            asks[i] = i - start
    return asks


def clear_refs_soft_dirty(m: Mem, proc: str) -> None:
    """``echo 4 > /proc/PID/clear_refs``: write-protect every PTE and clear its soft-dirty bit.

    fs/proc/task_mmu.c: clear_refs_write -> clear_soft_dirty / clear_soft_dirty_pmd (6.12).
    VM_SOFTDIRTY is cleared on each VMA, so from now on a write must fault to be
    recorded (vma_soft_dirty_enabled). The flag is untouched. hugetlb mappings
    are not walked. A writable PTE of a maybe-pinned folio is skipped
    (pte_is_pinned, scheme point ``clear_refs_skips_pinned``): write-protecting
    it would only make the next write fault break the pin. Every non-present
    entry (swap, migration, device-private, device-exclusive, hwpoison) loses
    its soft-dirty bit too (is_swap_pte is true for all of them).
    """
    has_pinned = m.proc(proc).has_pinned
    for v in m.proc(proc).vmas:
        if v.kind is MapKind.HUGETLB:
            continue
        m.set_vma(proc, replace(v, softdirty_tracking=True))
        locs = [Loc(proc, v.name, True, 0)] if v.huge is not None else [
            Loc(proc, v.name, False, i) for i in range(len(v.ptes))]
        for loc in locs:
            e = m.get(loc)
            if e is None:
                continue
            if e.kind is EntryKind.PRESENT:
                if (m.scheme.clear_refs_skips_pinned and e.writable and has_pinned
                        and m.maybe_pinned(e.folio)):
                    continue
                m.set(loc, replace(e, writable=False, soft_dirty=False))
            else:  # is_swap_pte(): every non-present entry (swap, migration, device, hwpoison)
                m.set(loc, replace(e, soft_dirty=False))

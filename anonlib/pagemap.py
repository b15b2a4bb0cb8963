"""What ``/proc/PID/pagemap`` would report for a page of the model: the bits a user can read.

``/proc/PID/pagemap`` has one 64-bit entry per virtual page. Bit 56,
``PM_MMAP_EXCLUSIVE``, is documented as "page exclusively mapped", and is
easy to take for ``PG_anon_exclusive``. It is not: the kernel computes it
from the map count of the page when the file is read, and only for present
entries. This module computes the entry from a World the way
fs/proc/task_mmu.c does in Linux 6.12, so that a scenario can put the two
side by side. Only the bits the model has a meaning for are computed:
present (63), swap (62), exclusively mapped (56) and soft-dirty (55); the
PFN, ``PM_FILE`` and ``PM_UFFD_WP`` are left out (every page of the model is
anonymous and no range is registered with userfaultfd).
"""

from __future__ import annotations

from dataclasses import dataclass

from .mem import Mem
from .ops import MapKind, PageRef
from .schemes import Scheme
from .state import ZERO_FOLIO, EntryKind, World

#: Bit numbers, as fs/proc/task_mmu.c defines them (PM_SOFT_DIRTY ... PM_PRESENT).
PM_SOFT_DIRTY = 55
PM_MMAP_EXCLUSIVE = 56
PM_SWAP = 62
PM_PRESENT = 63


@dataclass(frozen=True)
class PagemapEntry:
    """The bits of one pagemap entry that the model can compute."""

    present: bool
    swap: bool
    exclusive: bool  # bit 56, PM_MMAP_EXCLUSIVE: "exclusively mapped"
    soft_dirty: bool

    @property
    def value(self) -> int:
        """The entry as the 64-bit number pagemap returns, without the PFN field."""
        bits = ((PM_PRESENT, self.present), (PM_SWAP, self.swap),
                (PM_MMAP_EXCLUSIVE, self.exclusive), (PM_SOFT_DIRTY, self.soft_dirty))
        return sum(1 << b for b, on in bits if on)

    def text(self) -> str:
        """e.g. ``present=1 swap=0 exclusively-mapped(56)=1 soft-dirty(55)=0``."""
        return (f"present={int(self.present)} swap={int(self.swap)} "
                f"exclusively-mapped(56)={int(self.exclusive)} "
                f"soft-dirty(55)={int(self.soft_dirty)}")


def pagemap_entry(world: World, scheme: Scheme, ref: PageRef) -> PagemapEntry:
    """The pagemap entry of ``ref``.

    fs/proc/task_mmu.c: pte_to_pagemap_entry, pagemap_pmd_range,
    pagemap_hugetlb_range (6.12). A present entry sets bit 63, and bit 56
    when the page behind it (never the shared zero page) has a precise map
    count of 1 (``folio_precise_page_mapcount``; for hugetlb, when the folio
    is not mapped by more than one entry). Every non-present entry (swap,
    migration, device-private, device-exclusive, hwpoison) is a swap-type
    entry: bit 62 and never bit 56. Bit 55 is the entry's soft-dirty bit, or
    the mapping's ``VM_SOFTDIRTY`` (set until ``clear_refs`` clears it) for
    a page with no entry. A page outside any mapping (unmapped, or a hole
    ``MADV_DONTFORK`` left in a fork child) reads as all zero.
    """
    m = Mem(world, scheme)
    p = world.proc(ref.proc)
    v = p.vma(ref.mapping) if p is not None else None
    if v is None or ref.index in v.holes or not 0 <= ref.index < v.npages:
        return PagemapEntry(False, False, False, False)
    vm_softdirty = not v.softdirty_tracking
    e = v.entry(ref.index)
    if e is None:
        return PagemapEntry(False, False, False, vm_softdirty)
    soft_dirty = e.soft_dirty or vm_softdirty
    if e.kind is not EntryKind.PRESENT:
        return PagemapEntry(False, True, False, soft_dirty)
    if e.folio == ZERO_FOLIO:  # vm_normal_page() gives no page: no bit 56
        return PagemapEntry(True, False, False, soft_dirty)
    if v.kind is MapKind.HUGETLB:
        exclusive = m.folio_mapcount(e.folio) == 1
    else:
        page = ref.index if v.huge is not None else e.page
        exclusive = m.mapcount(e.folio, page) == 1
    return PagemapEntry(True, False, exclusive, soft_dirty)


def flag_and_pagemap(world: World, scheme: Scheme, refs: list[PageRef]) -> str:
    """One line per page: the model's state words (with the flag) beside its pagemap bits."""
    from .model import page_state
    from .results import ModelError

    lines = []
    for ref in refs:
        st = page_state(world, scheme, ref)
        words = str(st) if isinstance(st, ModelError) else " ".join(st.words())
        lines.append(f"{ref}: {words}\n    pagemap: {pagemap_entry(world, scheme, ref).text()}")
    return "\n".join(lines)

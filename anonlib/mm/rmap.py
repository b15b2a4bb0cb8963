"""Device-exclusive entries: the mm/rmap.c entry that faults a page in first (mm/rmap.c).

make_device_exclusive_range lives in mm/rmap.c (6.12) but begins with a GUP
lookup, which takes page faults; so this module sits above :mod:`.memory`.
The rmap helpers that the fault handlers themselves call are in
:mod:`.anon_rmap`.
"""

from __future__ import annotations

from ..mem import Mem
from ..ops import MapKind
from ..results import BackOff
from ..state import Entry, EntryKind, FolioKind
from .huge_memory import split_huge_pmd
from .memory import handle_mm_fault


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

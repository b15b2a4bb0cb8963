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
from ..schemes import DeviceExclusive
from ..state import Entry, EntryKind, FolioKind
from .anon_rmap import folio_remove_rmap
from .huge_memory import split_huge_pmd
from .memory import handle_mm_fault


def make_device_exclusive(m: Mem, proc: str, vma: str, index: int) -> str | None:
    """Give a device exclusive access to a page: GUP it for write, then swap in device entries.

    Both eras begin with a FOLL_GET | FOLL_WRITE | FOLL_SPLIT_PMD lookup (so the
    requested PTE is present, writable, and its page exclusive). The flag is
    never touched: a converted page keeps PG_anon_exclusive or its clear flag.
    What is converted is the scheme's ``device_exclusive_walk`` decision point:

    * RMAP_WALK, mm/rmap.c: make_device_exclusive_range (5.14 to 6.14, read in
      6.12): a tail page of a large folio is skipped. For a small page or a
      head page, folio_make_device_exclusive runs an rmap walk
      (page_make_device_exclusive_one) over every VMA, in every mm, that maps
      the folio, and turns each present PTE of any page of the folio into a
      device-exclusive entry, writable if the PTE was writable and readable
      otherwise (soft-dirty kept), dropping that page's map count
      (folio_remove_rmap_pte; the PTE's reference stays with the entry). An
      entry of the folio that is already device-exclusive stops the walk. The
      page counts as converted only if the requested PTE was writable and the
      folio's map count is now zero; otherwise the call fails, but the entries
      it made stay. Where the walk stops depends on the order of the anon_vma
      interval tree and of the addresses, which the model does not keep (and
      which its explorer may rename and permute away); the model takes the
      requested PTE first (the head page's PTE opens its folio's range) and,
      if the folio already has a device-exclusive entry, stops right after it.
      So it converts the rest only where no entry can stop the walk, and may
      report a failure where the kernel, walking in a luckier order, converts
      every mapping.
    * FOLIO_WALK, mm/rmap.c: make_device_exclusive (6.15, 438354724f69): a
      folio walk converts the requested PTE only, whichever subpage it maps,
      into the one device-exclusive entry type (always writable); the page
      keeps its map count.

    Returns the reason why the kernel reports the page as not converted, or
    None. The statement's outcome is then ``EBUSY``, what lib/test_hmm.c's
    dmirror_exclusive returns when make_device_exclusive_range leaves a page
    out; unlike ``skipped`` it keeps what the call did (the lookup's fault and
    the entries the walk made).
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
    f = m.folio(e.folio)
    if f.kind is not FolioKind.SMALL and not f.large:
        raise BackOff("not an anonymous page")
    if m.scheme.device_exclusive_walk is DeviceExclusive.FOLIO_WALK:
        m.set(loc, Entry(EntryKind.DEVICE_EXCLUSIVE, e.folio, e.page, writable=True,
                         soft_dirty=e.soft_dirty))
        return None
    if f.large and e.page != 0:
        return ("make_device_exclusive_range skips a tail page of a large folio (PageTail); "
                "nothing is converted")
    fid = f.id
    stops = bool(m.mappings_of(fid, (EntryKind.DEVICE_EXCLUSIVE,)))
    walk = [(loc, e)] + ([] if stops else [
        (loc2, e2) for loc2, e2 in m.mappings_of(fid, (EntryKind.PRESENT,)) if loc2 != loc])
    for loc2, e2 in walk:
        assert not loc2.huge, "page_make_device_exclusive_one: unexpected PMD-mapped THP"
        m.set(loc2, Entry(EntryKind.DEVICE_EXCLUSIVE, fid, e2.page, writable=e2.writable,
                          soft_dirty=e2.soft_dirty))
        folio_remove_rmap(m, fid, (e2.page,))
    # the kernel's other condition, a writable requested PTE (args.valid), holds: the
    # FOLL_WRITE lookup made it so, and the model's walk converts it first
    if m.folio_mapcount(fid):
        return ("folio_make_device_exclusive: the folio is still mapped (the walk stopped "
                "at a device-exclusive entry); the entries made stay")
    return None

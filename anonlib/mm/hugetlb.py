"""hugetlb: faults and COW on huge pages, the flag on the head page only (mm/hugetlb.c)."""

from __future__ import annotations

from ..mem import Loc, Mem
from ..state import ZERO_VALUE, Entry, EntryKind, FolioKind, replace
from .anon_rmap import folio_add_new_anon_rmap
from .internal import can_reuse_anon_page, copy_anon_folio


def hugetlb_no_page(m: Mem, loc: Loc, write: bool) -> None:
    """First touch of a hugetlb mapping (read or write): a fresh zeroed huge page, exclusive.

    mm/hugetlb.c: hugetlb_no_page -> hugetlb_add_new_anon_rmap (6.12). There is
    no zero page for hugetlb, so even a read fault allocates. A private
    mapping gets a read-only entry (make_huge_pte with VM_SHARED clear); a
    write fault then goes on to hugetlb_wp, which reuses the exclusive page.
    """
    v = m.vma(loc.proc, loc.vma)
    f = m.new_folio(FolioKind.HUGETLB, (ZERO_VALUE,) * v.npages)
    folio_add_new_anon_rmap(m, f.id, huge=True)
    m.set(loc, Entry(EntryKind.PRESENT, f.id, 0, writable=False, soft_dirty=write))


def hugetlb_wp(m: Mem, loc: Loc, page: int, unshare: bool) -> None:
    """Write or unshare fault on a read-only hugetlb entry: reuse, or copy the whole huge page.

    mm/hugetlb.c: hugetlb_wp (6.12). Reuse when the folio is mapped once
    (folio_mapcount == 1; an exclusive head implies it), then mark the head
    exclusive: a map count, so a FOLL_GET reference (vmsplice) is invisible to
    it. That is the leak the kernel's cow.c marks XFAIL for hugetlb (6.10+),
    and every scheme shares it: ``hugetlb_reuse`` is MAPCOUNT in each.
    """
    e = m.get(loc)
    assert e is not None and e.kind is EntryKind.PRESENT
    fid = e.folio
    if can_reuse_anon_page(m, m.scheme.hugetlb_reuse, fid, 0, huge=True):
        m.set_exclusive(fid, (0,), huge=True)
        if not unshare:
            m.set(loc, replace(e, writable=True, soft_dirty=True))
        return
    old = m.folio(fid)
    f = copy_anon_folio(m, FolioKind.HUGETLB, tuple(p.data for p in old.pages), huge=True)
    m.set(loc, Entry(EntryKind.PRESENT, f.id, 0, writable=not unshare,
                     soft_dirty=e.soft_dirty or not unshare))

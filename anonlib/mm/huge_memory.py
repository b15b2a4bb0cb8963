"""PMD-mapped THPs: first touch, write faults, PMD split and folio split (mm/huge_memory.c)."""

from __future__ import annotations

from ..mem import Loc, Mem
from ..ops import MapKind
from ..results import ErrorKind, OpFailed
from ..schemes import HugeZeroWp
from ..state import ZERO_FOLIO, ZERO_VALUE, Entry, EntryKind, FolioKind, Vma, replace
from .anon_rmap import folio_add_new_anon_rmap
from .internal import can_reuse_anon_page, folio_expected_ref_count


def pmd_fault_possible(v: Vma) -> bool:
    """A fault in a THP mapping may install a PMD: the range is whole and has no page table yet.

    mm/memory.c: __handle_mm_fault -> create_huge_pmd (6.12): only while the PMD is
    empty; once split, faults are handled PTE by PTE. MADV_DONTFORK on part of
    the range splits the VMA, after which no PMD fits.
    """
    return (
        v.kind is MapKind.THP
        and v.huge is None
        and not v.holes
        and len(v.dontfork) in (0, v.npages)
        and all(e is None for e in v.ptes)
    )


def do_huge_pmd_anonymous_page(m: Mem, proc: str, v: Vma, write: bool) -> None:
    """First touch of a THP range: the huge zero page on read, a fresh exclusive THP on write.

    mm/huge_memory.c: do_huge_pmd_anonymous_page, __do_huge_pmd_anonymous_page (6.12).
    """
    loc = Loc(proc, v.name, True, 0)
    if not write:
        m.set(loc, Entry(EntryKind.PRESENT, ZERO_FOLIO))
        return
    f = m.new_folio(FolioKind.THP, (ZERO_VALUE,) * v.npages)
    folio_add_new_anon_rmap(m, f.id, huge=True)
    m.set(loc, Entry(EntryKind.PRESENT, f.id, 0, writable=v.writable, soft_dirty=True))


def do_huge_pmd_wp_page(m: Mem, loc: Loc, page: int, unshare: bool) -> None:
    """Write or unshare fault on a read-only PMD: reuse the THP, or split the PMD and fall back.

    mm/huge_memory.c: do_huge_pmd_wp_page (6.12). On the huge zero page 6.12 falls
    back at once: the PMD is split into PTEs of the small zero page and only the
    faulting page gets a copy (the real-kernel check showed 6.12's split); from
    6.13 a whole THP is allocated instead (:func:`do_huge_zero_wp_pmd`, scheme
    point ``huge_zero_wp``). Reuse needs the head
    flag or refcount == 1 (5.18+, 3bff7e3f1f16); the scheme's ``pmd_reuse``
    decision point gives the older map-count rule
    (:func:`~anonlib.mm.internal.can_reuse_anon_page`).
    The fallback splits the PMD; the retried fault is then a PTE fault.
    """
    e = m.get(loc)
    assert e is not None and e.kind is EntryKind.PRESENT
    if e.folio == ZERO_FOLIO:
        if m.scheme.huge_zero_wp is HugeZeroWp.ALLOC_THP:
            do_huge_zero_wp_pmd(m, loc)
        else:
            split_huge_pmd(m, loc.proc, loc.vma)
        return
    if can_reuse_anon_page(m, m.scheme.pmd_reuse, e.folio, page, huge=True):
        m.set_exclusive(e.folio, (0,), huge=True)
        if not unshare:
            m.set(loc, replace(e, writable=True, soft_dirty=True))
        return
    split_huge_pmd(m, loc.proc, loc.vma)


def do_huge_zero_wp_pmd(m: Mem, loc: Loc) -> None:
    """A write (or unshare) fault on the huge zero PMD allocates a THP and maps it by the PMD.

    mm/huge_memory.c: do_huge_zero_wp_pmd (1ced09e0331f, 6.13): a PMD-sized folio of
    zeros, folio_add_new_anon_rmap with RMAP_EXCLUSIVE (the head carries the flag),
    mapped writable and dirty if the VMA has VM_WRITE (map_anon_folio_pmd), for an
    unshare fault too: the zero-page test comes before the unshare branch. An
    allocation, not a copy: ``World.copies`` does not count it. (The kernel falls
    back to the split when the allocation fails; the model's never fails.)
    """
    v = m.vma(loc.proc, loc.vma)
    e = m.get(loc)
    assert e is not None
    f = m.new_folio(FolioKind.THP, (ZERO_VALUE,) * v.npages)
    folio_add_new_anon_rmap(m, f.id, huge=True)
    m.set(loc, Entry(EntryKind.PRESENT, f.id, 0, writable=v.writable, soft_dirty=True))


def split_huge_pmd(m: Mem, proc: str, vma: str) -> bool:
    """Replace a PMD by a page table of PTEs; each subpage inherits the head's exclusivity.

    mm/huge_memory.c: __split_huge_pmd_locked, non-freezing (6.12). The PTEs
    inherit write and soft-dirty; a PMD migration entry becomes PTE migration
    entries of the same type; the huge zero page becomes small zero pages.
    Returns False when there is no PMD to split.
    """
    v = m.vma(proc, vma)
    e = v.huge
    if v.kind is not MapKind.THP or e is None:
        return False
    n = v.npages
    if e.kind is EntryKind.PRESENT and e.folio == ZERO_FOLIO:
        ptes = tuple(Entry(EntryKind.PRESENT, ZERO_FOLIO) for _ in range(n))
    else:
        ptes = tuple(replace(e, page=i) for i in range(n))
        if e.kind is EntryKind.PRESENT and m.exclusive(e.folio, 0, huge=True):
            m.set_exclusive(e.folio, range(n))
    m.set_vma(proc, replace(v, huge=None, ptes=ptes))
    return True


def can_split_folio(m: Mem, fid: int) -> bool:
    """No reference beyond the mappings, the swap cache and the caller's own.

    mm/huge_memory.c: can_split_folio (6.12), with folio_expected_ref_count. The
    caller's pins are the reference migration took when it isolated the folio,
    while migration entries point at it (the model's refcount counts that one).
    """
    caller_pins = 1 if m.mappings_of(fid, (EntryKind.MIGRATION,)) else 0
    return m.refcount(fid) == folio_expected_ref_count(m, fid) + caller_pins


def split_folio(m: Mem, fid: int) -> str | None:
    """Split a THP into small folios; exclusivity of mapped subpages travels with them.

    mm/huge_memory.c: split_huge_page_to_list_to_order -> __split_huge_page (6.12).
    Refused when something other than mappings and the swap cache holds a
    reference (can_split_folio): a pinned or GUP-referenced THP cannot be
    split. PMD mappings are split first (freezing: via migration entries,
    which carry each subpage's exclusivity); a flag on an unmapped subpage is
    dropped. A mapped subpage that holds only zeros is mapped to the shared
    zero page instead (remap_page with RMP_USE_SHARED_ZEROPAGE, 6.12; the
    model's value "0" stands for a zero-filled page), unless it is poisoned;
    scheme point ``split_zero_remap`` (b1f202060afe, 6.12: 6.1 keeps them).
    The zero-page PTE keeps the soft-dirty bit of the entry it replaces
    (try_to_map_unused_to_zeropage copies soft-dirty and uffd-wp from the
    migration entry; the model has no uffd-wp bit). v6.12 as released dropped
    both bits; 9658d698a8a8 ("mm/rmap: fix soft-dirty and uffd-wp bit loss when
    remapping zero-filled mTHP subpage to shared zeropage", 6.18) keeps them,
    and the 6.12 stable series has it (the 6.12.118 source does), so the model
    follows stable 6.12 here as for the poison check below.
    That exception is version-dependent: mm/migrate.c:
    try_to_map_unused_to_zeropage in v6.12 as released has no PageHWPoison
    check and reads the poisoned subpage to compare it with zeros (consuming
    the poison: a machine check). The check came with "mm: prevent poison
    consumption when splitting THP" (6.18-rc3), which the 6.12 stable series
    picked up; the model follows that stable 6.12 (the 6.12.118 source and
    the 6.12.117 kernel of the real-kernel check have it), since consuming
    the poison is a machine check the model has no state for. Returns the
    reason for backing off, or None.
    """
    f = m.folio(fid)
    if f.kind is FolioKind.HUGETLB:
        return "hugetlb folios are not split"
    if not f.large:
        return "not a large folio"
    if not can_split_folio(m, fid):
        return "the folio has references beyond its mappings (pinned or GUP), can_split_folio"
    for loc, _e in m.mappings_of(fid, (EntryKind.PRESENT, EntryKind.MIGRATION,
                                      EntryKind.DEVICE_EXCLUSIVE, EntryKind.HWPOISON)):
        if loc.huge:
            split_huge_pmd(m, loc.proc, loc.vma)
    mapped: dict[int, bool] = {}
    for _loc, e in m.mappings_of(fid):
        mapped[e.page] = mapped.get(e.page, False) or m.exclusive(fid, e.page)
    f = m.folio(fid)
    new_ids = []
    for i, p in enumerate(f.pages):
        g = m.new_folio(FolioKind.SMALL, (p.data,))
        g = replace(g, pages=(replace(g.pages[0], hwpoison=p.hwpoison),),
                    swapcache=(f.swapcache[i],) if f.swapcache is not None else None)
        m.set_folio(g)
        if mapped.get(i, False):
            m.set_exclusive(g.id, (0,))
        new_ids.append(g.id)
    for loc, e in list(m.entries()):
        if e.kind not in (EntryKind.SWAP,) and e.folio == fid:
            if loc.huge:
                raise OpFailed("internal: PMD left after split", ErrorKind.FAILED)
            zero_filled = f.pages[e.page].data == ZERO_VALUE and not f.pages[e.page].hwpoison
            if e.kind is EntryKind.PRESENT and zero_filled and m.scheme.split_zero_remap:
                # remap_page(RMP_USE_SHARED_ZEROPAGE): a zero-filled subpage is not kept;
                # the soft-dirty bit carries over (stable 6.12, 9658d698a8a8)
                m.set(loc, Entry(EntryKind.PRESENT, ZERO_FOLIO, soft_dirty=e.soft_dirty))
                continue
            m.set(loc, replace(e, folio=new_ids[e.page], page=0))
    del m.folios[fid]
    return None
